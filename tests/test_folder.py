"""The release folder's one transaction (``ReleaseFolder``): the staging directory goes away whatever
happens, a commit renames the made files and writes the manifest last under the one lock, a refused
commit changes nothing, and the clean-up removes only the temporary names this tool makes."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from shufflekit.folder import JOURNAL_NAME, LOCK_NAME, STAGING_PREFIX, ReleaseFolder


class _Manifest:
    """The smallest manifest: ``commit`` only needs ``save``."""

    def __init__(self, folder: Path, data: dict) -> None:
        self.folder, self.data = folder, data

    def save(self) -> None:
        (self.folder / "manifest.json").write_text(json.dumps(self.data))


def test_a_commit_renames_the_made_files_then_writes_the_manifest(tmp_path):
    folder = ReleaseFolder(tmp_path / "release")
    with folder.staging() as staging:
        (staging / "a.onnx").write_bytes(b"a")
        (staging / "scratch.onnx").write_bytes(b"not committed")
        seen = []
        folder.commit(
            staging,
            ["a.onnx"],
            lambda: (
                seen.append(sorted(p.name for p in folder.path.iterdir()))
                or _Manifest(folder.path, {"files": ["a.onnx"]})
            ),
        )
    assert (folder.path / "a.onnx").read_bytes() == b"a"
    assert json.loads((folder.path / "manifest.json").read_text()) == {"files": ["a.onnx"]}
    assert not (folder.path / "scratch.onnx").exists() and not list(folder.path.glob(f"{STAGING_PREFIX}*"))
    assert not (folder.path / JOURNAL_NAME).exists()
    assert seen and "a.onnx" not in seen[0]  # the manifest is built before any file moves


def test_a_refused_commit_moves_nothing_and_the_staging_goes(tmp_path):
    folder = ReleaseFolder(tmp_path)
    (tmp_path / "a.onnx").write_bytes(b"old")

    def refuse() -> _Manifest:
        raise RuntimeError("the parent changed")

    with pytest.raises(RuntimeError, match="parent changed"), folder.staging("quantize") as staging:
        assert staging.name.startswith(".shufflekit-staging-quantize-")
        (staging / "a.onnx").write_bytes(b"new")
        folder.commit(staging, ["a.onnx"], refuse)
    assert (tmp_path / "a.onnx").read_bytes() == b"old"
    assert not (tmp_path / "manifest.json").exists() and not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


def test_the_lock_is_one_flock_on_the_one_lock_file(tmp_path):
    folder = ReleaseFolder(tmp_path)
    # another process's descriptor, as flock sees it
    with folder.lock(), open(tmp_path / LOCK_NAME, "a+") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(tmp_path / LOCK_NAME, "a+") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released
        fcntl.flock(other, fcntl.LOCK_UN)


def test_clean_up_removes_only_the_temporary_names_this_tool_makes(tmp_path):
    folder = ReleaseFolder(tmp_path)
    (tmp_path / ".shufflekit-staging-x1").mkdir()
    (tmp_path / ".shufflekit-staging-x1" / "half.onnx").write_bytes(b"")
    (tmp_path / ".model.onnx.shufflekit-abc.partial").write_bytes(b"half")
    kept = [
        tmp_path / ".staging-notes",
        tmp_path / "notes.partial",
        tmp_path / ".notes.partial",  # a user's own name: not one atomic_path makes
        tmp_path / ".model.onnx.abc.partial",
        tmp_path / "model.onnx",
        tmp_path / LOCK_NAME,
    ]
    for path in kept:
        path.write_bytes(b"the user's")
    (tmp_path / ".staging-foo").mkdir()  # a user's folder: not a staging directory this tool makes
    (tmp_path / ".staging-foo" / "mine.txt").write_bytes(b"the user's")
    (tmp_path / ".photos.shufflekit-x.partial").mkdir()  # a folder: not a file atomic_path makes
    assert folder.clean_leftovers() == 2
    assert all(path.read_bytes() == b"the user's" for path in kept)
    assert (tmp_path / ".staging-foo" / "mine.txt").read_bytes() == b"the user's"
    assert (tmp_path / ".photos.shufflekit-x.partial").is_dir()
    assert not (tmp_path / ".shufflekit-staging-x1").exists()
    assert not (tmp_path / ".model.onnx.shufflekit-abc.partial").exists()
    assert ReleaseFolder(tmp_path / "missing").clean_leftovers() == 0
