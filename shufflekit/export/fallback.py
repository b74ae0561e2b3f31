"""The accuracy-aware fallback for ONNX quantization, as Intel Neural Compressor's and NNCF's accuracy
control do it: make the file with the first recipe of the target's ladder, measure its top-1 against
PyTorch on labelled images, and while it loses more than the gate allows try the next recipe; when the
whole ladder fails, keep the layers that add the most noise in float (chosen from the per-layer error
report, ``validate.per_layer``) in growing numbers. Every attempt is recorded in the file's options, so
the card says what was tried and what was kept.

Judged on this computer's kernels; a device's own kernels judge the file again when it is profiled
there with ``--data`` (the release's per-device accuracy gate).

Export makes files and validate judges them (validate imports export, never the other way): the judge
(labelled images with PyTorch's logits, a file's predictions, the per-layer report) is handed to
``quantize_release`` as ``GateTools``, which ``validate.gate.TOOLS`` implements.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..artifacts import Artifact
from .recipes import Recipe

log = logging.getLogger(__name__)

FLOAT_LAYER_STEPS = (1, 2, 4, 8)  # layers kept in float at the last rung, tried in turn


class GateTools(Protocol):
    """What the fallback needs from validation (``validate.gate.TOOLS``)."""

    default_max_drop: float  # top-1 points a file may lose when the caller gives no --max-drop

    def labelled_arrays(self, data: Any, manifest: Any, *, limit: int | None) -> Any:
        """``validate.accuracy.LabelledArrays``: images, labels, PyTorch's logits and top-1."""

    def predict(self, path: Path, parent: Artifact, images: np.ndarray) -> np.ndarray | None:
        """The file's logits on ``images`` on this computer; None when its runtime has no kernel for it."""

    def per_layer_report(
        self, prepared: Path, quantized: Path, images: np.ndarray, *, input_name: str, batch: Any
    ) -> Any:
        """``validate.per_layer``'s report of a quantized file against the float one."""


@dataclass(frozen=True)
class AccuracyGate:
    """Labelled images (``validate.accuracy.LabelledArrays``), the top-1 points a file may lose, and
    the judge that runs a file on them."""

    arrays: Any
    max_drop: float
    predict: Callable[[Path, Artifact, np.ndarray], np.ndarray | None]

    def judge(self, path: Path, parent: Artifact) -> Attempt:
        logits = self.predict(path, parent, self.arrays.images)
        if logits is None:  # this CPU's runtime has no kernel for the file: it fails here
            return Attempt("", 0.0, self.arrays.pytorch_top1, False, note="no kernel on this computer")
        top1 = float((np.argmax(logits, axis=1) == self.arrays.labels).mean() * 100.0)
        drop = self.arrays.pytorch_top1 - top1
        return Attempt("", top1, drop, drop <= self.max_drop + 1e-9)


@dataclass(frozen=True)
class Attempt:
    recipe: str
    top1: float | None  # None: not judged here
    drop: float | None
    passed: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = {
            "recipe": self.recipe,
            "top1": None if self.top1 is None else round(self.top1, 2),
            "drop": None if self.drop is None else round(self.drop, 2),
            "passed": self.passed,
        }
        return {**data, "note": self.note} if self.note else data


MakeFn = Callable[[Recipe, Path], dict[str, Any]]  # quantize with a recipe into a path; returns the step record
ReportFn = Callable[[Path], Any]  # the per-layer report of a quantized file (None where there is none)


def quantize_with_fallback(
    ladder: tuple[Recipe, ...],
    target: Path,
    parent: Artifact,
    make: MakeFn,
    gate: AccuracyGate | None,
    per_layer: ReportFn | None = None,
    host_family: str | None = None,
) -> dict[str, Any]:
    """Quantize into ``target`` with the first recipe of ``ladder`` that passes ``gate`` (the first one
    when there is no gate). Returns the step record of the file kept, with ``fallback`` listing every
    attempt; when none passes, the most accurate attempt is kept and recorded as failing.

    A recipe that does not hold on this computer's kernel family (``host_family``: full-range int8 on
    x86 without VNNI, for a --target arm64 file) cannot be judged here: it is kept unjudged, said so in
    its attempt, and the devices it is made for judge it (the release's per-device gate)."""
    if gate is None:
        return make(ladder[0], target)
    attempts: list[Attempt] = []
    best: tuple[float, Path, dict[str, Any]] | None = None
    scratch = target.with_name(target.name + ".candidates")
    scratch.mkdir(exist_ok=True)
    try:
        candidates = [(recipe, f"{index}") for index, recipe in enumerate(ladder)]
        kept: tuple[Path, dict[str, Any]] | None = None
        index = 0
        while index < len(candidates):
            recipe, tag = candidates[index]
            path = scratch / f"{tag}.onnx"
            step = make(recipe, path)
            if host_family is not None and host_family not in recipe.holds_on:
                attempts.append(
                    Attempt(
                        recipe.name,
                        None,
                        None,
                        True,
                        note=f"not judged: this computer ({host_family}) is not a CPU it holds on",
                    )
                )
                kept = (path, step)
                break
            attempt = gate.judge(path, parent)
            attempt = Attempt(recipe.name, attempt.top1, attempt.drop, attempt.passed, attempt.note)
            attempts.append(attempt)
            log.info(
                "recipe %s: top-1 %.2f%% (%.2f points below PyTorch)%s",
                recipe.name,
                attempt.top1,
                attempt.drop,
                "" if attempt.passed else ", over the gate",
            )
            if best is None or (attempt.top1 or 0.0) > best[0]:
                best = (attempt.top1 or 0.0, path, step)
            if attempt.passed:
                kept = (path, step)
                break
            if index == len(ladder) - 1 and per_layer is not None:  # the ladder is spent: keep layers in float
                candidates += _float_layer_candidates(ladder[0], per_layer(scratch / "0.onnx"))
            index += 1
        path, step = kept if kept is not None else (best[1], best[2])  # type: ignore[index]
        shutil.move(str(path), str(target))
        return {
            **step,
            "fallback": {
                "gate_max_drop": gate.max_drop,
                "gate_images": len(gate.arrays.labels),
                "gate_data": gate.arrays.data,
                "pytorch_top1": round(gate.arrays.pytorch_top1, 2),
                "judged_on": "this computer's kernels",
                "passed": kept is not None,
                "attempts": [a.to_dict() for a in attempts],
            },
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _float_layer_candidates(first: Recipe, report: Any) -> list[tuple[Recipe, str]]:
    if report is None:
        return []
    found: list[tuple[Recipe, str]] = []
    for count in FLOAT_LAYER_STEPS:
        nodes = report.sensitive_nodes(count)
        if not nodes or (found and len(found[-1][0].exclude_nodes) == len(nodes)):
            break
        why = (
            f"{first.why}; {len(nodes)} layer(s) with the lowest own SQNR kept in float "
            f"(per-layer report: {', '.join(nodes)})"
        )
        found.append((first.with_float_nodes(nodes, why), f"float{count}"))
    return found
