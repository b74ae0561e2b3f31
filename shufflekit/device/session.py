"""Opening a model file in the backend that runs it: the checks every runtime shares, then the backend's
own ``open``."""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

from . import backends
from .backends import parse_providers
from .errors import RunnerError


def runtime_for(path: str, runtime: Optional[str] = None) -> str:
    """The backend name for ``runtime`` (an alias is accepted), or for ``path``'s extension."""
    return backends.for_path(path, runtime).name


def open_session(
    path: str,
    runtime: Optional[str] = None,
    providers: Union[str, Sequence[str], None] = None,
    threads: Optional[int] = None,
    allow_fallback: bool = False,
    profile_prefix: Optional[str] = None,
    spin: bool = True,
) -> Any:
    """Open ``path`` in its runtime. ``providers``: ORT short names, or one delegate for TFLite. ``spin``:
    False for a session that only predicts (not timed), so that its idle threads sleep (ONNX Runtime's
    intra-op threads otherwise spin between runs, on cores the release's converter process needs)."""
    names = parse_providers(providers)
    if not os.path.isfile(str(path)):
        raise RunnerError("bad_input", "model file %s does not exist" % path, hint="check the path")
    if threads is not None and int(threads) < 1:
        raise RunnerError("bad_input", "threads must be at least 1, got %s" % threads, hint="pass --threads 1 or more")
    backend = backends.for_path(path, runtime)
    return backend.open(str(path), names, threads, allow_fallback, profile_prefix, spin=spin)
