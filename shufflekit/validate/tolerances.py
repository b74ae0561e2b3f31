"""The one tolerance table: how close an artifact must come to PyTorch, keyed by (format, precision).

Float artifacts are judged by error relative to the logits' scale and by cosine similarity: a float32
file that differs by more than rounding is wrong (a layout, BatchNorm or op-conversion bug), not
imprecise. Quantised artifacts (dynamic-range and int8) are judged by whether they still rank the
classes the same way, top-1 and top-5 agreement, never by a tiny absolute tolerance: int8 logits
differ from float ones by design. Accuracy against labels is measured by ``shufflekit evaluate``; once
it has been measured on an artifact (recorded in the manifest, for the same file), validate also
judges the artifact's top-1 drop against PyTorch by ``max_accuracy_drop``.

Figures behind the float limits (v2 0.5x at 64 and v2 1.0x at 224, seeded model, 2-core x86):
ONNX Runtime and TFLite (XNNPACK) fp32 come within 1.3e-5 to 2.5e-5 of the logits' scale; TFLite fp16
weights within about 3e-2, cosine above 0.9995.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import UsageError

# Percentage points of top-1 an artifact may lose against PyTorch on labelled images: the default gate
# of `shufflekit evaluate --max-drop` and of validate once accuracy was measured.
DEFAULT_MAX_DROP = 1.0


@dataclass(frozen=True)
class Tolerance:
    """Limits an artifact must meet; None means "reported, not judged"."""

    max_rel: float | None = None  # max |artifact - reference| / max |reference|
    min_cosine: float | None = None  # worst sample's cosine similarity
    min_top1: float | None = None  # share of samples with the same top-1 class
    min_top5: float | None = None  # mean overlap of the top-5 class sets
    max_accuracy_drop: float | None = None  # top-1 points lost against PyTorch, judged where evaluated
    basis: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FP32 = Tolerance(max_rel=2e-4, min_cosine=0.99999, min_top1=1.0, min_top5=0.98,
                  basis="float32 rounding only; anything larger is a conversion bug")
_FP16 = Tolerance(max_rel=5e-2, min_cosine=0.999, min_top1=0.9, min_top5=0.9, max_accuracy_drop=DEFAULT_MAX_DROP,
                  basis="float16 weights (and activations where the runtime computes in fp16)")
_DYNAMIC = Tolerance(min_top1=0.9, min_top5=0.9, max_accuracy_drop=DEFAULT_MAX_DROP,
                     basis="int8 weights, activations quantised at run time: judged by class agreement "
                           "and accuracy drop")
_INT8 = Tolerance(min_top1=0.9, min_top5=0.85, max_accuracy_drop=DEFAULT_MAX_DROP,
                  basis="int8 weights and activations: judged by class agreement and accuracy drop, not by logits")

TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("onnx", "fp32"): _FP32,
    ("tflite", "fp32"): _FP32,
    ("onnx", "fp16"): _FP16,
    ("tflite", "fp16"): _FP16,
    ("onnx", "dynamic"): _DYNAMIC,
    ("tflite", "dynamic"): _DYNAMIC,
    ("onnx", "int8"): _INT8,
    ("tflite", "int8"): _INT8,
}


def tolerance_for(fmt: str, precision: str) -> Tolerance:
    try:
        return TOLERANCES[(fmt, precision)]
    except KeyError:
        known = ", ".join(f"{f}:{p}" for f, p in TOLERANCES)
        raise UsageError(f"no parity tolerance for {fmt}:{precision}", hint=f"known: {known}") from None
