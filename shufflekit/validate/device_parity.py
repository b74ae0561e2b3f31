"""Parity on the device that will run the file: after timing an artifact, the runner predicts the release
folder's reference inputs with the device's own kernels and writes the outputs; the host judges them
against PyTorch's with the tolerance table `shufflekit validate` uses. Device kernels differ from the
host's (ARM NEON, XNNPACK builds, NNAPI): that difference is what this catches.

Results go into the manifest as kind ``device_parity``, one group per device key, beside ``latency``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import Artifact, Manifest
from .parity import ParityResult, judge_outputs
from .reference import Reference
from .tolerances import tolerance_for

RESULT_KIND = "device_parity"
INPUTS_NAME = "parity_inputs.npy"
OUTPUTS_NAME = "parity_outputs.npy"


def stored_reference(manifest: Manifest) -> Reference | None:
    """The folder's reference (inputs and PyTorch's logits), checked against its recorded sha256; None
    for a folder exported without one. No torch needed."""
    record = manifest.reference
    if record is None:
        return None
    return Reference.load(manifest.folder / record["file"], sha256=record["sha256"])


def write_inputs(reference: Reference, folder: Path) -> Path:
    """The reference inputs as the plain float32 NCHW .npy the runner reads."""
    path = Path(folder) / INPUTS_NAME
    np.save(path, reference.inputs.astype(np.float32))
    return path


def judge_device_outputs(artifact: Artifact, result: dict[str, Any], outputs_path: Path,
                         reference: Reference) -> ParityResult:
    """The outputs the runner wrote on the device, against PyTorch's, by (format, precision)."""
    outputs = np.load(outputs_path, allow_pickle=False)
    return judge_outputs(artifact, str(result.get("runtime", "")), tuple(result.get("providers") or ()), reference,
                         outputs, tolerance_for(artifact.format, artifact.precision))
