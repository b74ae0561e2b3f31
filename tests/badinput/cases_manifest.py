"""Bad-input cases of the "manifest" part of issue 12: a release folder's manifest.json read as hostile
input. Every path it holds stays inside the folder (symlinks resolved), its tensor specs are the files'
own, its reference.npz is read safely, its JSON cannot hang or crash the loader, and the recorded source
checkpoint is opened only when it is the recorded file. (The same, with more variants: tests/test_confinement.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .harness import Case, Workspace

ONNX, TFLITE = "shufflenet_v2_x0_5_fp32.onnx", "shufflenet_v2_x0_5_fp32.tflite"  # small_release's files


def _folder(ws: Workspace) -> Path:
    assert ws.release is not None
    return ws.release


def _edit(change: Callable[[dict[str, Any], Workspace], None]) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        path = _folder(ws) / "manifest.json"
        data = json.loads(path.read_text())
        change(data, ws)
        path.write_text(json.dumps(data, indent=2))

    return setup


def _text(make: Callable[[str], str]) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        path = _folder(ws) / "manifest.json"
        path.write_text(make(path.read_text()))

    return setup


def _validate(ws: Workspace) -> list[str]:
    return ["validate", str(_folder(ws))]


def _report(ws: Workspace) -> list[str]:
    return ["report", str(_folder(ws))]


def _outside_reference(ws: Workspace) -> None:
    """An exact copy of the reference beside the folder: reading it would even pass the sha256 check."""
    (ws.root / "outside").mkdir()
    shutil.copy(_folder(ws) / "reference.npz", ws.root / "outside" / "reference.npz")


def _reference_file(name: Callable[[Workspace], str]) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        _outside_reference(ws)
        _edit(lambda d, w: d["reference"].update(file=name(w)))(ws)

    return setup


def _symlink_out(name: str) -> Callable[[Workspace], None]:
    """Move a folder's file beside the folder and leave a symlink to it (same bytes, same sha256)."""

    def setup(ws: Workspace) -> None:
        (ws.root / "outside").mkdir(exist_ok=True)
        shutil.move(_folder(ws) / name, ws.root / "outside" / name)
        (_folder(ws) / name).symlink_to(ws.root / "outside" / name)

    return setup


def _fifo_manifest(ws: Workspace) -> None:
    (_folder(ws) / "manifest.json").unlink()
    os.mkfifo(_folder(ws) / "manifest.json")


def _spec(index: int, part: str, key: str, value: Any) -> Callable[[Workspace], None]:
    return _edit(lambda d, w: d["artifacts"][index][part][0].update({key: value}))


def _reference_bytes(make: Callable[[bytes], bytes]) -> Callable[[Workspace], None]:
    """What a careless script does: change reference.npz and re-record its hash."""

    def setup(ws: Workspace) -> None:
        path = _folder(ws) / "reference.npz"
        path.write_bytes(make(path.read_bytes()))
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        _edit(lambda d, w: d["reference"].update(sha256=sha))(ws)

    return setup


def _source(checkpoint: Callable[[Workspace], str], sha256: Callable[[Workspace], str]) -> Callable[[Workspace], None]:
    return _edit(
        lambda d, w: d.update(
            source={"kind": "checkpoint", "checkpoint": checkpoint(w), "checkpoint_sha256": sha256(w)}
        )
    )


def _notes(ws: Workspace) -> str:
    (ws.root / "notes.bin").write_bytes(bytes(range(256)) * 8)
    return str(ws.root / "notes.bin")


def _first_number(key: str, value: str) -> Callable[[str], str]:
    return lambda t: re.sub(rf'"{key}": \[[^,\]]+', f'"{key}": [{value}', t, count=1)


_OUTSIDE = r"outside the folder"
_FIX = r"re-export the folder or fix manifest\.json"

CASES: list[Case] = [
    # -- paths a manifest holds stay inside the folder
    Case(
        id="manifest-reference-dotdot",
        argv=_validate,
        error=rf"reference\.file: '\.\./outside/reference\.npz' is {_OUTSIDE}.*{_FIX}",
        setup=_reference_file(lambda ws: "../outside/reference.npz"),
        needs_release=True,
    ),
    Case(
        id="manifest-reference-absolute",
        argv=_validate,
        error=rf"reference\.file: .* is {_OUTSIDE}",
        setup=_reference_file(lambda ws: str(ws.root / "outside" / "reference.npz")),
        needs_release=True,
    ),
    Case(
        id="manifest-reference-symlinked-outside",
        argv=_validate,
        error=rf"reference\.file: 'reference\.npz' is a symlink that leads {_OUTSIDE}",
        setup=_symlink_out("reference.npz"),
        needs_release=True,
    ),
    Case(
        id="manifest-artifact-symlinked-outside",
        argv=_validate,
        error=rf"artifacts\[{re.escape(ONNX)}\]\.name: .* is a symlink that leads {_OUTSIDE}",
        setup=_symlink_out(ONNX),
        needs_release=True,
    ),
    Case(
        id="manifest-json-symlinked-outside",
        argv=_report,
        error=rf"manifest\.json is a symlink that leads {_OUTSIDE}",
        setup=_symlink_out("manifest.json"),
        needs_release=True,
    ),
    Case(
        id="manifest-json-is-a-fifo",
        argv=_validate,
        error=r"manifest\.json is not a regular file",
        setup=_fifo_manifest,
        needs_release=True,
    ),
    # -- tensor specs against the file itself
    Case(
        id="manifest-onnx-input-shape-not-the-files",
        argv=_validate,
        error=rf"{re.escape(ONNX)}: manifest\.json says inputs\[0\]\.shape is \[1, 3, 96, 96\], "
        rf"the file says \[1, 3, 64, 64\]; {_FIX}",
        setup=_spec(0, "inputs", "shape", [1, 3, 96, 96]),
        needs_release=True,
    ),
    Case(
        id="manifest-tflite-output-dtype-not-the-files",
        argv=_validate,
        error=rf"{re.escape(TFLITE)}: manifest\.json says outputs\[0\]\.dtype is float16, the file says float32",
        setup=_spec(1, "outputs", "dtype", "float16"),
        needs_release=True,
    ),
    Case(
        id="manifest-card-from-specs-not-the-files",
        argv=_report,
        error=rf"{re.escape(TFLITE)}: manifest\.json says inputs\[0\]\.shape is \[1, 96, 96, 3\]",
        setup=_spec(1, "inputs", "shape", [1, 96, 96, 3]),
        needs_release=True,
    ),
    # -- reference.npz read safely (its hash re-recorded, so only its content is wrong)
    Case(
        id="manifest-reference-truncated-hash-updated",
        argv=_validate,
        error=r"parity reference reference\.npz is unreadable .*re-export the folder",
        setup=_reference_bytes(lambda b: b[: len(b) // 2]),
        needs_release=True,
    ),
    Case(
        id="manifest-reference-random-bytes-hash-updated",
        argv=_validate,
        error=r"parity reference reference\.npz is unreadable",
        setup=_reference_bytes(lambda b: bytes(range(256)) * 16),
        needs_release=True,
    ),
    # -- hostile JSON
    Case(
        id="manifest-json-deep-nesting",
        argv=_validate,
        error=r"manifest\.json nests deeper than any manifest shufflekit writes",
        setup=_text(lambda t: "[" * 100_000 + "]" * 100_000),
        needs_release=True,
    ),
    Case(
        id="manifest-json-1e999",
        argv=_validate,
        error=r"size_bytes: inf is not a size in bytes",
        setup=_text(lambda t: t.replace('"size_bytes": ', '"size_bytes": 1e999, "was": ', 1)),
        needs_release=True,
    ),
    Case(
        id="manifest-json-5000-digit-number",
        argv=_validate,
        error=r"manifest\.json holds a number too long to read",
        setup=_text(lambda t: t.replace('"size_bytes": ', '"size_bytes": ' + "9" * 5000 + ', "was": ', 1)),
        needs_release=True,
    ),
    Case(
        id="manifest-json-nan-std",
        argv=_report,
        error=r"preprocessing\.std must hold finite numbers",
        setup=_text(_first_number("std", "NaN")),
        needs_release=True,
    ),
    Case(
        id="manifest-json-top-level-list",
        argv=_report,
        error=r"is not a shufflekit manifest",
        setup=_text(lambda t: "[1, 2, 3]"),
        needs_release=True,
    ),
    Case(
        id="manifest-json-17-mib",
        argv=_validate,
        error=r"manifest\.json is 17\.\d MiB, larger than any manifest shufflekit writes",
        setup=_text(lambda t: " " * (17 << 20) + t),
        needs_release=True,
    ),
    # -- the recorded source checkpoint (outside by design): opened only when it is the recorded file
    Case(
        id="manifest-source-checkpoint-not-the-recorded-file",
        argv=lambda ws: ["validate", str(_folder(ws)), "--samples", "18"],
        error=r"is not what this folder was exported from.*--checkpoint",
        setup=_source(_notes, lambda ws: "0" * 64),
        needs_release=True,
    ),
    Case(
        id="manifest-source-checkpoint-bad-sha256",
        argv=lambda ws: ["validate", str(_folder(ws)), "--samples", "18"],
        error=r"field source\.checkpoint_sha256: 'not-a-hash' is not a sha256",
        setup=_source(lambda ws: str(ws.checkpoint), lambda ws: "not-a-hash"),
        needs_release=True,
    ),
]
