"""The plants' step tests and features must not depend on the CPU's vector width: prepare's
output feeds every PID model and baseline, and a batched matrix product or BLAS call rounds
differently on AVX2 and AVX-512. Each kernel path runs in a fresh process (the choice is
made when torch and OpenBLAS load)."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import hashlib, json, numpy as np
from reprolab.workloads.control import simulate, tuning
from reprolab.workloads.control.plants import Loop, sample
from reprolab.workloads.control.params import ControlDataset
params = ControlDataset(workload="control", kind="control", n_plants=200)
loop = Loop(dt=0.2, horizon=40.0, noise_std=0.01, disturbance=0.5, disturbance_time=20.0)
plants = sample(params, np.random.default_rng(3))
t, y = simulate.open_loop_step(simulate.batch(plants, loop))
feats = tuning.identify(t, y)
print(hashlib.md5(y.tobytes() + feats.to_numpy().tobytes()).hexdigest())
"""

PATHS = (
    {},
    {"ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_CORETYPE": "Haswell"},
    {"ATEN_CPU_CAPABILITY": "default", "OPENBLAS_CORETYPE": "Prescott"},
)


def test_step_tests_and_features_are_the_same_on_every_kernel_path():
    digests = set()
    for extra in PATHS:
        env = {**os.environ, **extra}
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1, f"{len(digests)} different results over {len(PATHS)} kernel paths"
