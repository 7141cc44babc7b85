"""The report's segmentation section, from the files the pipeline writes: metrics with the
Otsu row, the worst images' Dice, the overlay grid and the training curves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image

from reprolab.params import parse_params
from reprolab.report.build import build_report
from reprolab.workloads.nuclei import images


def test_segmentation_section(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = parse_params(
        {
            "datasets": {"nuclei": {"workload": "nuclei", "kind": "nuclei"}},
            "models": {
                "nuclei-unet": {
                    "dataset": "nuclei",
                    "task": "seg",
                    "workload": "nuclei",
                    "kind": "unet",
                }
            },
            "registry": {"seg": {"metric": "dice", "direction": "maximize", "threshold": 0.9}},
            "report": {"segmentation_examples": 3, "worst_images": 2},
        }
    )
    test_dir = tmp_path / "data/processed/nuclei/test"
    rows = []
    rng = np.random.default_rng(0)
    for i in range(5):
        key = f"id{i}"
        rgb = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
        mask = rng.random((20, 30)) > 0.7
        for folder, array in (("images", rgb), ("masks", mask)):
            (test_dir / folder).mkdir(parents=True, exist_ok=True)
            (test_dir / folder / f"{key}.png").write_bytes(images.encode_png(array))
        rows.append(
            {
                "id": key,
                "dice": 0.5 + i / 10,
                "iou": 0.4 + i / 10,
                "otsu_dice": 0.8,
                "width": 30,
                "height": 20,
                "mask_rle": images.rle_encode(mask[:, ::-1]),
            }
        )
    out = tmp_path / "reports/eval/seg/nuclei-unet"
    out.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(out / "predictions.csv", index=False)
    metric = {"dice": 0.7, "iou": 0.6, "pixel_accuracy": 0.9}
    (out / "metrics.json").write_text(
        json.dumps({**metric, "otsu": {"dice": 0.8, "iou": 0.7, "pixel_accuracy": 0.95}})
    )
    version = {
        "version": "1",
        "model": "nuclei-unet",
        "run_id": "r",
        "value": 0.7,
        "aliases": ["champion"],
        "status": "champion",
    }
    (tmp_path / "reports/registry").mkdir(parents=True)
    (tmp_path / "reports/registry/seg.json").write_text(
        json.dumps({"champion": version, "previous_champion": None, "versions": [version]})
    )
    curves = tmp_path / "reports/train/nuclei-unet/plots/metrics"
    curves.mkdir(parents=True)
    (curves / "valid_dice.tsv").write_text("step\tvalid_dice\n10\t0.5\n20\t0.7\n")

    report = build_report(params).read_text()
    assert "| **nuclei-unet** ★ | 0.7000 | 0.6000 | 0.9000 | v1 (champion) |" in report
    assert "| _Otsu, automatic polarity_ | 0.8000 | 0.7000 | 0.9500 |  |" in report
    assert "| `id0` | 30x20 | 0.5000 | 0.4000 | 0.8000 |" in report
    assert "`id2`" not in report  # only the 2 worst are listed
    for name in ("seg-examples.png", "seg-training.png"):
        with Image.open(tmp_path / "reports/figures" / name) as img:
            assert img.width > 100
    assert "data:image/png;base64" in (tmp_path / "reports/report.html").read_text()
