"""Image and mask codecs shared by the nuclei dataset, the U-Net and its serving wrapper.
Inputs of any mode (RGBA, grey, palette, 16-bit, float) become 8-bit RGB; masks are binary
arrays stored as 0/255 single-channel PNGs, and travel through MLflow as base64 PNG text."""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path

import numpy as np

from reprolab.core.errors import DataError


def _pil():
    from PIL import Image, UnidentifiedImageError

    return Image, UnidentifiedImageError


def as_bytes(data: bytes | bytearray | memoryview | str | Path) -> bytes:
    """Raw encoded bytes from bytes, base64 text, or a file path."""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, Path):
        return data.read_bytes()
    if isinstance(data, str):
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as err:
            raise DataError("image: a string must be base64-encoded image bytes") from err
    raise DataError(f"image: expected bytes, base64 text or a path, got {type(data).__name__}")


def read_rgb(data: bytes | str | Path, source: str = "image") -> np.ndarray:
    """Decode any image Pillow reads into an HxWx3 uint8 array (alpha dropped, grey repeated,
    16-bit and float images rescaled to their own range)."""
    Image, Unidentified = _pil()
    raw = as_bytes(data)
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            return to_rgb(img)
    except (Unidentified, OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{source}: not a readable image ({err})") from err


def to_rgb(img) -> np.ndarray:
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(img, dtype=np.float64)
        lo, hi = float(values.min()), float(values.max())
        scaled = (values - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(values)
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def read_mask(path: Path) -> np.ndarray:
    """A binary mask file (values 0 and 255, or 0 and 1) as a bool array; anything else is a
    DataError naming the file."""
    Image, Unidentified = _pil()
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("L", "1", "P", "I", "I;16"):
                raise DataError(f"{path}: mask must be single-channel, got mode {img.mode}")
            values = np.asarray(img)
    except (Unidentified, OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{path}: not a readable mask image ({err})") from err
    present = np.unique(values)
    if not (set(present.tolist()) <= {0, 255} or set(present.tolist()) <= {0, 1}):
        shown = present[(present != 0) & (present != 255)][:5].tolist()
        raise DataError(f"{path}: mask is not binary (values {shown} besides 0 and 255)")
    return values > 0


def encode_png(array: np.ndarray) -> bytes:
    """Deterministic PNG bytes of a uint8 HxW or HxWx3 array (or a bool mask, as 0/255)."""
    Image, _ = _pil()
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def mask_to_text(mask: np.ndarray) -> str:
    return base64.b64encode(encode_png(mask)).decode("ascii")


def text_to_mask(text: str) -> np.ndarray:
    Image, _ = _pil()
    with Image.open(io.BytesIO(base64.b64decode(text))) as img:
        return np.asarray(img.convert("L")) > 0


def grey(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of 8-bit values: maximises the between-class variance."""
    hist = np.bincount(np.clip(values, 0, 255).astype(np.uint8).ravel(), minlength=256)
    prob = hist / max(hist.sum(), 1)
    omega = np.cumsum(prob)
    mu = np.cumsum(prob * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * omega - mu) ** 2 / (omega * (1 - omega))
    between = np.nan_to_num(between, nan=-1.0, posinf=-1.0)
    return float(np.argmax(between))


def otsu_mask(rgb: np.ndarray) -> np.ndarray:
    """No-learning baseline: Otsu on grey levels, with automatic polarity (nuclei are the
    minority class, bright on dark fluorescence or dark on light brightfield/H&E)."""
    values = np.rint(grey(rgb))
    mask = values > otsu_threshold(values)
    return ~mask if mask.mean() > 0.5 else mask


def rle_encode(mask: np.ndarray) -> str:
    """Run-length encoding of the Data Science Bowl: 1-based 'start length' pairs over the
    pixels in column-major order. Compact enough to keep masks inside a CSV."""
    flat = np.concatenate([[0], np.asarray(mask, dtype=np.uint8).ravel(order="F"), [0]])
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges[1::2] -= edges[::2]
    return " ".join(map(str, edges))


def rle_decode(text: str, height: int, width: int) -> np.ndarray:
    values = np.asarray(str(text).split() if isinstance(text, str) else [], dtype=np.int64)
    flat = np.zeros(height * width, dtype=bool)
    for start, length in zip(values[::2] - 1, values[1::2], strict=True):
        flat[start : start + length] = True
    return flat.reshape((height, width), order="F")
