"""Formats and precisions, registered once.

A format is a kind of model file (ONNX, TFLite): its extension, the runtime that runs it, the image
layouts it can take, the native benchmark tool of devices, and how the report draws it. (What a device
needs installed to run it is the runtime's business: ``shufflekit.device.backends``.) A precision (fp32, fp16, dynamic, int8) says how the weights and activations are
stored, whether making it needs calibration images, and the tolerance the file must meet against
PyTorch (one table: validate judges by it, the card prints it).

Everything that lists formats or precisions iterates this registry: the Artifact record, export and
quantize, the tolerance table, the sessions, the device probe and the report. How a file of a format is
*made* is registered beside the code that makes it (``shufflekit.export.converters``), and how it is *run*
in the runtime registry (``shufflekit.runtimes``): this module depends on nothing, so every layer can
read it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

# Percentage points of top-1 an artifact may lose against PyTorch on labelled images: the default gate
# of `shufflekit evaluate --max-drop` and of validate once accuracy was measured.
DEFAULT_MAX_DROP = 1.0


@dataclass(frozen=True)
class Tolerance:
    """Limits an artifact must meet against PyTorch; None means "reported, not judged"."""

    max_rel: float | None = None  # max |artifact - reference| / max |reference|
    min_cosine: float | None = None  # worst sample's cosine similarity
    min_top1: float | None = None  # share of samples with the same top-1 class
    min_top5: float | None = None  # mean overlap of the top-5 class sets
    max_accuracy_drop: float | None = None  # top-1 points lost against PyTorch, judged where evaluated
    basis: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Precision:
    name: str
    tolerance: Tolerance
    quantized: bool  # stored in fewer bits than float32: made by `shufflekit quantize`
    needs_calibration: bool  # making it needs representative images (static int8)
    color: str  # its colour in the report's plots
    input_dtypes: tuple[str, ...] = ("float32",)  # what a file of it may declare as input dtype
    describe: str = ""


@dataclass(frozen=True)
class Format:
    name: str
    extension: str  # of the file, with the dot
    runtime: str  # the runtime (shufflekit.runtimes) that runs it, here and on devices
    precisions: tuple[str, ...]  # those a file of this format can hold
    layouts: tuple[str, ...] = ("NCHW",)  # image-input layouts it can take; the first is the default
    fixed_batch_reason: str | None = None  # why a dynamic batch cannot be converted to it; None: it can
    native_tool: str | None = None  # the benchmark binary devices may carry for it
    marker: str = "o"  # its marker in the report's plots
    tolerances: Mapping[str, Tolerance] = field(default_factory=dict)  # per-precision overrides
    describe: str = ""

    def tolerance(self, precision: str) -> Tolerance:
        if precision not in self.precisions:
            raise UsageError(
                f"a {self.name} file cannot hold {precision}",
                hint=f"{self.name} precisions: {', '.join(self.precisions)}",
            )
        return self.tolerances.get(precision) or get_precision(precision).tolerance

    def filename(self, stem: str) -> str:
        return stem + self.extension


_PRECISIONS: dict[str, Precision] = {}
_FORMATS: dict[str, Format] = {}


def register_precision(precision: Precision) -> Precision:
    if precision.name in _PRECISIONS:
        raise ValueError(f"precision {precision.name!r} is registered twice")
    _PRECISIONS[precision.name] = precision
    return precision


def register_format(fmt: Format) -> Format:
    if fmt.name in _FORMATS:
        raise ValueError(f"format {fmt.name!r} is registered twice")
    unknown = [p for p in fmt.precisions if p not in _PRECISIONS]
    if unknown:
        raise ValueError(f"format {fmt.name!r} names unknown precisions {unknown}")
    if any(f.extension == fmt.extension for f in _FORMATS.values()):
        raise ValueError(f"extension {fmt.extension!r} of format {fmt.name!r} is taken")
    _FORMATS[fmt.name] = fmt
    return fmt


@contextmanager
def registered(fmt: Format) -> Iterator[Format]:
    """A format registered for the duration of a block (tests, plug-ins trying a format out)."""
    register_format(fmt)
    try:
        yield fmt
    finally:
        _FORMATS.pop(fmt.name, None)


def formats() -> list[Format]:
    """Every format, in the order reports list them."""
    return list(_FORMATS.values())


def format_names() -> tuple[str, ...]:
    return tuple(_FORMATS)


def precisions() -> list[Precision]:
    return list(_PRECISIONS.values())


def precision_names() -> tuple[str, ...]:
    return tuple(_PRECISIONS)


def quantized_precisions() -> tuple[str, ...]:
    return tuple(p.name for p in _PRECISIONS.values() if p.quantized)


def get_format(name: str) -> Format:
    try:
        return _FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}", hint=f"known: {', '.join(_FORMATS)}") from None


def get_precision(name: str) -> Precision:
    try:
        return _PRECISIONS[name]
    except KeyError:
        raise UsageError(f"unknown precision {name!r}", hint=f"known: {', '.join(_PRECISIONS)}") from None


def format_of_path(path: str | Path) -> Format | None:
    """The format a bare model file's name says, or None."""
    name = Path(path).name.lower()
    hits = [f for f in _FORMATS.values() if name.endswith(f.extension)]
    return max(hits, key=lambda f: len(f.extension)) if hits else None


def tolerance_for(fmt: str, precision: str) -> Tolerance:
    return get_format(fmt).tolerance(precision)


def sort_key(fmt: str, precision: str) -> tuple[int, int]:
    """Registry order: formats as registered, then precisions as registered."""
    names, precs = list(_FORMATS), list(_PRECISIONS)
    return (
        names.index(fmt) if fmt in names else len(names),
        precs.index(precision) if precision in precs else len(precs),
    )


# -- the built-in precisions and formats ------------------------------------------------------------------
# Figures behind the float limits (v2 0.5x at 64 and v2 1.0x at 224, seeded model, 2-core x86): ONNX
# Runtime and TFLite (XNNPACK) fp32 come within 1.3e-5 to 2.5e-5 of the logits' scale; TFLite fp16
# weights within about 3e-2, cosine above 0.9995. Quantized files are judged by whether they still rank
# the classes the same way and by accuracy on labelled images, never by a tiny absolute tolerance.

FP32 = register_precision(
    Precision(
        "fp32",
        Tolerance(
            max_rel=2e-4,
            min_cosine=0.99999,
            min_top1=1.0,
            min_top5=0.98,
            basis="float32 rounding only; anything larger is a conversion bug",
        ),
        quantized=False,
        needs_calibration=False,
        color="#1f77b4",
        describe="float32, as trained",
    )
)
FP16 = register_precision(
    Precision(
        "fp16",
        Tolerance(
            max_rel=5e-2,
            min_cosine=0.999,
            min_top1=0.9,
            min_top5=0.9,
            max_accuracy_drop=DEFAULT_MAX_DROP,
            basis="float16 weights (and activations where the runtime computes in fp16)",
        ),
        quantized=True,
        needs_calibration=False,
        color="#2ca02c",
        input_dtypes=("float32", "float16"),
        describe="float16 weights (float32 or float16 input)",
    )
)
DYNAMIC = register_precision(
    Precision(
        "dynamic",
        Tolerance(
            min_top1=0.9,
            min_top5=0.9,
            max_accuracy_drop=DEFAULT_MAX_DROP,
            basis="int8 weights, activations quantised at run time: judged by class agreement and accuracy drop",
        ),
        quantized=True,
        needs_calibration=False,
        color="#ff7f0e",
        describe="int8 weights, activations quantized at run time",
    )
)
INT8 = register_precision(
    Precision(
        "int8",
        Tolerance(
            min_top1=0.9,
            min_top5=0.85,
            max_accuracy_drop=DEFAULT_MAX_DROP,
            basis="int8 weights and activations: judged by class agreement and accuracy drop, not by logits",
        ),
        quantized=True,
        needs_calibration=True,
        color="#d62728",
        input_dtypes=("float32", "int8", "uint8"),
        describe="int8 weights and activations, calibrated on images",
    )
)

ONNX = register_format(
    Format(
        "onnx",
        ".onnx",
        runtime="onnxruntime",
        precisions=("fp32", "fp16", "dynamic", "int8"),
        layouts=("NCHW",),
        native_tool="onnxruntime_perf_test",
        marker="o",
        describe="ONNX, run by ONNX Runtime (CPU, CUDA, ARM execution providers)",
    )
)
TFLITE = register_format(
    Format(
        "tflite",
        ".tflite",
        runtime="litert",
        precisions=("fp32", "fp16", "dynamic", "int8"),
        layouts=("NHWC", "NCHW"),
        fixed_batch_reason="TFLite files need a fixed batch (onnx2tf bakes it into the reshapes)",
        native_tool="benchmark_model",
        marker="s",
        describe="TFLite, run by LiteRT (XNNPACK, GPU and NNAPI delegates)",
    )
)
