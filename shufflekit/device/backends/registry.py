"""The backend record and the registry of backends (import ``shufflekit.device.backends``, which registers
the built-in ones)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import RunnerError


@dataclass(frozen=True)
class Backend:
    """One inference runtime as the device package drives it.

    ``load()`` imports the runtime or raises RunnerError("backend_missing"). ``open(path, providers,
    threads, allow_fallback, profile_prefix, spin=True)`` returns a session (``run(feeds)``, ``inputs``,
    ``outputs``, ``info``, ``providers``, ``close()``). ``profile_ops(path, providers, threads,
    allow_fallback, feeds_list, warmup, runs)`` returns the op-profile dict. ``summarize_profile``:
    where the runtime profiles inside a session (ONNX Runtime), turns its profiler's events into that
    dict; None where operators are timed apart from the session (TFLite). ``modules``: the importable
    modules that provide it, in the order they are tried (what the probe looks for on a device).
    """

    name: str
    label: str
    describe: str
    aliases: Tuple[str, ...]
    formats: Tuple[str, ...]
    extensions: Tuple[str, ...]
    providers: Tuple[str, ...]
    modules: Tuple[str, ...]
    extra: str
    install_hint: str
    load: Callable[[], Any] = field(repr=False)
    open: Callable[..., Any] = field(repr=False)
    available_providers: Callable[[], List[str]] = field(repr=False)
    profile_ops: Callable[..., Dict[str, Any]] = field(repr=False)
    versions: Callable[[], Dict[str, Any]] = field(repr=False)
    unknown_providers: Callable[[Sequence[str]], List[str]] = field(repr=False)
    max_providers: Optional[int] = None  # TFLite runs one delegate
    summarize_profile: Optional[Callable[..., Dict[str, Any]]] = field(default=None, repr=False)

    def available(self) -> bool:
        try:
            self.load()
            return True
        except RunnerError:
            return False


_REGISTRY: Dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add a backend; a name or alias already taken is an error (two modules claiming one runtime)."""
    taken = set(_REGISTRY) | {a for b in _REGISTRY.values() for a in b.aliases}
    clash = ({backend.name} | set(backend.aliases)) & taken
    if clash:
        raise ValueError("backend name %r is registered twice" % sorted(clash)[0])
    _REGISTRY[backend.name] = backend
    return backend


def all_backends() -> List[Backend]:
    return list(_REGISTRY.values())


def names() -> Tuple[str, ...]:
    return tuple(_REGISTRY)


def canonical(name: str) -> str:
    """A runtime name or alias -> the backend's name (unchanged when unknown)."""
    for backend in _REGISTRY.values():
        if name == backend.name or name in backend.aliases:
            return backend.name
    return name


def get(name: str) -> Backend:
    backend = _REGISTRY.get(canonical(name))
    if backend is None:
        raise RunnerError("bad_input", "unknown runtime %r" % name, hint="known: %s" % ", ".join(_REGISTRY))
    return backend


def for_format(fmt: str) -> Optional[Backend]:
    return next((b for b in _REGISTRY.values() if fmt in b.formats), None)


def for_path(path: str, runtime: Optional[str] = None) -> Backend:
    """The backend named by ``runtime``, else the one that runs files with ``path``'s extension."""
    if runtime:
        return get(runtime)
    ext = os.path.splitext(str(path))[1].lower()
    for backend in _REGISTRY.values():
        if ext in backend.extensions:
            return backend
    raise RunnerError(
        "bad_input",
        "cannot tell the runtime of %s from its extension" % os.path.basename(str(path)),
        hint="name the runtime: %s" % " or ".join(_REGISTRY),
    )


def parse_providers(value: Any) -> Optional[List[str]]:
    """ "cuda,cpu" or ["cuda", "cpu"] -> ["cuda", "cpu"]; None or "" -> None (the runtime's default)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    names = [str(v).strip() for v in value if str(v).strip()]
    return names or None
