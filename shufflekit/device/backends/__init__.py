"""The backend registry: one module per inference runtime, each registering one ``Backend`` that says
what it is called (name, aliases), what it runs (formats, file extensions), what it can run on
(providers or delegates), how to import it, open a file in it, and profile a file's operators.

Adding a runtime is one module here that calls ``register``; the host (``runtimes.base``), the probe
and the job code iterate the registry. Backends import their runtime lazily, inside their functions.
"""

from __future__ import annotations

# The built-in backends register themselves on import; ONNX Runtime first: the order names are listed in
# ("known: onnxruntime, litert").
from . import (
    litert,  # noqa: F401
    onnxruntime,  # noqa: F401
)
from .registry import Backend, all_backends, canonical, for_format, for_path, get, names, parse_providers, register

__all__ = [
    "Backend",
    "all_backends",
    "canonical",
    "for_format",
    "for_path",
    "get",
    "names",
    "parse_providers",
    "register",
]
