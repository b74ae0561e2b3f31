"""Run and time one model file with ONNX Runtime or TFLite: the single file shufflekit pushes to a phone or
a board, and the engine its host-side runtimes wrap.

It must stay standalone: Python >= 3.8, only the standard library and numpy at module level, the runtime
imported lazily. No torch, no tensorflow needed (tensorflow.lite is only the last TFLite fallback).

Job mode: ``python runner.py JOB.json`` (or ``-`` for stdin) prints one JSON object on stdout:
``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": {"kind", "message", "hint", ...}}``.
Everything the runtimes print goes to stderr, so stdout is always clean JSON. Job fields:

    mode            "probe" (host facts, runtimes), "benchmark", or "run" (inputs file -> outputs file)
    model           path of the .onnx / .tflite file
    runtime         "onnxruntime" | "litert" (TFLite; "tflite" is accepted) (default: by the file's extension)
    provider        ORT providers by short name, comma-separated in priority order (default "cpu"), or for
                    TFLite one delegate: "cpu" (default: XNNPACK, or the built-in kernels where XNNPACK
                    declines the model, recorded), "xnnpack" (XNNPACK or an error), "builtin" (alias "none":
                    the built-in kernels), "gpu", "nnapi", or a delegate library path
    allow_fallback  run on what exists when a requested provider is missing, and record it
    threads         intra-op threads (ORT) / interpreter threads (TFLite); default: the runtime's
    layout          the model's image-input layout, "NCHW" or "NHWC" (inputs are given NCHW)
    batch, warmup, iters, seconds, op_profile, op_profile_runs, seed, keep_times   (benchmark)
    parity_inputs, parity_outputs   (benchmark, optional) .npy paths: after the timed loop, the same session
                    predicts these float32 NCHW images and writes its float32 outputs, for parity on the device
    inputs, outputs .npy paths (run): float32 NCHW images in, float32 (dequantized) outputs out
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import re
import sys
import tempfile
import time
import traceback

import numpy as np

RUNNER_PROTOCOL = 1

# Short names a user types -> ONNX Runtime's provider names.
ORT_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "acl": "ACLExecutionProvider",
    "armnn": "ArmNNExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "azure": "AzureExecutionProvider",
}
_ORT_SHORT = {full: short for short, full in ORT_PROVIDERS.items()}

# TFLite delegates by name. cpu: XNNPACK (TFLite's default CPU delegate) where it takes the model, else the
# built-in kernels; "builtin"/"none": the built-in kernels only.
TFLITE_DELEGATES = ("cpu", "xnnpack", "builtin", "none", "gpu", "nnapi")
_DELEGATE_LIBRARIES = {
    "gpu": ("libtensorflowlite_gpu_delegate.so", "libtensorflowlite_gpu_gl.so", "libLiteRtGpuAccelerator.so"),
    "nnapi": ("libtensorflowlite_nnapi_delegate.so", "libnnapi_delegate.so"),
}
RUNTIMES = ("onnxruntime", "litert")
_RUNTIME_ALIASES = {"ort": "onnxruntime", "tflite": "litert"}
_EXTENSIONS = {".onnx": "onnxruntime", ".ort": "onnxruntime", ".tflite": "litert"}

_ORT_DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16", "tensor(int32)": "int32",
    "tensor(int64)": "int64", "tensor(bool)": "bool",
}


class RunnerError(Exception):
    """A failure the caller can act on. ``kind`` is one of: backend_missing, provider_unavailable,
    bad_input, load_failed, run_failed. Extra details (``available``, ``package``, ``extra``) ride along."""

    def __init__(self, kind, message, hint=None, **details):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint
        self.details = details

    def to_dict(self):
        data = {"kind": self.kind, "message": self.message, "hint": self.hint}
        data.update(self.details)
        return data


# ------------------------------------------------------------------------------------------------------
# Tensors: layout and quantization
# ------------------------------------------------------------------------------------------------------
class TensorInfo(object):
    """One model input or output as the runtime sees it. ``shape`` entries are ints, or None for a
    dynamic dimension; ``quantization`` is (scale, zero_point) for int8/uint8 tensors, else None."""

    def __init__(self, name, shape, dtype, quantization=None, index=None, symbolic=None):
        self.name = name
        self.shape = tuple(shape)
        self.dtype = str(dtype)
        self.quantization = quantization
        self.index = index
        self.symbolic = symbolic  # names of dynamic dimensions where the runtime gives them

    @property
    def batch(self):
        """The batch the model is fixed at, or None when the batch dimension is dynamic."""
        return self.shape[0] if self.shape else None

    def to_dict(self):
        data = {"name": self.name, "shape": [d if d is not None else "dynamic" for d in self.shape],
                "dtype": self.dtype}
        if self.quantization is not None:
            data["quantization"] = {"scale": self.quantization[0], "zero_point": self.quantization[1]}
        return data

    def __repr__(self):
        return "TensorInfo(%r, %r, %s, q=%r)" % (self.name, self.shape, self.dtype, self.quantization)


def convert_layout(x, src, dst):
    """Move the channel axis of a 4-D batch between NCHW and NHWC (a copy, C-contiguous)."""
    src, dst = (src or dst or "NCHW").upper(), (dst or src or "NCHW").upper()
    for layout in (src, dst):
        if layout not in ("NCHW", "NHWC"):
            raise RunnerError("bad_input", "unknown layout %r" % layout, hint="use NCHW or NHWC")
    if src == dst:
        return np.ascontiguousarray(x)
    if x.ndim != 4:
        raise RunnerError("bad_input", "layout conversion needs a 4-D batch, got shape %s" % (x.shape,),
                          hint="pass images as [N, C, H, W]")
    axes = (0, 2, 3, 1) if src == "NCHW" else (0, 3, 1, 2)
    return np.ascontiguousarray(np.transpose(x, axes))


def quantize(x, scale, zero_point, dtype):
    """Real values -> int8/uint8 with the tensor's own scale and zero point (round half to even, clipped)."""
    info = np.iinfo(np.dtype(dtype))
    q = np.round(np.asarray(x, dtype=np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q, scale, zero_point):
    return (np.asarray(q).astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def to_model_input(images, info, layout=None):
    """Float NCHW images -> what the model takes: its layout, its dtype, quantized when it is int8/uint8."""
    x = convert_layout(np.asarray(images, dtype=np.float32), "NCHW", layout) if layout else np.asarray(images)
    dtype = np.dtype(info.dtype)
    if dtype.kind in "iu" and info.quantization is not None:
        return quantize(x, info.quantization[0], info.quantization[1], dtype)
    return np.ascontiguousarray(x.astype(dtype, copy=False))


def from_model_output(y, info):
    """A raw output -> float32, dequantized with the tensor's scale/zero point when it is quantized."""
    y = np.asarray(y)
    if y.dtype.kind in "iu" and info.quantization is not None:
        return dequantize(y, info.quantization[0], info.quantization[1])
    return y.astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------------------------
# ONNX Runtime
# ------------------------------------------------------------------------------------------------------
def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise RunnerError("backend_missing", "onnxruntime is not installed (%s)" % exc,
                          hint="pip install onnxruntime", package="onnxruntime", extra="onnx") from None
    return onnxruntime


def _short(provider):
    return _ORT_SHORT.get(provider, provider)


def resolve_ort_providers(requested, available, allow_fallback):
    """Short names -> ORT provider names that this build has, CPU last as ORT's own per-node fallback.
    Returns (providers, missing). A missing provider is an error unless ``allow_fallback``."""
    chosen, missing = [], []
    for name in requested or ["cpu"]:
        full = name if name.endswith("ExecutionProvider") else ORT_PROVIDERS.get(str(name).lower())
        if full is None:
            raise RunnerError("bad_input", "unknown ONNX Runtime provider %r" % name,
                              hint="known: %s" % ", ".join(ORT_PROVIDERS))
        if full not in available:
            missing.append(_short(full))
        elif full not in chosen:
            chosen.append(full)
    if missing and not allow_fallback:
        raise RunnerError(
            "provider_unavailable",
            "ONNX Runtime provider %s is not available in this onnxruntime build" % ", ".join(missing),
            hint="available: %s; pass --allow-fallback to run on those instead"
                 % ", ".join(_short(p) for p in available),
            available=[_short(p) for p in available], missing=missing)
    if "CPUExecutionProvider" in available and "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen, missing


class OrtSession(object):
    runtime = "onnxruntime"

    def __init__(self, path, providers=None, threads=None, allow_fallback=False, profile_prefix=None,
                 provider_options=None):
        ort = import_onnxruntime()
        self.path = str(path)
        self.requested = [str(p) for p in (providers or ["cpu"])]
        available = list(ort.get_available_providers())
        chosen, missing = resolve_ort_providers(self.requested, available, allow_fallback)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = str(profile_prefix)
        opts = [dict((provider_options or {}).get(_short(p), {})) for p in chosen]
        try:
            self.session = ort.InferenceSession(self.path, sess_options=options, providers=chosen,
                                                provider_options=opts)
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... types
            text = _first_line(exc)
            missing_kernel = re.search(r"Could not find an implementation for (\w+\(\d+\))", text)
            if missing_kernel:  # a build without this operator's kernel (ConvInteger with int8 weights on ARM64)
                raise RunnerError("no_kernel", "onnxruntime %s on this %s has no kernel for %s in %s" % (
                    ort.__version__, platform.machine(), missing_kernel.group(1), os.path.basename(self.path)),
                    hint="quantize with a recipe that holds on this CPU (shufflekit quantize without --target "
                         "or --weight-type makes one)") from None
            raise RunnerError("load_failed", "onnxruntime cannot load %s: %s" % (os.path.basename(self.path), text),
                              hint="check the file is a complete ONNX model (re-export it)") from None
        running = list(self.session.get_providers())
        # A provider can be built in and still fail to start (no driver, no GPU): ORT then drops it
        # with a warning. That is a fallback too, and never a silent one here.
        failed = [_short(p) for p in chosen if p not in running]
        if failed and not allow_fallback:
            raise RunnerError(
                "provider_unavailable",
                "ONNX Runtime provider %s is built in but failed to start on this machine" % ", ".join(failed),
                hint="running: %s; pass --allow-fallback to run on those instead"
                     % ", ".join(_short(p) for p in running),
                available=[_short(p) for p in running], missing=failed)
        self.fallback = missing + failed
        self.providers = running
        self.threads = int(threads) if threads else None
        self.info = {
            "runtime": "onnxruntime", "runtime_version": ort.__version__,
            "providers_requested": self.requested, "providers_available": [_short(p) for p in available],
            "providers": running, "fallback": bool(self.fallback), "fallback_from": self.fallback,
            "threads": self.threads, "graph_optimization": "all",
        }
        self.inputs = [self._info(i) for i in self.session.get_inputs()]
        self.outputs = [self._info(o) for o in self.session.get_outputs()]

    @staticmethod
    def _info(arg):
        shape = [d if isinstance(d, int) and d > 0 else None for d in (arg.shape or [])]
        symbolic = [d if not isinstance(d, int) else None for d in (arg.shape or [])]
        return TensorInfo(arg.name, shape, _ORT_DTYPES.get(arg.type, arg.type), symbolic=symbolic)

    def run(self, feeds):
        try:
            return self.session.run(None, feeds)
        except Exception as exc:
            raise RunnerError("run_failed", "onnxruntime failed to run %s: %s" % (
                os.path.basename(self.path), _first_line(exc)), hint=_shape_hint(self.inputs)) from None

    def end_profiling(self):
        return self.session.end_profiling()

    def close(self):
        self.session = None


# ------------------------------------------------------------------------------------------------------
# TFLite: ai-edge-litert, then tflite_runtime, then tensorflow.lite
# ------------------------------------------------------------------------------------------------------
def import_tflite():
    """Returns (interpreter module, backend name, version). The module has Interpreter, load_delegate
    and, in recent builds, OpResolverType."""
    errors = []
    try:
        from ai_edge_litert import interpreter as module
        return module, "ai-edge-litert", _dist_version("ai-edge-litert", "ai_edge_litert")
    except ImportError as exc:
        errors.append(str(exc))
    try:
        from tflite_runtime import interpreter as module
        import tflite_runtime
        return module, "tflite-runtime", getattr(tflite_runtime, "__version__", None) or _dist_version(
            "tflite-runtime", "tflite_runtime")
    except ImportError as exc:
        errors.append(str(exc))
    try:
        import tensorflow as tf
        module = _TfLiteShim(tf)
        return module, "tensorflow", tf.__version__
    except ImportError as exc:
        errors.append(str(exc))
    raise RunnerError("backend_missing", "no TFLite interpreter is installed (ai-edge-litert, tflite-runtime or "
                      "tensorflow)", hint="pip install ai-edge-litert (or tflite-runtime on a board)",
                      package="ai-edge-litert", extra="tflite")


class _TfLiteShim(object):
    """tensorflow.lite spelled like the interpreter modules of the lean packages."""

    def __init__(self, tf):
        self.Interpreter = tf.lite.Interpreter
        self.load_delegate = tf.lite.experimental.load_delegate
        self.OpResolverType = getattr(tf.lite.experimental, "OpResolverType", None)


class TfliteSession(object):
    runtime = "litert"

    def __init__(self, path, delegate=None, threads=None, allow_fallback=False):
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
                raise RunnerError("provider_unavailable", "this %s build cannot switch XNNPACK off" % backend,
                                  hint="available: cpu, xnnpack", available=["cpu", "xnnpack"], missing=[requested])
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
                    "provider_unavailable", "TFLite delegate %r is not available here (%s)" % (requested, why),
                    hint="available: %s; pass --allow-fallback to use the CPU instead"
                         % ", ".join(available_tflite_delegates(module)),
                    available=available_tflite_delegates(module), missing=[requested])
        actual, errors = None, []
        for attempt in plan:
            kwargs = {"model_path": self.path}
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
                errors.append("%s: %s" % (attempt, _first_line(exc)))
                continue
            if attempt == "xnnpack" and self._ops() and not any(
                    op.get("op_name") == "DELEGATE" for op in self._ops()):
                # XNNPACK declined every node: that run is the built-in kernels, say so
                errors.append("xnnpack: took no operator")
                if "builtin" in plan:
                    continue
                raise RunnerError("provider_unavailable", "XNNPACK takes none of the operators of %s" % (
                    os.path.basename(self.path)), hint="available: builtin (the built-in kernels); pass "
                                                       "--allow-fallback or --provider cpu",
                    available=["cpu", "builtin"], missing=["xnnpack"])
            actual = attempt
            break
        if actual is None:
            if len(errors) == 1 and requested == "xnnpack" and "builtin" not in plan and _loads_builtin(
                    module, resolver_type, self.path):
                raise RunnerError("provider_unavailable", "XNNPACK cannot run %s (%s)" % (
                    os.path.basename(self.path), errors[0]), hint="available: builtin (the built-in kernels); pass "
                                                                  "--allow-fallback or --provider cpu",
                    available=["cpu", "builtin"], missing=["xnnpack"])
            raise RunnerError("load_failed", "TFLite cannot load %s: %s" % (os.path.basename(self.path),
                                                                           errors[-1].split(": ", 1)[-1]),
                              hint="check the file is a complete .tflite model (re-export it)")
        if actual == "builtin" and plan[0] == "xnnpack":
            self.declined = errors[0] if errors else None
            if requested == "xnnpack":
                self.fallback.append("xnnpack")
        ops = self._ops()
        delegate_nodes = sum(1 for op in ops if op.get("op_name") == "DELEGATE")
        self.info = {
            "runtime": "litert", "runtime_version": version, "interpreter": backend,
            "providers_requested": [requested], "providers": [actual], "delegate": actual,
            "fallback": bool(self.fallback), "fallback_from": self.fallback, "threads": self.threads,
            "ops": sum(1 for op in ops if op.get("op_name") != "DELEGATE"), "delegate_partitions": delegate_nodes,
        }
        if self.declined:
            self.info["xnnpack_declined"] = self.declined
        self.providers = [actual]
        self.inputs = [self._info(d) for d in self.interpreter.get_input_details()]
        self.outputs = [self._info(d) for d in self.interpreter.get_output_details()]
        self._shapes = [tuple(int(v) for v in d["shape"]) for d in self.interpreter.get_input_details()]

    def _ops(self):
        getter = getattr(self.interpreter, "_get_ops_details", None)
        try:
            return list(getter()) if getter else []
        except Exception:  # older interpreters: no op details, nothing to report
            return []

    @staticmethod
    def _info(detail):
        signature = detail.get("shape_signature", detail["shape"])
        shape = [int(d) if int(d) >= 0 else None for d in signature]
        scale, zero = detail.get("quantization", (0.0, 0))
        quant = (float(scale), int(zero)) if scale else None
        return TensorInfo(detail["name"], shape, np.dtype(detail["dtype"]).name, quantization=quant,
                          index=int(detail["index"]))

    def run(self, feeds):
        it = self.interpreter
        resized = False
        for k, info in enumerate(self.inputs):
            x = feeds[info.name]
            if x.shape != self._shapes[k]:  # (cached: asking the interpreter costs more than a small op)
                if len(x.shape) != len(info.shape) or any(
                        want is not None and want != got for want, got in zip(info.shape, x.shape)):
                    raise RunnerError("bad_input", "input %r takes shape %s, got %s" % (
                        info.name, _shape_text(info.shape), list(x.shape)), hint=_shape_hint(self.inputs))
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
            raise RunnerError("run_failed", "TFLite failed to run %s: %s" % (os.path.basename(self.path),
                                                                            _first_line(exc)),
                              hint=_shape_hint(self.inputs)) from None
        return [it.get_tensor(o.index) for o in self.outputs]

    def close(self):
        self.interpreter = None


def _loads_builtin(module, resolver_type, path):
    if resolver_type is None:
        return False
    try:
        module.Interpreter(model_path=path,
                           experimental_op_resolver_type=resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES).allocate_tensors()
        return True
    except (ValueError, RuntimeError):
        return False


def _load_delegate(module, name):
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
            reasons.append("%s: %s" % (library, _first_line(exc)))
    if name.lower() not in _DELEGATE_LIBRARIES and os.path.sep not in name:
        return None, "unknown delegate; known: %s, or a delegate library path" % ", ".join(TFLITE_DELEGATES)
    return None, "; ".join(reasons) or "no library"


def available_tflite_delegates(module=None):
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


# ------------------------------------------------------------------------------------------------------
# Opening a model; feeding it; batching
# ------------------------------------------------------------------------------------------------------
def runtime_for(path, runtime=None):
    runtime = _RUNTIME_ALIASES.get(runtime, runtime)
    if runtime:
        if runtime not in RUNTIMES:
            raise RunnerError("bad_input", "unknown runtime %r" % runtime, hint="known: %s" % ", ".join(RUNTIMES))
        return runtime
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in _EXTENSIONS:
        raise RunnerError("bad_input", "cannot tell the runtime of %s from its extension" % os.path.basename(str(path)),
                          hint="name the runtime: onnxruntime or litert")
    return _EXTENSIONS[ext]


def parse_providers(value):
    """"cuda,cpu" or ["cuda", "cpu"] -> ["cuda", "cpu"]; None or "" -> None (the runtime's default)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    names = [str(v).strip() for v in value if str(v).strip()]
    return names or None


def open_session(path, runtime=None, providers=None, threads=None, allow_fallback=False, profile_prefix=None):
    """Open ``path`` in its runtime. ``providers``: ORT short names, or one delegate for TFLite."""
    providers = parse_providers(providers)
    if not os.path.isfile(str(path)):
        raise RunnerError("bad_input", "model file %s does not exist" % path, hint="check the path")
    if threads is not None and int(threads) < 1:
        raise RunnerError("bad_input", "threads must be at least 1, got %s" % threads, hint="pass --threads 1 or more")
    runtime = runtime_for(path, runtime)
    if runtime == "onnxruntime":
        return OrtSession(path, providers, threads, allow_fallback, profile_prefix=profile_prefix)
    providers = list(providers or [])
    if len(providers) > 1:
        raise RunnerError("bad_input", "TFLite takes one delegate, got %s" % ", ".join(providers),
                          hint="pass one of: %s" % ", ".join(TFLITE_DELEGATES))
    if profile_prefix:
        raise RunnerError("bad_input", "TFLite sessions have no built-in profiler", hint="use profile_tflite_ops")
    return TfliteSession(path, providers[0] if providers else None, threads, allow_fallback)


def image_input(session):
    """The one image input; shufflekit models have exactly one."""
    if len(session.inputs) != 1:
        raise RunnerError("bad_input", "the model has %d inputs; shufflekit runs single-input image models"
                          % len(session.inputs), hint="export the model with shufflekit")
    return session.inputs[0]


def plan_batch(info, batch):
    """How a batch of ``batch`` images is fed: ('direct', batch) when the model's batch is dynamic or equal,
    ('loop', 1) when the model is fixed at batch 1. Any other fixed batch cannot take it."""
    if batch < 1:
        raise RunnerError("bad_input", "batch must be at least 1, got %d" % batch, hint="pass --batch 1 or more")
    fixed = info.batch
    if fixed is None or fixed == batch:
        return "direct", batch
    if fixed == 1:
        return "loop", 1
    raise RunnerError("bad_input", "the model is fixed at batch %d and cannot take a batch of %d" % (fixed, batch),
                      hint="pass --batch %d (or 1, or export with a dynamic batch)" % fixed)


def example_images(info, batch, layout=None, seed=0):
    """Deterministic float NCHW images of the model's size (standard-normal, like normalised pixels)."""
    shape = list(info.shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise RunnerError("bad_input", "input %r has shape %s; an image model takes a fixed [N, C, H, W]" % (
            info.name, _shape_text(info.shape)), hint="export with a fixed input size")
    if (layout or "NCHW").upper() == "NHWC":
        shape = [shape[0], shape[3], shape[1], shape[2]]
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch,) + tuple(shape[1:])).astype(np.float32)


def prepare(session, images, layout=None):
    """Float NCHW images -> {input name: the whole batch in the model's layout and dtype}."""
    info = image_input(session)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise RunnerError("bad_input", "images must be a 4-D [N, C, H, W] batch, got shape %s" % (images.shape,),
                          hint=_shape_hint(session.inputs))
    x = to_model_input(images, info, layout)
    if len(info.shape) != 4 or any(want is not None and want != got for want, got in zip(info.shape[1:], x.shape[1:])):
        raise RunnerError("bad_input", "the model takes %s images per batch row, got %s (layout %s)" % (
            _shape_text(info.shape), list(x.shape), layout or "as given"), hint=_shape_hint(session.inputs))
    return {info.name: x}


def prepare_feeds(session, images, layout=None):
    """Float NCHW images -> the list of feed dicts one batch takes (one dict, or one per image when the
    model is fixed at batch 1)."""
    info = image_input(session)
    x = prepare(session, images, layout)[info.name]
    how, _ = plan_batch(info, x.shape[0])
    if how == "loop":
        return [{info.name: x[i:i + 1]} for i in range(x.shape[0])]
    return [{info.name: x}]


def run_feeds(session, feeds_list):
    """Run every feed dict; outputs concatenated along the batch, dequantized to float32."""
    parts = [session.run(feeds) for feeds in feeds_list]
    outputs = []
    for k, info in enumerate(session.outputs):
        chunk = [p[k] for p in parts]
        y = chunk[0] if len(chunk) == 1 else np.concatenate(chunk, axis=0)
        outputs.append(from_model_output(y, info))
    return outputs


def predict(session, images, layout=None):
    """Float NCHW images in, float32 outputs out: layout, quantization and batching done here."""
    return run_feeds(session, prepare_feeds(session, images, layout))


def predict_all(session, images, layout=None):
    """``predict`` for any number of images: a model fixed at batch N > 1 takes them in whole batches, the
    last one filled up with repeats of the first images whose outputs are dropped."""
    images = np.asarray(images, dtype=np.float32)
    fixed = image_input(session).batch
    if fixed is None or fixed <= 1 or len(images) == fixed:
        return predict(session, images, layout)
    missing = (-len(images)) % fixed
    if missing:
        images = np.concatenate([images, np.resize(images, (missing,) + images.shape[1:])])
    parts = [predict(session, images[i:i + fixed], layout) for i in range(0, len(images), fixed)]
    keep = len(images) - missing
    return [np.concatenate([p[k] for p in parts])[:keep] for k in range(len(parts[0]))]


# ------------------------------------------------------------------------------------------------------
# Benchmark
# ------------------------------------------------------------------------------------------------------
def latency_stats(times_s):
    t = np.asarray(times_s, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(t, [50, 90, 99])
    return {"mean_ms": float(t.mean()), "std_ms": float(t.std(ddof=1)) if t.size > 1 else 0.0,
            "min_ms": float(t.min()), "p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99),
            "max_ms": float(t.max())}


def check_counts(warmup, iters, seconds):
    if warmup is not None and int(warmup) < 0:
        raise RunnerError("bad_input", "warmup must be 0 or more, got %s" % warmup, hint="pass --warmup 0 or more")
    if iters is not None and int(iters) < 1:
        raise RunnerError("bad_input", "iterations must be at least 1, got %s" % iters, hint="pass --iters 1 or more")
    if seconds is not None and not float(seconds) > 0:
        raise RunnerError("bad_input", "seconds must be more than 0, got %s" % seconds,
                          hint="pass --seconds with a positive number")
    if iters is not None and seconds is not None:
        raise RunnerError("bad_input", "iterations and seconds both given", hint="pass one of --iters, --seconds")


def timed_loop(session, feeds_list, warmup=10, iters=None, seconds=None):
    """The measured loop: per iteration, one batch (one run, or one run per image when looping).
    Returns the list of per-batch wall times in seconds. Nothing but the runtime call is timed."""
    run = session.run
    clock = time.perf_counter
    for _ in range(int(warmup)):
        for feeds in feeds_list:
            run(feeds)
    times = []
    if seconds is not None:
        deadline = clock() + float(seconds)
        while True:
            start = clock()
            for feeds in feeds_list:
                run(feeds)
            end = clock()
            times.append(end - start)
            if end >= deadline:
                break
    else:
        for _ in range(int(iters if iters is not None else 100)):
            start = clock()
            for feeds in feeds_list:
                run(feeds)
            times.append(clock() - start)
    return times


def benchmark(path, runtime=None, providers=None, threads=None, allow_fallback=False, layout=None, batch=1,
              warmup=10, iters=None, seconds=None, op_profile=False, op_profile_runs=None, seed=0,
              keep_times=False, parity_inputs=None, parity_outputs=None):
    """Load, time, and (optionally) op-profile one model file. Returns a JSON-ready dict.
    With ``parity_inputs``/``parity_outputs``, the session then predicts those images (after the timing,
    so the timed figures are untouched) and writes its outputs for the host to judge."""
    providers = parse_providers(providers)
    check_counts(warmup, iters, seconds)
    if iters is None and seconds is None:
        iters = 100
    rss_before = _rss_bytes()
    gc_was = _gc_off()
    try:
        start = time.perf_counter()
        session = open_session(path, runtime, providers, threads, allow_fallback)
        load_s = time.perf_counter() - start
        info = image_input(session)
        how, per_call = plan_batch(info, int(batch))
        images = example_images(info, int(batch), layout, seed)
        feeds_list = prepare_feeds(session, images, layout)
        start = time.perf_counter()
        for feeds in feeds_list:
            session.run(feeds)
        first_s = time.perf_counter() - start
        times = timed_loop(session, feeds_list, warmup, iters, seconds)
    finally:
        _gc_restore(gc_was)
    total = float(sum(times))
    result = dict(session.info)
    result.update({
        "model": os.path.basename(str(path)), "model_bytes": os.path.getsize(str(path)),
        "input": info.to_dict(), "layout": layout, "batch": int(batch),
        "batching": "one call per batch" if how == "direct" else "model fixed at batch 1: one call per image",
        "warmup": int(warmup), "iters": len(times), "seconds_requested": seconds,
        "load_ms": load_s * 1e3, "first_inference_ms": first_s * 1e3,
        "latency_ms": latency_stats(times), "throughput_ips": len(times) * int(batch) / total if total else None,
        "rss_before_load_bytes": rss_before, "rss_after_bytes": _rss_bytes(), "peak_rss_bytes": _peak_rss_bytes(),
        "host": host_facts(),
    })
    if keep_times:
        result["times_ms"] = [t * 1e3 for t in times]
    if op_profile:
        runs = int(op_profile_runs or min(max(len(times), 10), 100))
        result["op_profile"] = profile_ops(path, result["runtime"], providers, threads, allow_fallback, feeds_list,
                                           warmup=min(int(warmup), 10), runs=runs)
    if parity_inputs:
        if not parity_outputs:
            raise RunnerError("bad_input", "parity_inputs given without parity_outputs", hint="set both")
        save_outputs(predict_all(session, np.load(parity_inputs, allow_pickle=False), layout)[0], parity_outputs)
        result["parity_outputs"] = os.path.basename(parity_outputs)
    session.close()
    return result


def save_outputs(array, path):
    """Write one .npy atomically: a half-written file must never look like the device's answer."""
    tmp = path + ".partial.npy"
    np.save(tmp, np.asarray(array, dtype=np.float32))
    os.replace(tmp, path)


def _gc_off():
    import gc
    was = gc.isenabled()
    gc.collect()
    gc.disable()  # a collection in the middle of the loop is harness noise, not model latency
    return was


def _gc_restore(was):
    import gc
    if was:
        gc.enable()


# ------------------------------------------------------------------------------------------------------
# Op profiling
# ------------------------------------------------------------------------------------------------------
def profile_ops(path, runtime, providers, threads, allow_fallback, feeds_list, warmup=5, runs=50):
    """Time per operator. ORT: its own profiler, in a separate session (profiling slows every node a little,
    so it never touches the benchmark's figures). TFLite: see profile_tflite_ops."""
    if runtime == "onnxruntime":
        return profile_ort_ops(path, providers, threads, allow_fallback, feeds_list, warmup, runs)
    return profile_tflite_ops(path, providers, threads, allow_fallback, feeds_list, warmup, runs)


def profile_ort_ops(path, providers, threads, allow_fallback, feeds_list, warmup=5, runs=50):
    folder = tempfile.mkdtemp(prefix="shufflekit-ortprof-")
    profile_file = None
    try:
        session = OrtSession(path, providers, threads, allow_fallback,
                             profile_prefix=os.path.join(folder, "profile"))
        for _ in range(int(warmup)):
            for feeds in feeds_list:
                session.run(feeds)
        for _ in range(int(runs)):
            for feeds in feeds_list:
                session.run(feeds)
        profile_file = session.end_profiling()
        with open(profile_file) as handle:
            events = json.load(handle)
        return summarize_ort_profile(events, skip_runs=int(warmup) * len(feeds_list),
                                     batches=len(feeds_list))
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def summarize_ort_profile(events, skip_runs=0, batches=1):
    """ORT profiler events -> mean time per node per batch (ms), with op type, provider and shapes.
    The first ``skip_runs`` model runs (warmup) are left out."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    kept = runs[skip_runs:] or runs
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in kept]
    nodes = {}
    order = []
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        ts = e.get("ts", 0)
        if windows and not any(a <= ts <= b for a, b in windows):
            continue
        args = e.get("args", {})
        name = e["name"][: -len("_kernel_time")]
        node = nodes.get(name)
        if node is None:
            node = nodes[name] = {"name": name, "op_type": args.get("op_name", "?"),
                                  "provider": args.get("provider"), "total_us": 0.0, "calls": 0,
                                  "input_shapes": _ort_shapes(args.get("input_type_shape")),
                                  "output_shapes": _ort_shapes(args.get("output_type_shape"))}
            order.append(name)
        node["total_us"] += float(e.get("dur", 0))
        node["calls"] += 1
    per = float(len(kept)) / max(batches, 1)  # runs per batch: looping batches make several runs each
    out = []
    for name in order:
        node = nodes[name]
        node["mean_ms"] = node.pop("total_us") / 1e3 / per if per else 0.0
        out.append(node)
    run_ms = [e["dur"] / 1e3 for e in kept]
    placement = {}
    for node in out:
        placement[node["provider"]] = placement.get(node["provider"], 0) + 1
    return {"available": True, "method": "onnxruntime profiler (kernel time per node)",
            "runs": int(per), "nodes": out, "node_sum_ms": float(sum(n["mean_ms"] for n in out)),
            "run_ms": float(sum(run_ms) / per) if per else None, "node_providers": placement}


def _ort_shapes(value):
    shapes = []
    for item in value or []:
        if isinstance(item, dict):
            shapes.extend(list(v) for v in item.values())
    return shapes


def _tflite_schema():
    """The flatbuffer schema module and flatbuffers (shipped with ai-edge-litert and tensorflow, not with
    tflite-runtime). Returns (schema, flatbuffers) or (None, reason)."""
    try:
        import flatbuffers
    except ImportError:
        return None, "the flatbuffers package is not installed"
    for name in ("ai_edge_litert.schema_py_generated", "tensorflow.lite.python.schema_py_generated"):
        try:
            module = __import__(name, fromlist=["Model"])
            return (module, flatbuffers), None
        except ImportError:
            continue
    return None, "no TFLite flatbuffer schema (ai-edge-litert or tensorflow) is installed"


def profile_tflite_ops(path, providers, threads, allow_fallback, feeds_list, warmup=5, runs=50):
    """Per-operator times for TFLite, measured in isolation.

    The TFLite Python interpreters (ai-edge-litert, tflite-runtime, tensorflow.lite) expose no op profiler
    (only the native benchmark_model has one). So each operator is cut out of the model as a one-operator
    model, fed the very tensors it sees in a full run, and timed on the same delegate and threads. What this
    cannot see: whole-graph optimisations (XNNPACK fusing a PAD into the next convolution, eliding
    transposes) and inter-op cache effects; and every op pays one interpreter invoke. So the sum is an
    upper bound of the end-to-end time; read the shares, and compare the sum with the end-to-end figure.
    """
    found, why = _tflite_schema()
    if found is None:
        return {"available": False, "method": None,
                "reason": "the TFLite Python interpreter offers no per-operator profiler, and isolated-operator "
                          "timing needs the flatbuffer schema: %s" % why}
    schema, flatbuffers = found
    module, backend, _ = import_tflite()
    probe = TfliteSession(path, parse_providers(providers)[0] if parse_providers(providers) else None,
                          threads, allow_fallback)
    delegate = probe.info["delegate"]
    if delegate not in ("xnnpack", "builtin"):
        return {"available": False, "method": None,
                "reason": "isolated-operator timing runs on xnnpack or the built-in kernels, not %s" % delegate}
    resolver_type = getattr(module, "OpResolverType", None)
    with open(str(path), "rb") as handle:
        blob = handle.read()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(blob, 0))
    if len(model.subgraphs) != 1:
        return {"available": False, "method": None, "reason": "the model has several subgraphs"}
    graph = model.subgraphs[0]
    values = _all_tensor_values(module, resolver_type, blob, probe, feeds_list[0])
    names = dict((v, k) for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_"))
    floor = None
    nodes = []
    for index, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        op_type = names.get(max(code.builtinCode, getattr(code, "deprecatedBuiltinCode", 0)), "CUSTOM")
        inputs = [t for t in op.inputs if t >= 0 and not _has_data(model, graph, t)]
        content = _one_op_model(schema, flatbuffers, model, graph, op, inputs)
        times, ran_on = _time_one_op(module, resolver_type, content, inputs, values, delegate, threads, warmup, runs)
        tensor_name = graph.tensors[op.outputs[0]].name if op.outputs else None
        nodes.append({"name": "%d:%s" % (index, tensor_name.decode() if isinstance(tensor_name, bytes)
                                          else tensor_name),
                      "op_type": op_type, "provider": ran_on, "calls": len(times),
                      "mean_ms": float(np.mean(times)) * 1e3, "median_ms": float(np.median(times)) * 1e3,
                      "input_shapes": [list(values[t].shape) if t in values else list(graph.tensors[t].shape)
                                       for t in op.inputs if t >= 0],
                      "output_shapes": [list(graph.tensors[t].shape) for t in op.outputs]})
        if floor is None or nodes[-1]["median_ms"] < floor:
            floor = nodes[-1]["median_ms"]
    per_batch = len(feeds_list)
    for node in nodes:  # one batch runs each op once per model call
        node["mean_ms"] *= per_batch
        node["median_ms"] *= per_batch
    placement = {}
    for node in nodes:
        placement[node["provider"]] = placement.get(node["provider"], 0) + 1
    return {"available": True,
            "method": "isolated operators (each op run alone as a one-op model on its recorded inputs; "
                      "the TFLite Python interpreter has no op profiler)",
            "runs": int(runs), "nodes": nodes, "node_sum_ms": float(sum(n["mean_ms"] for n in nodes)),
            "run_ms": None, "invoke_floor_ms": floor, "node_providers": placement}


def _has_data(model, graph, tensor):
    buffer = model.buffers[graph.tensors[tensor].buffer] if graph.tensors[tensor].buffer < len(model.buffers) else None
    return buffer is not None and buffer.data is not None and len(buffer.data) > 0


def _all_tensor_values(module, resolver_type, blob, session, feeds):
    """Every tensor of one full run (built-in kernels, all intermediates kept), by index."""
    kwargs = {"model_content": blob, "experimental_preserve_all_tensors": True}
    if resolver_type is not None:
        kwargs["experimental_op_resolver_type"] = resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    full = module.Interpreter(**kwargs)
    full.allocate_tensors()
    for info in session.inputs:
        x = feeds[info.name]
        if tuple(x.shape) != tuple(full.get_tensor(info.index).shape):
            x = x[:1]  # a dynamic-batch model profiled at batch 1
        full.set_tensor(info.index, x)
    full.invoke()
    values = {}
    for detail in full.get_tensor_details():
        try:
            values[detail["index"]] = np.array(full.get_tensor(detail["index"]))
        except ValueError:  # tensors without data (optional, released)
            continue
    return values


def _one_op_model(schema, flatbuffers, model, graph, op, inputs):
    import copy
    used = set(graph.tensors[t].buffer for t in op.inputs if t >= 0)
    one = copy.copy(model)
    sub = copy.copy(graph)
    sub.operators, sub.inputs, sub.outputs = [op], list(inputs), list(op.outputs)
    one.subgraphs = [sub]
    one.signatureDefs = []
    one.buffers = [b if (i in used or i == 0) else schema.BufferT() for i, b in enumerate(model.buffers)]
    builder = flatbuffers.Builder(1024)
    builder.Finish(one.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _time_one_op(module, resolver_type, content, inputs, values, delegate, threads, warmup, runs):
    attempts = [delegate] if delegate == "builtin" else [delegate, "builtin"]
    for attempt in attempts:
        kwargs = {"model_content": content}
        if threads:
            kwargs["num_threads"] = int(threads)
        if attempt == "builtin" and resolver_type is not None:
            kwargs["experimental_op_resolver_type"] = resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            it = module.Interpreter(**kwargs)
            it.allocate_tensors()
            for t in inputs:
                it.set_tensor(t, values[t])
            it.invoke()
        except (RuntimeError, ValueError, KeyError):
            continue  # XNNPACK refuses some ops alone (e.g. a quantized op on its own): time it on built-ins
        delegated = any(op.get("op_name") == "DELEGATE" for op in it._get_ops_details()) \
            if hasattr(it, "_get_ops_details") else attempt != "builtin"
        for _ in range(int(warmup)):
            it.invoke()
        clock = time.perf_counter
        invoke = it.invoke
        times = []
        for _ in range(int(runs)):
            start = clock()
            invoke()
            times.append(clock() - start)
        return times, ("xnnpack" if delegated else "builtin")
    raise RunnerError("run_failed", "an operator of the model cannot be run on its own", hint="profile without --op-profile")


# ------------------------------------------------------------------------------------------------------
# Host facts
# ------------------------------------------------------------------------------------------------------
def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _cpu_model():
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Model", "cpu model", "Processor"):
        match = re.search(r"^%s\s*:\s*(.+)$" % re.escape(key), text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    part = re.search(r"^CPU part\s*:\s*(\S+)", text, re.MULTILINE)
    if part:  # ARM boards name no model: the implementer/part ids are what there is
        impl = re.search(r"^CPU implementer\s*:\s*(\S+)", text, re.MULTILINE)
        return "ARM implementer %s part %s" % (impl.group(1) if impl else "?", part.group(1))
    if sys.platform == "darwin":
        try:
            import subprocess
            return subprocess.check_output(["sysctl", "-n", "machdep.cpu.brand_string"], timeout=5).decode().strip()
        except Exception:
            pass
    return platform.processor() or platform.machine() or None


def _cpufreq():
    base = "/sys/devices/system/cpu"
    facts = {}
    try:
        cpus = sorted(n for n in os.listdir(base) if re.match(r"^cpu\d+$", n))
    except OSError:
        return facts
    governors, cur, maxf = {}, [], []
    for cpu in cpus:
        folder = os.path.join(base, cpu, "cpufreq")
        gov = _read(os.path.join(folder, "scaling_governor"))
        if gov:
            governors[gov] = governors.get(gov, 0) + 1
        for name, into in (("scaling_cur_freq", cur), ("cpuinfo_max_freq", maxf)):
            value = _read(os.path.join(folder, name))
            if value and value.isdigit():
                into.append(int(value) / 1e3)
    if governors:
        facts["governor"] = ",".join(sorted(governors))
    if cur:
        facts["freq_mhz_min"], facts["freq_mhz_max"] = min(cur), max(cur)
    if maxf:
        facts["freq_mhz_limit"] = max(maxf)
    return facts


def _thermal():
    base = "/sys/class/thermal"
    zones = []
    try:
        names = sorted(n for n in os.listdir(base) if n.startswith("thermal_zone"))
    except OSError:
        return zones
    for name in names:
        temp = _read(os.path.join(base, name, "temp"))
        if temp and temp.lstrip("-").isdigit():
            zones.append({"zone": _read(os.path.join(base, name, "type")) or name, "celsius": int(temp) / 1e3})
    return zones


def _physical_cores():
    text = _read("/proc/cpuinfo") or ""
    pairs = set(re.findall(r"^physical id\s*:\s*(\d+)\s*$.*?^core id\s*:\s*(\d+)", text, re.MULTILINE | re.DOTALL))
    return len(pairs) or None


def _memory_total():
    text = _read("/proc/meminfo") or ""
    match = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def runtime_versions():
    """What runtimes this Python can import, with versions (never raising)."""
    found = {}
    try:
        ort = import_onnxruntime()
        found["onnxruntime"] = {"version": ort.__version__,
                                "providers": [_short(p) for p in ort.get_available_providers()]}
    except RunnerError:
        pass
    except Exception as exc:  # a broken install is a fact worth reporting, not a crash
        found["onnxruntime"] = {"error": _first_line(exc)}
    try:
        module, backend, version = import_tflite()
        found["litert"] = {"interpreter": backend, "version": version}
    except RunnerError:
        pass
    except Exception as exc:
        found["litert"] = {"error": _first_line(exc)}
    return found


# x86 CPU models (qemu -cpu names) whose int8 dot products accumulate in 32 bits (AVX512-VNNI, AVX-VNNI)
_VNNI_CPU_MODELS = ("cascadelake", "cooperlake", "icelake", "sapphirerapids", "graniterapids", "alderlake",
                    "epyc-genoa", "epyc-turin")


def emulation_facts():
    """Whether this Python runs on an emulated CPU, and the kernel family its int8 arithmetic follows.
    A board built by `shufflekit board build` declares its emulator (SHUFFLEKIT_EMULATOR, and
    SHUFFLEKIT_EMULATED_CPU for an x86 model); user-mode qemu otherwise shows as a machine whose
    /proc/cpuinfo describes another architecture (the host's). Under emulation /proc/cpuinfo is the
    host's, so the kernel family comes from the declared CPU, not from its flags."""
    machine = platform.machine().lower()
    text = _read("/proc/cpuinfo") or ""
    flags_line = re.search(r"^(flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    flags = set(flags_line.group(2).split()) if flags_line else set()
    emulator = os.environ.get("SHUFFLEKIT_EMULATOR") or None
    cpu = os.environ.get("SHUFFLEKIT_EMULATED_CPU") or None
    arm = machine in ("aarch64", "arm64") or machine.startswith("armv8")
    if emulator is None and arm and ({"sse2", "avx2"} & flags):
        emulator = "user-mode emulation (this ARM Python sees an x86 host's /proc/cpuinfo)"
    if emulator is None and machine in ("x86_64", "amd64") and "asimd" in flags:
        emulator = "user-mode emulation (this x86 Python sees an ARM host's /proc/cpuinfo)"
    if arm:
        family = "arm64"
    elif machine in ("x86_64", "amd64"):
        if cpu:
            vnni = any(cpu.lower().startswith(m) for m in _VNNI_CPU_MODELS)
        elif emulator:
            vnni = None  # an emulator that does not say which CPU it presents
        else:
            vnni = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
        family = None if vnni is None else ("x86-vnni" if vnni else "x86-avx2")
    else:
        family = None
    return {"emulated": emulator is not None, "emulator": emulator, "emulated_cpu": cpu, "kernel_family": family}


def host_facts(with_runtimes=True):
    """CPU model, cores, frequency governor and frequencies, thermal zones, OS, Python, numpy and runtimes,
    and whether the CPU is emulated."""
    facts = {
        "hostname": platform.node(), "cpu_model": _cpu_model(), "machine": platform.machine(),
        "logical_cores": os.cpu_count(), "physical_cores": _physical_cores(),
        "os": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
        "memory_bytes": _memory_total(),
    }
    if hasattr(os, "sched_getaffinity"):
        facts["usable_cores"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        facts["load_average"] = [round(v, 2) for v in os.getloadavg()]
    facts.update(_cpufreq())
    thermal = _thermal()
    if thermal:
        facts["thermal"] = thermal
    android = _read("/system/build.prop")
    if android:
        match = re.search(r"^ro.product.model=(.+)$", android, re.MULTILINE)
        facts["android_model"] = match.group(1) if match else None
    facts.update(emulation_facts())
    if facts["emulated"]:  # /proc/cpuinfo is the host's: its model is not this device's
        facts["cpu_model"] = "emulated %s%s" % (facts["machine"], " (%s)" % facts["emulated_cpu"]
                                                if facts["emulated_cpu"] else "")
    if with_runtimes:
        facts["runtimes"] = runtime_versions()
    return facts


def _status_kb(field):
    text = _read("/proc/self/status") or ""
    match = re.search(r"^%s:\s*(\d+) kB" % field, text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def _rss_bytes():
    return _status_kb("VmRSS")


def _peak_rss_bytes():
    """The process's resident-memory high-water mark."""
    peak = _status_kb("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource
        value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(value) if sys.platform == "darwin" else int(value) * 1024
    except (ImportError, OSError):
        return None


def _dist_version(dist, module_name):
    try:
        from importlib import metadata
        return metadata.version(dist)
    except Exception:
        module = sys.modules.get(module_name)
        return getattr(module, "__version__", None)


def _first_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def _shape_text(shape):
    return "[%s]" % ", ".join("?" if d is None else str(d) for d in shape)


def _shape_hint(inputs):
    return "the model takes " + ", ".join("%s %s" % (i.name, _shape_text(i.shape)) for i in inputs)


# ------------------------------------------------------------------------------------------------------
# Job mode
# ------------------------------------------------------------------------------------------------------
def run_job(job):
    """Execute one job dict; returns the result dict or raises RunnerError."""
    if not isinstance(job, dict):
        raise RunnerError("bad_input", "a job is a JSON object", hint="see the runner's docstring")
    mode = job.get("mode", "benchmark")
    if mode not in ("probe", "benchmark", "run"):
        raise RunnerError("bad_input", "unknown job mode %r" % mode, hint="use probe, benchmark or run")
    if mode == "probe":
        return {"host": host_facts(), "tflite_delegates": available_tflite_delegates()
                if "litert" in runtime_versions() else [], "protocol": RUNNER_PROTOCOL}
    if "model" not in job:
        raise RunnerError("bad_input", "the job names no model", hint="set \"model\" to a .onnx or .tflite path")
    providers = parse_providers(job.get("provider", job.get("providers")))
    common = dict(runtime=job.get("runtime"), providers=providers, threads=job.get("threads"),
                  allow_fallback=bool(job.get("allow_fallback", False)))
    if mode == "benchmark":
        return benchmark(job["model"], layout=job.get("layout"), batch=int(job.get("batch", 1)),
                         warmup=int(job.get("warmup", 10)), iters=job.get("iters"), seconds=job.get("seconds"),
                         op_profile=bool(job.get("op_profile", False)), op_profile_runs=job.get("op_profile_runs"),
                         seed=int(job.get("seed", 0)), keep_times=bool(job.get("keep_times", False)),
                         parity_inputs=job.get("parity_inputs"), parity_outputs=job.get("parity_outputs"), **common)
    if mode == "run":
        for key in ("inputs", "outputs"):
            if key not in job:
                raise RunnerError("bad_input", "a run job needs %r (an .npy path)" % key, hint="set it in the job")
        images = np.load(job["inputs"], allow_pickle=False)
        session = open_session(job["model"], **common)
        outputs = predict_all(session, images, job.get("layout"))
        save_outputs(outputs[0], job["outputs"])
        result = dict(session.info)
        result.update({"model": os.path.basename(job["model"]), "outputs": job["outputs"],
                       "shape": list(outputs[0].shape), "host": host_facts(with_runtimes=False)})
        return result
    raise RunnerError("bad_input", "unknown job mode %r" % mode, hint="use probe, benchmark or run")


def main(argv=None):
    """``runner.py JOB.json|-`` -> one JSON object on stdout. Exit 0 ok, 2 a RunnerError, 1 a crash."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Runtimes print to stdout from C++ (delegate banners, warnings): keep fd 1 for our JSON only.
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    code = 0
    try:
        try:
            if len(argv) != 1:
                raise RunnerError("bad_input", "usage: runner.py JOB.json (or - for stdin)", hint="pass one job")
            text = sys.stdin.read() if argv[0] == "-" else open(argv[0]).read()
            try:
                job = json.loads(text)
            except ValueError as exc:
                raise RunnerError("bad_input", "the job is not valid JSON (%s)" % exc, hint="check the job file")
            reply = {"ok": True, "protocol": RUNNER_PROTOCOL, "result": run_job(job)}
        except RunnerError as exc:
            reply, code = {"ok": False, "protocol": RUNNER_PROTOCOL, "error": exc.to_dict()}, 2
        except Exception as exc:
            reply, code = {"ok": False, "protocol": RUNNER_PROTOCOL,
                           "error": {"kind": "internal", "message": "%s: %s" % (type(exc).__name__, _first_line(exc)),
                                     "hint": "this is a bug in the runner", "traceback": traceback.format_exc()}}, 1
        sys.stdout.flush()
    finally:
        os.dup2(real_stdout, 1)
        os.close(real_stdout)
    sys.stdout.write(json.dumps(reply, default=_json_default) + "\n")
    sys.stdout.flush()
    return code


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
