"""ONNX fp16, dynamic int8 and static int8 (QDQ) through ``onnxruntime.quantization``.

Every quantizing conversion starts from ONNX Runtime's own pre-processing step (``quant_pre_process``:
symbolic and ONNX shape inference plus graph optimization), which the quantizer needs to see every
tensor's shape. Static int8 is written in QDQ format, the one ONNX Runtime's CPU kernels are tuned
for. Which integer types, scales and ranges each file gets is its recipe (``recipes``): by default one
that computes the same on x86 with and without VNNI and on ARM64. fp16 uses the converter that ships with ONNX Runtime
(``onnxruntime.transformers.float16``) and keeps float32 input and output, so an app feeds the same
tensors as to the fp32 file.

Overflow on CPUs without VNNI: ORT's x86 int8 kernels multiply uint8 activations by int8 weights
with ``vpmaddubsw`` on AVX2, which adds pairs of products into int16 and saturates. Per-channel
weights use the full int8 range in every channel, so saturation is likely; 7-bit weights
(``reduce_range``, the default recipe's) avoid it. CPUs with VNNI (AVX512-VNNI, AVX-VNNI) accumulate
in int32 and do not saturate. ``cpu_int8_facts`` reads the flags; a recipe that does not hold on this
computer's CPU is warned about and the risk recorded.

Heavy imports (onnx, onnxruntime) stay inside the functions.
"""

from __future__ import annotations

import contextlib
import io
import logging
import platform
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts import TensorSpec
from ..errors import BackendMissingError, ExportError

if TYPE_CHECKING:
    from .recipes import Recipe

log = logging.getLogger(__name__)

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
ACTIVATION_TYPES = ("uint8", "int8")
_ORT_METHOD = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
_DYNAMIC_BATCH_FEED = 16  # calibration images per run for a model with a free batch dimension
_CPUINFO = Path("/proc/cpuinfo")


# -- the host CPU --------------------------------------------------------------------------------------
def cpu_flags(path: Path = _CPUINFO) -> frozenset[str]:
    """The CPU feature flags Linux reports (x86 'flags', ARM 'Features'); empty where unknown."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_int8_facts(path: Path = _CPUINFO) -> dict[str, Any]:
    """What decides whether per-channel int8 may overflow in ORT's x86 kernels on this computer."""
    machine = platform.machine().lower()
    flags = cpu_flags(path)
    x86 = machine in ("x86_64", "amd64", "i386", "i686") or "avx2" in flags or "sse2" in flags
    vnni = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
    return {"machine": machine, "x86": x86, "avx2": "avx2" in flags, "vnni": vnni, "overflow_risk": x86 and not vnni}


# -- steps --------------------------------------------------------------------------------------------
def _ort_quantization() -> Any:
    try:
        from onnxruntime import quantization
    except ImportError as exc:
        raise BackendMissingError(
            f"ONNX quantization needs onnxruntime ({exc})", hint="pip install 'shufflekit[onnx]'"
        ) from None
    return quantization


class _OrtChatter(logging.Filter):
    """onnxruntime.quantization logs a line per tensor at INFO on the root logger: keep its warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or "onnxruntime" not in record.pathname


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ORT's calibrators print progress to stdout; only the CLI prints, so send it to the log."""
    sink = io.StringIO()
    chatter = _OrtChatter()
    logging.getLogger().addFilter(chatter)
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        logging.getLogger().removeFilter(chatter)
    if sink.getvalue().strip():
        log.debug("onnxruntime.quantization said:\n%s", sink.getvalue().rstrip())


def pre_process(source: Path, target: Path) -> None:
    """ONNX Runtime's quantization pre-processing: shape inference and graph optimization."""
    quantization = _ort_quantization()
    try:
        with _quiet():
            quantization.quant_pre_process(str(source), str(target))
    except Exception as exc:  # noqa: BLE001 - shape inference and optimizer errors alike
        raise ExportError(
            f"ONNX Runtime's quantization pre-processing of {source.name} failed: {_first_line(exc)}",
            hint="run with -vv for details",
        ) from None


def to_fp16(source: Path, target: Path) -> dict[str, Any]:
    """Float16 weights and activations, float32 input and output."""
    import onnx

    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise BackendMissingError(
            f"ONNX fp16 conversion needs onnxruntime ({exc})", hint="pip install 'shufflekit[onnx]'"
        ) from None
    model = onnx.load(str(source))
    try:
        converted = convert_float_to_float16(model, keep_io_types=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"fp16 conversion of {source.name} failed: {_first_line(exc)}") from None
    _toposort(converted.graph)  # the converter appends its input/output Casts at the end
    onnx.save_model(converted, str(target), save_as_external_data=False)
    return {"converter": "onnxruntime.transformers.float16", "keep_io_types": True}


def quantize_dynamic(source: Path, target: Path, recipe: Recipe) -> dict[str, Any]:
    """Weights quantized ahead of time, activations at run time (ConvInteger / MatMulInteger), by ``recipe``."""
    quantization = _ort_quantization()
    QuantType = quantization.QuantType
    try:
        with _quiet():
            quantization.quantize_dynamic(
                str(source),
                str(target),
                per_channel=recipe.per_channel,
                reduce_range=recipe.reduce_range,
                weight_type=QuantType.QUInt8 if recipe.weight_type == "uint8" else QuantType.QInt8,
                nodes_to_exclude=list(recipe.exclude_nodes),
            )
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"dynamic int8 quantization of {source.name} failed: {_first_line(exc)}") from None
    return {"quantizer": "onnxruntime.quantization.quantize_dynamic", **recipe.to_dict()}


@dataclass(frozen=True)
class _Reader:
    """CalibrationDataReader over model inputs already preprocessed (NCHW float32)."""

    input_name: str
    batches: list[np.ndarray]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_iter", iter(self.batches))

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._iter, None)  # type: ignore[attr-defined]
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        object.__setattr__(self, "_iter", iter(self.batches))


def calibration_batches(calibration: np.ndarray, batch: int | str) -> list[np.ndarray]:
    """Split calibration images into feeds the model takes: its fixed batch (the remainder that cannot
    fill one is left out), or groups of 16 for a free batch dimension."""
    size = batch if isinstance(batch, int) else _DYNAMIC_BATCH_FEED
    stop = len(calibration) if not isinstance(batch, int) else len(calibration) - len(calibration) % size
    return [np.ascontiguousarray(calibration[i : i + size], dtype=np.float32) for i in range(0, stop, size)]


def quantize_static(
    source: Path,
    target: Path,
    calibration: np.ndarray,
    *,
    input_name: str,
    batch: int | str,
    recipe: Recipe,
    method: str,
) -> dict[str, Any]:
    """Weights and activations in QDQ format by ``recipe``, activation ranges calibrated on ``calibration``."""
    quantization = _ort_quantization()
    batches = calibration_batches(calibration, batch)
    if not batches:
        raise ExportError(
            f"{len(calibration)} calibration images cannot fill one batch of {batch}",
            hint="pass more calibration images (--calib-samples)",
        )
    QuantType = quantization.QuantType
    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    try:
        with _quiet():
            quantization.quantize_static(
                str(source),
                str(target),
                _Reader(input_name, batches),
                quant_format=quantization.QuantFormat.QDQ,
                per_channel=recipe.per_channel,
                reduce_range=recipe.reduce_range,
                activation_type=types[recipe.activation_type],
                weight_type=types[recipe.weight_type],
                nodes_to_exclude=list(recipe.exclude_nodes),
                calibrate_method=getattr(quantization.CalibrationMethod, _ORT_METHOD[method]),
            )
    except Exception as exc:  # noqa: BLE001
        raise ExportError(
            f"static int8 quantization of {source.name} failed: {_first_line(exc)}", hint="run with -vv for details"
        ) from None
    return {
        "quantizer": "onnxruntime.quantization.quantize_static",
        "quant_format": "QDQ",
        **recipe.to_dict(),
        "calibration_method": method,
        "calibration_images": int(sum(len(b) for b in batches)),
    }


# -- finishing a file -----------------------------------------------------------------------------------
def finish(path: Path, metadata: Mapping[str, str], extra: Mapping[str, str]) -> None:
    """Carry the parent's metadata_props (what an app reads from the file) plus ``extra``, drop the
    opset imports the pre-processing added but no node uses, and check the file."""
    import onnx

    from .onnx import check_onnx

    model = onnx.load(str(path))
    used = {node.domain or "" for node in model.graph.node}
    keep = [op for op in model.opset_import if (op.domain or "") in used or op.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    del model.metadata_props[:]
    for key, value in {**metadata, **extra}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save_model(model, str(path), save_as_external_data=False)
    check_onnx(path)


def read_metadata(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def io_specs(
    path: Path, parent_inputs: tuple[TensorSpec, ...], parent_outputs: tuple[TensorSpec, ...]
) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The file's inputs and outputs, read from its graph (names and dtypes), with the parent's shapes
    and layout; a quantizer that changed an input or output is a bug caught here."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph

    def specs(values: Any, parents: tuple[TensorSpec, ...]) -> tuple[TensorSpec, ...]:
        found = tuple(
            TensorSpec(
                v.name, p.shape, onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name, p.layout
            )
            for v, p in zip(values, parents)
        )
        if len(values) != len(parents) or any((f.name, f.dtype) != (p.name, p.dtype) for f, p in zip(found, parents)):
            raise ExportError(
                f"{path.name} changed its inputs or outputs during quantization",
                hint="report this as a bug with the converter versions",
            )
        return found

    return specs(graph.input, parent_inputs), specs(graph.output, parent_outputs)


def _toposort(graph: Any) -> None:
    """Order the nodes so each comes after the producers of its inputs (ONNX requires it)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        progress = False
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
                progress = True
            else:
                rest.append(node)
        if not progress:
            raise ExportError("the fp16 graph has a cycle or an undefined input", hint="report this as a bug")
        pending = rest
    copies = [type(n)() for n in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
