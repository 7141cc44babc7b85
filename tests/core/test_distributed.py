"""The torch MLP under `torchrun --nproc_per_node 2` on CPU (gloo): each rank trains on its
own half of every epoch, yet gradients and parameters stay identical across ranks, and both
ranks report the same (all-reduced) curve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from reprolab.core import distributed

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_processes_keep_gradients_and_parameters_in_sync(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(WORKER), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert (r0["world_size"], r1["world_size"]) == (2, 2)
    # the ranks saw different, equally sized halves of the data ...
    assert len(r0["shard"]) == len(r1["shard"]) == 101
    assert not set(r0["shard"]) & set(r1["shard"])
    # ... yet DDP averaged their gradients: the same update everywhere
    g0, g1 = np.array(r0["grads"]), np.array(r1["grads"])
    assert np.abs(g0).max() > 0
    np.testing.assert_allclose(g0, g1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(r0["params"], r1["params"], rtol=1e-6, atol=1e-7)
    # same metrics format as one process: one row per epoch, same keys, same values
    assert [sorted(s) for s in r0["steps"]] == [["step", "train_rmse", "valid_rmse"]] * 3
    assert r0["steps"] == r1["steps"]


def test_single_process_helpers_are_no_ops(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist = distributed.init()
    assert (dist.rank, dist.world_size, dist.is_main, dist.enabled) == (0, 1, True, False)
    module = torch.nn.Linear(2, 1)
    assert distributed.wrap(module, dist) is module
    order = torch.arange(7)
    assert torch.equal(distributed.shard(order, dist), order)
    assert distributed.mean(3.5, dist) == 3.5
    distributed.check_in_sync(module, dist)


def test_shard_gives_equal_disjoint_parts():
    order = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    parts = [distributed.shard(order, distributed.Dist(rank=r, world_size=3)) for r in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]
    assert len(set(torch.cat(parts).tolist())) == 9
