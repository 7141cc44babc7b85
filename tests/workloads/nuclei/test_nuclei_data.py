"""nuclei data: codecs, Otsu baseline, pair validation with clear errors, the mirror route
(checksums) and the online route's instance-mask merge on a tiny synthetic zip."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reprolab.core.errors import DataError
from reprolab.core.metrics import mask_scores, segmentation
from reprolab.workloads.nuclei import data as nuclei
from reprolab.workloads.nuclei import images
from reprolab.workloads.nuclei.params import NucleiDataset


def blobs(seed: int, h: int = 48, w: int = 64, dark_on_light: bool = False):
    """An RGB image with a few bright discs on a dark noisy background, and its mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), bool)
    for _ in range(4):
        cy, cx, r = rng.integers(8, h - 8), rng.integers(8, w - 8), rng.integers(4, 8)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    grey = np.where(mask, 190, 40) + rng.normal(0, 12, (h, w))
    if dark_on_light:
        grey = 255 - grey
    rgb = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    return rgb, mask


def write_pairs(root: Path, count: int = 8) -> list[str]:
    ids = [f"img{i:02d}" for i in range(count)]
    for i, key in enumerate(ids):
        rgb, mask = blobs(i, dark_on_light=bool(i % 2))
        rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgba).save(root / "images" / f"{key}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"{key}.png")
    return ids


def test_read_rgb_converts_any_mode():
    grey = (np.arange(12 * 10) % 256).astype(np.uint8).reshape(12, 10)
    for img in (
        Image.fromarray(grey),
        Image.fromarray(np.dstack([grey] * 4)),
        Image.fromarray(grey.astype(np.uint16) * 200),
        Image.fromarray(grey).convert("P"),
    ):
        buffer = io.BytesIO()
        img.save(buffer, format="PNG")
        rgb = images.read_rgb(buffer.getvalue())
        assert rgb.shape == (12, 10, 3) and rgb.dtype == np.uint8


def test_read_rgb_rejects_garbage_with_its_name():
    with pytest.raises(DataError, match="row 3: not a readable image"):
        images.read_rgb(b"not an image", "row 3")


def test_rle_round_trip_and_mask_text():
    _, mask = blobs(0)
    assert np.array_equal(images.rle_decode(images.rle_encode(mask), *mask.shape), mask)
    assert np.array_equal(images.text_to_mask(images.mask_to_text(mask)), mask)
    assert images.rle_encode(np.zeros((3, 3), bool)) == ""


@pytest.mark.parametrize("dark_on_light", [False, True])
def test_otsu_finds_nuclei_of_either_polarity(dark_on_light):
    rgb, mask = blobs(3, dark_on_light=dark_on_light)
    assert mask_scores(mask, images.otsu_mask(rgb))["dice"] > 0.95


def test_scores_are_per_image_means():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    b[0, 0] = True
    assert mask_scores(a, a) == {"dice": 1.0, "iou": 1.0, "pixel_accuracy": 1.0}
    assert segmentation([a, b], [a, a])["dice"] == pytest.approx(0.5)


def test_validate_pairs_accepts_good_pairs(tmp_path):
    ids = write_pairs(tmp_path)
    assert nuclei.validate_pairs(tmp_path) == ids


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda r: (r / "masks" / "img03.png").unlink(), r"masks/img03.png: missing mask"),
        (
            lambda r: Image.new("L", (10, 10)).save(r / "masks" / "img02.png"),
            r"masks/img02.png: mask is 10x10, image is 64x48",
        ),
        (
            lambda r: Image.fromarray(np.full((48, 64), 7, np.uint8)).save(
                r / "masks" / "img01.png"
            ),
            r"masks/img01.png: mask is not binary",
        ),
        (
            lambda r: (r / "images" / "img04.png").write_bytes(b"\x89PNG broken"),
            r"images/img04.png: not a readable image",
        ),
    ],
    ids=["missing-mask", "size-mismatch", "non-binary", "unreadable"],
)
def test_validate_pairs_names_the_bad_file(tmp_path, break_it, message):
    write_pairs(tmp_path)
    break_it(tmp_path)
    with pytest.raises(DataError, match=message):
        nuclei.validate_pairs(tmp_path)


def _fake_mirror(root: Path, monkeypatch) -> Path:
    folder = root / "mirror" / nuclei.MIRROR_DIR
    write_pairs(folder)
    manifest = b"id\n"
    (folder / "manifest.csv").write_bytes(manifest)
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}"
        for p in sorted(folder.rglob("*.png"))
    ]
    lines.insert(0, f"{hashlib.sha256(manifest).hexdigest()}  manifest.csv")
    (folder / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(nuclei, "MANIFEST_SHA256", hashlib.sha256(manifest).hexdigest())
    monkeypatch.setattr(
        nuclei, "SUMS_SHA256", hashlib.sha256((folder / "SHA256SUMS.txt").read_bytes()).hexdigest()
    )
    return root / "mirror"


def test_prepare_from_mirror_writes_rgb_splits(tmp_path, monkeypatch):
    mirror = _fake_mirror(tmp_path, monkeypatch)
    params = NucleiDataset(workload="nuclei", kind="nuclei", valid_size=0.25, test_size=0.25)
    summary = nuclei.prepare(params, 0, tmp_path / "raw", tmp_path / "out", mirror)
    assert summary["rows"] == {"test": 2, "valid": 2, "train": 4}
    test = nuclei.load_split(tmp_path / "out", "test")
    assert len(test.ids) == 2 and all(m.dtype == bool for m in test.masks)
    with Image.open(test.image_dir / f"{test.ids[0]}.png") as img:
        assert img.mode == "RGB"
    scores = test.score(test.masks)
    assert scores["dice"] == 1.0 and 0.9 < scores["otsu"]["dice"] <= 1.0
    again = nuclei.prepare(params, 0, tmp_path / "raw2", tmp_path / "out2", mirror)
    assert again == summary  # the split depends on the seed only
    assert nuclei.load_split(tmp_path / "out2", "test").ids == test.ids


def test_prepare_from_mirror_rejects_a_corrupt_file(tmp_path, monkeypatch):
    mirror = _fake_mirror(tmp_path, monkeypatch)
    target = mirror / nuclei.MIRROR_DIR / "images" / "img05.png"
    target.write_bytes(target.read_bytes() + b"x")
    with pytest.raises(DataError, match=r"images/img05.png: sha256 .* SHA256SUMS.txt"):
        nuclei.prepare(
            NucleiDataset(workload="nuclei", kind="nuclei"),
            0,
            tmp_path / "raw",
            tmp_path / "o",
            mirror,
        )


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _instance_zip(path: Path, key: str, prefix: str = "repo-abc/stage1_train/"):
    rgb, _ = blobs(1)
    h, w = rgb.shape[:2]
    first = np.zeros((h, w), np.uint8)
    first[5:15, 5:15] = 255
    second = np.zeros((h, w), np.uint8)
    second[15:25, 20:40] = 255  # touches the first: the union merges them
    image = _png(rgb)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{prefix}{key}/images/{key}.png", image)
        zf.writestr(f"{prefix}{key}/masks/a.png", _png(first))
        zf.writestr(f"{prefix}{key}/masks/b.png", _png(second))
        zf.writestr(f"{prefix}other/images/other.png", image)  # not wanted
    union = (first > 0) | (second > 0)
    row = {
        "id": key,
        "width": str(w),
        "height": str(h),
        "image_sha256": hashlib.sha256(image).hexdigest(),
        "mask_pixels_sha256": hashlib.sha256(union.astype(np.uint8).tobytes()).hexdigest(),
    }
    return row, union


def test_archive_route_merges_instance_masks(tmp_path):
    row, union = _instance_zip(tmp_path / "stage1_train.zip", "abc123")
    nuclei.extract_pairs(tmp_path / "stage1_train.zip", [row], tmp_path / "raw")
    assert sorted(p.name for p in (tmp_path / "raw" / "masks").iterdir()) == ["abc123.png"]
    assert np.array_equal(images.read_mask(tmp_path / "raw" / "masks" / "abc123.png"), union)
    assert nuclei.validate_pairs(tmp_path / "raw") == ["abc123"]


def test_archive_route_checks_the_merged_mask(tmp_path):
    row, _ = _instance_zip(tmp_path / "stage1_train.zip", "abc123", prefix="")
    row["mask_pixels_sha256"] = "0" * 64
    with pytest.raises(DataError, match="merged mask of abc123 differs"):
        nuclei.extract_pairs(tmp_path / "stage1_train.zip", [row], tmp_path / "raw")
    missing = dict(row, id="nope")
    with pytest.raises(DataError, match="no image and instance masks for id nope"):
        nuclei.extract_pairs(tmp_path / "stage1_train.zip", [missing], tmp_path / "raw")


def test_pinned_files_cover_the_manifest():
    rows = nuclei.pinned_files()
    assert len(rows) == 200 and len({r["id"] for r in rows}) == 200
    assert all(len(r["image_sha256"]) == 64 and len(r["mask_pixels_sha256"]) == 64 for r in rows)
