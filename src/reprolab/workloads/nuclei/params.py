"""Params of the nuclei workload: Nuclei segmentation (BBBC038) with a U-Net. Each kind is declared
here once (its `kind` Literal, and `impl`: the module:class in this package that implements it)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from reprolab.core.params import DatasetBase, Footprint, ModelBase, PosInt, Width
from reprolab.core.train.setup import Bf16, Device

# what this workload's evaluate stage writes per split: the choices of registry.<task>.metric
METRICS = ("dice", "iou", "pixel_accuracy")


class NucleiDataset(DatasetBase):
    """BBBC038 nuclei: image/mask pairs, split by seed into train/valid/test."""

    kind: Literal["nuclei"]
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.15
    test_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    limit: Annotated[int, Field(ge=6)] | None = None  # a random subset, for quick runs


class UNetParams(ModelBase):
    """U-Net for binary segmentation, trained on random crops (see models/unet.py)."""

    kind: Literal["unet"]
    impl: ClassVar[str] = "unet:UNetSegmenter"
    depth: Annotated[int, Field(ge=1, le=6)] = 4
    base_width: Width = 16
    norm: Literal["batch", "group", "none"] = "batch"
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    crop_size: Annotated[int, Field(ge=16)] = 128
    batch_size: PosInt = 8
    lr: Annotated[float, Field(gt=0, le=1)] = 2e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: Annotated[int, Field(ge=0)] = 100
    max_steps: PosInt = 3000
    eval_every: PosInt = 150
    patience: PosInt = 6  # evaluations without a better valid Dice before stopping
    bce_weight: Annotated[float, Field(ge=0, le=1)] = 0.5  # loss = w*BCE + (1-w)*Dice
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    standardize: bool = True  # per-image standardisation of the input
    color_jitter: Annotated[float, Field(ge=0, lt=1)] = 0.0  # random per-channel gain/offset
    stain: bool = False  # light-background images -> hematoxylin optical density (H&E-aware)
    stain_channels: Literal["h", "hed"] = "h"  # stain densities fed: H x3, or H, E and DAB
    sample_balance: Annotated[float, Field(ge=0, le=1)] = 0.0  # draw rare modalities more often
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.0  # weight averaging decay (0: off)
    scale_jitter: Annotated[float, Field(ge=0, le=1)] = 0.0  # crops rescaled by up to 1 + s
    bf16: Bf16 = False  # auto: where native (faster; weights then vary by CPU)
    channels_last: bool = True
    tile_size: Annotated[int, Field(ge=32)] = 512  # larger images are predicted in tiles
    tile_overlap: Annotated[int, Field(ge=0)] = 64
    tta: bool = False  # predict as the mean over the 8 flips/rotations (8x prediction time)
    device: Device = "auto"  # auto: CUDA when usable; the saved model predicts on the CPU
    deterministic: bool = True  # deterministic kernels, fixed threads, seeded RNGs
    threads: PosInt | None = None  # torch threads; None: 2 when deterministic
    max_seconds: Annotated[float, Field(gt=0)] | None = None  # guard: a run it stops is cut short

    @model_validator(mode="after")
    def _shapes(self) -> UNetParams:
        step = 2**self.depth
        problems = [
            f"{key}: must be a multiple of 2**depth = {step}, got {value}"
            for key, value in (("crop_size", self.crop_size), ("tile_size", self.tile_size))
            if value % step
        ]
        if self.tile_overlap * 2 >= self.tile_size:
            problems.append(f"tile_overlap: must be < tile_size / 2, got {self.tile_overlap}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def widths(self) -> list[int]:
        return [self.base_width * 2**i for i in range(self.depth + 1)]

    def footprint(self, dataset: Any, base: Any) -> Footprint:
        """unet_net.UNet's weights; activations of a training batch of crops, or of one
        tile at prediction, whichever is larger (float32)."""
        w = self.widths()

        def block(cin: int, cout: int) -> int:  # two 3x3 convolutions and their norms
            return 9 * cin * cout + 9 * cout * cout + 4 * cout

        weights = sum(block(a, b) for a, b in zip([3, *w[:-2]], w[:-1], strict=True))
        weights += block(w[-2], w[-1]) + w[0] + 1
        weights += sum(
            4 * w[i + 1] * w[i] + w[i] + block(2 * w[i], w[i]) for i in range(self.depth)
        )
        # per pixel of a level: ~6 maps of its width in the encoder, ~9 in the decoder
        per_pixel = sum(15 * w[i] / 4**i for i in range(self.depth)) + 6 * w[-1] / 4**self.depth
        pixels = max(self.batch_size * self.crop_size**2, self.tile_size**2)
        return Footprint(
            weights,
            pixels * per_pixel * 4,
            f"depth {self.depth}, base_width {self.base_width}, batch_size {self.batch_size} "
            f"x crop_size {self.crop_size}, tile_size {self.tile_size}",
        )


DATASETS = (NucleiDataset,)
MODELS = (UNetParams,)
