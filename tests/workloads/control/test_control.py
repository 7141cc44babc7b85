"""The PIDNet building blocks: plants, the differentiable loop, identification, baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reprolab.core.errors import DataError
from reprolab.workloads.control import metrics, simulate, tuning
from reprolab.workloads.control.plants import Loop, Plant, check

QUIET = Loop(dt=0.1, horizon=40.0, noise_std=0.0, disturbance=0.0, disturbance_time=20.0)


def test_open_loop_step_matches_the_analytic_fopdt_response():
    plant = Plant("fopdt", gain=2.0, delay=1.0, time_constant=3.0)
    t, y = simulate.open_loop_step(simulate.batch([plant], QUIET))
    expected = np.where(t >= 1.0, 2.0 * (1 - np.exp(-(t - 1.0) / 3.0)), 0.0)
    np.testing.assert_allclose(y[0], expected, atol=1e-9)  # exact ZOH discretisation


def test_sopdt_step_has_the_textbook_overshoot():
    zeta = 0.4
    plant = Plant("sopdt", gain=1.0, delay=0.0, damping=zeta, natural_frequency=1.0)
    _, y = simulate.open_loop_step(simulate.batch([plant], QUIET))
    assert y[0].max() - 1 == pytest.approx(
        math.exp(-zeta * math.pi / math.sqrt(1 - zeta**2)), abs=2e-3
    )


def test_p_control_settles_at_the_analytic_offset():
    plant = Plant("fopdt", gain=2.0, delay=0.0, time_constant=1.0)
    kp = 1.5
    traj = simulate.closed_loop(simulate.batch([plant], QUIET), torch.tensor([[kp, 0.0, 0.0]]))
    assert float(traj.y[0, -1]) == pytest.approx(kp * 2.0 / (1 + kp * 2.0), abs=1e-6)


def test_integral_action_removes_the_offset_and_rejects_the_load():
    loop = Loop(dt=0.1, horizon=60.0, noise_std=0.0, disturbance=0.5, disturbance_time=30.0)
    plant = Plant("fopdt", gain=1.0, delay=0.5, time_constant=2.0)
    traj = simulate.closed_loop(simulate.batch([plant], loop), torch.tensor([[1.0, 0.5, 0.0]]))
    assert float(traj.y[0, 299]) == pytest.approx(1.0, abs=1e-3)
    assert float(traj.y[0, -1]) == pytest.approx(1.0, abs=1e-3)


def test_actuator_saturation_and_anti_windup():
    loop = Loop(
        dt=0.1, horizon=40.0, noise_std=0.0, disturbance=0.0, disturbance_time=20.0, u_limit=1.5
    )
    plant = Plant("fopdt", gain=1.0, delay=0.3, time_constant=2.0)
    traj = simulate.closed_loop(simulate.batch([plant], loop), torch.tensor([[20.0, 20.0, 0.0]]))
    assert float(traj.u.abs().max()) <= 1.5 + 1e-12
    # without anti-windup the integrator would overshoot far past the setpoint
    assert float(traj.y.max()) < 1.3


def test_gradients_reach_every_gain():
    plants = [
        Plant("fopdt", 1.5, 0.8, time_constant=3.0),
        Plant("integrating", 0.5, 0.5, time_constant=1.0),
    ]
    gains = torch.tensor([[1.0, 0.3, 0.4], [0.5, 0.02, 0.3]], requires_grad=True)
    loop = Loop(dt=0.2, horizon=40.0, noise_std=0.01, disturbance=0.3, disturbance_time=20.0)
    traj = simulate.closed_loop(simulate.batch(plants, loop), gains)
    cost = metrics.iae(traj, loop.dt) + metrics.overshoot(traj, 100) + 0.01 * metrics.effort(traj)
    cost.sum().backward()
    assert torch.isfinite(gains.grad).all()
    assert (gains.grad.abs() > 0).all()


def test_identification_and_tuning_rules_on_a_clean_fopdt():
    plant = Plant("fopdt", gain=2.0, delay=1.0, time_constant=4.0)
    t, y = simulate.open_loop_step(simulate.batch([plant], QUIET))
    f = tuning.identify(t, y)
    assert f.loc[0, "lag"] == pytest.approx(4.0, rel=0.03)
    assert f.loc[0, "dead_time"] == pytest.approx(1.0, abs=0.05)
    assert f.loc[0, "slope"] == pytest.approx(0.5, rel=0.03)
    exact = f.copy()
    exact.loc[0, ["slope", "dead_time", "lag"]] = [0.5, 1.0, 4.0]
    kp, ki, kd = tuning.ziegler_nichols(exact)[0]
    assert (kp, kp / ki, kd / kp) == pytest.approx((1.2 * 4.0 / (2.0 * 1.0), 2.0, 0.5))
    kc, kic, kdc = tuning.simc(exact)[0]
    assert (kc, kc / kic, kdc) == pytest.approx((4.0 / (2.0 * 2 * 1.0), min(4.0, 8.0), 0.0))


def test_identification_flags_an_integrating_plant():
    plant = Plant("integrating", gain=0.5, delay=1.0, time_constant=2.0)
    t, y = simulate.open_loop_step(simulate.batch([plant], QUIET))
    f = tuning.identify(t, y)
    assert f.loc[0, "integrating"] == 1.0
    assert f.loc[0, "slope"] == pytest.approx(0.5, rel=0.02)
    assert f.loc[0, "dead_time"] == pytest.approx(3.0, rel=0.05)  # delay + lag


@pytest.mark.parametrize(
    ("plant", "message"),
    [
        (Plant("fopdt", 1.0, 0.5, time_constant=-2.0), "time_constant: must be > 0, got -2.0"),
        (Plant("fopdt", 1.0, 25.0), "delay: 25.0s is longer than the setpoint phase"),
        (Plant("sopdt", 1.0, 0.5, damping=1.5), "damping: must be in (0, 1)"),
        (Plant("fopdt", float("nan"), 0.5), "gain: must be a finite number"),
    ],
)
def test_nonsense_plants_are_rejected_with_the_key(plant, message):
    with pytest.raises(DataError, match=r"plant\.") as err:
        check(plant, QUIET)
    assert message in str(err.value)


def test_diverging_loop_is_an_error_not_nan():
    from reprolab.workloads.control.data import ControlSplit, SimulationError

    plants = [Plant("integrating", 3.0, 2.0, time_constant=0.5)]
    loop = Loop(
        dt=0.2, horizon=60.0, noise_std=0.0, disturbance=0.0, disturbance_time=30.0, u_limit=1e9
    )
    feats = tuning.identify(*simulate.open_loop_step(simulate.batch(plants, loop)))
    split = ControlSplit(plants, loop, feats, np.array(["integrating"]))
    with pytest.raises(SimulationError, match="diverged"):
        split.score(np.array([[50.0, 50.0, 0.0]]))
