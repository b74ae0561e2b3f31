"""Never lose a user's file (issue 12): a file in a folder is shufflekit's only when the folder's manifest
(or an interrupted commit's journal) names it. Export, release and report refuse, in one line naming the
file and before any conversion, to replace a file they did not make; clean-up removes only the tool's own
temporary names; an empty --out / FOLDER (an unset shell variable) is refused instead of meaning the
current directory. The tool's own folder can still be written again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line
from shufflekit.errors import ManifestError, UsageError
from shufflekit.files import sha256_file
from shufflekit.folder import JOURNAL_NAME, LOCK_NAME, ReleaseFolder

SMALL_V2, SMALL_SIZE, SMALL_CLASSES = "shufflenet_v2_x0_5", 64, 10  # as conftest.py
SMALL = ["--model", SMALL_V2, "--input-size", str(SMALL_SIZE), "--num-classes", str(SMALL_CLASSES)]
ONNX_NAME = f"{SMALL_V2}_fp32.onnx"


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (folders as None) with its bytes; the lock file aside."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
        if p.name != LOCK_NAME
    }


def _run(args: list[str]):
    result = CliRunner().invoke(main, args)
    assert "Traceback" not in result.output, result.output
    return result


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and not is_progress_line(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _user_files(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(f"the user's own {name}\n".encode())


# -- refusals: before any conversion, nothing changed ------------------------------------------------------
@pytest.mark.parametrize("name", ["reference.npz", ONNX_NAME])
def test_export_refuses_to_replace_a_users_reference_or_same_named_model(tmp_path, name):
    out = tmp_path / "out"
    _user_files(out, [name, "README.md", ".notes.partial"])
    before = _snapshot(tmp_path)
    result = _run(["export", *SMALL, "--formats", "onnx", "--out", str(out)])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert f"{out / name} exists and shufflekit did not make it" in line and "--out" in line
    assert _snapshot(tmp_path) == before  # byte-identical, nothing new (no staging, no manifest)


def test_release_refuses_a_folder_holding_the_users_readme_labels_and_reference(tmp_path):
    out = tmp_path / "out"
    _user_files(out, ["README.md", "labels.txt", "reference.npz", ".notes.partial"])
    (out / ".staging-foo").mkdir()
    (out / ".staging-foo" / "draft.txt").write_bytes(b"mine")
    before = _snapshot(tmp_path)
    result = _run(["release", *SMALL, "--out", str(out)])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "exists and shufflekit did not make it; refusing to replace it" in line
    assert any(f"{out / n} exists" in line for n in ("README.md", "labels.txt", "reference.npz"))
    assert _snapshot(tmp_path) == before


def test_report_refuses_to_replace_a_readme_the_tool_did_not_write(small_release_copy):
    (small_release_copy / "README.md").write_text("my own notes\n")
    before = _snapshot(small_release_copy)
    result = _run(["report", str(small_release_copy)])
    assert result.exit_code == 2
    assert f"{small_release_copy / 'README.md'} exists and shufflekit did not make it" in _one_error_line(result)
    assert "--out" not in result.output  # report has no --out: the hint names none
    assert _snapshot(small_release_copy) == before


def test_quantize_refuses_to_replace_a_same_named_file_before_any_work(small_release_copy):
    (small_release_copy / f"{SMALL_V2}_fp16.onnx").write_bytes(b"someone else's model")
    before = _snapshot(small_release_copy)
    result = _run(["quantize", str(small_release_copy), "--precision", "fp16", "--formats", "onnx"])
    assert result.exit_code == 2, result.output
    assert f"{SMALL_V2}_fp16.onnx exists and shufflekit did not make it" in _one_error_line(result)
    assert _snapshot(small_release_copy) == before


# -- what the tool may write: a folder of the user's with no clashing names, and its own folder ------------
def test_export_into_a_folder_of_the_users_other_files_leaves_them_alone_and_report_reruns(tmp_path):
    out = tmp_path / "out"
    _user_files(out, ["notes.txt", ".notes.partial", ".model.onnx.abc.partial"])
    (out / ".staging-foo").mkdir()
    (out / ".staging-foo" / "draft.txt").write_bytes(b"mine")
    mine = _snapshot(out)
    common = ["--formats", "onnx", "--out", str(out)]
    assert _run(["export", *SMALL, *common]).exit_code == 0
    assert _run(["report", str(out)]).exit_code == 0
    manifest = Manifest.load(out)
    assert set(manifest.files) == {"labels.txt", "README.md", "report.html"}
    assert all(sha256_file(out / n) == sha for n, sha in manifest.files.items())
    # the tool's own folder: export and report again over their own files
    assert _run(["export", *SMALL, *common]).exit_code == 0, "re-export refused the tool's own files"
    assert set(Manifest.load(out).files) == set(manifest.files)  # the report's files stay the tool's
    assert _run(["report", str(out)]).exit_code == 0
    after = _snapshot(out)
    assert {k: after.get(k) for k in mine} == mine  # every user file byte-identical, none removed
    assert not (out / JOURNAL_NAME).exists()


# -- the crash window between the renames and the manifest ------------------------------------------------
class _Killed(RuntimeError):
    pass


class _DiesWhileSaving:
    def save(self) -> None:
        raise _Killed("killed before the manifest was written")


class _Saves:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self) -> None:
        (self.folder / "manifest.json").write_text(json.dumps({"artifacts": [], "files": {}}))


def test_files_renamed_in_by_a_killed_commit_stay_the_tools_and_the_next_commit_removes_them(tmp_path):
    folder = ReleaseFolder(tmp_path)
    (tmp_path / "notes.txt").write_bytes(b"the user's")
    with pytest.raises(_Killed), folder.staging() as staging:
        (staging / "a.onnx").write_bytes(b"made")
        folder.commit(staging, ["a.onnx"], _DiesWhileSaving())
    assert (tmp_path / "a.onnx").read_bytes() == b"made" and (tmp_path / JOURNAL_NAME).exists()
    folder.check_replaceable(["a.onnx"])  # the journal says it is ours: replacing it is allowed
    with folder.staging() as staging:
        (staging / "b.onnx").write_bytes(b"made")
        folder.commit(staging, ["b.onnx"], _Saves(tmp_path))
    assert not (tmp_path / "a.onnx").exists()  # listed by no manifest since: removed as the tool's leftover
    assert (tmp_path / "b.onnx").exists() and not (tmp_path / JOURNAL_NAME).exists()
    assert (tmp_path / "notes.txt").read_bytes() == b"the user's"
    with pytest.raises(UsageError, match="notes.txt exists and shufflekit did not make it"):
        folder.check_replaceable(["notes.txt"])


def test_a_commit_under_the_lock_refuses_a_name_the_folder_does_not_own(tmp_path):
    folder = ReleaseFolder(tmp_path)
    (tmp_path / "README.md").write_bytes(b"the user's")
    with pytest.raises(UsageError, match="README.md exists and shufflekit did not make it"), folder.staging() as s:
        (s / "README.md").write_bytes(b"card")
        folder.commit(s, ["README.md"], _Saves(tmp_path))
    assert (tmp_path / "README.md").read_bytes() == b"the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["README.md", LOCK_NAME])


def test_manifest_files_must_be_plain_names_with_a_sha256(small_release, tmp_path):
    folder = tmp_path / "release"
    folder.mkdir()
    data = json.loads((small_release / "manifest.json").read_text())
    for bad in ({"../outside.txt": "0" * 64}, {"README.md": "not a hash"}, ["README.md"]):
        (folder / "manifest.json").write_text(json.dumps({**data, "files": bad}))
        with pytest.raises(ManifestError, match="files"):
            Manifest.load(folder)
    shutil.rmtree(folder)


# -- an empty path (an unset shell variable) ---------------------------------------------------------------
EMPTY = [
    ["export", "--model", SMALL_V2, "--out", ""],
    ["release", "--model", SMALL_V2, "--out", ""],
    ["train", "--model", SMALL_V2, "--data", "demo", "--out", ""],
    ["quantize", "", "--precision", "fp16"],
    ["validate", ""],
    ["evaluate", "", "--data", "demo"],
    ["profile", ""],
    ["profile", "release", "--plot", ""],
    ["report", ""],
    ["board", "build", "--kind", "x86-avx2", ""],
    ["board", "list", ""],
]


@pytest.mark.parametrize("args", EMPTY, ids=lambda a: " ".join(x or "''" for x in a))
def test_an_empty_folder_or_output_path_is_refused_in_one_line(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_bytes(b"the user's")
    (tmp_path / "release").mkdir()
    before = _snapshot(tmp_path)
    result = _run(args)
    assert result.exit_code == 2
    assert "is an empty path" in _one_error_line(result)
    assert _snapshot(tmp_path) == before
