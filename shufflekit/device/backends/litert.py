"""TFLite through ai-edge-litert, falling back to tflite_runtime, then tensorflow.lite. XNNPACK is on by
default (the built-in kernels where it declines the model, recorded), the thread count is honoured, and
GPU/NNAPI delegates load by name where the platform has them. Op profiling: see ``litert_ops``."""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import RunnerError, first_line, shape_hint, shape_text
from ..tensors import Feeds, TensorInfo
from .registry import Backend, register

# TFLite delegates by name. cpu: XNNPACK (TFLite's default CPU delegate) where it takes the model, else the
# built-in kernels; "builtin"/"none": the built-in kernels only.
TFLITE_DELEGATES = ("cpu", "xnnpack", "builtin", "none", "gpu", "nnapi")


_DELEGATE_LIBRARIES = {
    "gpu": ("libtensorflowlite_gpu_delegate.so", "libtensorflowlite_gpu_gl.so", "libLiteRtGpuAccelerator.so"),
    "nnapi": ("libtensorflowlite_nnapi_delegate.so", "libnnapi_delegate.so"),
}


def import_tflite() -> Tuple[Any, str, Optional[str]]:
    """Returns (interpreter module, backend name, version). The module has Interpreter, load_delegate
    and, in recent builds, OpResolverType."""
    errors = []
    try:
        from ai_edge_litert import interpreter as module

        return module, "ai-edge-litert", _dist_version("ai-edge-litert", "ai_edge_litert")
    except ImportError as exc:
        errors.append(str(exc))
    try:
        import tflite_runtime
        from tflite_runtime import interpreter as module

        return (
            module,
            "tflite-runtime",
            getattr(tflite_runtime, "__version__", None) or _dist_version("tflite-runtime", "tflite_runtime"),
        )
    except ImportError as exc:
        errors.append(str(exc))
    try:
        import tensorflow as tf

        module = _TfLiteShim(tf)
        return module, "tensorflow", tf.__version__
    except ImportError as exc:
        errors.append(str(exc))
    raise RunnerError(
        "backend_missing",
        "no TFLite interpreter is installed (ai-edge-litert, tflite-runtime or tensorflow)",
        hint="pip install ai-edge-litert (or tflite-runtime on a board)",
        package="ai-edge-litert",
        extra="tflite",
    )


class _TfLiteShim:
    """tensorflow.lite spelled like the interpreter modules of the lean packages."""

    def __init__(self, tf: Any) -> None:
        self.Interpreter = tf.lite.Interpreter
        self.load_delegate = tf.lite.experimental.load_delegate
        self.OpResolverType = getattr(tf.lite.experimental, "OpResolverType", None)


class TfliteSession:
    runtime = "litert"

    def __init__(
        self, path: str, delegate: Optional[str] = None, threads: Optional[int] = None, allow_fallback: bool = False
    ) -> None:
        module, backend, version = import_tflite()
        self.path = str(path)
        self.module = module
        requested = str(delegate or "cpu").lower() if os.path.sep not in str(delegate or "") else str(delegate)
        self.threads = int(threads) if threads else None
        self.fallback = []
        self.declined = None  # why XNNPACK did not take the model, when it did not
        resolver_type = getattr(module, "OpResolverType", None)
        delegates = []
        if requested in ("none", "builtin"):
            if resolver_type is None:
                raise RunnerError(
                    "provider_unavailable",
                    "this %s build cannot switch XNNPACK off" % backend,
                    hint="available: cpu, xnnpack",
                    available=["cpu", "xnnpack"],
                    missing=[requested],
                )
            plan = ["builtin"]
        elif requested in ("cpu", "xnnpack"):
            # "cpu" is TFLite's CPU path: XNNPACK where it takes the model, the built-in kernels where it
            # does not (recorded). "xnnpack" insists on XNNPACK unless fallback is allowed.
            plan = ["xnnpack", "builtin"] if requested == "cpu" or allow_fallback else ["xnnpack"]
        else:
            loaded, why = _load_delegate(module, requested)
            if loaded is not None:
                delegates.append(loaded)
                plan = [requested]
            elif allow_fallback:
                self.fallback.append(requested)
                plan = ["xnnpack", "builtin"]
            else:
                raise RunnerError(
                    "provider_unavailable",
                    "TFLite delegate %r is not available here (%s)" % (requested, why),
                    hint="available: %s; pass --allow-fallback to use the CPU instead"
                    % ", ".join(available_tflite_delegates(module)),
                    available=available_tflite_delegates(module),
                    missing=[requested],
                )
        actual, errors = None, []
        for attempt in plan:
            kwargs: Dict[str, Any] = {"model_path": self.path}
            if attempt not in ("xnnpack", "builtin"):
                kwargs["experimental_delegates"] = delegates
            if self.threads:
                kwargs["num_threads"] = self.threads
            if attempt == "builtin" and resolver_type is not None:
                kwargs["experimental_op_resolver_type"] = resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            try:
                self.interpreter = module.Interpreter(**kwargs)
                self.interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                errors.append("%s: %s" % (attempt, first_line(exc)))
                continue
            if attempt == "xnnpack" and self._ops() and not any(op.get("op_name") == "DELEGATE" for op in self._ops()):
                # XNNPACK declined every node: that run is the built-in kernels, say so
                errors.append("xnnpack: took no operator")
                if "builtin" in plan:
                    continue
                raise RunnerError(
                    "provider_unavailable",
                    "XNNPACK takes none of the operators of %s" % (os.path.basename(self.path)),
                    hint="available: builtin (the built-in kernels); pass --allow-fallback or --provider cpu",
                    available=["cpu", "builtin"],
                    missing=["xnnpack"],
                )
            actual = attempt
            break
        if actual is None:
            if (
                len(errors) == 1
                and requested == "xnnpack"
                and "builtin" not in plan
                and _loads_builtin(module, resolver_type, self.path)
            ):
                raise RunnerError(
                    "provider_unavailable",
                    "XNNPACK cannot run %s (%s)" % (os.path.basename(self.path), errors[0]),
                    hint="available: builtin (the built-in kernels); pass --allow-fallback or --provider cpu",
                    available=["cpu", "builtin"],
                    missing=["xnnpack"],
                )
            raise RunnerError(
                "load_failed",
                "TFLite cannot load %s: %s" % (os.path.basename(self.path), errors[-1].split(": ", 1)[-1]),
                hint="check the file is a complete .tflite model (re-export it)",
            )
        if actual == "builtin" and plan[0] == "xnnpack":
            self.declined = errors[0] if errors else None
            if requested == "xnnpack":
                self.fallback.append("xnnpack")
        ops = self._ops()
        delegate_nodes = sum(1 for op in ops if op.get("op_name") == "DELEGATE")
        self.info = {
            "runtime": "litert",
            "runtime_version": version,
            "interpreter": backend,
            "providers_requested": [requested],
            "providers": [actual],
            "delegate": actual,
            "fallback": bool(self.fallback),
            "fallback_from": self.fallback,
            "threads": self.threads,
            "ops": sum(1 for op in ops if op.get("op_name") != "DELEGATE"),
            "delegate_partitions": delegate_nodes,
        }
        if self.declined:
            self.info["xnnpack_declined"] = self.declined
        self.providers = [actual]
        self.inputs = [self._info(d) for d in self.interpreter.get_input_details()]
        self.outputs = [self._info(d) for d in self.interpreter.get_output_details()]
        self._shapes = [tuple(int(v) for v in d["shape"]) for d in self.interpreter.get_input_details()]

    def _ops(self) -> List[Dict[str, Any]]:
        getter = getattr(self.interpreter, "_get_ops_details", None)
        try:
            return list(getter()) if getter else []
        except Exception:  # older interpreters: no op details, nothing to report
            return []

    @staticmethod
    def _info(detail: Dict[str, Any]) -> TensorInfo:
        signature = detail.get("shape_signature", detail["shape"])
        shape = [int(d) if int(d) >= 0 else None for d in signature]
        scale, zero = detail.get("quantization", (0.0, 0))
        quant = (float(scale), int(zero)) if scale else None
        return TensorInfo(
            detail["name"], shape, np.dtype(detail["dtype"]).name, quantization=quant, index=int(detail["index"])
        )

    def run(self, feeds: Feeds) -> List[Any]:
        it = self.interpreter
        resized = False
        for k, info in enumerate(self.inputs):
            x = feeds[info.name]
            if x.shape != self._shapes[k]:  # (cached: asking the interpreter costs more than a small op)
                if len(x.shape) != len(info.shape) or any(
                    want is not None and want != got for want, got in zip(info.shape, x.shape)
                ):
                    raise RunnerError(
                        "bad_input",
                        "input %r takes shape %s, got %s" % (info.name, shape_text(info.shape), list(x.shape)),
                        hint=shape_hint(self.inputs),
                    )
                it.resize_tensor_input(info.index, list(x.shape))
                resized = True
        if resized:
            it.allocate_tensors()
            self._shapes = [tuple(feeds[info.name].shape) for info in self.inputs]
        try:
            for info in self.inputs:
                it.set_tensor(info.index, feeds[info.name])
            it.invoke()
        except (ValueError, RuntimeError) as exc:
            raise RunnerError(
                "run_failed",
                "TFLite failed to run %s: %s" % (os.path.basename(self.path), first_line(exc)),
                hint=shape_hint(self.inputs),
            ) from None
        return [it.get_tensor(o.index) for o in self.outputs]

    def close(self) -> None:
        self.interpreter = None


def _loads_builtin(module: Any, resolver_type: Any, path: str) -> bool:
    if resolver_type is None:
        return False
    try:
        module.Interpreter(
            model_path=path, experimental_op_resolver_type=resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        ).allocate_tensors()
        return True
    except (ValueError, RuntimeError):
        return False


def _load_delegate(module: Any, name: str) -> Tuple[Any, Optional[str]]:
    """Try the libraries a delegate name stands for (or a path). Returns (delegate, None) or (None, why)."""
    candidates = _DELEGATE_LIBRARIES.get(name.lower(), (name,))
    reasons = []
    for library in candidates:
        try:  # open it ourselves first: load_delegate on a missing library leaves noisy half-made objects
            ctypes.CDLL(library)
        except OSError:
            reasons.append("no %s" % library)
            continue
        try:
            return module.load_delegate(library), None
        except (ValueError, OSError, RuntimeError, AttributeError) as exc:
            reasons.append("%s: %s" % (library, first_line(exc)))
    if name.lower() not in _DELEGATE_LIBRARIES and os.path.sep not in name:
        return None, "unknown delegate; known: %s, or a delegate library path" % ", ".join(TFLITE_DELEGATES)
    return None, "; ".join(reasons) or "no library"


def available_tflite_delegates(module: Any = None) -> List[str]:
    """Delegates that load here. xnnpack and none are built into every interpreter we support."""
    if module is None:
        try:
            module = import_tflite()[0]
        except RunnerError:
            return []
    names = ["cpu", "xnnpack"] + (["builtin"] if getattr(module, "OpResolverType", None) is not None else [])
    for name in ("gpu", "nnapi"):
        if _load_delegate(module, name)[0] is not None:
            names.append(name)
    return names


def _dist_version(dist: str, module_name: str) -> Optional[str]:
    try:
        from importlib import metadata

        return metadata.version(dist)
    except Exception:
        module = sys.modules.get(module_name)
        return getattr(module, "__version__", None)


def versions() -> Dict[str, Any]:
    _, backend, version = import_tflite()
    return {"interpreter": backend, "version": version}


def unknown_providers(names: Sequence[str]) -> List[str]:
    return [p for p in names if p not in TFLITE_DELEGATES and "/" not in p]


def _open(
    path: str,
    providers: Optional[List[str]] = None,
    threads: Optional[int] = None,
    allow_fallback: bool = False,
    profile_prefix: Optional[str] = None,
    spin: bool = True,  # TFLite's thread pool has no such setting
) -> TfliteSession:
    providers = list(providers or [])
    if len(providers) > 1:
        raise RunnerError(
            "bad_input",
            "TFLite takes one delegate, got %s" % ", ".join(providers),
            hint="pass one of: %s" % ", ".join(TFLITE_DELEGATES),
        )
    if profile_prefix:
        raise RunnerError("bad_input", "TFLite sessions have no built-in profiler", hint="use profile_tflite_ops")
    return TfliteSession(path, providers[0] if providers else None, threads, allow_fallback)


def _profile_ops(*args: Any, **kwargs: Any) -> Dict[str, Any]:
    from .litert_ops import profile_tflite_ops  # the flatbuffer surgery is only loaded when asked for

    return profile_tflite_ops(*args, load=import_tflite, open_session=TfliteSession, **kwargs)


BACKEND = register(
    Backend(
        name="litert",
        label="TFLite",
        describe="TFLite (ai-edge-litert / tflite_runtime / tensorflow.lite); delegates xnnpack, none, gpu, nnapi",
        aliases=("tflite",),
        formats=("tflite",),
        extensions=(".tflite",),
        providers=TFLITE_DELEGATES,
        modules=("ai_edge_litert", "tflite_runtime", "tensorflow"),
        extra="tflite",
        install_hint="install a TFLite interpreter there (pip install ai-edge-litert, or tflite-runtime with numpy<2)",
        load=import_tflite,
        open=_open,
        available_providers=available_tflite_delegates,
        profile_ops=_profile_ops,
        versions=versions,
        unknown_providers=unknown_providers,
        max_providers=1,
    )
)
