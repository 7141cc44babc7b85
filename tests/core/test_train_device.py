"""The training kit's device and precision: `device: auto|cpu|cuda`, bf16 by what the
hardware runs natively, one autocast for both devices, CPU-only checkpoints and run tags."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from reprolab.core.errors import DataError
from reprolab.core.train import checkpoint, setup
from reprolab.core.train.setup import (
    autocast,
    bf16_native,
    record,
    resolve_bf16,
    resolve_device,
)


@pytest.mark.parametrize(
    ("choice", "usable", "expected"),
    [
        ("auto", True, "cuda"),
        ("auto", False, "cpu"),
        ("cpu", True, "cpu"),
        ("cpu", False, "cpu"),
        ("cuda", True, "cuda"),
    ],
)
def test_resolve_device(monkeypatch, choice, usable, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: usable)
    assert resolve_device(choice) == expected
    assert setup.device() == ("cuda" if usable else "cpu")


def test_cuda_where_there_is_none_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DataError) as err:
        resolve_device("cuda")
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("device: cuda asked, but no CUDA device is usable here (torch ")
    assert text.endswith("use auto or cpu")


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "native"),
    [(True, False, True), (False, True, True), (False, False, False)],
)
def test_bf16_auto_follows_the_cpu(monkeypatch, avx512_bf16, amx, native):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert bf16_native("cpu") is native
    assert resolve_bf16("auto", "cpu") is native
    assert resolve_bf16(True, "cpu") is True  # as given, whatever the hardware
    assert resolve_bf16(False, "cpu") is False


@pytest.mark.parametrize("supported", [True, False])
def test_bf16_auto_follows_the_gpu(monkeypatch, supported):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: supported)
    assert resolve_bf16("auto", "cuda") is supported


def test_doctor_reads_the_same_probe(monkeypatch):
    from reprolab.ops import doctor

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    status, detail = doctor.cpu_bf16()
    assert status == doctor.WARN and detail.startswith("avx512_bf16 no, amx no")


def test_autocast_is_bf16_only_when_enabled():
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with autocast("cpu", True):
        assert (a @ b).dtype == torch.bfloat16
    with autocast("cpu", False):
        assert (a @ b).dtype == torch.float32


def test_tags_go_to_a_run_that_takes_them():
    class Run:
        def set_tags(self, tags):
            self.tags = tags

    run = Run()
    record(run, device="cpu", bf16=True, cut_at_step=12)
    assert run.tags == {"device": "cpu", "bf16": "true", "cut_at_step": "12"}
    record(None, device="cpu")  # no run
    record(object(), device="cpu")  # an HPO trial's logger: steps only


def test_checkpoint_state_on_the_cpu_is_left_as_it_is():
    net = torch.nn.BatchNorm1d(3)
    state = net.state_dict()
    assert checkpoint.on_cpu(state) is state
    nested = {"model": state, "groups": [{"betas": (0.9, 0.99)}], "step": 3}
    assert checkpoint.on_cpu(nested) is nested


class OnGpu(torch.Tensor):
    """A CPU tensor that says it lives on a GPU (there is none here): what `on_cpu` moves."""

    @property
    def device(self):
        return torch.device("cuda")

    def cpu(self):
        return self.as_subclass(torch.Tensor).clone()


def test_checkpoint_state_elsewhere_comes_to_the_cpu():
    """Moved tensors keep their containers' types and a state dict's version metadata."""
    state = torch.nn.BatchNorm1d(3).state_dict()
    gpu = OrderedDict((k, v.as_subclass(OnGpu)) for k, v in state.items())
    gpu._metadata = state._metadata  # type: ignore[attr-defined]
    moved = checkpoint.on_cpu({"model": gpu, "pair": (gpu["weight"], 1), "step": 3})
    assert isinstance(moved["model"], OrderedDict)
    assert moved["model"]._metadata == state._metadata
    assert all(type(t) is torch.Tensor for t in moved["model"].values())
    assert type(moved["pair"]) is tuple and type(moved["pair"][0]) is torch.Tensor
    assert moved["pair"][1] == 1 and moved["step"] == 3
    assert all(type(t) is OnGpu for t in gpu.values())  # the original is left alone
