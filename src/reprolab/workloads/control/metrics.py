"""What a control engineer reads off a closed-loop response, per plant: IAE and ISE over the
whole run, overshoot (%) and 2 % settling time of the setpoint step (before the load
disturbance), and control effort (total variation of u). Differentiable where training
needs it (IAE, overshoot, effort)."""

from __future__ import annotations

import torch

from reprolab.workloads.control.simulate import Trajectory

SETTLING_BAND = 0.02
NAMES = ("iae", "ise", "overshoot", "settling_time", "effort")


def iae(traj: Trajectory, dt: float) -> torch.Tensor:
    return (traj.r - traj.y).abs().sum(1) * dt


def overshoot(traj: Trajectory, upto: int) -> torch.Tensor:
    """Fraction above the setpoint (1) before step `upto`, >= 0."""
    return (traj.y[:, :upto].max(1).values - 1.0).clamp_min(0.0)


def effort(traj: Trajectory) -> torch.Tensor:
    return traj.u.diff(dim=1).abs().sum(1)


def per_plant(traj: Trajectory, dt: float, upto: int) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        err = traj.r - traj.y
        outside = (err[:, :upto].abs() > SETTLING_BAND).to(torch.float64)
        steps = torch.arange(1, upto + 1, dtype=torch.float64)
        last_out = (outside * steps).max(1).values  # 1-based index of the last excursion
        return {
            "iae": iae(traj, dt),
            "ise": (err**2).sum(1) * dt,
            "overshoot": overshoot(traj, upto) * 100.0,
            "settling_time": last_out * dt,
            "effort": effort(traj),
        }
