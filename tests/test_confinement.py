"""A release folder's manifest is read as hostile input: every file name it holds stays inside the folder
(symlinks resolved), its tensor specs must be the files' own, its reference.npz is read safely, its JSON
cannot hang or crash the loader, and the recorded source checkpoint (outside by design) is opened only
when its bytes are the recorded ones. Each case is one ``error:`` line, before any work."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from shufflekit.artifacts import MANIFEST_NAME
from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line
from shufflekit.files import sha256_file

ONNX, TFLITE = "shufflenet_v2_x0_5_fp32.onnx", "shufflenet_v2_x0_5_fp32.tflite"  # small_release's files
SMALL_V2, SMALL_SIZE, SMALL_CLASSES = "shufflenet_v2_x0_5", 64, 10  # as conftest.py


def _cli(*args: Any):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip() and not is_progress_line(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return lines[0]


def _edit(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _refused(folder: Path, *words: str, command: str = "validate", args: tuple[str, ...] = ()) -> str:
    before = (folder / MANIFEST_NAME).read_bytes() if (folder / MANIFEST_NAME).is_file() else None
    result = _cli(command, folder, *args)
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    for word in words:
        assert word in line, line
    if before is not None:
        assert (folder / MANIFEST_NAME).read_bytes() == before  # nothing recorded
    return line


# -- every path a manifest holds stays inside the folder -------------------------------------------------
@pytest.mark.parametrize("how", ["dotdot", "absolute"])
def test_a_reference_outside_the_folder_is_refused_unread(small_release_copy, tmp_path, how):
    """A perfect copy of the reference outside the folder (same sha256, so a read would pass): refused by
    its name alone."""
    outside = tmp_path / "outside" / "reference.npz"
    outside.parent.mkdir()
    shutil.copy(small_release_copy / "reference.npz", outside)
    name = "../outside/reference.npz" if how == "dotdot" else str(outside)
    _edit(small_release_copy, lambda d: d["reference"].update(file=name))
    _refused(small_release_copy, "reference.file", "outside the folder", "re-export")


def test_a_reference_symlinked_outside_is_refused(small_release_copy, tmp_path):
    outside = tmp_path / "elsewhere.npz"
    shutil.move(small_release_copy / "reference.npz", outside)
    (small_release_copy / "reference.npz").symlink_to(outside)
    _refused(small_release_copy, "reference.file", "symlink", "outside the folder")


def test_an_artifact_symlinked_outside_is_refused(small_release_copy, tmp_path):
    outside = tmp_path / ONNX
    shutil.move(small_release_copy / ONNX, outside)
    (small_release_copy / ONNX).symlink_to(outside)  # same bytes, same sha256
    _refused(small_release_copy, f"artifacts[{ONNX}]", "symlink", "outside the folder")


def test_a_symlink_inside_the_folder_is_fine(small_release_copy):
    (small_release_copy / "kept").mkdir()
    shutil.move(small_release_copy / "reference.npz", small_release_copy / "kept" / "reference.npz")
    (small_release_copy / "reference.npz").symlink_to("kept/reference.npz")
    result = _cli("validate", small_release_copy)
    assert result.exit_code == 0, result.output


def test_a_manifest_symlinked_outside_is_not_read(small_release_copy, tmp_path):
    outside = tmp_path / "their-manifest.json"
    shutil.move(small_release_copy / MANIFEST_NAME, outside)
    (small_release_copy / MANIFEST_NAME).symlink_to(outside)
    _refused(small_release_copy, "manifest.json", "symlink", "outside the folder", command="report")
    assert not (small_release_copy / "README.md").exists()


def test_a_fifo_manifest_does_not_hang(small_release_copy):
    (small_release_copy / MANIFEST_NAME).unlink()
    os.mkfifo(small_release_copy / MANIFEST_NAME)
    _refused(small_release_copy, "not a regular file")


# -- tensor specs against the file itself --------------------------------------------------------------
def _set_spec(index: int, part: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d["artifacts"][index][part][0].update({key: value})


@pytest.mark.parametrize(
    ("index", "part", "key", "value", "words"),
    [
        (0, "inputs", "shape", [1, 3, 96, 96], (ONNX, "inputs[0].shape", "[1, 3, 96, 96]", "[1, 3, 64, 64]")),
        (0, "outputs", "shape", [1, 11], (ONNX, "outputs[0].shape", "[1, 11]", "[1, 10]")),
        (1, "inputs", "shape", [1, 64, 64, 3, 1], (TFLITE, "inputs[0].shape")),
        (1, "outputs", "dtype", "float16", (TFLITE, "outputs[0].dtype", "float16", "float32")),
    ],
)
def test_specs_that_disagree_with_the_file_are_refused(small_release_copy, index, part, key, value, words):
    _edit(small_release_copy, _set_spec(index, part, key, value))
    _refused(small_release_copy, *words, "re-export the folder or fix manifest.json")


def test_the_card_is_not_written_from_specs_the_file_does_not_have(small_release_copy):
    _edit(small_release_copy, _set_spec(1, "inputs", "shape", [1, 96, 96, 3]))
    _refused(small_release_copy, TFLITE, "inputs[0].shape", command="report")
    assert not (small_release_copy / "README.md").exists()


# -- reference.npz read safely ------------------------------------------------------------------------
def _replace_reference(folder: Path, write: Callable[[Path], None]) -> None:
    """What a careless script does: change reference.npz and re-record its hash."""
    path = folder / "reference.npz"
    write(path)
    _edit(folder, lambda d: d["reference"].update(sha256=sha256_file(path)))


def _npz(**arrays: Any) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)

    return write


GOOD_INPUTS, GOOD_LOGITS = np.zeros((2, 3, SMALL_SIZE, SMALL_SIZE), "f4"), np.zeros((2, SMALL_CLASSES), "f4")


@pytest.mark.parametrize(
    ("write", "words"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), ("unreadable",)),
        (lambda p: p.write_bytes(os.urandom(4096)), ("unreadable",)),
        (_npz(inputs=np.zeros((2, 3, 96, 96), "f4"), logits=GOOD_LOGITS, seed=np.int64(0)), ("(3, 96, 96)",)),
        (_npz(inputs=GOOD_INPUTS, logits=np.zeros((2, 7), "f4"), seed=np.int64(0)), ("7 classes",)),
        (_npz(inputs=GOOD_INPUTS, logits=GOOD_LOGITS), ("no seed",)),
        (_npz(inputs=np.array([None, 1], dtype=object), logits=GOOD_LOGITS, seed=np.int64(0)), ("inputs is object",)),
        (_npz(inputs=GOOD_INPUTS, logits=GOOD_LOGITS, seed=np.zeros(3, "i8")), ("seed",)),
        (_npz(inputs=GOOD_INPUTS.astype("U1"), logits=GOOD_LOGITS, seed=np.int64(0)), ("inputs is <U1",)),
    ],
    ids=["truncated", "random-bytes", "input-size", "classes", "no-seed", "pickled-objects", "seed-array", "text"],
)
def test_a_bad_reference_with_its_hash_updated_is_one_line(small_release_copy, write, words):
    _replace_reference(small_release_copy, write)
    _refused(small_release_copy, "parity reference reference.npz", *words, "re-export the folder")


# -- hostile manifest.json -----------------------------------------------------------------------------
def _text(make: Callable[[str], str]) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        path = folder / MANIFEST_NAME
        path.write_text(make(path.read_text()))

    return write


@pytest.mark.parametrize(
    ("write", "words"),
    [
        (_text(lambda t: "[" * 100_000 + "]" * 100_000), ("nests deeper",)),
        (_text(lambda t: "[" * 100_000), ("nests deeper",)),
        (_text(lambda t: '{"deep": ' + "[" * 900 + "]" * 900 + ", " + t[1:]), ("nests deeper",)),
        (_text(lambda t: t.replace('"size_bytes": ', '"size_bytes": 1e999, "was": ', 1)), ("size_bytes", "inf")),
        (_text(lambda t: t.replace('"size_bytes": ', '"size_bytes": ' + "9" * 5000 + ', "was": ', 1)), ("too long",)),
        (_text(lambda t: re.sub(r'"std": \[[^,\]]+', '"std": [NaN', t, count=1)), ("std", "finite")),
        (_text(lambda t: re.sub(r'"mean": \[[^,\]]+', '"mean": [-Infinity', t, count=1)), ("mean", "finite")),
        (_text(lambda t: "[1, 2, 3]"), ("not a shufflekit manifest",)),
        (_text(lambda t: '"just a string"'), ("not a shufflekit manifest",)),
        (_text(lambda t: " " * (17 << 20) + t), ("MiB",)),
        (lambda f: (f / MANIFEST_NAME).write_bytes(b"\xff\xfe{}"), ("not UTF-8",)),
        (_text(lambda t: t[: len(t) // 2]), ("not valid JSON",)),
    ],
    ids=[
        "deep-lists",
        "deep-unclosed",
        "deep-inside-options",
        "1e999",
        "5000-digits",
        "nan-std",
        "infinite-mean",
        "top-level-list",
        "top-level-string",
        "17-mib",
        "not-utf8",
        "truncated",
    ],
)
def test_a_hostile_manifest_is_one_line(small_release_copy, write, words):
    write(small_release_copy)
    _refused(small_release_copy, "manifest.json", *words)


# -- the recorded source checkpoint: outside by design, read only when it is the recorded file -----------
def _seeded_checkpoint(path: Path) -> Path:
    from shufflekit.export.source import seeded_model
    from shufflekit.metadata import ModelMeta, Preprocessing
    from shufflekit.models.checkpoints import save_checkpoint

    meta = ModelMeta(model=SMALL_V2, num_classes=SMALL_CLASSES, preprocessing=Preprocessing.for_size(SMALL_SIZE))
    save_checkpoint(path, seeded_model(SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, seed=0), meta)
    return path


def _as_checkpoint_source(folder: Path, path: Path, sha256: str) -> None:
    _edit(
        folder,
        lambda d: d.update(source={"kind": "checkpoint", "checkpoint": str(path), "checkpoint_sha256": sha256}),
    )


def test_the_recorded_source_checkpoint_beside_the_folder_is_used(small_release_copy, tmp_path):
    """small_release was exported from seed 0: the same weights saved as a checkpoint rebuild its reference."""
    checkpoint = _seeded_checkpoint(tmp_path / "model.pt")
    _as_checkpoint_source(small_release_copy, checkpoint, sha256_file(checkpoint))
    result = _cli("validate", small_release_copy, "--samples", "18")  # more than stored: recomputed
    assert result.exit_code == 0, result.output
    assert "recomputed from checkpoint" in result.output


def test_a_recorded_source_that_is_not_the_recorded_file_is_not_opened(small_release_copy, tmp_path):
    """Random bytes would be refused as a checkpoint if they were read; they are refused by their hash first."""
    other = tmp_path / "notes.bin"
    other.write_bytes(os.urandom(2048))
    _as_checkpoint_source(small_release_copy, other, "0" * 64)
    line = _refused(
        small_release_copy, "is not what this folder was exported from", "--checkpoint", args=("--samples", "18")
    )
    assert "pickle" not in line


@pytest.mark.parametrize("kind", ["fifo", "folder", "bad-sha"])
def test_a_recorded_source_that_cannot_be_it_is_one_line(small_release_copy, tmp_path, kind):
    path = tmp_path / "model.pt"
    sha = "0" * 64
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        sha = "not-a-hash"
        _seeded_checkpoint(path)
    _as_checkpoint_source(small_release_copy, path, sha)
    result = _cli("validate", small_release_copy, "--samples", "18")
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert ("source.checkpoint_sha256" if kind == "bad-sha" else "not a regular file") in line
