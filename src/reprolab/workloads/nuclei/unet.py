"""`unet`: binary segmentation trained on random crops with flips and 90° rotations, BCE + Dice
loss, AdamW with warm-up and cosine decay, early stopping on the validation Dice (whole images,
as evaluated), bf16 autocast and channels_last behind params. Saved as an MLflow pyfunc model
(weights + config), predicting whole images of any size."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Self

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from reprolab.core import torch_pyfunc
from reprolab.core.metrics import mask_scores
from reprolab.core.model import Model, StepLogger
from reprolab.core.train.loop import Loop
from reprolab.core.train.schedule import lambda_lr
from reprolab.core.train.setup import (
    autocast,
    record,
    reproducible_fit,
    resolve_bf16,
    resolve_device,
)
from reprolab.workloads.nuclei.unet_net import (
    NetConfig,
    build,
    modality,
    predict_frame,
    predict_proba,
)
from reprolab.workloads.nuclei.unet_net import to_input as _to_input


def net_config(p: Any, bf16: bool) -> NetConfig:
    """What the saved model predicts with; `bf16` is the resolved `p.bf16` (never "auto")."""
    return NetConfig(
        depth=p.depth,
        base_width=p.base_width,
        norm=p.norm,
        dropout=p.dropout,
        standardize=p.standardize,
        bf16=bf16,
        channels_last=p.channels_last,
        threshold=p.threshold,
        tile_size=p.tile_size,
        tile_overlap=p.tile_overlap,
        tta=p.tta,
        stain=p.stain,
        stain_channels=p.stain_channels,
    )


class CropSampler:
    """Random crops (images smaller than a crop are reflect-padded) with a random flip and
    90° rotation, and optionally a random gain and offset per colour channel (stain and
    exposure vary between slides). Images are drawn per image, not per pixel, as each test
    image counts once in the mean Dice; `balance` in [0, 1] draws an image with a weight of
    (images of its modality) ** -balance, so the rare stained and brightfield images, the
    worst-scored, are seen more often (1: every modality equally often). `scale_jitter` s
    rescales each crop by a random factor in [1/(1+s), 1+s]."""

    def __init__(
        self,
        rgbs,
        masks,
        crop: int,
        standardize: bool,
        seed: int,
        color_jitter: float = 0.0,
        stain: bool = False,
        balance: float = 0.0,
        scale_jitter: float = 0.0,
        stain_channels: str = "h",
    ) -> None:
        rgbs = list(rgbs)
        self.inputs = [_to_input(rgb, standardize, stain, stain_channels) for rgb in rgbs]
        self.weights = (  # None: uniform, the draw of runs from before `balance`
            modality_weights([modality(rgb) for rgb in rgbs], balance) if balance else None
        )
        self.scale_jitter = scale_jitter
        self.masks = [m.astype(np.float32) for m in masks]
        self.crop = crop
        self.color_jitter = color_jitter
        self.rng = np.random.default_rng(seed)

    def _one(self) -> tuple[np.ndarray, np.ndarray]:
        if self.weights is None:
            i = int(self.rng.integers(len(self.inputs)))
        else:
            i = int(self.rng.choice(len(self.inputs), p=self.weights))
        x, y = self.inputs[i], self.masks[i]
        c = out = self.crop
        if self.scale_jitter:  # cut a larger or smaller square, resized to the crop below
            bound = math.log(1 + self.scale_jitter)
            c = max(8, round(out * math.exp(self.rng.uniform(-bound, bound))))
        ph, pw = max(0, c - x.shape[1]), max(0, c - x.shape[2])
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="reflect")
            y = np.pad(y, ((0, ph), (0, pw)), mode="reflect")
        top = int(self.rng.integers(x.shape[1] - c + 1))
        left = int(self.rng.integers(x.shape[2] - c + 1))
        x, y = x[:, top : top + c, left : left + c], y[top : top + c, left : left + c]
        k = int(self.rng.integers(4))
        x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
        if self.rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, ::-1]
        if self.color_jitter:
            gain, offset = self.rng.uniform(-self.color_jitter, self.color_jitter, (2, 3, 1, 1))
            x = x * (1 + gain.astype(np.float32)) + offset.astype(np.float32)
        if c != out:
            x, y = _resized(x, y, out)
        return x, y

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [self._one() for _ in range(size)]
        x = torch.from_numpy(np.stack([p[0] for p in pairs]))
        y = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
        return x, y


def _resized(x: np.ndarray, y: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A crop and its mask rescaled to size x size (bilinear, antialiased; the mask
    re-binarised at 0.5): nuclei look larger or smaller, as between magnifications."""
    both = torch.from_numpy(np.concatenate([x, y[None]]).astype(np.float32))[None]
    scaled = F.interpolate(both, (size, size), mode="bilinear", antialias=True)[0].numpy()
    return scaled[:-1], (scaled[-1] >= 0.5).astype(np.float32)


def modality_weights(modalities: list[str], balance: float) -> np.ndarray:
    counts = {m: modalities.count(m) for m in set(modalities)}
    weights = np.array([counts[m] ** -balance for m in modalities], dtype=np.float64)
    return weights / weights.sum()


class WeightAverage:
    """An exponential moving average of a network's weights and batch-norm statistics
    (Polyak averaging): the averaged network is what gets validated and saved, smoothing out
    the last steps' noise. The decay ramps up as min(decay, (1 + n) / (10 + n)) so the first
    random weights are soon forgotten."""

    def __init__(self, net: torch.nn.Module, decay: float) -> None:
        self.net = copy.deepcopy(net)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, net: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        pairs = zip(self.net.state_dict().values(), net.state_dict().values(), strict=True)
        for mine, theirs in pairs:
            if mine.is_floating_point():
                mine.lerp_(theirs, 1 - decay)
            else:  # counters such as batch-norm's num_batches_tracked
                mine.copy_(theirs)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(1, 2, 3))
    total = prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    return (1 - (2 * inter + eps) / (total + eps)).mean()


class UNetSegmenter(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        # bf16 "auto" is settled by the device in fit; until then, as on this CPU
        self.config = net_config(params, resolve_bf16(params.bf16, "cpu"))
        self.net = None
        self.best_step = 0
        self.steps_run = 0

    @reproducible_fit
    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        p = self.params
        device = resolve_device(p.device)
        self.config = config = net_config(p, resolve_bf16(p.bf16, device))
        record(run, device=device, bf16=config.bf16)
        torch.manual_seed(self.seed)
        sampler = CropSampler(
            train.rgb(),
            train.masks,
            p.crop_size,
            p.standardize,
            self.seed,
            color_jitter=p.color_jitter,
            stain=p.stain,
            balance=p.sample_balance,
            scale_jitter=p.scale_jitter,
            stain_channels=p.stain_channels,
        )
        net = build(config).to(device)
        optimiser = torch.optim.AdamW(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        schedule = lambda_lr(optimiser, warmup=p.warmup_steps, total=p.max_steps, decay=p.schedule)
        average = WeightAverage(net, p.ema) if p.ema else None
        scored = average.net if average else net  # what is validated, kept and saved

        def step(_: int) -> dict[str, float]:
            net.train()
            x, y = (t.to(device) for t in sampler.batch(p.batch_size))
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, config.bf16):
                logits = net(x)
            logits = logits.float()
            loss = p.bce_weight * F.binary_cross_entropy_with_logits(logits, y) + (
                1 - p.bce_weight
            ) * dice_loss(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if average:
                average.update(net)
            return {"train_loss": loss.item()}

        loop = Loop(
            "unet",
            steps=p.max_steps,
            eval_every=p.eval_every,
            monitor="valid_dice",
            mode="max",
            patience=p.patience,
            min_delta=1e-4,
            best=-1.0,
            max_seconds=p.max_seconds,
        )
        outcome = loop.run(
            step,
            lambda: {"valid_dice": self._dice(scored, valid)},
            run=run,
            keep=scored,
            status=lambda: {"lr": schedule.get_last_lr()[0]},
        )
        self.steps_run, self.best_step = outcome.steps, outcome.best_step
        self.net = scored.cpu().eval()  # saved and served from the CPU
        return self

    def _dice(self, net, split: Any) -> float:
        net.eval()
        scores = [
            # early stopping compares plain predictions: TTA would cost 8x per evaluation
            mask_scores(
                true, predict_proba(net, rgb, self.config, tta=False) > self.config.threshold
            )["dice"]
            for rgb, true in zip(split.rgb(), split.masks, strict=True)
        ]
        return float(np.mean(scores))

    def predict(self, inputs: pd.DataFrame) -> pd.DataFrame:
        if self.net is None:
            raise RuntimeError("fit the model before predicting")
        return predict_frame(self.net, inputs, self.config)

    def hyperparams(self) -> dict[str, Any]:
        return self.params.model_dump(exclude={"workload", "dataset", "task"})

    def save(self, path: Path, input_example: Any) -> None:
        if self.net is None:
            raise RuntimeError("fit the model before saving")
        example = input_example.head(1) if input_example is not None else None
        step = 2**self.config.depth  # the net takes sides padded to a multiple of this
        torch_pyfunc.save(
            path,
            self.net,
            self.config.to_dict(),
            UNetPyfunc(),
            example,
            net_example=torch.zeros(2, 3, 2 * step, 3 * step),  # a padded batch: any H, W
            dynamic=(0, 2, 3),
            packages=("torch", "numpy", "pandas", "pillow"),
        )


class UNetPyfunc(mlflow.pyfunc.PythonModel):
    """Serving wrapper: a frame with an `image` column (PNG/JPEG/TIFF bytes, any mode and
    size) in; base64 PNG masks with their size and foreground fraction out."""

    def load_context(self, context) -> None:
        self.config = NetConfig(**torch_pyfunc.config_of(context))
        self.net = torch_pyfunc.load_weights(build(self.config), context)

    def predict(self, context, model_input, params=None):
        return predict_frame(self.net, model_input, self.config)
