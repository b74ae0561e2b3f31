"""TFLite through ai-edge-litert, falling back to tflite_runtime, then tensorflow.lite. XNNPACK is on by
default, the thread count is honoured, and GPU/NNAPI delegates load by name where the platform has them."""

from __future__ import annotations

from pathlib import Path

from ..device import backends
from .base import Runtime, RuntimeOptions, Session, open_with_runner, register_runtime


def _open(path: Path, options: RuntimeOptions, layout: str | None) -> Session:
    return open_with_runner("litert", path, options, layout)


TFLITE = register_runtime(Runtime(
    name="litert", formats=backends.get("litert").formats, extra=backends.get("litert").extra, open=_open,
    describe="TFLite (ai-edge-litert / tflite_runtime / tensorflow.lite); delegates xnnpack, none, gpu, nnapi"))
