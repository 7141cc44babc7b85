"""nuclei-segmentation: an image (base64 in JSON, or a PNG/TIFF/JPEG upload) → the nuclei
mask as run-length encoding (the Data Science Bowl's), optionally a PNG overlay."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from reprolab.serve.errors import ApiError
from reprolab.serve.tasks import Served, Strict, load_pyfunc

OVERLAY_COLOUR = np.array([255, 64, 64], dtype=np.float32)


# standard base64 with its padding: what `base64.b64decode(..., validate=True)` reads
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class NucleiRequest(Strict):
    image: str = Field(
        description="the image file (PNG, TIFF, JPEG), base64-encoded",
        min_length=4,
        pattern=BASE64,
        json_schema_extra={"contentEncoding": "base64", "contentMediaType": "image/*"},
    )
    overlay: bool = Field(False, description="also return the mask drawn over the image")


class NucleiResponse(Served):
    width: int
    height: int
    foreground_fraction: float
    objects: int = Field(description="connected regions of the mask (8-connected): nuclei")
    rle: str = Field(description="1-based 'start length' pairs, column-major (DSB format)")
    overlay_png: str | None = Field(None, description="base64 PNG, when asked for")


class NucleiAdapter:
    Request = NucleiRequest
    Response = NucleiResponse

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels

    def load(self, uri: str) -> Any:
        return load_pyfunc(uri)

    def decode(self, text: str) -> bytes:
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as err:
            raise ApiError(422, "image: not valid base64", "image") from err

    def check(self, data: bytes, where: str = "image") -> np.ndarray:
        """The image's pixels; 422 when it is not an image, 413 when it is too large."""
        from PIL import Image, UnidentifiedImageError

        from reprolab.core.errors import DataError
        from reprolab.workloads.nuclei import images

        if not data:
            raise ApiError(422, f"{where}: empty file", where)
        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
            raise ApiError(422, f"{where}: not a readable PNG, TIFF or JPEG image", where) from err
        if width * height > self.max_pixels:
            raise ApiError(
                413,
                f"{where}: {width}x{height} pixels, more than the limit of {self.max_pixels}",
                where,
            )
        try:
            return images.read_rgb(data, where)
        except DataError as err:
            raise ApiError(422, str(err), where) from err

    def segment(self, model: Any, data: bytes, overlay: bool) -> dict[str, Any]:
        from reprolab.workloads.nuclei import images

        rgb = self.check(data)
        row = model.predict(pd.DataFrame({"image": [data]})).iloc[0]
        mask = images.text_to_mask(row["mask"])
        answer: dict[str, Any] = {
            "width": int(row["width"]),
            "height": int(row["height"]),
            "foreground_fraction": float(row["foreground_fraction"]),
            "objects": count_objects(mask),
            "rle": images.rle_encode(mask),
            "overlay_png": None,
        }
        if overlay:
            tinted = rgb.astype(np.float32)
            tinted[mask] = 0.45 * tinted[mask] + 0.55 * OVERLAY_COLOUR
            png = images.encode_png(tinted.round().astype(np.uint8))
            answer["overlay_png"] = base64.b64encode(png).decode("ascii")
        return answer

    def predict(self, model: Any, request: NucleiRequest) -> dict[str, Any]:
        return self.segment(model, self.decode(request.image), request.overlay)


def count_objects(mask: np.ndarray) -> int:
    """Touching nuclei merge into one region: a lower bound, as a person counting the
    overlay would see it."""
    from scipy import ndimage

    return int(ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))[1])


def adapter(task: str, params: Any, settings: Any) -> NucleiAdapter:
    return NucleiAdapter(settings.max_image_pixels)
