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
        """The file's logits on ``images`` on this computer; within a release run they are kept, so that
        evaluate does not classify the same images with the same file again."""
        from ..errors import DeviceError
        from ..runtimes import RuntimeOptions, load_session
        from . import run_cache
        from .accuracy import prediction_key

        key = prediction_key(path, images, RuntimeOptions())
        found = run_cache.predictions(key)
        if found is not None:
            return found[0]
        try:
            session = load_session(path)
        except DeviceError as exc:  # this CPU's runtime has no kernel for the file
            if getattr(exc, "kind", "") != "no_kernel":
                raise
            return None
        try:
            logits = np.asarray(session.predict_all(images), dtype=np.float32)
        finally:
            session.close()
        run_cache.keep_predictions(key, logits, session.runtime)
        return logits

    def per_layer_report(
        self, prepared: Path, quantized: Path, images: np.ndarray, *, input_name: str, batch: Any
    ) -> Any:
        from .per_layer import per_layer_report

        return per_layer_report(prepared, quantized, images, input_name=input_name, batch=batch)


TOOLS = _Tools()
