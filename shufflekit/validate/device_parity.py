"""Parity and accuracy on the device that will run the file: after timing an artifact, the runner
predicts the release folder's reference inputs (and, with labelled data, a fixed subset of its validation
images) with the device's own kernels and writes the outputs; the host judges the reference outputs
against PyTorch's with the tolerance table `shufflekit validate` uses, and the labelled ones by their
top-1 drop against PyTorch's on the same images (the accuracy gate, per device and per file). Device
kernels differ from the host's (ARM NEON, x86 without VNNI, XNNPACK builds, NNAPI): that difference is
what this catches; a file that saturates on one CPU loses its accuracy there and nowhere else.

Results go into the manifest as kinds ``device_parity`` and ``device_accuracy``, one group per device
key, beside ``latency``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import Artifact, Manifest
from ..export.reference import Reference
from ..records import DeviceAccuracy as DeviceAccuracyRecord
from ..records import DeviceParity
from . import parity
from .parity import ParityResult, judge_outputs
from .tolerances import DEFAULT_MAX_DROP, tolerance_for

RESULT_KIND = DeviceParity.kind  # one definition of each kind: the record classes'
ACCURACY_KIND = DeviceAccuracyRecord.kind
INPUTS_NAME = "parity_inputs.npy"
OUTPUTS_NAME = "parity_outputs.npy"


def stored_reference(manifest: Manifest) -> Reference | None:
    """The folder's reference (inputs and PyTorch's logits), checked against its recorded sha256 and the
    model; None for a folder exported without one. No torch needed."""
    return parity.stored_reference(manifest)


@dataclass(frozen=True)
class DeviceAccuracy:
    """Top-1 of one file on labelled images, computed from the device's own outputs, against PyTorch's
    top-1 on the same images."""

    artifact: str
    runtime: str
    top1: float
    pytorch_top1: float
    samples: int
    max_drop: float
    data: str
    discordant: int = 0  # images right on one side only (device vs PyTorch): the paired difference's noise

    @property
    def drop(self) -> float:
        return self.pytorch_top1 - self.top1

    @property
    def margin(self) -> float:
        """Sampling noise of the drop on this subset, in points: 1.96 standard errors of the paired
        difference (McNemar's normal approximation), so a few images flipping on a small subset does
        not fail a file, while a kernel that loses 30 points always does."""
        return 100.0 * 1.96 * math.sqrt(self.discordant) / self.samples if self.samples else 0.0

    @property
    def passed(self) -> bool:
        return self.drop <= self.max_drop + self.margin + 1e-9

    def failure(self) -> str | None:
        if self.passed:
            return None
        return (
            f"top-1 {self.top1:.2f}% on the device is {self.drop:.2f} points below PyTorch's "
            f"{self.pytorch_top1:.2f}% on the same {self.samples} images (limit {self.max_drop:g} "
            f"+ {self.margin:.1f} sampling margin)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "runtime": self.runtime,
            "top1": round(self.top1, 2),
            "pytorch_top1": round(self.pytorch_top1, 2),
            "delta_top1": round(-self.drop, 2),
            "samples": self.samples,
            "max_drop": self.max_drop,
            "margin": round(self.margin, 2),
            "discordant": self.discordant,
            "data": self.data,
            "passed": self.passed,
            "failure": self.failure(),
        }

    def as_record(self) -> DeviceAccuracyRecord:
        return DeviceAccuracyRecord.from_dict(self.to_dict())


def write_inputs(reference: Reference | None, folder: Path, accuracy: Any = None) -> Path:
    """The inputs the runner predicts, as one plain float32 NCHW .npy: the reference inputs first, then
    the labelled images (``validate.accuracy.LabelledArrays``) when there are any."""
    parts = []
    if reference is not None:
        parts.append(reference.inputs.astype(np.float32))
    if accuracy is not None:
        parts.append(np.asarray(accuracy.images, dtype=np.float32))
    path = Path(folder) / INPUTS_NAME
    np.save(path, np.concatenate(parts))
    return path


def judge_device_outputs(
    artifact: Artifact,
    result: dict[str, Any],
    outputs_path: Path,
    reference: Reference | None,
    accuracy: Any = None,
    max_drop: float | None = None,
) -> tuple[ParityResult | None, DeviceAccuracy | None]:
    """The outputs the runner wrote on the device: the reference part against PyTorch's by (format,
    precision), the labelled part by its top-1 against PyTorch's on the same images."""
    outputs = np.load(outputs_path, allow_pickle=False)
    runtime = str(result.get("runtime", ""))
    parity = on_device = None
    count = 0
    if reference is not None:
        count = reference.samples
        parity = judge_outputs(
            artifact,
            runtime,
            tuple(result.get("providers") or ()),
            reference,
            outputs[:count],
            tolerance_for(artifact.format, artifact.precision),
        )
    if accuracy is not None:
        logits = outputs[count:]
        if len(logits) == len(accuracy.labels):
            from .accuracy import top1_percent

            limit = tolerance_for(artifact.format, artifact.precision).max_accuracy_drop
            gate = max_drop if max_drop is not None else (limit if limit is not None else DEFAULT_MAX_DROP)
            if artifact.precision == "fp32":  # float32 must match PyTorch; a loss there is a bug, not noise
                gate = min(gate, DEFAULT_MAX_DROP)
            right = np.argmax(logits, axis=1) == accuracy.labels
            torch_right = np.argmax(accuracy.pytorch_logits, axis=1) == accuracy.labels
            on_device = DeviceAccuracy(
                artifact.name,
                runtime,
                top1_percent(logits, accuracy.labels),
                accuracy.pytorch_top1,
                len(accuracy.labels),
                float(gate),
                accuracy.data,
                int((right != torch_right).sum()),
            )
    return parity, on_device
