"""The U-Net itself and whole-image prediction: any image size (reflect-padded to a multiple of
2**depth), large images in overlapping tiles whose borders are discarded, so tiles stitch into
what one whole-image pass would give. Used by training, evaluation and the serving wrapper."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from reprolab.core.train.setup import autocast, module_device
from reprolab.workloads.nuclei import images


@dataclass(frozen=True)
class NetConfig:
    """Everything needed to rebuild the network and predict the way it was trained."""

    depth: int
    base_width: int
    norm: str
    dropout: float
    standardize: bool
    bf16: bool
    channels_last: bool
    threshold: float
    tile_size: int
    tile_overlap: int
    tta: bool = False  # average the 8 flips/rotations at prediction (not during training)
    stain: bool = False  # light-background (absorbance) images -> hematoxylin optical density
    stain_channels: str = "h"  # "h": hematoxylin x3; "hed": hematoxylin, eosin, DAB

    def to_dict(self) -> dict:
        return asdict(self)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


class Block(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str, dropout: float) -> None:
        bias = norm == "none"
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class UNet(nn.Module):
    """Ronneberger et al. 2015, with same-padding convolutions: `depth` poolings, widths
    doubling from `base_width`; dropout in the bottleneck and the decoder."""

    def __init__(self, depth: int, base_width: int, norm: str, dropout: float) -> None:
        super().__init__()
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList(
            Block(cin, cout, norm, 0.0)
            for cin, cout in zip([3, *widths[:-2]], widths[:-1], strict=True)
        )
        self.bottleneck = Block(widths[-2], widths[-1], norm, dropout)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth)
        )
        self.decoders = nn.ModuleList(
            Block(2 * widths[i], widths[i], norm, dropout) for i in range(depth)
        )
        self.head = nn.Conv2d(base_width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for i in reversed(range(len(self.ups))):
            x = self.decoders[i](torch.cat([self.ups[i](x), skips[i]], dim=1))
        return self.head(x)


def build(config: NetConfig) -> UNet:
    net = UNet(config.depth, config.base_width, config.norm, config.dropout)
    if config.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


def to_input(
    rgb: np.ndarray, standardize: bool, stain: bool = False, stain_channels: str = "h"
) -> np.ndarray:
    """HxWx3 uint8 -> 3xHxW float32; per-image standardisation evens out brightfield and
    fluorescence brightness (computed on the whole image, before any crop or tile). With
    `stain`, a stained colour image on a light background (H&E) becomes stain densities, so
    that nuclei look as in fluorescence (bright on dark) whatever the counterstain:
    `stain_channels` "h" puts the hematoxylin density in all three channels, "hed" the
    hematoxylin, eosin and DAB densities one per channel, so that an eosin-red stroma, which
    carries some hematoxylin too, can still be told from nuclei."""
    x = rgb.astype(np.float32)
    if stain and is_stained(x):
        if stain_channels == "hed":
            x = stain_densities(x, (0, 1, 2))
        else:
            x = np.repeat(stain_densities(x, (0,)), 3, axis=2)
    x = x.transpose(2, 0, 1) / 255.0
    if standardize:
        x = (x - x.mean()) / (x.std() + 1e-6)
    return np.ascontiguousarray(x)


# Ruifrok & Johnston (2001) stain vectors (optical density per RGB channel) for hematoxylin,
# eosin and DAB; the inverse unmixes an image's optical density into the three stains.
_STAINS = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_UNMIX = np.linalg.inv(_STAINS / np.linalg.norm(_STAINS, axis=1, keepdims=True)).astype(np.float32)


def is_stained(rgb: np.ndarray) -> bool:
    """A colour (not grey) image on a light background: transmitted light through a stain.
    Grey brightfield images stay as they are (their optical density segmented worse here)."""
    rgb = rgb.astype(np.float32)
    saturation = float((rgb.max(axis=2) - rgb.min(axis=2)).mean())
    return saturation > 15 and _light_background(rgb)


def _light_background(rgb: np.ndarray) -> bool:
    return float(np.median(rgb.max(axis=2))) > 127


def modality(rgb: np.ndarray) -> str:
    """How an image was taken, as far as its pixels tell: `stained` (colour on a light
    background), `brightfield` (grey on a light background) or `fluorescence` (dark
    background). Training can draw the rarer modalities more often (`sample_balance`)."""
    if is_stained(rgb):
        return "stained"
    return "brightfield" if _light_background(rgb) else "fluorescence"


def stain_densities(rgb: np.ndarray, stains: tuple[int, ...]) -> np.ndarray:
    """HxWxk: the amount of each of `stains` (0 hematoxylin, the nuclear stain; 1 eosin;
    2 DAB) in each pixel, each scaled to 0..255 between its 1st and 99.9th percentile."""
    density = -np.log((rgb.astype(np.float32) + 1) / 256).reshape(-1, 3)
    out = []
    for stain in stains:
        amount = density @ _UNMIX[:, stain]
        low, high = np.percentile(amount, [1, 99.9])
        out.append(np.clip((amount - low) / max(float(high - low), 1e-6), 0, 1) * 255)
    return np.stack(out, axis=1).reshape(*rgb.shape[:2], len(stains)).astype(np.float32)


def _forward_padded(net: UNet, x: torch.Tensor, config: NetConfig) -> torch.Tensor:
    """Logits of a 3xHxW tensor of any size: reflect-pad to a multiple of 2**depth, crop back."""
    step = 2**config.depth
    h, w = x.shape[-2:]
    ph, pw = (-h) % step, (-w) % step
    batch = x[None]
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        batch = F.pad(batch, (0, pw, 0, ph), mode=mode)
    if config.channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    with autocast(batch.device.type, config.bf16):
        logits = net(batch)
    return logits.float()[0, 0, :h, :w]


def _tiles(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """(start, keep_from, keep_to) of each tile along one axis; kept parts are contiguous."""
    if length <= tile:
        return [(0, 0, length)]
    stride = tile - 2 * overlap
    starts = [*range(0, length - tile, stride), length - tile]
    out = []
    for start in starts:
        keep_from = start + overlap if start > 0 else 0
        keep_to = start + tile - overlap if start + tile < length else length
        out.append((start, keep_from, keep_to))
    return out


@torch.no_grad()
def predict_proba(
    net: UNet, rgb: np.ndarray, config: NetConfig, tiled: bool = True, tta: bool | None = None
) -> np.ndarray:
    """Foreground probability of every pixel of an HxWx3 image; with test-time augmentation
    (`config.tta` unless `tta` says otherwise) the mean over the 8 flips and rotations."""
    if config.tta if tta is None else tta:
        total = np.zeros(rgb.shape[:2], np.float32)
        for k in range(4):
            for flip in (False, True):
                view = np.rot90(rgb, k)[:, ::-1] if flip else np.rot90(rgb, k)
                proba = _proba(net, np.ascontiguousarray(view), config, tiled)
                total += np.rot90(proba[:, ::-1] if flip else proba, -k)
        return total / 8
    return _proba(net, rgb, config, tiled)


def _proba(net: UNet, rgb: np.ndarray, config: NetConfig, tiled: bool) -> np.ndarray:
    x = torch.from_numpy(to_input(rgb, config.standardize, config.stain, config.stain_channels))
    x = x.to(module_device(net))  # a GPU while training; the saved model predicts on the CPU
    h, w = x.shape[-2:]
    if not tiled or (h <= config.tile_size and w <= config.tile_size):
        return torch.sigmoid(_forward_padded(net, x, config)).cpu().numpy()
    out = torch.zeros(h, w, device=x.device)
    size, overlap = config.tile_size, config.tile_overlap
    for y0, ky0, ky1 in _tiles(h, size, overlap):
        for x0, kx0, kx1 in _tiles(w, size, overlap):
            logits = _forward_padded(net, x[:, y0 : y0 + size, x0 : x0 + size], config)
            out[ky0:ky1, kx0:kx1] = logits[ky0 - y0 : ky1 - y0, kx0 - x0 : kx1 - x0]
    return torch.sigmoid(out).cpu().numpy()


def predict_frame(net: UNet, frame: pd.DataFrame, config: NetConfig) -> pd.DataFrame:
    """The serving contract: a frame with an `image` column (encoded bytes of any format and
    mode, or base64 text) in; one row per image out, with the mask as base64 PNG (0/255)."""
    if "image" not in frame.columns:
        raise ValueError(f"expected an 'image' column, got {list(frame.columns)}")
    net.eval()
    rows = []
    for number, data in enumerate(frame["image"]):
        rgb = images.read_rgb(data, f"image row {number}")
        mask = predict_proba(net, rgb, config) > config.threshold
        rows.append(
            {
                "mask": images.mask_to_text(mask),
                "width": rgb.shape[1],
                "height": rgb.shape[0],
                "foreground_fraction": float(mask.mean()),
            }
        )
    return pd.DataFrame(rows, columns=["mask", "width", "height", "foreground_fraction"])
