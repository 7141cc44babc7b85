"""Step-test identification and the classic tuning rules computed from it.

A first-order-plus-dead-time fit of the (noisy) open-loop step by Smith's two-point method
(28.3 % / 63.2 % of the final value: lag T, dead time L, gain K, slope R = K/T); an
integrating plant (still ramping at the end) gets R and L from a line fit of the tail.
Ziegler–Nichols reaction curve: Kp = 1.2/(R L), Ti = 2 L, Td = L/2.
SIMC (Skogestad 2003), tau_c = L: Kc = 1/(2 R L), Ti = min(K/R, 8 L), PI only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprolab.core.errors import DataError

FEATURES = ["slope", "dead_time", "lag", "integrating", "open_overshoot"]
SMOOTH = 5  # samples in the moving average before differentiating


def identify(t: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """One row of FEATURES per step response in `y` (B, N)."""
    dt = float(t[1] - t[0])
    rows = []
    for i, resp in enumerate(np.atleast_2d(y)):
        smooth = moving_average(resp, SMOOTH)
        rough = float(np.gradient(smooth, dt)[SMOOTH:-SMOOTH].max())
        if not rough > 0:
            raise DataError(f"step test {i}: the output never rises; is the plant gain > 0?")
        tail = max(len(resp) * 3 // 10, SMOOTH)
        final_slope, intercept = line_fit(t[-tail:], resp[-tail:])
        if final_slope > 0.5 * rough:  # still ramping at the end: integrating
            r, dead, lag, k = float(final_slope), float(-intercept / final_slope), 0.0, 0.0
        else:  # two-point method (Smith): 28.3 % and 63.2 % of the final value
            k = float(np.mean(resp[-max(len(resp) // 10, SMOOTH) :]))
            t28, t63 = _crossing(t, smooth, 0.283 * k), _crossing(t, smooth, 0.632 * k)
            lag = max(1.5 * (t63 - t28), dt)
            dead, r = t63 - lag, k / lag
        rows.append(
            {
                "slope": r,
                "dead_time": max(dead, dt),
                "lag": lag,
                "integrating": float(lag == 0.0),
                "open_overshoot": max(float(smooth[:-SMOOTH].max() / k - 1.0), 0.0) if k else 0.0,
            }
        )
    return pd.DataFrame(rows, columns=FEATURES)


def moving_average(y: np.ndarray, width: int) -> np.ndarray:
    """np.convolve(y, ones(width) / width, "same"), summed in a fixed order: np.convolve
    and np.polyfit go through BLAS, whose kernels round differently on AVX2 and AVX-512,
    so the same step test gave other features on other CPUs."""
    lead = (width - 1) // 2
    padded = np.concatenate([np.zeros(width - 1 - lead), y, np.zeros(lead)])
    total = np.zeros(len(y))
    for j in range(width):
        total = total + padded[j : j + len(y)]
    return total / width


def line_fit(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept, in closed form (see moving_average)."""
    dt, dy = t - t.mean(), y - y.mean()
    slope = float((dt * dy).sum() / (dt * dt).sum())
    return slope, float(y.mean() - slope * t.mean())


def _crossing(t: np.ndarray, y: np.ndarray, level: float) -> float:
    """First time `y` reaches `level`, linearly interpolated."""
    above = np.flatnonzero(y >= level)
    if len(above) == 0 or above[0] == 0:
        return float(t[above[0]]) if len(above) else float(t[-1])
    j = above[0]
    frac = (level - y[j - 1]) / max(y[j] - y[j - 1], 1e-12)
    return float(t[j - 1] + frac * (t[j] - t[j - 1]))


def ziegler_nichols(f: pd.DataFrame) -> np.ndarray:
    r, dead = f["slope"].to_numpy(), f["dead_time"].to_numpy()
    kp = 1.2 / (r * dead)
    ti, td = 2.0 * dead, 0.5 * dead
    return np.stack([kp, kp / ti, kp * td], axis=1)


def simc(f: pd.DataFrame) -> np.ndarray:
    r, dead, lag = (f[c].to_numpy() for c in ("slope", "dead_time", "lag"))
    kp = 1.0 / (2.0 * r * dead)
    ti = np.where(f["integrating"].to_numpy() > 0.5, 8.0 * dead, np.minimum(lag, 8.0 * dead))
    ti = np.maximum(ti, dead)
    return np.stack([kp, kp / ti, np.zeros_like(kp)], axis=1)


BASELINES = {"zn": ziegler_nichols, "simc": simc}
