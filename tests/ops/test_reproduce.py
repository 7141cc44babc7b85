"""`reprolab reproduce`: a registered version rebuilt from its lineage in a temporary git
worktree (real DVC, real MLflow, the wine ridge model on a quarter of the data), compared with
the registered artifact and metrics; tampered artifacts, lost data and runs that cannot be
rebuilt faithfully are reported in one line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from reprolab.ops import sandbox
from reprolab.ops.model_digest import digests
from reprolab.ops.reproduce import (
    CannotReproduce,
    Target,
    kernel_env,
    parse_target,
    refusal,
)

REPO = Path(__file__).resolve().parents[2]
OVERRIDES = {"datasets.wine.sample_fraction": 0.25}
LINEAGE = {"git_commit": "a" * 40, "model_path": "models/m", "model_md5": "x.dir", "stage": "train"}


@pytest.mark.parametrize(
    ("arg", "version", "expected"),
    [
        ("wine-quality", "3", Target("wine-quality", version="3")),
        ("models:/wine-quality/3", None, Target("wine-quality", version="3")),
        ("models:/wine-quality@champion", None, Target("wine-quality", alias="champion")),
        ("wine-quality@candidate", None, Target("wine-quality", alias="candidate")),
    ],
)
def test_targets_in_every_form(arg, version, expected):
    assert parse_target(arg, version) == expected


@pytest.mark.parametrize(
    ("arg", "version"),
    [("wine-quality", None), ("models:/wine-quality/x", None), ("models:/t/1", "2"), ("t", "v1")],
)
def test_malformed_targets_are_refused(arg, version):
    with pytest.raises(CannotReproduce):
        parse_target(arg, version)


def test_runs_that_cannot_be_rebuilt_faithfully_are_refused():
    assert refusal(LINEAGE, lambda: False) is None
    cut = refusal({**LINEAGE, "cut_short": "true"}, lambda: True)
    assert cut and "depended on the machine's speed" in cut
    gpu = {**LINEAGE, "device": "cuda"}
    assert "no CUDA device is usable here" in refusal(gpu, lambda: False)
    assert refusal(gpu, lambda: True) is None
    assert "no lineage tags ['model_md5']" in refusal({**LINEAGE, "model_md5": ""}, lambda: True)


def test_a_rebuild_takes_the_cpu_kernel_path_its_run_recorded():
    everything = lambda aten: True  # noqa: E731
    assert kernel_env("", everything) == {}
    assert kernel_env("aten=AVX2,onednn=auto", everything) == {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "DNNL_MAX_CPU_ISA": None,
    }
    assert kernel_env("aten=AVX512,onednn=auto", everything)["ONEDNN_MAX_CPU_ISA"] is None
    assert kernel_env("aten=AVX512,onednn=AVX2", everything)["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    with pytest.raises(CannotReproduce, match=r"trained on AVX512 CPU kernels .* no AVX512"):
        kernel_env("aten=AVX512,onednn=auto", lambda aten: aten != "AVX512")


def _skops_like(path: Path, ids: tuple[int, int], value: bytes) -> None:
    """A zip laid out as skops writes one: arrays named by id(), a schema naming them."""
    schema = f'{{"__id__": {ids[0]}, "content": {{"file": "{ids[1]}.npy", "__id__": {ids[1]}}}}}'
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{ids[1]}.npy", value)
        archive.writestr("schema.json", schema)


def test_digests_ignore_save_time_noise_but_not_weights(tmp_path):
    for name, ids, value in (
        ("a", (11, 12), b"w1"),
        ("b", (907, 908), b"w1"),
        ("c", (5, 6), b"w2"),
    ):
        (tmp_path / name).mkdir()
        _skops_like(tmp_path / name / "model.skops", ids, value)
        (tmp_path / name / "MLmodel").write_text(f"flavors: {{}}\nmodel_uuid: {name}\n")
    a, b, c = (digests(tmp_path / n) for n in "abc")
    assert a == b  # other object ids and MLmodel uuid: the same model
    assert a["model.skops"] != c["model.skops"] and a["MLmodel"] == c["MLmodel"]


def test_digests_of_a_torch_model_saved_twice_are_equal_until_a_weight_changes(tmp_path):
    """The pt2 archive (random serialization id, the exporting code's paths), MLmodel (size,
    staging paths) and the pickled pyfunc (storages named by address) differ at every save:
    two saves of the same weights into different directories digest the same."""
    import torch

    from reprolab.workloads.wine.params import TorchMLPParams
    from reprolab.workloads.wine.torch_mlp import TorchMLPRegressor
    from tests.tiny_models import wine_frame

    x = wine_frame(64)
    split = type("Split", (), {"X": x, "y": 5 + x["alcohol"].to_numpy() / 10})()
    params = TorchMLPParams(
        workload="wine", kind="torch_mlp", dataset="d", task="t", hidden=[8], max_epochs=2
    )
    model = TorchMLPRegressor(params, 0).fit(split, split)
    model.save(tmp_path / "a", input_example=x.head(2))
    model.save(tmp_path / "b", input_example=x.head(2))
    with torch.no_grad():
        next(model.module.parameters()).view(-1)[0] += 1e-3
    model.save(tmp_path / "c", input_example=x.head(2))
    a, b, c = (digests(tmp_path / n) for n in "abc")
    assert a == b
    assert a["artifacts/net/data/model.pt2"] != c["artifacts/net/data/model.pt2"]


# ------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A committed sandbox whose pipeline registered wine-ridge as wine-quality v1 (champion)."""
    from tests.conftest import _mirror

    mirror = _mirror()
    if mirror is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR")
    root = sandbox.create(
        tmp_path_factory.mktemp("reproduce") / "repo", OVERRIDES, REPO, ["wine-ridge"]
    )
    env = {
        **sandbox.env_for(root),
        "REPROLAB_DATA_MIRROR": str(mirror),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "PYTHONPATH": str(root / "src"),  # the sandbox's code, whatever happens to the checkout
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("REPROLAB_MLFLOW_ARTIFACTS", None)

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)

    done = run("dvc", "repro", "register@wine-quality")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return root, run


def _registry(root: Path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def _state(root: Path) -> tuple:
    """What reproduce must leave alone: versions, aliases, worktrees."""
    client = _registry(root)
    versions = sorted(v.version for v in client.search_model_versions("name='wine-quality'"))
    aliases = client.get_registered_model("wine-quality").aliases
    worktrees = subprocess.run(
        ["git", "worktree", "list"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    return versions, aliases, len(worktrees.splitlines())


def _retag(root: Path, key: str, value: str) -> str:
    """Set lineage tag `key` on v1's run; the old value."""
    client = _registry(root)
    run_id = client.get_model_version("wine-quality", "1").run_id
    old = client.get_run(run_id).data.tags.get("reprolab." + key, "")
    client.set_tag(run_id, "reprolab." + key, value)
    return old


@pytest.mark.slow
def test_a_registered_version_is_rebuilt_identical(repo):
    root, run = repo
    before = _state(root)
    done = run("reprolab", "reproduce", "models:/wine-quality@champion")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "wine-quality v1 (wine-ridge): identical (same weights: 7 files equal by content sha256)"
    ]
    assert "train@wine-ridge, evaluate@wine-ridge" in done.stderr  # prepare came from the cache
    assert _state(root) == before  # nothing registered, no alias moved, worktree removed


@pytest.mark.slow
def test_a_tampered_registered_artifact_is_reported_different(repo):
    root, run = repo
    client = _registry(root)
    model_id = client.get_run(client.get_model_version("wine-quality", "1").run_id).data.tags[
        "reprolab.model_id"
    ]
    weights = Path(client.get_logged_model(model_id).artifact_location[7:]) / "model.skops"
    original = weights.read_bytes()
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    array = next(name for name in entries if name.endswith(".npy"))
    entries[array] = entries[array][:-1] + bytes([entries[array][-1] ^ 1])  # one bit of a weight
    with zipfile.ZipFile(weights, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    try:
        done = run("reprolab", "reproduce", "--champions")
    finally:
        weights.write_bytes(original)
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith("wine-quality v1 (wine-ridge): different: registered model md5 ")
    assert "; model.skops sha256 " in line and "(registered) vs" in line


@pytest.mark.slow
def test_lost_data_and_unfaithful_runs_cannot_be_reproduced(repo):
    root, run = repo
    before = _state(root)
    gone = "0" * 32 + ".dir"  # data no cache holds and the pipeline does not make
    old = _retag(root, "data_md5", gone)
    try:
        done = run("reprolab", "reproduce", "wine-quality", "1")
    finally:
        _retag(root, "data_md5", old)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.startswith(
        f"wine-quality v1 (wine-ridge): cannot be reproduced here: data/processed/wine md5 {gone} "
        "(recorded) is in neither the DVC cache nor the remote, and the pipeline at "
    )
    assert f"now makes {old}" in done.stdout  # prepare rebuilt the real data
    for key, value, why in (
        ("git_dirty", "true", "its run was made from a dirty tree (uncommitted changes on "),
        ("git_commit", "f" * 40, f"its git commit {'f' * 12} is not in this repository"),
        ("cut_short", "true", "it was cut short by a time guard"),
    ):
        old = _retag(root, key, value)
        try:
            done = run("reprolab", "reproduce", "models:/wine-quality/1")
        finally:
            _retag(root, key, old)
        assert done.returncode == 2 and why in done.stdout, (key, done.stdout, done.stderr)
    assert _state(root) == before


@pytest.mark.slow
def test_an_experiment_is_rebuilt_with_its_recorded_params(repo):
    """`dvc exp run -S` trains from a tree whose params.yaml differs from its commit: the
    experiment's ref shows only params changed, and the run's recorded params restore them."""
    root, run = repo
    exp = run(
        "dvc",
        "exp",
        "run",
        "-n",
        "alpha2",
        "-S",
        "models.wine-ridge.alpha=2.5",
        "register@wine-quality",
    )
    assert exp.returncode == 0, exp.stdout[-2000:] + exp.stderr[-2000:]
    run("git", "checkout", "--", "params.yaml")  # the workspace back at the commit's params
    client = _registry(root)
    tags = client.get_run(client.get_model_version("wine-quality", "2").run_id).data.tags
    assert tags["reprolab.git_dirty"] == "true" and tags["reprolab.dvc_exp"] == "alpha2"
    done = run("reprolab", "reproduce", "wine-quality", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("wine-quality v2 (wine-ridge): identical (")
    assert "recorded params restored: models.wine-ridge.alpha=2.5" in done.stderr
