"""The tensor specs a manifest lists against the file itself: an edited or stale manifest.json whose
inputs or outputs (count, rank, fixed dimensions, dtype) are not what the .onnx or .tflite file declares is
refused before the file is used (validate, profile, evaluate, quantize, per-layer) or written into a card.

Cheap: ONNX's graph is parsed without external data; a TFLite file's header is read by the LiteRT
interpreter without allocating tensors. Done once per file (by sha256) per process.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ManifestError, ShufflekitError

if TYPE_CHECKING:
    from ..artifacts import Artifact, Manifest, TensorSpec

log = logging.getLogger(__name__)
HINT = "re-export the folder or fix manifest.json"
_checked: set[tuple[str, str]] = set()  # (sha256, what the manifest says) already found to agree


def file_specs(artifact: Artifact, path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] | None:
    """The inputs and outputs ``path`` declares, or None for a format this module cannot read."""
    if artifact.format == "onnx":
        return _onnx_specs(path)
    if artifact.format == "tflite":
        import importlib.util

        if not any(importlib.util.find_spec(m) for m in ("ai_edge_litert", "tflite_runtime")):
            # a host that only sends the file to a device may lack LiteRT: the device checks it when it loads it
            log.info("no TFLite interpreter here: the tensor specs of %s are not checked against the file", path.name)
            return None
        from .tflite import read_io_specs

        return read_io_specs(path)
    return None


def check_file_specs(artifact: Artifact, path: Path) -> None:
    """ManifestError naming the artifact, the field, the manifest's value and the file's where they differ."""
    said = repr((artifact.inputs, artifact.outputs))
    if (artifact.sha256, said) in _checked:
        return
    try:
        found = file_specs(artifact, path)
    except ShufflekitError:  # a file its parser refuses (ExportError), a backend not installed
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file raises whatever its parser does: one line
        raise ManifestError(
            f"artifact {artifact.name} cannot be read as {artifact.format} "
            f"({' '.join(str(exc).split())[:120] or type(exc).__name__})",
            hint="the file is damaged; re-export the folder",
        ) from None
    if found is None:
        return
    for part, listed, declared in (("inputs", artifact.inputs, found[0]), ("outputs", artifact.outputs, found[1])):
        _compare(artifact.name, part, listed, declared)
    _checked.add((artifact.sha256, said))


def _compare(name: str, part: str, listed: tuple[TensorSpec, ...], declared: tuple[TensorSpec, ...]) -> None:
    if len(listed) != len(declared):
        raise _mismatch(name, part, f"{len(listed)} tensors", f"{len(declared)}")
    for i, (mine, theirs) in enumerate(zip(listed, declared)):
        where = f"{part}[{i}]"
        if len(mine.shape) != len(theirs.shape) or any(
            isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(mine.shape, theirs.shape)
        ):
            raise _mismatch(name, f"{where}.shape", list(mine.shape), list(theirs.shape))
        if mine.dtype != theirs.dtype:
            raise _mismatch(name, f"{where}.dtype", mine.dtype, theirs.dtype)


def _mismatch(name: str, field: str, listed: Any, declared: Any) -> ManifestError:
    return ManifestError(
        f"artifact {name}: manifest.json says {field} is {listed}, the file says {declared}", hint=HINT
    )


def _onnx_specs(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    import onnx

    from ..artifacts import TensorSpec

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}

    def spec(value: Any) -> TensorSpec:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "dynamic") for d in tensor.shape.dim)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        return TensorSpec(value.name, dims, dtype)

    inputs = tuple(spec(v) for v in graph.input if v.name not in initializers)
    return inputs, tuple(spec(v) for v in graph.output)


def check_present_files(manifest: Manifest, intact: Sequence[Artifact]) -> None:
    """``check_file_specs`` for the artifacts of a folder whose files were found to be the ones recorded
    (the report: a card must not describe tensors the file does not have). Missing or changed files are
    marked by the report and refused by the commands that use them."""
    from ..artifacts import confined_path

    for artifact in intact:
        check_file_specs(
            artifact, confined_path(manifest.folder, artifact.name, field=f"artifacts[{artifact.name}].name")
        )


def verified(artifact: Artifact, folder: str | Path) -> Path:
    """``Artifact.verify`` (confined, the bytes recorded) and then ``check_file_specs``: the path of a file
    that is the one recorded and whose tensors are the ones the manifest lists. Every command that is
    about to use a file goes through here."""
    path = artifact.verify(folder)
    check_file_specs(artifact, path)
    return path
