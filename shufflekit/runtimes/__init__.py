"""Runtimes: open an artifact in ONNX Runtime or TFLite, run it, time it.

``load_session(artifact, RuntimeOptions(...), folder=...)`` returns a Session (see ``base``). The engine is
the device package ``shufflekit.device`` (stdlib + numpy), also pushed to phones and boards as one zipapp
file (``device_file``); measurements run it through a transport (``profile``, ``remote``).
"""

from .base import (
    RUNTIME_EXTRAS,
    Runtime,
    RuntimeOptions,
    Session,
    get_runtime,
    list_runtimes,
    load_session,
    providers_available,
    register_runtime,
    runtime_for_format,
)

__all__ = [
    "RUNTIME_EXTRAS",
    "Runtime",
    "RuntimeOptions",
    "Session",
    "get_runtime",
    "list_runtimes",
    "load_session",
    "providers_available",
    "register_runtime",
    "runtime_for_format",
]
