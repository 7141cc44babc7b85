"""A differentiable closed-loop simulation in torch, batched over plants.

Discrete time (exact ZOH plants, delay as a buffer of past controller outputs), PID with
derivative on the filtered measurement (no derivative kick; filter time Td/N), actuator
saturation and back-calculation anti-windup, an optional setpoint weight b on the
proportional term (it lets integrating plants track a step without overshoot). Setpoint step
0 -> 1 at t = 0, load disturbance at the plant input from `disturbance_time`, Gaussian
measurement noise. Every operation is differentiable in the gains, so a network can be
trained through it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reprolab.workloads.control.plants import Loop, Plant, discrete

DERIVATIVE_FILTER_N = 10.0
DIVERGED = 1e3  # |y| beyond this (setpoint 1) means the loop is unstable


@dataclass
class Batch:
    """Plants as tensors: Ad (B,2,2), Bd (B,2), delay steps (B,), noise (B,N)."""

    ad: torch.Tensor
    bd: torch.Tensor
    delay: torch.Tensor
    noise: torch.Tensor
    loop: Loop

    def to(self, device: str) -> Batch:
        """The same plants on `device` (training on a GPU)."""
        move = [t.to(device) for t in (self.ad, self.bd, self.delay, self.noise)]
        return Batch(*move, loop=self.loop)


def batch(plants: list[Plant], loop: Loop, noise: bool = True) -> Batch:
    mats = [discrete(p, loop.dt) for p in plants]
    n = loop.steps
    if noise and loop.noise_std > 0:
        rows = [np.random.default_rng(p.seed).normal(0, loop.noise_std, n) for p in plants]
    else:
        rows = [np.zeros(n) for _ in plants]
    return Batch(
        ad=torch.tensor(np.stack([m[0] for m in mats]), dtype=torch.float64),
        bd=torch.tensor(np.stack([m[1] for m in mats]), dtype=torch.float64),
        delay=torch.tensor([m[2] for m in mats], dtype=torch.long),
        noise=torch.tensor(np.stack(rows), dtype=torch.float64),
        loop=loop,
    )


@dataclass
class Trajectory:
    t: torch.Tensor  # (N,)
    y: torch.Tensor  # (B, N) true plant output
    u: torch.Tensor  # (B, N) saturated controller output
    r: torch.Tensor  # (N,) setpoint


def step(b: Batch, x: torch.Tensor, applied: torch.Tensor) -> torch.Tensor:
    """x' = Ad x + Bd u, written out element by element: a batched matrix product (einsum,
    bmm) sums in an order that depends on the CPU's vector width, so the same plants gave
    other trajectories, hence other step-test features and models, on AVX2 and AVX-512."""
    x0, x1 = x[:, 0], x[:, 1]
    ad = b.ad
    return torch.stack(
        [
            ad[:, 0, 0] * x0 + ad[:, 0, 1] * x1 + b.bd[:, 0] * applied,
            ad[:, 1, 0] * x0 + ad[:, 1, 1] * x1 + b.bd[:, 1] * applied,
        ],
        1,
    )


def closed_loop(b: Batch, gains: torch.Tensor) -> Trajectory:
    """Simulate every plant under its (Kp, Ki, Kd) row of `gains` (B, 3), or (Kp, Ki, Kd, b)
    (B, 4) with a setpoint weight b on the proportional term: u = Kp (b r - y) + I + D."""
    loop = b.loop
    gains = gains.to(torch.float64)
    kp, ki, kd = gains[:, 0], gains[:, 1], gains[:, 2]
    weight = gains[:, 3] if gains.shape[1] > 3 else torch.ones_like(kp)
    dt, n, size = loop.dt, loop.steps, gains.shape[0]
    td = kd / kp.clamp_min(1e-9)
    tf = (td / DERIVATIVE_FILTER_N).clamp_min(dt)  # derivative filter time constant
    tt = (kp / ki.clamp_min(1e-9)).clamp(min=dt, max=1e3)  # anti-windup tracking time
    depth = int(b.delay.max()) + 1
    on = {"dtype": torch.float64, "device": gains.device}
    hist = torch.zeros(size, depth, **on)
    x = torch.zeros(size, 2, **on)
    integral = torch.zeros(size, **on)
    deriv = torch.zeros(size, **on)
    y_prev = torch.zeros(size, **on)
    ys, us = [], []
    for k in range(n):
        y = x[:, 0]
        meas = y + b.noise[:, k]
        e = 1.0 - meas
        deriv = (tf * deriv - kd * (meas - y_prev)) / (tf + dt)
        y_prev = meas
        v = kp * (weight - meas) + integral + deriv  # setpoint r = 1
        u = v.clamp(-loop.u_limit, loop.u_limit)
        integral = integral + ki * e * dt + (u - v) * dt / tt
        hist = torch.cat([u[:, None], hist[:, :-1]], dim=1)
        applied = hist.gather(1, b.delay[:, None]).squeeze(1)
        if k >= loop.disturbance_step:
            applied = applied + loop.disturbance
        x = step(b, x, applied)
        ys.append(y)
        us.append(u)
    t = torch.arange(n, **on) * dt
    return Trajectory(t, torch.stack(ys, 1), torch.stack(us, 1), torch.ones(n, **on))


def open_loop_step(b: Batch) -> tuple[np.ndarray, np.ndarray]:
    """The step test: unit input step at t = 0, noisy measurement; returns (t, y (B, N))."""
    loop = b.loop
    size, n = b.ad.shape[0], loop.steps
    x = torch.zeros(size, 2, dtype=torch.float64)
    ys = []
    with torch.no_grad():
        for k in range(n):
            ys.append(x[:, 0] + b.noise[:, k])
            applied = (k >= b.delay).to(torch.float64)
            x = step(b, x, applied)
    return np.arange(n) * loop.dt, torch.stack(ys, 1).numpy()


def diverged(traj: Trajectory) -> torch.Tensor:
    """(B,) True where the loop blew up (non-finite or |y| beyond DIVERGED)."""
    y = traj.y.detach()
    return ~torch.isfinite(y).all(1) | (y.abs().max(1).values > DIVERGED)
