"""The real pipeline with real DVC and MLflow, in a throw-away copy of this repository."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from reprolab.ops import sandbox
from tests.conftest import only_register_ran

pytestmark = pytest.mark.slow
OVERRIDES = {**sandbox.smoke_overrides(), "datasets.wine.sample_fraction": 0.3}
WINE_STAGES = {"prepare@wine", "register@wine-quality", "infer@wine-quality", "report"} | {
    f"{s}@wine-{m}" for s in ("train", "evaluate") for m in ("ridge", "rf", "hgb", "mlp")
}
NSMC_STAGES = {
    "prepare@nsmc",
    "train@nsmc-tfidf",
    "evaluate@nsmc-tfidf",
    "train@nsmc-nblr",
    "evaluate@nsmc-nblr",
    "ensemble@nsmc-ensemble",
    "register@nsmc-sentiment",
    "infer@nsmc-sentiment",
}
NUCLEI_STAGES = {
    "prepare@nuclei",
    "train@nuclei-unet",
    "evaluate@nuclei-unet",
    "register@nuclei-segmentation",
    "infer@nuclei-segmentation",
}
# a study stage per model (a stub without an hpo section) and the PIDNet workload
ALL_STAGES = (
    {"check"}  # params.yaml validated before any stage that owns outputs
    | WINE_STAGES
    | NSMC_STAGES
    | NUCLEI_STAGES
    | {
        f"hpo@{m}"
        for m in (
            "wine-ridge",
            "wine-rf",
            "wine-hgb",
            "wine-mlp",
            "nsmc-tfidf",
            "nsmc-nblr",
            "nuclei-unet",
            "pidnet",
        )
    }
    | {"prepare@control", "train@pidnet", "evaluate@pidnet", "register@pid-control"}
    # LoRA fine-tuning of SmolLM2 on instruction data
    | {"prepare@codealpaca", "import@smollm2", "finetune@smollm2-lora", "register@llm-sft"}
    # Mini-T pretrained on Tiny Shakespeare
    | {"prepare@shakespeare", "pretrain@minit"}
    # both causal LMs written as GGUF and checked in llama.cpp
    | {"export@minit", "export@smollm2-lora"}
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    from tests.conftest import _mirror

    mirror = _mirror()
    if mirror is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR")
    root = sandbox.create(tmp_path_factory.mktemp("e2e") / "repo", OVERRIDES)
    imports = root.parent / "imports"  # read by test_every_stage_imports_only_what_it_declares
    imports.mkdir()
    (imports / "sitecustomize.py").write_text(RECORD_IMPORTS)
    env = {**sandbox.env_for(root), "REPROLAB_DATA_MIRROR": str(mirror)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(imports), env.get("PYTHONPATH")]))
    env["REPROLAB_IMPORT_LOG"] = str(imports)
    env.pop("REPROLAB_MLFLOW_ARTIFACTS", None)

    def run(*cmd: str, check: bool = True, stdin: str | None = None):
        done = subprocess.run(
            cmd, cwd=root, env=env, capture_output=True, text=True, check=False, input=stdin
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    return root, run


# Every Python process of a stage (DVC sets DVC_STAGE) writes the files of the reprolab
# modules it imported, at exit: what the stage really read, to hold against dvc.yaml's deps.
RECORD_IMPORTS = """
import atexit, json, os, sys

def _record():
    stage = os.environ.get("DVC_STAGE")
    if not stage:
        return
    files = sorted({
        m.__file__ for n, m in list(sys.modules.items())
        if (n == "reprolab" or n.startswith("reprolab.")) and getattr(m, "__file__", None)
    })
    out = os.path.join(os.environ["REPROLAB_IMPORT_LOG"], f"{stage}.{os.getpid()}.json")
    with open(out, "w") as f:
        json.dump({"stage": stage, "files": files}, f)

atexit.register(_record)
"""


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def mlflow_client(root):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def test_pipeline_reruns_only_what_changed_and_keeps_lineage(repo):
    root, run = repo
    first = run("dvc", "repro")
    assert ran(first.stdout) == ALL_STAGES
    assert only_register_ran(run("dvc", "repro").stdout)
    run("git", "add", "-A")
    run("git", "commit", "-qm", "first results")
    lock = yaml.safe_load(run("git", "show", "HEAD:dvc.lock").stdout)
    rf_md5 = next(
        o["md5"] for o in lock["stages"]["train@wine-rf"]["outs"] if o["path"] == "models/wine-rf"
    )

    client = mlflow_client(root)
    experiment = client.get_experiment_by_name("wine-quality")
    (rf_run,) = client.search_runs([experiment.experiment_id], "tags.`reprolab.model` = 'wine-rf'")
    tags = rf_run.data.tags
    assert tags["reprolab.model_md5"] == rf_md5  # our hash is DVC's hash
    assert tags["reprolab.model_path"] == "models/wine-rf"
    assert re.fullmatch(r"[0-9a-f]{40}", tags["reprolab.git_commit"])
    assert tags["reprolab.git_dirty"] == "false"
    assert {"test_rmse", "test_red/rmse", "final_valid/rmse"} <= set(rf_run.data.metrics)
    assert "champion" in client.get_registered_model("wine-quality").aliases

    # one param of one model: only that branch and the gathering stages rerun
    exp = run("dvc", "exp", "run", "-n", "fewer-trees", "-S", "models.wine-rf.n_estimators=12")
    reran = ran(exp.stdout)
    assert {"train@wine-rf", "evaluate@wine-rf", "register@wine-quality"} <= reran
    assert not reran & {
        "prepare@wine",
        "train@wine-ridge",
        "train@wine-hgb",
        "train@wine-mlp",
        "evaluate@wine-mlp",
    }
    runs = client.search_runs([experiment.experiment_id], "tags.`reprolab.stage` = 'train'")
    assert len(runs) == 5
    assert {r.data.tags["reprolab.dvc_exp"] for r in runs} == {"", "fewer-trees"}
    shown = run("dvc", "exp", "show", "--md").stdout
    assert "fewer-trees" in shown and "test_rmse" not in shown

    # the review page compares the experiment with the committed baseline, offline
    run("reprolab", "review", "--rev", "HEAD", "--exp", "fewer-trees")
    review = (root / "reports/review.md").read_text()
    assert "models.wine-rf.n_estimators" in review and "| 12 " in review.replace("12  ", "12 ")
    pngs = list((root / "reports/review").glob("*.png"))
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)

    # the first wine-rf run's exact model, though the workspace has moved on
    out = root / "first-rf.csv"
    done = run(
        sys.executable,
        "stages/infer.py",
        "wine-quality",
        "--run-id",
        rf_run.info.run_id,
        "--output",
        str(out),
    )
    assert rf_run.info.run_id in done.stdout
    committed = pd.read_csv(
        io.StringIO(
            run("git", "show", "HEAD:reports/eval/wine-quality/wine-rf/predictions.csv").stdout
        )
    )
    assert pd.read_csv(out)["prediction"].round(5).tolist() == committed["predicted"].tolist()
    # --interactive lists the runs, newest first: 1 is the experiment's wine-rf
    picked = run(
        sys.executable,
        "stages/infer.py",
        "wine-quality",
        "--interactive",
        "--output",
        str(root / "picked.csv"),
        stdin="1\n",
    )
    assert "fewer-trees" in picked.stdout.splitlines()[0]
    current = pd.read_csv(root / "reports/eval/wine-quality/wine-rf/predictions.csv")
    assert pd.read_csv(root / "picked.csv")["prediction"].round(5).tolist() == (
        current["predicted"].tolist()
    )
    assert current["predicted"].tolist() != committed["predicted"].tolist()


def _declared_deps(run) -> dict[str, list[str]]:
    """Each stage's dependency paths as DVC resolves dvc.yaml (foreach items expanded)."""
    import json

    script = (
        "import json; from dvc.repo import Repo\n"
        "with Repo('.') as r:\n"
        "    print(json.dumps({s.addressing: [d.def_path for d in s.deps]"
        " for s in r.index.stages}))\n"
    )
    return json.loads(run(sys.executable, "-c", script).stdout)


def test_every_stage_imports_only_what_it_declares(repo):
    """The reprolab modules each stage imported lie inside that stage's declared deps, so
    `dvc status` cannot stay clean while code that shaped an output has changed."""
    import json
    from pathlib import Path

    import reprolab

    root, run = repo
    package = Path(reprolab.__file__).resolve().parent  # the code the stages import
    logs = sorted((root.parent / "imports").glob("*.json"))
    assert logs, "no stage recorded its imports"
    declared = _declared_deps(run)
    seen, undeclared = set(), []
    for log in logs:
        record = json.loads(log.read_text())
        stage = record["stage"]
        seen.add(stage)
        deps = declared.get(stage)
        assert deps is not None, f"{stage} is not a stage of dvc.yaml: {sorted(declared)}"
        for file in record["files"]:
            path = Path(file).resolve()
            rel = (
                "src/reprolab/" + path.relative_to(package).as_posix()
                if path.is_relative_to(package)
                else path.relative_to(root.resolve()).as_posix()
            )
            if not any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps):
                undeclared.append(f"{stage}: {rel}")
    assert seen >= ALL_STAGES, ALL_STAGES - seen
    assert not undeclared, "imported but not declared in dvc.yaml:\n" + "\n".join(
        sorted(set(undeclared))
    )


def _changed(run) -> set[str]:
    import json

    return set(json.loads(run("dvc", "status", "--json").stdout))


def test_a_workloads_code_reruns_its_stages_and_no_others(repo):
    """Touching the U-Net leaves every wine, NSMC and LLM stage unchanged; touching the
    metrics code marks every stage that scores a model; touching llama.cpp's code marks only
    the GGUF exports."""
    root, run = repo
    # always_changed in dvc.yaml: the registry gates and the params and data-source check
    always = {s for s in ALL_STAGES if s.startswith("register@")} | {"check"}
    assert _changed(run) <= always
    for rel, must, must_not in [
        (
            "workloads/nuclei/unet.py",
            {"train@nuclei-unet", "evaluate@nuclei-unet", "infer@nuclei-segmentation"},
            ("wine", "nsmc", "smollm2", "codealpaca", "llm-sft", "minit", "pidnet"),
        ),
        ("core/metrics.py", {s for s in ALL_STAGES if s.startswith("evaluate@")}, ()),
        (  # llama.cpp's code reruns the exports and nothing that trains
            "llamacpp/server.py",
            {"export@minit", "export@smollm2-lora"},
            ("prepare@", "train@", "finetune@", "import@", "evaluate@", "infer@", "hpo@"),
        ),
    ]:
        copy = root / "src/reprolab" / rel  # the sandbox's copy is what dvc.yaml names
        original = copy.read_text()
        try:
            copy.write_text(original + "\n# touched\n")
            changed = _changed(run) - always
        finally:
            copy.write_text(original)
        assert must <= changed, (rel, must - changed)
        leaked = {s for s in changed if any(w in s for w in must_not)}
        assert not leaked, (rel, leaked)


def test_champion_loads_in_a_fresh_process(repo):
    root, _ = repo
    code = (
        "import mlflow, pandas as pd\n"
        "from reprolab.workloads.wine.data import features\n"
        "m = mlflow.pyfunc.load_model('models:/wine-quality@champion')\n"
        "frame = pd.read_csv('data/processed/wine/test.csv')\n"
        "p = m.predict(features(frame))\n"
        "assert len(p) == len(frame) and 3 < p.mean() < 8, p.mean()\n"
        "print('ok', len(p))\n"
    )
    env_uri = f"sqlite:///{root / 'mlflow.db'}"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": env_uri},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ok ")
