"""Which operators of a TFLite file a mobile GPU delegate would take, and which fall back to the CPU.

The source is the TFLite model analyzer: LiteRT's (``ai_edge_litert``) or, without it, TensorFlow's
``tf.lite.experimental.Analyzer.analyze(model_content=..., gpu_compatibility=True)``, one C++ analyzer. It
writes a report: the ops of each subgraph (``Op#3 RESHAPE(T#0, T#1[1, 8, 8, 3, 4]) -> [T#5]``), a ``GPU COMPATIBILITY
WARNING: why`` line after each op its checker refuses, the tensors with their shapes, and a verdict line
("Your model looks compatible with GPU delegate on TFLite runtime version X").

The analyzer in TensorFlow 2.21 (and ai_edge_litert 2.3) is built without its per-op checker: it calls
every file compatible, a Flex op included. So two checks are made on the analyzer's own dump as well:
an op on a tensor of more than 4 dimensions (the GPU delegate's tensors are BHWC, 4-D at most: ShuffleNet's
5-D channel shuffles are the classic fall-back) and a custom op other than the few the delegate has kernels
for. The analyzer's warnings, where a build prints them, are kept as they are.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifacts import Artifact, Manifest, tool_versions, update_manifest
from ..errors import BackendMissingError, ExportError, IntegrityError
from ..records import GpuCompatibility

ProgressFn = Callable[[str, int, "int | None"], None]
MAX_GPU_RANK = 4
# The custom ops the GPU delegate takes (CheckCustomOpsGpuDelegateCompatibility in TensorFlow's
# tensorflow/lite/tools/versioning/gpu_compatibility.cc); any other custom op, a Flex op included, runs on the CPU.
GPU_CUSTOM_OPS = frozenset({"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D", "Resampler"})

_SUBGRAPH = re.compile(r"^Subgraph#(\d+)\b")
_OP = re.compile(r"^\s+Op#(\d+) (\S+?)\((.*)\) -> \[(.*)\]\s*$")
_TENSORS = re.compile(r"^Tensors of Subgraph#(\d+)")
_TENSOR = re.compile(r"^\s+T#(\d+)\(.*\) shape:\[([-\d, ]*)\]")
_WARNING = re.compile(r"^GPU COMPATIBILITY WARNING: (.*?)\s*$")
_SUBGRAPH_ISSUES = re.compile(r"^Subgraph#\d+ has GPU delegate compatibility issues")
_VERDICT_OK = re.compile(r"^Your model looks compatib\w* with GPU delegate")
_TENSOR_ID = re.compile(r"T#(\d+)")


@dataclass(frozen=True)
class _Op:
    subgraph: int
    index: int
    name: str
    tensors: tuple[int, ...]


def _finding(op: _Op, why: str, source: str) -> dict[str, Any]:
    return {"op": op.name, "index": op.index, "subgraph": op.subgraph, "why": why, "source": source}


def analyzer_report(model: bytes) -> tuple[str, str]:
    """The model analyzer's report of a TFLite flatbuffer (gpu_compatibility=True), and which analyzer.
    LiteRT's own (``ai_edge_litert``, the same C++ analyzer TensorFlow wraps) loads in milliseconds, where
    importing TensorFlow takes seconds; TensorFlow's is the fallback where LiteRT is not installed."""
    try:
        return litert_report(model)
    except ImportError:
        return tensorflow_report(model)


def litert_report(model: bytes) -> tuple[str, str]:
    from ai_edge_litert import _pywrap_analyzer_wrapper as analyzer

    # (model, input_is_filepath, gpu_compatibility) -> the text TensorFlow's Analyzer.analyze prints
    version = tool_versions("ai-edge-litert").get("ai-edge-litert", "unknown version")
    return analyzer.ModelAnalyzer(model, False, True), f"ai_edge_litert {version}"


def tensorflow_report(model: bytes) -> tuple[str, str]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise BackendMissingError(
            f"the GPU-delegate check needs LiteRT's or TensorFlow's model analyzer ({exc})",
            hint="install ai-edge-litert (make setup does), or pass --no-gpu-check to validate",
        ) from exc
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tf.lite.experimental.Analyzer.analyze(model_content=model, gpu_compatibility=True)
    return out.getvalue(), f"tensorflow {tf.__version__}"


def parse_report(text: str, *, analyzer: str, where: str = "the TFLite file") -> GpuCompatibility:
    """The record of one analyzer report (``analyzer_report``'s text)."""
    ops: list[_Op] = []
    shapes: dict[tuple[int, int], tuple[int, ...]] = {}
    findings: list[dict[str, Any]] = []
    subgraph, in_tensors, verdict_ok, verdict_issues = 0, False, False, False
    for line in text.splitlines():
        if m := _TENSORS.match(line):
            subgraph, in_tensors = int(m.group(1)), True
        elif m := _SUBGRAPH.match(line):
            subgraph, in_tensors = int(m.group(1)), False
        elif (m := _OP.match(line)) and not in_tensors:
            ids = tuple(int(t) for t in _TENSOR_ID.findall(m.group(3) + " " + m.group(4)))
            ops.append(_Op(subgraph, int(m.group(1)), m.group(2), ids))
        elif (m := _TENSOR.match(line)) and in_tensors:
            dims = m.group(2).strip()
            shapes[(subgraph, int(m.group(1)))] = tuple(int(d) for d in dims.split(",")) if dims else ()
        elif m := _WARNING.match(line):
            why = m.group(1)
            if _SUBGRAPH_ISSUES.match(why):
                verdict_issues = True
            elif ops:
                findings.append(_finding(ops[-1], why, "analyzer"))
        elif _VERDICT_OK.match(line.strip()):
            verdict_ok = True
    if not ops or not (verdict_ok or verdict_issues or findings):
        raise ExportError(
            f"the TFLite model analyzer ({analyzer}) printed no ops or no GPU verdict for {where}",
            hint="its report format may have changed: see shufflekit/validate/gpu_compat.py",
        )
    max_rank = 0
    for op in ops:
        ranked = [(len(shapes.get((op.subgraph, t), ())), t) for t in op.tensors]
        rank, tensor = max(ranked, default=(0, -1))
        max_rank = max(max_rank, rank)
        if rank > MAX_GPU_RANK:
            shape = list(shapes[(op.subgraph, tensor)])
            findings.append(_finding(op, f"{rank}-D tensor {shape}", "rank"))
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", op.name) and op.name not in GPU_CUSTOM_OPS:
            findings.append(_finding(op, "custom op, no GPU kernel", "custom"))
    findings.sort(key=lambda f: (f["subgraph"], f["index"]))
    analyzer_ok = verdict_ok and not verdict_issues
    return GpuCompatibility(
        compatible=analyzer_ok and not findings,
        ops=len(ops),
        max_rank=max_rank,
        findings=tuple(findings),
        analyzer=analyzer,
        analyzer_compatible=analyzer_ok,
    )


def check_file(path: str | Path) -> GpuCompatibility:
    """The GPU-delegate compatibility of one TFLite file (TensorFlow is imported here, on first use)."""
    path = Path(path)
    text, analyzer = analyzer_report(path.read_bytes())
    return parse_report(text, analyzer=analyzer, where=path.name)


@dataclass(frozen=True)
class GpuCheck:
    """One TFLite file's check, as ``check_release`` returns it."""

    artifact: str
    record: GpuCompatibility

    def to_dict(self) -> dict[str, Any]:
        return {"artifact": self.artifact, **self.record.to_dict(), "summary": self.record.summary()}


def tflite_artifacts(manifest: Manifest, select: Iterable[str] | None = None) -> list[Artifact]:
    """The TFLite files among those ``select`` names (file name, format or format:precision; all without)."""
    return [a for a in manifest.select(select or ()) if a.format == "tflite"]


def check_release(
    folder: str | Path,
    *,
    select: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> list[GpuCheck]:
    """Check every TFLite file of a release folder (or the ``select``ed ones) and file a
    ``GpuCompatibility`` record for each in the manifest, under the sha256 of the bytes checked."""
    progress = progress or (lambda task, done, total: None)
    manifest = Manifest.load(folder)
    artifacts = tflite_artifacts(manifest, select)
    checks = []
    progress("GPU-delegate check", 0, len(artifacts))
    for index, artifact in enumerate(artifacts, start=1):
        data = artifact.verify(folder).read_bytes()
        if hashlib.sha256(data).hexdigest() != artifact.sha256:
            raise IntegrityError(
                f"artifact {artifact.name} changed while it was being checked", hint="re-run the command"
            )
        text, analyzer = analyzer_report(data)
        checks.append(GpuCheck(artifact.name, parse_report(text, analyzer=analyzer, where=artifact.name)))
        progress("GPU-delegate check", index, len(artifacts))
    if checks:
        with update_manifest(folder) as current:
            known = {a.name: a for a in current.artifacts}
            by_sha = {a.name: a.sha256 for a in artifacts}
            for check in checks:
                now = known.get(check.artifact)
                if now is not None and now.sha256 == by_sha[check.artifact]:  # not a file replaced meanwhile
                    current.record(check.record, now)
    return checks
