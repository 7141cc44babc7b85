"""A saved model's files hashed by content, so that a rebuild with identical weights hashes
the same although the raw bytes (and DVC's md5) change at every save: MLflow writes a fresh
uuid and time into MLmodel, skops zips its arrays with timestamps and names them by id()."""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

# written at every save, so never part of what a rebuild must match
_MLMODEL_VOLATILE = re.compile(r"^(model_uuid|utc_time_created|model_id|run_id|artifact_path):")
_SKOPS_ID = re.compile(r'("__id__": |"file": ")(\d+)')  # an object's id(): memory addresses


def digests(folder: Path) -> dict[str, str]:
    """sha256 per file of a saved model, by content: MLmodel without its save time and uuid,
    a skops archive without its zip times and id()-based names (identical weights, equal
    digests; DVC's md5 of the raw bytes changes at every save)."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel, digest = path.relative_to(folder).as_posix(), hashlib.sha256()
        if path.name == "MLmodel":
            lines = path.read_text().splitlines()
            digest.update("\n".join(ln for ln in lines if not _MLMODEL_VOLATILE.match(ln)).encode())
        elif zipfile.is_zipfile(path):
            _zip_digest(path, digest)
        else:
            digest.update(path.read_bytes())
        found[rel] = digest.hexdigest()
    return found


def _zip_digest(path: Path, digest) -> None:
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        schema = archive.read("schema.json").decode() if "schema.json" in names else ""
        order: dict[str, str] = {}
        for _, number in _SKOPS_ID.findall(schema):
            order.setdefault(number, str(len(order)))
        digest.update(_SKOPS_ID.sub(lambda m: m[1] + order[m[2]], schema).encode())
        renamed = {n: order.get(n.removesuffix(".npy"), n) for n in names if n != "schema.json"}
        for name in sorted(renamed, key=renamed.get):
            digest.update(renamed[name].encode() + hashlib.sha256(archive.read(name)).digest())
