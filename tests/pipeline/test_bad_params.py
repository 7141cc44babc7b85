"""A bad value in params.yaml stops `dvc repro` and `dvc exp run -S` at the check stage, before
any stage that owns outputs: non-zero exit, one error line naming the key, no traceback, and
data/, models/, reports/ and the MLflow store (runs and registry) byte-identical."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from reprolab.ops import sandbox
from tests.bad_params import SCHEMA, WINE
from tests.conftest import only_register_ran

pytestmark = pytest.mark.slow
WINE_MODELS = ["wine-ridge", "wine-rf", "wine-hgb", "wine-mlp"]
KEPT = ("data", "models", "reports")
STORES = ("mlflow.db", "optuna.db")
THROUGH_REPRO = 12  # the first cases also go through an edited params.yaml and `dvc repro`
# every third case goes through `dvc exp run -S` (tests/core/test_params.py checks each one's
# message); the sample spans every wine model and kind of mistake, and the later checks of
# the wine workload: strict types, a storage URL, a model over `limits`
# (tests/pipeline/test_check_battery.py runs every case of every workload through the stage)
LATER = [c for c in SCHEMA if c.key.split(".")[1].startswith("wine") and not c.also]
THROUGH_EXP_RUN = [(k, v, k) for k, v in WINE[::3]] + [
    (c.key, c.value, c.named) for c in LATER[1::2]
]


Run = Callable[..., subprocess.CompletedProcess]
WORKERS = 2  # copies of the reproduced sandbox, each taking half of the cases


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory) -> list[tuple[Path, Run]]:
    """The wine workload (smoke sizes) reproduced and committed in a sandbox, and copies of
    it: DVC runs one command at a time per repository, so the cases split across copies."""
    from tests.conftest import _mirror, sandbox_runner

    mirror = _mirror()
    if mirror is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR")
    top = tmp_path_factory.mktemp("bad-params")
    first = sandbox.create(top / "repo-0", overrides=sandbox.smoke_overrides(), models=WINE_MODELS)
    runner = sandbox_runner(first, mirror)
    runner("dvc", "repro")
    runner("git", "add", "-A")
    runner("git", "commit", "-qm", "the wine workload, reproduced")
    copies = [first]
    for i in range(1, WORKERS):
        copies.append(Path(shutil.copytree(first, top / f"repo-{i}", symlinks=True)))
    return [(root, sandbox_runner(root, mirror)) for root in copies]


def in_parallel(pipelines: list[tuple[Path, Run]], cases: list, one: Callable) -> None:
    """`one(root, run, key, value[, named])` for every case, dealt across the copies."""
    from concurrent.futures import ThreadPoolExecutor

    def worker(i: int) -> None:
        root, run = pipelines[i]
        for key, value, *named in cases[i :: len(pipelines)]:
            one(root, run, key, value, *named)

    with ThreadPoolExecutor(len(pipelines)) as pool:
        for future in [pool.submit(worker, i) for i in range(len(pipelines))]:
            future.result()


def snapshot(root: Path) -> dict[str, str]:
    files = [p for top in KEPT for p in sorted((root / top).rglob("*")) if p.is_file()]
    files += [root / name for name in STORES if (root / name).is_file()]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def as_yaml(value) -> str:
    # one line however long: DVC's override grammar refuses a wrapped list
    return yaml.safe_dump(value, default_flow_style=True, width=10**9).strip().removesuffix("\n...")


def written(path: Path, key: str) -> bool:
    """Whether params.yaml spells `key` out (a default left unwritten is not there)."""
    node = yaml.safe_load(path.read_text())
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def refused(done: subprocess.CompletedProcess, key: str, named: str | None = None) -> None:
    """Refused in one `error:` line that names the key (or `named`: a model over a cap)."""
    text = done.stdout + done.stderr
    assert done.returncode != 0, f"{key}: accepted\n{text[-2000:]}"
    assert "Traceback" not in text, text[-3000:]
    ours = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1 and (named or key) in ours[0], f"{key}: {ours or text[-2000:]}"


def test_bad_values_through_dvc_exp_run_touch_nothing(pipelines):
    assert len(WINE) >= 40
    before = [snapshot(root) for root, _ in pipelines]

    def one(root: Path, run: Run, key: str, value, named: str) -> None:
        new = not written(root / "params.yaml", key)  # DVC adds a key only with a `+`
        done = run(
            "dvc", "exp", "run", "-S", f"{'+' if new else ''}{key}={as_yaml(value)}", check=False
        )
        refused(done, key, named)
        run("git", "checkout", "--", "params.yaml")
        assert snapshot(root) == before[0], f"{key}={value!r} changed outputs or stores"

    in_parallel(pipelines, THROUGH_EXP_RUN, one)


def test_bad_values_through_dvc_repro_touch_nothing(pipelines):
    before = snapshot(pipelines[0][0])

    def one(root: Path, run: Run, key: str, value) -> None:
        path = root / "params.yaml"
        good = path.read_text()
        bad = yaml.safe_load(good)
        sandbox.set_dotted(bad, key, value)
        path.write_text(yaml.safe_dump(bad, sort_keys=False))
        refused(run("dvc", "repro", check=False), key)
        path.write_text(good)
        assert snapshot(root) == before, f"{key}={value!r} changed outputs or stores"

    in_parallel(pipelines, WINE[:THROUGH_REPRO], one)
    for _, run in pipelines:  # the good params back: nothing reruns but the checks
        assert only_register_ran(run("dvc", "repro").stdout)


def test_a_changed_mirror_file_stops_dvc_repro_at_check(pipelines, tmp_path):
    """A mirror lies outside the repository: a file replaced there is caught by the check
    stage, which always runs, before prepare has deleted anything."""
    from tests.conftest import _mirror, sandbox_runner

    root, _ = pipelines[0]
    before = snapshot(root)
    mirror = Path(shutil.copytree(_mirror() / "wine-quality", tmp_path / "mirror/wine-quality"))
    red = mirror / "winequality-red.csv"
    red.write_text(red.read_text().replace(";5\n", ";6\n", 1))
    done = sandbox_runner(root, mirror.parent)("dvc", "repro", check=False)
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1 and ours[0].startswith(f"error: {red}: sha256 "), done.stderr[-2000:]
    assert "bring it in as a data drop" in ours[0]
    assert snapshot(root) == before
