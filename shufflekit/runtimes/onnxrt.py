"""ONNX Runtime: providers by short name; asking for one this build lacks is an error that lists what
exists, unless fallback is allowed; the providers that actually ran are recorded in ``Session.info``."""

from __future__ import annotations

from pathlib import Path

from ..device import backends
from .base import Runtime, RuntimeOptions, Session, open_with_runner, register_runtime


def _open(path: Path, options: RuntimeOptions, layout: str | None) -> Session:
    return open_with_runner("onnxruntime", path, options, layout)


ONNXRUNTIME = register_runtime(Runtime(
    name="onnxruntime", formats=backends.get("onnxruntime").formats, extra=backends.get("onnxruntime").extra, open=_open,
    describe="ONNX Runtime; providers cpu, cuda, tensorrt, xnnpack, acl, coreml, nnapi, qnn"))
