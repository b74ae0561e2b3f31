"""The Runtime/Session protocol, runtime options, the runtime registry, and ``load_session``.

A runtime opens a model file and returns a Session: ``run`` (raw feeds in the model's own layout and
dtype), ``predict`` (float NCHW images in, float32 outputs out: layout, quantization and batching done
for the caller), ``inputs``/``outputs`` as TensorSpecs, and ``info``: what actually ran (runtime and
version, providers or delegate requested and running, fallback, threads).

The work itself is done by the device package (``shufflekit.device``), the code that also runs on phones
and boards, so the host and the device execute the same code; this module goes through its backend
registry, turns its failures into shufflekit errors (``translate``, the one mapping, also used for jobs
run on devices) and its tensors into TensorSpecs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..artifacts import Artifact, QuantParams, TensorSpec
from ..device import backends
from ..device.errors import RunnerError
from ..device.session import open_session
from ..device.tensors import TensorInfo, example_images, predict, predict_all, prepare
from ..errors import (
    BackendMissingError,
    DeviceError,
    IntegrityError,
    ProviderUnavailableError,
    ShufflekitError,
    UsageError,
)
from ..export.tensorspecs import verified
from ..formats import format_of_path

# The pip extra that brings each runtime (README "Installing"), and the other names a runtime answers to.
RUNTIME_EXTRAS = {b.name: b.extra for b in backends.all_backends()}
RUNTIME_ALIASES = {alias: b.name for b in backends.all_backends() for alias in b.aliases}


@dataclass(frozen=True)
class RuntimeOptions:
    """How to open a model.

    ``runtime``: "onnxruntime" or "litert" (TFLite; "tflite" is accepted); None picks by the artifact's
    format. ``provider``: for ONNX Runtime an execution provider by short name (cpu, cuda, tensorrt,
    xnnpack, acl, coreml, nnapi, qnn, ...; several comma-separated in priority order); for TFLite a delegate
    (cpu = xnnpack, the default; none = built-in kernels; gpu; nnapi; or a delegate library path).
    ``allow_fallback``: run on what exists when the provider is missing, and record it (``info``).
    ``op_profile``: open with the runtime's op profiler on (read it with ``Session.op_profile()``).
    """

    runtime: str | None = None
    provider: str = "cpu"
    threads: int | None = None
    allow_fallback: bool = False
    op_profile: bool = False

    def __post_init__(self) -> None:
        if self.runtime is not None:
            canonical = RUNTIME_ALIASES.get(self.runtime, self.runtime)
            if canonical not in RUNTIME_EXTRAS:
                raise UsageError(f"unknown runtime {self.runtime!r}", hint=f"known: {', '.join(RUNTIME_EXTRAS)}")
            object.__setattr__(self, "runtime", canonical)
        if not self.provider or not str(self.provider).strip(","):
            raise UsageError("no provider given", hint="pass e.g. --provider cpu")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"threads must be at least 1, got {self.threads}", hint="pass --threads 1 or more")

    @property
    def providers(self) -> list[str]:
        return backends.parse_providers(self.provider) or ["cpu"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "provider": self.provider,
            "threads": self.threads,
            "allow_fallback": self.allow_fallback,
        }


@runtime_checkable
class Session(Protocol):
    runtime: str
    path: Path
    layout: str | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    providers: list[str]
    info: dict[str, Any]

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]: ...

    def prepare(self, images: np.ndarray) -> dict[str, np.ndarray]: ...

    def predict(self, images: np.ndarray) -> np.ndarray: ...

    def predict_all(self, images: np.ndarray) -> np.ndarray: ...

    def op_profile(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class DeviceIntegrityError(IntegrityError, DeviceError):
    """A file a device's runtime could not load: an integrity problem of the file, seen on a device."""


class DeviceBackendMissingError(BackendMissingError, DeviceError):
    """A runtime the job needs is missing on the device."""


def translate(
    exc: RunnerError | Mapping[str, Any], *, subject: str = "", device: str | None = None, own_python: bool = False
) -> ShufflekitError:
    """A runner failure -> the shufflekit error a user sees (one line, with what to do): the one mapping,
    for a session opened here and for a job run on a device (``device``: its key; the message names it
    and a failure of the job there is a DeviceError). A missing runtime's hint says where to install it:
    shufflekit's extra where the job ran with shufflekit's own Python (``own_python``: plain ``local``),
    else the device's own install line. ``exc`` is a RunnerError or the ``error`` object a job printed."""
    if not isinstance(exc, RunnerError):
        exc = RunnerError.from_dict(dict(exc))
    prefix = "".join(f"{p}: " for p in (device, subject) if p)
    details = exc.details
    error: ShufflekitError
    if exc.kind == "backend_missing":
        extra = details.get("extra", "all")
        hint = (
            f"on the device: {exc.hint}"
            if device and exc.hint and not own_python
            else f"install it with: pip install 'shufflekit[{extra}]'"
        )
        error = (DeviceBackendMissingError if device else BackendMissingError)(f"{prefix}{exc.message}", hint=hint)
    elif exc.kind == "provider_unavailable":
        error = ProviderUnavailableError(f"{prefix}{exc.message}", hint=exc.hint)
    elif exc.kind == "load_failed":
        error = (DeviceIntegrityError if device else IntegrityError)(f"{prefix}{exc.message}", hint=exc.hint)
    elif exc.kind == "no_kernel":  # the device's runtime build lacks an operator the file needs
        error = DeviceError(f"{prefix}{exc.message}", hint=exc.hint)
    elif exc.kind == "bad_input" or not device:
        error = UsageError(f"{prefix}{exc.message}", hint=exc.hint)
    else:  # run_failed, internal: the job failed there
        error = DeviceError(f"{prefix}{exc.message}", hint=exc.hint)
    # ad-hoc attributes that tag the error with the runner's failure (read with getattr, e.g. validate/gate.py)
    error.kind = exc.kind  # type: ignore[union-attr]
    error.available = list(details.get("available", []))  # type: ignore[union-attr]
    return error


def tensor_spec(info: TensorInfo, layout: str | None = None) -> TensorSpec:
    shape = tuple(d if d is not None else "batch" if i == 0 else "dynamic" for i, d in enumerate(info.shape))
    quant = QuantParams(*info.quantization) if info.quantization is not None else None
    return TensorSpec(name=info.name, shape=shape, dtype=info.dtype, layout=layout, quantization=quant)


class RunnerSession:
    """A Session over one of the device package's sessions (one per backend)."""

    def __init__(self, inner: Any, path: Path, layout: str | None, options: RuntimeOptions) -> None:
        self._inner = inner
        self._options = options
        self.runtime: str = inner.runtime
        self._backend = backends.get(inner.runtime)
        self.path = Path(path)
        self.layout = layout
        self.inputs = tuple(tensor_spec(t, layout if i == 0 else None) for i, t in enumerate(inner.inputs))
        self.outputs = tuple(tensor_spec(t) for t in inner.outputs)
        self.providers: list[str] = list(inner.providers)
        self.info: dict[str, Any] = dict(inner.info)
        self._profile_ended = False

    @property
    def raw(self) -> Any:
        """The device package's session (what benchmarks drive directly)."""
        return self._inner

    def _guard(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except RunnerError as exc:
            raise translate(exc, subject=self.path.name) from None

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Raw outputs for raw feeds (the model's own layout and dtype, a batch it takes)."""
        return self._guard(lambda: self._inner.run(dict(feeds)))

    def prepare(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Float32 NCHW images -> feeds in the model's layout and dtype (int8/uint8 inputs quantized)."""
        return self._guard(lambda: prepare(self._inner, images, self.layout))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Float32 NCHW images -> the first output as float32 (dequantized), for any batch size: a model
        fixed at batch 1 is run once per image."""
        return self._guard(lambda: predict(self._inner, images, self.layout)[0])

    def predict_all(self, images: np.ndarray) -> np.ndarray:
        """``predict`` for any number of images: a file fixed at batch N > 1 takes them in whole batches,
        the last one filled up with repeats of the first images whose outputs are dropped (the device
        package's padding, the one copy)."""
        return self._guard(lambda: predict_all(self._inner, images, self.layout)[0])

    def op_profile(self) -> dict[str, Any]:
        """Per-operator times of the runs made since opening (needs ``RuntimeOptions(op_profile=True)``).
        A runtime with an in-session profiler (ONNX Runtime): its profile (this ends profiling); else the
        backend's own op profiler (TFLite: ``device.backends.litert_ops``)."""
        if not self._options.op_profile:
            raise UsageError(
                f"{self.path.name} was opened without op profiling", hint="open it with RuntimeOptions(op_profile=True)"
            )
        if self._backend.summarize_profile is not None:
            return self._backend.summarize_profile(self._end_profiling())
        return self._guard(
            lambda: self._backend.profile_ops(
                str(self.path),
                self._options.providers,
                self._options.threads,
                self._options.allow_fallback,
                [self.prepare(_example(self))],
                warmup=2,
                runs=10,
            )
        )

    def _end_profiling(self) -> list[dict[str, Any]]:
        if self._profile_ended:
            raise UsageError(
                f"the op profile of {self.path.name} was already read", hint="open a new session to profile again"
            )
        self._profile_ended = True
        path = Path(self._inner.end_profiling())
        try:
            return json.loads(path.read_text())
        finally:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()

    def close(self) -> None:
        if self._backend.summarize_profile is not None and self._options.op_profile and not self._profile_ended:
            with contextlib.suppress(Exception):
                self._end_profiling()  # ORT would write the profile file anyway; leave nothing behind
        self._inner.close()

    def __enter__(self) -> RunnerSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _example(session: RunnerSession) -> np.ndarray:
    return example_images(session.raw.inputs[0], 1, session.layout)


@dataclass(frozen=True)
class Runtime:
    """A registered runtime: its name, the artifact formats it runs, and how it opens a file."""

    name: str
    formats: tuple[str, ...]
    extra: str
    open: Callable[[Path, RuntimeOptions, str | None], Session] = field(repr=False)
    describe: str = ""

    def available(self) -> bool:
        return backends.get(self.name).available()


_REGISTRY: dict[str, Runtime] = {}


def register_runtime(runtime: Runtime) -> Runtime:
    if runtime.name in _REGISTRY:
        raise ValueError(f"runtime {runtime.name!r} is registered twice")
    _REGISTRY[runtime.name] = runtime
    return runtime


@contextlib.contextmanager
def registered_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """A runtime registered for the duration of a block (tests, a format being tried out)."""
    _load_builtin()
    register_runtime(runtime)
    try:
        yield runtime
    finally:
        _REGISTRY.pop(runtime.name, None)


def list_runtimes() -> list[Runtime]:
    _load_builtin()
    return list(_REGISTRY.values())


def get_runtime(name: str) -> Runtime:
    _load_builtin()
    name = RUNTIME_ALIASES.get(name, name)
    if name not in _REGISTRY:
        raise UsageError(f"unknown runtime {name!r}", hint=f"known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def runtime_for_format(fmt: str) -> Runtime:
    _load_builtin()
    for runtime in _REGISTRY.values():
        if fmt in runtime.formats:
            return runtime
    raise UsageError(f"no runtime runs format {fmt!r}", hint=f"runtimes: {', '.join(_REGISTRY)}")


def _load_builtin() -> None:
    """One host Runtime per backend of the device package (a new runtime is one backend module there)."""
    for backend in backends.all_backends():
        if backend.name not in _REGISTRY:
            register_runtime(
                Runtime(
                    name=backend.name,
                    formats=backend.formats,
                    extra=backend.extra,
                    open=functools.partial(open_with_runner, backend.name),
                    describe=backend.describe,
                )
            )


def load_session(
    target: Artifact | str | Path,
    folder: str | Path | None = None,
    options: RuntimeOptions | None = None,
    *,
    layout: str | None = None,
) -> Session:
    """Open an artifact of a release folder (its sha256 checked first) or a bare model file.

    With an Artifact, ``folder`` is its release folder and the image-input layout comes from its input
    spec; with a path, ``folder`` is ignored and ``layout`` says how ``prepare``/``predict`` lay out the
    NCHW images they are given (None: as given).
    """
    options = options or RuntimeOptions()
    if isinstance(target, Artifact):
        if folder is None:
            raise UsageError(f"artifact {target.name} needs its release folder", hint="pass the folder")
        path = verified(target, folder)
        fmt = target.format
        layout = layout or target.input.layout
    else:
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"model file {path} does not exist", hint="check the path")
        known = format_of_path(path)
        fmt = known.name if known is not None else ""
    runtime = get_runtime(options.runtime) if options.runtime else runtime_for_format(fmt)
    if fmt and fmt not in runtime.formats:
        raise UsageError(
            f"runtime {runtime.name} cannot run a {fmt} file ({path.name})", hint=f"use {runtime_for_format(fmt).name}"
        )
    return runtime.open(path, options, layout)


def open_with_runner(runtime: str, path: Path, options: RuntimeOptions, layout: str | None) -> RunnerSession:
    """Shared body of the adapters: open through the device package's backend, translating its failures."""
    backend = backends.get(runtime)
    prefix = None
    if options.op_profile and backend.summarize_profile is not None:  # its profiler runs inside the session
        prefix = str(Path(tempfile.mkdtemp(prefix="shufflekit-ortprof-")) / "profile")
    try:
        inner = open_session(
            str(path),
            runtime=backend.name,
            providers=options.providers,
            threads=options.threads,
            allow_fallback=options.allow_fallback,
            profile_prefix=prefix,
            # this computer's sessions predict (accuracy, parity, the gate): idle threads sleep; timing runs in
            # a job, and an op profile here keeps ONNX Runtime's default so that its times are an app's
            spin=options.op_profile,
        )
    except RunnerError as exc:
        raise translate(exc, subject=path.name) from None
    return RunnerSession(inner, path, layout, options)


def providers_available(runtime: str) -> list[str]:
    """Providers (ONNX Runtime) or delegates (TFLite) this machine's build offers, by short name."""
    try:
        return backends.get(runtime).available_providers()
    except RunnerError as exc:
        raise translate(exc) from None
