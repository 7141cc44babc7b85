"""`reprolab reproduce`: prove that a registered version can be rebuilt from its lineage (git
commit, params, data md5, model md5), in a throw-away `git worktree` that shares the DVC cache
and remote (no download) and logs to a throw-away MLflow store (nothing registered, no alias
moved), then compared with the registered artifact. Exit 0 identical or metrics equal within
tolerance, 1 different, 2 not reproducible here (dirty, unknown commit, GPU, cut short, data)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from reprolab.core.errors import ReprolabError
from reprolab.core.tracking import TAG
from reprolab.ops.reproduce_verdict import DIFFERENT, SAME, verdict

CANNOT = 2  # SAME 0 and DIFFERENT 1 come with the verdict
STAGES = {"train": ("train", "evaluate"), "finetune": ("finetune",), "ensemble": ("ensemble",)}
Echo = Callable[[str], None]


class CannotReproduce(ReprolabError):
    """This version cannot be rebuilt here; the message says why in one line (exit 2)."""


@dataclass(frozen=True)
class Target:
    """A registered version, by number or by alias."""

    task: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return f"{self.task} v{self.version}" if self.version else f"{self.task}@{self.alias}"


def parse_target(arg: str, version: str | None = None) -> Target:
    """`TASK VERSION`, `models:/TASK/VERSION`, `models:/TASK@ALIAS` or `TASK@ALIAS`."""
    text = arg.removeprefix("models:/")
    if version is not None:
        if "/" in text or "@" in text or not version.isdigit():
            raise CannotReproduce(f"give TASK VERSION or one models:/ URI, not {arg!r} {version!r}")
        return Target(text, version=version)
    task, sep, alias = text.partition("@")
    if sep and task and alias and "/" not in text:
        return Target(task, alias=alias)
    task, sep, number = text.partition("/")
    if sep and task and number.isdigit():
        return Target(task, version=number)
    raise CannotReproduce(
        f"{arg!r}: expected TASK VERSION, models:/TASK/VERSION, models:/TASK@ALIAS or TASK@ALIAS"
    )


def refusal(tags: dict[str, str], cuda_usable: Callable[[], bool]) -> str | None:
    """Why a run cannot be rebuilt faithfully here (None: it can). `tags` without prefix."""
    if tags.get("cut_short") == "true":
        return (
            "it was cut short by a time guard (reprolab.cut_short): its length depended on "
            "the machine's speed"
        )
    missing = [k for k in ("git_commit", "model_path", "model_md5", "stage") if not tags.get(k)]
    if missing:
        return f"its run has no lineage tags {missing}"
    if tags["stage"] not in STAGES:
        return f"its run is a {tags['stage']} stage, not train, finetune or ensemble"
    if tags.get("device") == "cuda" and not cuda_usable():
        return "it was trained on a GPU (reprolab.device=cuda) and no CUDA device is usable here"
    return None


def reproduce(target: Target, tolerance: float | None, keep: bool, echo: Echo, err: Echo) -> int:
    """Rebuild one version and print its verdict line; the exit code."""
    from reprolab.core.paths import workspace_root
    from reprolab.core.tracking_store import client

    mlflow_client, name = client(), str(target)
    try:
        mv = _version(mlflow_client, target)
        run = mlflow_client.get_run(mv.run_id)
        tags = {k.removeprefix(TAG): v for k, v in run.data.tags.items() if k.startswith(TAG)}
        name = f"{mv.name} v{mv.version} ({tags.get('model', '?')})"
        if mv.tags.get(TAG + "cut_short") == "true":  # copied to the version at registration
            tags["cut_short"] = "true"
        why = refusal(tags, _cuda_usable)
        if why:
            raise CannotReproduce(why)
        if tags.get("device") != "cuda":
            tags["kernel_env"] = json.dumps(kernel_env(tags.get("cpu_kernels", ""), _cpu_has))
        root = workspace_root()
        _check_commit(root, tags)
        declared = mv.tags.get(TAG + "reproduce_tolerance") or tags.get("reproduce_tolerance")
        tol = tolerance if tolerance is not None else float(declared or 0)
        with _worktree(root, tags["git_commit"], keep, err) as wt:
            rebuilt_run = _rebuild(root, wt, run, tags, err)
            line, code = verdict(mv, run, tags, wt, rebuilt_run, tol)
    except ReprolabError as why:  # CannotReproduce, or lineage the store cannot give
        echo(f"{name}: cannot be reproduced here: {why}")
        return CANNOT
    echo(f"{name}: {line}")
    return code


def champions(params_tasks: list[str], tolerance: float | None, keep: bool, echo, err) -> int:
    """Reproduce every task's champion; tasks without one are skipped with a line. Exit 1 if
    one differs, else 2 if one cannot be reproduced, else 0."""
    from reprolab.core.registry_store import CHAMPION
    from reprolab.core.tracking_store import client

    registered = {m.name: m for m in client().search_registered_models(max_results=1000)}
    codes = []
    for task in sorted(set(params_tasks) | set(registered)):
        model = registered.get(task)
        if model is None or CHAMPION not in (model.aliases or {}):
            echo(f"{task}: no champion, skipped")
            continue
        codes.append(reproduce(Target(task, alias=CHAMPION), tolerance, keep, echo, err))
    return DIFFERENT if DIFFERENT in codes else max(codes, default=SAME)


# ------------------------------------------------------------------ lineage checks


def _version(mlflow_client, target: Target):
    from mlflow.exceptions import MlflowException

    try:
        if target.version:
            return mlflow_client.get_model_version(target.task, target.version)
        return mlflow_client.get_model_version_by_alias(target.task, target.alias)
    except MlflowException as err:
        raise CannotReproduce(f"no registered version {target} in this MLflow store") from err


# ATen's CPU capability names and oneDNN's ISA cap that gives the same fp32 kernels
_ONEDNN_FOR = {"AVX2": "AVX2", "DEFAULT": "SSE41"}


def kernel_env(recorded: str, cpu_has: Callable[[str], bool]) -> dict[str, str | None]:
    """The environment that makes a rebuild take the CPU kernel path its run recorded (the
    `cpu_kernels` tag, e.g. `aten=AVX2,onednn=auto`): {variable: value, or None to unset}.
    An AVX2 run rebuilds bit for bit on an AVX-512 CPU this way; an AVX-512 run cannot on a
    CPU without AVX-512, which raises CannotReproduce. No tag (older runs): no change."""
    fields = dict(part.partition("=")[::2] for part in recorded.split(",") if "=" in part)
    aten, onednn = fields.get("aten", ""), fields.get("onednn", "auto")
    if not aten:
        return {}
    if not cpu_has(aten):
        raise CannotReproduce(
            f"it was trained on {aten} CPU kernels (reprolab.cpu_kernels={recorded}) and this "
            f"CPU has no {aten}: fp32 rounding would differ; rebuild it on a CPU with {aten}"
        )
    cap = onednn if onednn != "auto" else _ONEDNN_FOR.get(aten)
    return {
        "ATEN_CPU_CAPABILITY": aten.lower(),
        "ONEDNN_MAX_CPU_ISA": cap,
        "DNNL_MAX_CPU_ISA": None,
    }


def _cpu_has(aten: str) -> bool:
    """Whether this CPU can run ATen's `aten` kernels (whatever this process was told)."""
    import torch

    probe = {"AVX2": "_is_avx2_supported", "AVX512": "_is_avx512_supported"}.get(aten)
    return aten == "DEFAULT" or bool(probe and getattr(torch.cpu, probe)())


def _cuda_usable() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _git(root: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise CannotReproduce(f"git {' '.join(args)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout.strip() if done.returncode == 0 else ""


def _check_commit(root: Path, tags: dict[str, str]) -> None:
    """The commit must be here, and a dirty run only counts when its DVC experiment differs
    from the commit in params.yaml alone (a `dvc exp run -S`): the recorded params restore it."""
    commit = tags["git_commit"]
    if not _git(root, "cat-file", "-t", f"{commit}^{{commit}}", check=False):
        raise CannotReproduce(f"its git commit {commit[:12]} is not in this repository")
    if tags.get("git_dirty") != "true":
        return
    exp = tags.get("dvc_exp", "")
    refs = _git(root, "for-each-ref", "--format=%(refname)", "refs/exps", check=False)
    ref = next((r for r in refs.splitlines() if exp and r.rsplit("/", 1)[-1] == exp), None)
    outputs = (":!dvc.lock", ":!reports", ":!models", ":!data", ":!params.yaml")
    if ref and not _git(root, "diff", "--name-only", commit, ref, "--", ".", *outputs):
        return
    raise CannotReproduce(
        f"its run was made from a dirty tree (uncommitted changes on {commit[:12]}): the code "
        "it ran is not in git"
    )


# ------------------------------------------------------------------ the rebuild


@contextlib.contextmanager
def _worktree(root: Path, commit: str, keep: bool, err: Echo) -> Iterator[Path]:
    """A detached worktree at `commit` in a temp dir, removed afterwards (also on failure,
    Ctrl-C or SIGTERM) unless `keep`."""
    from reprolab.core import interrupts

    tmp = Path(tempfile.mkdtemp(prefix="reprolab-reproduce-"))
    wt = tmp / "worktree"
    try:
        with interrupts.stop_on_signals():
            _git(root, "worktree", "add", "--quiet", "--detach", str(wt), commit)
            yield wt
    finally:
        if keep and wt.exists():
            err(f"reproduce: worktree kept at {wt}")
        else:
            _git(root, "worktree", "remove", "--force", str(wt), check=False)
            _git(root, "worktree", "prune", check=False)
            shutil.rmtree(tmp, ignore_errors=True)


def _env(wt: Path, tags: dict[str, str]) -> dict[str, str]:
    """The worktree's own code and a throw-away MLflow store; CPU when it trained on one."""
    from reprolab.ops.sandbox import env_for

    env = env_for(wt)
    store = wt.parent / "mlflow"
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(wt / "src"),  # the commit's reprolab, not the installed one
        MLFLOW_TRACKING_URI=f"sqlite:///{store / 'mlflow.db'}",
        REPROLAB_MLFLOW_ARTIFACTS=(store / "artifacts").as_uri(),
    )
    if tags.get("device") != "cuda":
        env["CUDA_VISIBLE_DEVICES"] = ""
    for name, value in json.loads(tags.get("kernel_env") or "{}").items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    store.mkdir(exist_ok=True)
    return env


def _dvc(wt: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["dvc", *args], cwd=wt, env=env, capture_output=True, text=True, check=False
    )


def _share_dvc(root: Path, wt: Path, env: dict[str, str]) -> None:
    """The main checkout's cache and remotes (relative URLs made absolute) in the worktree's
    .dvc/config.local, so every object the checkout has is found without a download."""
    local = root / ".dvc" / "config.local"
    if local.is_file():
        shutil.copy2(local, wt / ".dvc" / "config.local")
    cache = _dvc(root, env, "cache", "dir").stdout.strip()
    commands = [("config", "--local", "cache.dir", cache)] if cache else []
    for line in _dvc(root, env, "remote", "list").stdout.splitlines():
        remote, _, url = line.partition("\t")
        if url and "://" not in url and not Path(url).is_absolute():
            url = str((root / ".dvc" / url).resolve())
            commands.append(("remote", "modify", "--local", remote.strip(), "url", url))
    for command in commands:
        _dvc(wt, env, *command)


def _inputs(tags: dict[str, str]) -> dict[str, str]:
    """The DVC-tracked inputs the run recorded: its prepared data and its base model."""
    found = {}
    if tags.get("data_path") and tags.get("data_md5"):
        found[tags["data_path"]] = tags["data_md5"]
    if tags.get("base") and tags.get("base_md5"):
        found[f"models/{tags['base']}"] = tags["base_md5"]
    return found


def _pin(wt: Path, env: dict[str, str], path: str, md5: str) -> bool:
    """Put the object `md5` at `path` from the shared cache, else the remote: a throw-away
    .dvc file outside the pipeline's outputs (DVC refuses overlapping ones), checked out."""
    scratch = Path(tempfile.mkdtemp(dir=wt, prefix=".reprolab-pin-"))
    (scratch / "pinned.dvc").write_text(f"outs:\n- md5: {md5}\n  path: pinned\n  hash: md5\n")
    target = str((scratch / "pinned.dvc").relative_to(wt))
    try:
        for command in ("checkout", "pull"):
            if _dvc(wt, env, command, target).returncode == 0 and (scratch / "pinned").exists():
                shutil.rmtree(wt / path, ignore_errors=True)
                (wt / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.move(scratch / "pinned", wt / path)
                return True
        return False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _rebuild(root: Path, wt: Path, run, tags: dict[str, str], err: Echo) -> str:
    """Rebuild the model in `wt` with the run's params and inputs; the new MLflow run id.
    Inputs come by md5 from the cache or remote; only what is not there is rebuilt."""
    from reprolab.core.io import dvc_md5
    from reprolab.ops.recorded_params import restore_params

    env = _env(wt, tags)
    _share_dvc(root, wt, env)
    model, targets = tags["model"], [f"{s}@{tags['model']}" for s in STAGES[tags["stage"]]]
    changed = restore_params(wt, run.data.params, model, tags)
    if changed:
        err(f"reproduce: recorded params restored: {', '.join(changed)}")
    inputs = _inputs(tags)
    pinned = {p for p, md5 in inputs.items() if _pin(wt, env, p, md5)}
    skip = {*targets, f"hpo@{model}", "check"}  # check runs with any prepare that runs
    needs = [s for s in _upstream(wt, env, targets[0]) if s not in skip and not _made(s, pinned)]
    err(f"reproduce: {tags['git_commit'][:8]} in {wt}: {', '.join(needs + targets)}")
    if needs:
        _run_stages(wt, env, "--pull", *needs)
    for path, md5 in inputs.items():
        now = dvc_md5(wt / path) if (wt / path).exists() else "nothing"
        if now != md5 and not _pin(wt, env, path, md5):
            raise CannotReproduce(
                f"{path} md5 {md5} (recorded) is in neither the DVC cache nor the remote, and "
                f"the pipeline at {tags['git_commit'][:8]} now makes {now}"
            )
    _run_stages(wt, env, "-s", "-f", *targets)
    return json.loads((wt / "reports" / "train" / model / "run.json").read_text())["run_id"]


def _made(stage: str, pinned: set[str]) -> bool:
    """Whether `stage` only makes an input already pinned from the cache."""
    kind, _, name = stage.partition("@")
    made = {"prepare": f"data/processed/{name}", "pretrain": f"models/{name}"}
    made["import"] = made["pretrain"]
    return made.get(kind) in pinned


def _upstream(wt: Path, env: dict[str, str], stage: str) -> list[str]:
    """`stage` and every stage it depends on, from `dvc dag --dot`."""
    dot = _dvc(wt, env, "dag", "--dot", stage).stdout
    return list(dict.fromkeys(re.findall(r'^"([^"]+)";$', dot, flags=re.M)))


def _run_stages(wt: Path, env: dict[str, str], *args: str) -> None:
    done = _dvc(wt, env, "repro", *args)
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        last = next(
            (ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else ""
        )
        raise CannotReproduce(f"dvc repro {' '.join(args)} failed: {last.strip()}")
