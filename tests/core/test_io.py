import json

import pytest

from reprolab.core.io import atomic_dir, atomic_write_json, dvc_md5, file_digest


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as staging:
        (staging / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), atomic_dir(target) as staging:
        (staging / "a.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert (target / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging debris


def test_atomic_write_json(tmp_path):
    atomic_write_json(tmp_path / "x" / "a.json", {"b": 1})
    assert json.loads((tmp_path / "x" / "a.json").read_text()) == {"b": 1}


def test_dvc_md5_of_a_directory_follows_dvc_format(tmp_path):
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.txt").write_text("alpha")
    (tmp_path / "d" / "sub" / "b.bin").write_bytes(b"\x00\x01")
    tree = Tree()
    for rel in ("a.txt", "sub/b.bin"):
        tree.add(tuple(rel.split("/")), Meta(), HashInfo("md5", file_digest(tmp_path / "d" / rel)))
    tree.digest()
    assert dvc_md5(tmp_path / "d") == tree.hash_info.value
    assert dvc_md5(tmp_path / "d" / "a.txt") == file_digest(tmp_path / "d" / "a.txt")
