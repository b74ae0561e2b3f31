"""The judge of export's accuracy-aware quantization fallback (``export.fallback.GateTools``): labelled
images with PyTorch's logits, a file's predictions on this computer, and the per-layer report. Handed to
``export.quantize.quantize_release(gate=TOOLS)`` by its callers, so export never imports validate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import Artifact
from .tolerances import DEFAULT_MAX_DROP


class _Tools:
    default_max_drop = DEFAULT_MAX_DROP

    def labelled_arrays(self, data: Any, manifest: Any, *, limit: int | None) -> Any:
        from .accuracy import labelled_arrays

        return labelled_arrays(data, manifest, limit=limit)

    def predict(self, path: Path, parent: Artifact, images: np.ndarray) -> np.ndarray | None:
        from ..errors import DeviceError
        from ..runtimes import load_session

        try:
            session = load_session(path)
        except DeviceError as exc:  # this CPU's runtime has no kernel for the file
            if getattr(exc, "kind", "") != "no_kernel":
                raise
            return None
        try:
            return np.asarray(session.predict_all(images))
        finally:
            session.close()

    def per_layer_report(
        self, prepared: Path, quantized: Path, images: np.ndarray, *, input_name: str, batch: Any
    ) -> Any:
        from .per_layer import per_layer_report

        return per_layer_report(prepared, quantized, images, input_name=input_name, batch=batch)


TOOLS = _Tools()
