"""U-Net: it learns (overfits generated pairs), tiles stitch like whole images, the saved
MLflow model predicts images of any mode and size, bad inputs and params fail clearly."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from reprolab import workloads
from reprolab.core import saving
from reprolab.core.errors import DataError, ParamsError
from reprolab.core.metrics import mask_scores
from reprolab.core.train.schedule import warmup_decay
from reprolab.params import parse_params
from reprolab.workloads.nuclei import images
from reprolab.workloads.nuclei.unet import UNetSegmenter
from reprolab.workloads.nuclei.unet_net import NetConfig, build, predict_proba
from tests.tiny_models import TaggedRun, cpu_run_tags


@pytest.fixture(autouse=True)
def _local_mlflow(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


def shapes(seed: int, h: int = 64, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Discs and squares, bright on dark or dark on light, with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), bool)
    for _ in range(3):
        cy, cx, r = rng.integers(10, h - 10), rng.integers(10, w - 10), rng.integers(4, 9)
        if rng.random() < 0.5:
            mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
        else:
            mask |= (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
    fg, bg = (200, 50) if seed % 2 == 0 else (60, 210)
    grey = np.where(mask, fg, bg) + rng.normal(0, 15, (h, w))
    tint = np.array([1.0, 0.8, 0.9]) if seed % 3 == 0 else np.ones(3)
    rgb = np.clip(grey[:, :, None] * tint, 0, 255).astype(np.uint8)
    return rgb, mask


class Pairs:
    """The split interface the U-Net trains on: rgb(), masks."""

    def __init__(self, seeds, h=64, w=64) -> None:
        made = [shapes(s, h, w) for s in seeds]
        self._rgb = [m[0] for m in made]
        self.masks = [m[1] for m in made]

    def rgb(self):
        return self._rgb


def unet_params(**overrides):
    spec = {
        "dataset": "d",
        "task": "t",
        "workload": "nuclei",
        "kind": "unet",
        "depth": 2,
        "base_width": 8,
        "crop_size": 32,
        "batch_size": 8,
        "lr": 0.01,
        "warmup_steps": 5,
        "max_steps": 80,
        "eval_every": 20,
        "patience": 10,
        "bf16": False,
        "channels_last": False,
        "tile_size": 64,
        "tile_overlap": 8,
        **overrides,
    }
    raw = {
        "datasets": {"d": {"workload": "nuclei", "kind": "nuclei"}},
        "models": {"u": spec},
        "registry": {"t": {"metric": "dice", "direction": "maximize", "threshold": 0.5}},
    }
    return parse_params(raw).models["u"]


def test_unet_overfits_generated_pairs():
    torch.set_num_threads(1)
    pairs = Pairs(range(4))
    log = TaggedRun()
    model = workloads.build(unet_params(), seed=0).fit(pairs, pairs, log)
    assert isinstance(model, UNetSegmenter)
    dice = np.mean(
        [
            mask_scores(m, predict_proba(model.net, rgb, model.config) > 0.5)["dice"]
            for rgb, m in zip(pairs.rgb(), pairs.masks, strict=True)
        ]
    )
    assert dice > 0.9, log.steps
    assert log.steps[0][0] == 20
    assert {"train_loss", "valid_dice", "lr"} <= set(log.steps[0][1])


def test_bf16_channels_last_also_learns():
    torch.set_num_threads(1)
    pairs = Pairs(range(2))
    model = workloads.build(unet_params(bf16=True, channels_last=True, max_steps=40), 0)
    model.fit(pairs, pairs)
    assert model._dice(model.net, pairs) > 0.8


def test_device_and_bf16_auto_are_resolved_and_recorded(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    pairs = Pairs(range(2), h=32, w=32)
    spec = unet_params(bf16="auto", device="cpu", base_width=4, max_steps=4, eval_every=4)
    run = TaggedRun()
    model = workloads.build(spec, 0).fit(pairs, pairs, run)
    assert run.tags == cpu_run_tags(2)
    assert model.config.bf16 is False  # what the saved model predicts with: never "auto"
    assert next(model.net.parameters()).device.type == "cpu"


def test_a_time_guard_cuts_training_short_and_tags_it(monkeypatch, capsys):
    """The guard stops the loop; the schedule stays planned over max_steps (steps, never
    seconds), so the steps run before it bit are the same as in a complete run."""
    from reprolab.core.train import budget

    seconds = iter(range(10**6))  # the guard's clock: one second per step
    monkeypatch.setattr(budget, "_now", lambda: float(next(seconds)))
    pairs = Pairs(range(2), h=32, w=32)
    spec = unet_params(base_width=4, max_steps=60, eval_every=10, warmup_steps=2, max_seconds=40)
    run = TaggedRun()
    model = workloads.build(spec, 0).fit(pairs, pairs, run)
    assert model.steps_run == 40
    assert run.tags["cut_short"] == "true" and run.tags["cut_at_step"] == "40"
    assert [s for s, _ in run.steps] == [10, 20, 30, 40]
    complete = TaggedRun()
    workloads.build(unet_params(base_width=4, max_steps=60, eval_every=10, warmup_steps=2), 0).fit(
        pairs, pairs, complete
    )
    assert complete.steps[:4] == run.steps  # the same curve up to the cut
    assert "cut_short" not in complete.tags
    said = "unet: cut short: max_seconds=40 reached at step 40 of 60"
    assert said in capsys.readouterr().err


def random_net(**overrides) -> tuple:
    torch.manual_seed(0)
    config = NetConfig(
        **{
            "depth": 2,
            "base_width": 8,
            "norm": "batch",
            "dropout": 0.0,
            "standardize": True,
            "bf16": False,
            "channels_last": False,
            "threshold": 0.5,
            "tile_size": 128,
            "tile_overlap": 16,
            **overrides,
        }
    )
    return build(config).eval(), config


def test_tiled_prediction_equals_whole_image_when_it_fits():
    net, config = random_net(tile_size=128)
    rgb, _ = shapes(1, 96, 112)
    assert np.array_equal(predict_proba(net, rgb, config), predict_proba(net, rgb, config, False))


def test_tiles_stitch_close_to_the_whole_image():
    net, config = random_net(tile_size=64, tile_overlap=24)
    rgb, _ = shapes(2, 150, 230)
    tiled, whole = predict_proba(net, rgb, config), predict_proba(net, rgb, config, False)
    assert tiled.shape == whole.shape == (150, 230)
    assert np.abs(tiled - whole).mean() < 0.01
    assert np.abs(tiled - whole).max() < 0.2


def test_tta_is_equivariant_to_rotations_and_flips():
    """Averaged over the 8 views, a rotated or mirrored image gets the rotated or mirrored
    prediction; a plain (untrained, asymmetric) network does not."""
    net, config = random_net(tta=True)
    rgb, _ = shapes(3, 48, 80)  # not square: rotations change the shape
    proba = predict_proba(net, rgb, config)
    assert proba.shape == (48, 80)
    for view, back in (
        (np.rot90(rgb, 1), lambda p: np.rot90(p, -1)),
        (rgb[:, ::-1], lambda p: p[:, ::-1]),
    ):
        turned = back(predict_proba(net, np.ascontiguousarray(view), config))
        plain = back(predict_proba(net, np.ascontiguousarray(view), config, tta=False))
        assert np.allclose(turned, proba, atol=1e-5)
        assert not np.allclose(plain, predict_proba(net, rgb, config, tta=False), atol=1e-3)


def test_color_jitter_changes_inputs_not_masks():
    from reprolab.workloads.nuclei.unet import CropSampler

    rgbs, masks = zip(*(shapes(i) for i in range(3)), strict=True)
    plain = CropSampler(rgbs, masks, 32, True, seed=0).batch(1)
    jittered = CropSampler(rgbs, masks, 32, True, seed=0, color_jitter=0.3).batch(1)
    assert torch.equal(plain[1], jittered[1])  # same crop (jitter draws come after it)
    assert not torch.allclose(plain[0], jittered[0])
    assert jittered[0].dtype == torch.float32


def test_modality_tells_stained_brightfield_and_fluorescence_apart():
    from reprolab.workloads.nuclei.unet_net import modality

    nucleus = np.zeros((32, 32), bool)
    nucleus[8:20, 8:20] = True
    h_and_e = np.where(nucleus[:, :, None], (159, 67, 171), (218, 180, 210)).astype(np.uint8)
    grey = np.where(nucleus, 60, 200).astype(np.uint8)[:, :, None].repeat(3, axis=2)
    assert modality(h_and_e) == "stained"
    assert modality(grey) == "brightfield"
    assert modality(255 - grey) == "fluorescence"


def test_sample_balance_draws_each_modality_as_asked():
    """balance 0 draws images uniformly (the same draws as before the option existed);
    balance 1 draws each modality equally often however few images it has."""
    from reprolab.workloads.nuclei.unet import CropSampler, modality_weights

    kinds = ["fluorescence"] * 8 + ["stained"] * 2
    assert np.allclose(modality_weights(kinds, 0.0), 0.1)
    balanced = modality_weights(kinds, 1.0)
    assert balanced[8:].sum() == pytest.approx(0.5)
    assert balanced[:8].sum() == pytest.approx(0.5)
    half = modality_weights(kinds, 0.5)  # weight ~ count ** -0.5: 8/sqrt(8) vs 2/sqrt(2)
    assert half[8:].sum() == pytest.approx(np.sqrt(2) / (np.sqrt(8) + np.sqrt(2)))

    fluorescence = np.full((32, 32, 3), 10, np.uint8)
    stained = np.full((32, 32, 3), (218, 180, 210), np.uint8)
    rgbs = [fluorescence] * 9 + [stained]
    masks = [np.zeros((32, 32), bool)] * 9 + [np.ones((32, 32), bool)]  # mask tells which
    drawn = CropSampler(rgbs, masks, 16, True, seed=0, stain=True, balance=1.0).batch(400)[1]
    assert 0.4 < drawn.mean().item() < 0.6
    uniform = CropSampler(rgbs, masks, 16, True, seed=0, stain=True).batch(400)[1]
    assert uniform.mean().item() < 0.2


def test_scale_jitter_shows_the_stripes_wider_and_narrower():
    """Stripes 4 px wide: a plain 32-px crop always crosses 7-8 edges per row (or column,
    once rotated); a rescaled crop crosses fewer or more, and its mask stays binary."""
    from reprolab.workloads.nuclei.unet import CropSampler

    stripes = (np.arange(96) // 4 % 2).astype(bool)[None, :].repeat(96, axis=0)
    rgb = np.where(stripes[:, :, None], 200, 20).astype(np.uint8).repeat(3, axis=2)

    def edges(scale_jitter):
        sampler = CropSampler([rgb], [stripes], 32, True, seed=0, scale_jitter=scale_jitter)
        x, y = sampler.batch(60)
        assert x.shape == (60, 3, 32, 32) and y.shape == (60, 1, 32, 32)
        assert set(torch.unique(y).tolist()) <= {0.0, 1.0}
        rows = (y[:, 0, :, 1:] != y[:, 0, :, :-1]).sum(dim=2).float().mean(dim=1)
        cols = (y[:, 0, 1:, :] != y[:, 0, :-1, :]).sum(dim=1).float().mean(dim=1)
        return (rows + cols).round()

    assert set(edges(0.0).tolist()) <= {7.0, 8.0}
    jittered = edges(0.5)
    assert jittered.min() <= 6 and jittered.max() >= 10


def test_weight_average_follows_the_net_with_a_warming_decay():
    from reprolab.workloads.nuclei.unet import WeightAverage

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    start = {k: v.clone() for k, v in net.state_dict().items()}
    average = WeightAverage(net, decay=0.99)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            tensor.add_(1) if tensor.is_floating_point() else tensor.fill_(7)
    average.update(net)
    kept = 2 / 11  # first update: min(0.99, (1 + 1) / (10 + 1)) of the old weights
    for key, value in average.net.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, start[key] + 1 - kept), key
        else:  # counters (batch-norm's num_batches_tracked) are copied, not averaged
            assert value.item() == 7
    for _ in range(2000):
        average.update(net)
    weight = net.state_dict()["0.weight"]
    assert torch.allclose(average.net.state_dict()["0.weight"], weight, atol=1e-6)
    assert average.net is not net


def test_fit_with_ema_keeps_the_averaged_weights():
    torch.set_num_threads(1)
    pairs = Pairs(range(2))
    plain = workloads.build(unet_params(max_steps=12, eval_every=12), 0).fit(pairs, pairs)
    averaged = workloads.build(unet_params(max_steps=12, eval_every=12, ema=0.9), 0).fit(
        pairs, pairs
    )
    # same seed, same batches: only the kept weights differ
    first = next(iter(plain.net.state_dict().values()))
    assert not torch.allclose(first, next(iter(averaged.net.state_dict().values())))
    frame = pd.DataFrame({"image": [_encoded(shapes(1)[0])]})  # predict uses the average too
    assert not plain.predict(frame)["mask"].equals(averaged.predict(frame)["mask"])


def test_stain_input_makes_nuclei_bright_whatever_the_counterstain():
    """Purple (hematoxylin) nuclei on red (eosin) stroma or on a pale background come out
    brighter than what surrounds them; grey images (fluorescence, brightfield) are left as
    they are."""
    from reprolab.workloads.nuclei.unet_net import to_input

    nucleus = np.zeros((32, 32), bool)
    nucleus[8:20, 8:20] = True
    purple, red, pale = (159, 67, 171), (202, 38, 103), (218, 180, 210)  # from a DSB slide
    for background in (red, pale):
        rgb = np.where(nucleus[:, :, None], purple, background).astype(np.uint8)
        x = to_input(rgb, standardize=True, stain=True)
        assert x.shape == (3, 32, 32) and x.dtype == np.float32
        assert x[0][nucleus].mean() > x[0][~nucleus].mean() + 1.0, background
        hed = to_input(rgb, standardize=False, stain=True, stain_channels="hed")
        h_only = to_input(rgb, standardize=False, stain=True)
        assert np.array_equal(hed[0], h_only[0])  # hematoxylin first, as with "h"
        if background == red:  # the eosin channel tells the stroma from the nuclei
            assert hed[1][~nucleus].mean() > hed[1][nucleus].mean() + 0.5
    for fg, bg in ((200, 10), (60, 200)):  # fluorescence, grey brightfield
        grey = np.where(nucleus[:, :, None], fg, bg).astype(np.uint8).repeat(3, axis=2)
        assert np.array_equal(to_input(grey, True, stain=True), to_input(grey, True, stain=False))
        assert np.array_equal(to_input(grey, True, True, "hed"), to_input(grey, True, False))


def test_odd_sizes_are_padded_and_cropped_back():
    net, config = random_net()
    for h, w in ((37, 53), (5, 7), (130, 33)):
        rgb = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
        assert predict_proba(net, rgb, config).shape == (h, w)


def _encoded(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def test_saved_model_predicts_any_mode_and_size(tmp_path):
    torch.set_num_threads(1)
    pairs = Pairs(range(2))
    model = workloads.build(unet_params(max_steps=10, eval_every=10), 0).fit(pairs, pairs)
    rgb, _ = shapes(5, 70, 90)
    frame = pd.DataFrame(
        {
            "image": [
                _encoded(rgb),
                _encoded(np.dstack([rgb, np.full((70, 90), 255, np.uint8)])),  # RGBA
                _encoded(rgb[:, :, 0]),  # grey
                _encoded(rgb[:33, :41, 0].astype(np.uint16) * 250),  # 16-bit, odd size
                _encoded(rgb, "JPEG"),
            ]
        }
    )
    model.save(tmp_path / "model", input_example=frame.head(1))
    loaded = saving.load_predictor(tmp_path / "model")
    out = loaded.predict(frame)
    assert list(out.columns) == ["mask", "width", "height", "foreground_fraction"]
    assert out[["width", "height"]].values.tolist() == [[90, 70]] * 3 + [[41, 33], [90, 70]]
    masks = [images.text_to_mask(t) for t in out["mask"]]
    assert masks[0].shape == (70, 90) and masks[3].shape == (33, 41)
    assert np.array_equal(masks[0], images.text_to_mask(model.predict(frame)["mask"][0]))
    assert np.array_equal(masks[0], masks[1])  # alpha is dropped, not learned


def test_bad_inputs_fail_clearly(tmp_path):
    net, config = random_net()
    from reprolab.workloads.nuclei.unet_net import predict_frame

    with pytest.raises(ValueError, match="expected an 'image' column"):
        predict_frame(net, pd.DataFrame({"x": [1]}), config)
    with pytest.raises(DataError, match="image row 1: not a readable image"):
        predict_frame(net, pd.DataFrame({"image": [_encoded(shapes(0)[0]), b"junk"]}), config)


def test_params_name_the_bad_key():
    with pytest.raises(ParamsError, match=r"models\.u\.crop_size: must be a multiple of 2"):
        unet_params(crop_size=30)
    with pytest.raises(ParamsError, match=r"models\.u\.norm: must be one of"):
        unet_params(norm="layer")


def test_schedule_warms_up_then_decays():
    assert warmup_decay(0, warmup=10, total=100, decay="cosine") == pytest.approx(0.1)
    assert warmup_decay(10, warmup=10, total=100, decay="cosine") == pytest.approx(1.0)
    assert warmup_decay(100, warmup=10, total=100, decay="cosine") == pytest.approx(0.0)
    assert warmup_decay(50, warmup=10, total=100, decay="constant") == 1.0
