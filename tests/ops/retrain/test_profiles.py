"""Each workload's drift profile, on a data drop read the way retrain reads it: text gives
label balance and review length, images grey levels and the nucleus share."""

from __future__ import annotations

import hashlib

from reprolab.ops.retrain import drift, drop
from reprolab.workloads.nuclei import data as nuclei
from reprolab.workloads.nuclei.params import NucleiDataset
from reprolab.workloads.sentiment import data as nsmc
from reprolab.workloads.sentiment.params import NsmcDataset
from tests.workloads.nuclei.test_nuclei_data import write_pairs
from tests.workloads.sentiment.test_nsmc import HEADER, rows, write


def test_a_review_drop_profiles_labels_and_lengths(tmp_path):
    folder = tmp_path / "drop"
    write(folder / "sentiment/ratings_train.txt", [HEADER, *rows(80)])
    write(folder / "sentiment/ratings_test.txt", [HEADER, *rows(20, start=1000)])
    spec = NsmcDataset(workload="sentiment", kind="nsmc", valid_size=0.25)
    processed = drop.check("nsmc", spec, 0, folder, tmp_path / "work")
    profile = nsmc.profile(processed)
    assert list(profile.columns) == ["label", "length"]
    assert set(profile["label"]) == {"0", "1"} and profile["length"].min() > 0
    shorter = profile.assign(length=profile["length"] // 3)
    report = drift.compare(profile, shorter)
    assert report["columns"]["length"]["level"] == "large"
    assert report["columns"]["label"]["level"] == "stable"


def test_an_image_drop_profiles_grey_levels_and_nucleus_share(tmp_path):
    folder = tmp_path / "drop" / nuclei.MIRROR_DIR
    write_pairs(folder)
    (folder / "manifest.csv").write_text("id\n")
    sums = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}"
        for p in sorted(folder.rglob("*.*"))
        if p.name != "SHA256SUMS.txt"
    ]
    (folder / "SHA256SUMS.txt").write_text("\n".join(sums) + "\n")
    spec = NucleiDataset(workload="nuclei", kind="nuclei", valid_size=0.25, test_size=0.25)
    processed = drop.check("nuclei", spec, 0, folder.parent, tmp_path / "work")
    profile = nuclei.profile(processed, per_image=100)
    assert list(profile.columns) == ["intensity", "nucleus_share"]
    assert len(profile) == 4 * 100  # four train images
    assert 0 < profile["nucleus_share"].mean() < 1
    assert drift.compare(profile, profile)["level"] == "stable"
