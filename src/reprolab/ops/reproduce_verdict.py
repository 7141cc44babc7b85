"""`reprolab reproduce`'s verdict: the rebuilt model against the registered artifact (which
must still match its recorded md5), file by file, and the run's validation metrics."""

from __future__ import annotations

import os
import re
from pathlib import Path

SAME, DIFFERENT = 0, 1  # exit codes: identical or equal within tolerance; different


def valid_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The run's validation metrics (`valid_*`, `eval_valid_*`, `final_valid/*`), no timings."""
    from reprolab.core.metrics import is_timing

    pattern = re.compile(r"^(eval_|final_)?valid[_/]")
    return {k: v for k, v in metrics.items() if pattern.match(k) and not is_timing(k)}


def verdict(mv, run, tags: dict[str, str], wt: Path, rebuilt_run: str, tol: float):
    """The verdict line and exit code: the rebuilt model against the registered artifact
    (which must still match its recorded md5) and the run's validation metrics."""
    import mlflow

    from reprolab.core.io import dvc_md5
    from reprolab.core.paths import mlflow_tracking_uri
    from reprolab.ops.model_digest import digests

    registered = wt.parent / "registered"
    uri = mlflow_tracking_uri()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.artifacts.download_artifacts(mv.source, dst_path=str(registered), tracking_uri=uri)
    (registered / "registered_model_meta").unlink(missing_ok=True)  # added by the download
    rebuilt, md5 = wt / tags["model_path"], dvc_md5(registered)
    old, new = digests(registered), digests(rebuilt)
    files = sorted(f for f in old.keys() | new.keys() if old.get(f) != new.get(f))
    store = mlflow.MlflowClient(tracking_uri=f"sqlite:///{wt.parent / 'mlflow' / 'mlflow.db'}")
    after = valid_metrics(store.get_run(rebuilt_run).data.metrics)
    metrics = {k: (v, after.get(k)) for k, v in valid_metrics(run.data.metrics).items()}
    off = {k: p for k, p in metrics.items() if p[1] is None or abs(p[0] - p[1]) > tol}
    tampered = md5 != tags["model_md5"]
    if not files and not tampered:
        how = "same model md5" if dvc_md5(rebuilt) == md5 else "same weights"
        return f"identical ({how}: {len(new)} files equal by content sha256)", SAME
    if not tampered and not off:
        return (
            f"metrics equal within tolerance {tol:g} ({len(metrics)} valid metrics; weights "
            f"differ in {', '.join(files)})",
            SAME,
        )
    parts = [f"registered model md5 {md5} != recorded {tags['model_md5']}"] if tampered else []
    parts += [
        f"{f} sha256 {_short(old, f)} (registered) vs {_short(new, f)} (rebuilt)" for f in files
    ]
    parts += [f"{k} {a!r} (registered) vs {b!r} (rebuilt)" for k, (a, b) in off.items()]
    return "different: " + "; ".join(parts), DIFFERENT


def _short(found: dict[str, str], name: str) -> str:
    return found[name][:12] if name in found else "missing"
