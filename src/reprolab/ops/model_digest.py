"""A saved model's files hashed by content, so that a rebuild with identical weights hashes
the same although the raw bytes (and DVC's md5) change at every save: MLflow writes a fresh
uuid, time, size and staging path into MLmodel, skops zips its arrays with timestamps and
names them by id(), a torch.export archive carries a random serialization id and the source
paths of the code that exported it, and a pickle names tensor storages by memory address."""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

# written at every save, so never part of what a rebuild must match
_MLMODEL_VOLATILE = re.compile(
    r"^\s*(model_uuid|utc_time_created|model_id|run_id|artifact_path|model_size_bytes|uri):"
)
_PT2_VOLATILE = re.compile(r'"stack_trace": "(?:[^"\\]|\\.)*"')  # paths of the exporting code
_STORAGE_KEY = re.compile(rb"(Storage\nq.)X(.{4})(\d{6,})", re.DOTALL)  # pickled storage ids
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
        elif path.suffix == ".pkl":
            digest.update(_renumbered_storages(path.read_bytes()))
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
            if name.endswith("serialization_id"):  # torch.export: random at every save
                continue
            data = archive.read(name)
            if name.endswith(".json") and b"stack_trace" in data:
                data = _PT2_VOLATILE.sub('"stack_trace": ""', data.decode()).encode()
            digest.update(renamed[name].encode() + hashlib.sha256(data).digest())


def _renumbered_storages(data: bytes) -> bytes:
    """A pickle with its tensor storages named 0, 1, ... in order instead of by address
    (where a storage is declared and wherever its key is listed again)."""
    for number, match in enumerate(_STORAGE_KEY.finditer(data)):
        old = b"X" + match[2] + match[3]
        key = str(number).encode()
        data = data.replace(old, b"X" + len(key).to_bytes(4, "little") + key)
    return data
