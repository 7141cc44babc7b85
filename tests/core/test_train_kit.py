"""The training-loop kit: schedules, early stopping with the best weights, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from reprolab.core.train import checkpoint
from reprolab.core.train.early_stopping import EarlyStopping
from reprolab.core.train.schedule import lambda_lr, warmup_decay
from reprolab.core.train.setup import cpu_kernels, reproducible


def test_schedules_warm_up_then_decay_to_their_floor():
    assert [warmup_decay(s, warmup=4, total=20) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warmup_decay(4, warmup=4, total=20) == 1.0
    assert warmup_decay(12, warmup=4, total=20) == pytest.approx(0.5)
    assert warmup_decay(20, warmup=4, total=20, floor=0.1) == pytest.approx(0.1)
    assert warmup_decay(99, warmup=4, total=20, floor=0.1) == pytest.approx(0.1)  # held
    assert warmup_decay(12, warmup=4, total=20, decay="linear") == pytest.approx(0.5)
    assert warmup_decay(25, warmup=4, total=20, decay="linear") == 0.0
    assert warmup_decay(12, warmup=4, total=20, decay="constant") == 1.0
    # absolute rates (Mini-T's peak and floor)
    assert warmup_decay(50, warmup=4, total=96, peak=2e-3, floor=2e-4) == (
        pytest.approx(2e-4 + 0.5 * 1.8e-3)
    )


def test_lambda_lr_follows_the_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    sched = lambda_lr(opt, warmup=2, total=10)
    seen = []
    for _ in range(10):
        seen.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert seen[:2] == [pytest.approx(0.1), pytest.approx(0.2)]
    assert seen[-1] == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))


def test_early_stopping_keeps_the_best_weights_and_counts_patience():
    net = torch.nn.Linear(1, 1)
    stopping = EarlyStopping(patience=2, mode="max", min_delta=0.01, module=net)
    with torch.no_grad():
        net.weight.fill_(1.0)
    assert stopping.update(0.5, net)
    with torch.no_grad():
        net.weight.fill_(2.0)
    assert not stopping.update(0.505, net)  # within min_delta: no improvement
    assert not stopping.stop
    assert not stopping.update(0.4, net)
    assert stopping.stop and stopping.best == 0.5
    stopping.restore(net)
    assert net.weight.item() == 1.0


def test_early_stopping_without_improvement_restores_the_start():
    net = torch.nn.Linear(1, 1)
    start = net.weight.item()
    stopping = EarlyStopping(patience=1, mode="min", module=net, best=0.0)
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not stopping.update(0.3, net) and stopping.stop
    stopping.restore(net)
    assert net.weight.item() == start


def test_checkpoints_are_whole_or_absent(tmp_path):
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(net.parameters(), lr=0.1)
    sched = lambda_lr(opt, warmup=1, total=5)
    assert checkpoint.load(tmp_path / "ck") is None
    checkpoint.save_training(tmp_path / "ck", net, opt, sched, step=3)
    (tmp_path / "ck" / "state.pt.tmp").write_bytes(b"half a file")  # a stop mid-write
    other = torch.nn.Linear(2, 1)
    state = checkpoint.restore_training(
        checkpoint.load(tmp_path / "ck"), other, torch.optim.AdamW(other.parameters()), None
    )
    assert state["step"] == 3 and torch.equal(other.weight, net.weight)
    checkpoint.clear(tmp_path / "ck")
    assert not (tmp_path / "ck").exists()


def test_reproducible_restores_threads_and_records_the_kernel_path(monkeypatch):
    class Tags:
        def set_tags(self, tags: dict) -> None:
            self.tags = tags

    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(var, raising=False)
    run, before = Tags(), torch.get_num_threads()
    with reproducible(True, 1, seed=0, run=run):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == before and not torch.are_deterministic_algorithms_enabled()
    aten = torch.backends.cpu.get_cpu_capability()
    assert run.tags == {"deterministic": "true", "threads": "1", "cpu_kernels": cpu_kernels()}
    assert cpu_kernels() == f"aten={aten},onednn=auto"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert cpu_kernels() == f"aten={aten},onednn=AVX2"
