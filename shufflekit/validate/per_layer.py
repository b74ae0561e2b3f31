"""Per-layer error of a quantized ONNX file against its float parent, from ONNX Runtime's own debugging
tool (``onnxruntime.quantization.qdq_loss_debug``): every activation the quantizer wrapped in
QuantizeLinear/DequantizeLinear is saved from both models on the same inputs and compared by
signal-to-quantization-noise ratio (SQNR, dB; higher is closer).

- ``sqnr_db``: the float model's activation against the quantized model's (the error accumulated up to
  that layer);
- ``own_sqnr_db``: the activation before and after its own quantize/dequantize pair in the quantized
  model (the noise that layer adds by itself): the lowest are the layers worth keeping in float.

The first layer, in graph order, whose ``sqnr_db`` falls below ``threshold_db`` is where the file
departs from float. The augmented models output every intermediate tensor, which stops ONNX Runtime
from fusing QDQ pairs into its integer kernels: the figures measure quantization noise, not a kernel's
saturation (that is what the accuracy on each device measures).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendMissingError, UsageError
from ..export.tensorspecs import verified

DEFAULT_THRESHOLD_DB = 20.0  # about 1% noise power: below it a layer is visibly off
_BATCH_SAMPLES = 16  # inputs fed for the comparison (each activation of each sample is kept in memory)


@dataclass(frozen=True)
class LayerError:
    tensor: str  # the activation's name
    node: str  # the node that produces it in the float model
    op_type: str
    sqnr_db: float | None  # float model vs quantized model
    own_sqnr_db: float | None  # before vs after its own QDQ pair

    def to_dict(self) -> dict[str, Any]:
        return {
            "tensor": self.tensor,
            "node": self.node,
            "op_type": self.op_type,
            "sqnr_db": _round(self.sqnr_db),
            "own_sqnr_db": _round(self.own_sqnr_db),
        }


@dataclass(frozen=True)
class PerLayerReport:
    artifact: str
    parent: str
    samples: int
    threshold_db: float
    layers: tuple[LayerError, ...]  # in graph order
    tool: str = "onnxruntime.quantization.qdq_loss_debug"

    @property
    def first_departure(self) -> LayerError | None:
        for layer in self.layers:
            if layer.sqnr_db is not None and layer.sqnr_db < self.threshold_db:
                return layer
        return None

    @property
    def worst(self) -> LayerError | None:
        scored = [layer for layer in self.layers if layer.sqnr_db is not None]
        return min(scored, key=lambda layer: layer.sqnr_db) if scored else None  # type: ignore[arg-type,return-value]

    def sensitive_nodes(self, count: int, op_types: Sequence[str] = ("Conv", "Gemm", "MatMul")) -> tuple[str, ...]:
        """The ``count`` weighted layers that add the most noise by themselves (lowest own SQNR)."""
        scored = [layer for layer in self.layers if layer.op_type in op_types and layer.own_sqnr_db is not None]
        scored.sort(key=lambda layer: layer.own_sqnr_db)  # type: ignore[arg-type,return-value]
        return tuple(layer.node for layer in scored[:count])

    def summary(self) -> str:
        first = self.first_departure
        if first is None:
            worst = self.worst
            tail = f"; the lowest is {worst.sqnr_db:.1f} dB at {worst.node} ({worst.op_type})" if worst else ""
            return f"{self.artifact} stays within {self.threshold_db:g} dB SQNR of float at every layer{tail}"
        return (
            f"{self.artifact} departs from float at {first.node} ({first.op_type}, tensor {first.tensor}): "
            f"{first.sqnr_db:.1f} dB SQNR, below {self.threshold_db:g} dB"
        )

    def to_dict(self) -> dict[str, Any]:
        first, worst = self.first_departure, self.worst
        return {
            "artifact": self.artifact,
            "parent": self.parent,
            "samples": self.samples,
            "tool": self.tool,
            "threshold_db": self.threshold_db,
            "summary": self.summary(),
            "first_departure": first.to_dict() if first else None,
            "worst": worst.to_dict() if worst else None,
            "layers": [layer.to_dict() for layer in self.layers],
        }


def per_layer_report(
    float_model: str | Path,
    quantized_model: str | Path,
    inputs: np.ndarray,
    *,
    input_name: str,
    batch: int | str = 1,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
    artifact: str | None = None,
    parent: str | None = None,
) -> PerLayerReport:
    """Compare every quantized activation of ``quantized_model`` (QDQ format) with ``float_model``'s on
    ``inputs`` (NCHW float32, the model's own preprocessing)."""
    try:
        from onnxruntime.quantization import qdq_loss_debug as debug
    except ImportError as exc:
        raise BackendMissingError(
            f"the per-layer report needs onnxruntime ({exc})", hint="pip install 'shufflekit[onnx]'"
        ) from None
    import onnx

    from ..export.quantize_onnx import _quiet, calibration_batches

    float_model, quantized_model = Path(float_model), Path(quantized_model)
    graph = onnx.load(str(quantized_model), load_external_data=False).graph
    if not any(node.op_type == "QuantizeLinear" for node in graph.node):
        raise UsageError(
            f"{quantized_model.name} has no QuantizeLinear node: the per-layer report is for static int8 (QDQ) files",
            hint="pick an int8 ONNX artifact",
        )
    feeds = calibration_batches(np.asarray(inputs[:_BATCH_SAMPLES], dtype=np.float32), batch)
    if not feeds:
        raise UsageError(f"{len(inputs)} inputs cannot fill one batch of {batch}", hint="pass more images")
    with tempfile.TemporaryDirectory(prefix="shufflekit-per-layer-") as scratch, _quiet():
        saved = {}
        for role, path in (("float", float_model), ("quantized", quantized_model)):
            augmented = Path(scratch) / f"{role}.onnx"
            debug.modify_model_output_intermediate_tensors(str(path), str(augmented))
            saved[role] = debug.collect_activations(str(augmented), _Feeds(input_name, feeds))
        matched = debug.create_activation_matching(saved["quantized"], saved["float"])
        errors = debug.compute_activation_error(matched)
    producers = _producers(float_model)
    layers = []
    for tensor, (node, op_type) in producers.items():  # graph order
        if tensor in errors:
            entry = errors[tensor]
            layers.append(
                LayerError(tensor, node, op_type, _finite(entry.get("xmodel_err")), _finite(entry.get("qdq_err")))
            )
    return PerLayerReport(
        artifact or quantized_model.name,
        parent or float_model.name,
        int(sum(len(f) for f in feeds)),
        threshold_db,
        tuple(layers),
    )


class _Feeds:
    """A CalibrationDataReader over ready feeds (what collect_activations reads)."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self._name, self._batches, self._next = input_name, batches, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._batches):
            return None
        self._next += 1
        return {self._name: self._batches[self._next - 1]}

    def rewind(self) -> None:
        self._next = 0

    def __iter__(self) -> _Feeds:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        feed = self.get_next()
        if feed is None:
            raise StopIteration
        return feed


def _producers(model: Path) -> dict[str, tuple[str, str]]:
    """tensor -> (node name, op type), in the graph's node order."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    found: dict[str, tuple[str, str]] = {}
    for index, node in enumerate(graph.node):
        for output in node.output:
            found[output] = (node.name or f"{node.op_type}_{index}", node.op_type)
    return found


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def per_layer_for_folder(
    folder: str | Path, select: Sequence[str] = (), *, threshold_db: float = DEFAULT_THRESHOLD_DB
) -> list[PerLayerReport]:
    """The per-layer report of every static int8 ONNX artifact of a release folder (or those selected),
    each against its fp32 parent pre-processed as the quantizer saw it, on the folder's reference inputs."""
    from ..artifacts import Manifest
    from ..export.quantize_onnx import pre_process
    from .device_parity import stored_reference

    folder = Path(folder)
    manifest = Manifest.load(folder)
    chosen = [a for a in manifest.select(select) if a.format == "onnx" and a.precision == "int8"]
    if not chosen:
        raise UsageError(
            f"{folder} has no int8 ONNX artifact{' among those named' if select else ''}",
            hint="the per-layer report is for static int8 (QDQ) ONNX files: shufflekit quantize "
            f"{folder} --precisions int8 --data DATA",
        )
    reference = stored_reference(manifest)
    if reference is None:
        raise UsageError(f"{folder} has no parity reference to feed", hint="re-export the folder")
    parents = {a.sha256: a for a in manifest.artifacts}
    reports = []
    with tempfile.TemporaryDirectory(prefix="shufflekit-per-layer-") as scratch:
        for artifact in chosen:
            parent = parents.get(artifact.parent_sha256 or "")
            if parent is None:
                raise UsageError(f"{artifact.name}'s fp32 parent is not in {folder}", hint="re-quantize the folder")
            prepared = Path(scratch) / f"{parent.sha256[:12]}.onnx"
            if not prepared.exists():
                pre_process(verified(parent, folder), prepared)
            reports.append(
                per_layer_report(
                    prepared,
                    verified(artifact, folder),
                    reference.inputs,
                    input_name=artifact.input.name,
                    batch=artifact.input.shape[0],
                    threshold_db=threshold_db,
                    artifact=artifact.name,
                    parent=parent.name,
                )
            )
    return reports
