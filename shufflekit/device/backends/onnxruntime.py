"""ONNX Runtime: providers by short name (a missing one is an error listing what exists, unless fallback
is allowed), the session, and per-operator times from ORT's own profiler in a separate session."""

from __future__ import annotations

import json
import os
import platform
import re
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import RunnerError, first_line, shape_hint
from ..tensors import Feeds, TensorInfo
from .registry import Backend, register

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


_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise RunnerError(
            "backend_missing",
            "onnxruntime is not installed (%s)" % exc,
            hint="pip install onnxruntime",
            package="onnxruntime",
            extra="onnx",
        ) from None
    return onnxruntime


def _short(provider: str) -> str:
    return _ORT_SHORT.get(provider, provider)


def resolve_ort_providers(
    requested: Optional[Sequence[str]], available: Sequence[str], allow_fallback: bool
) -> Tuple[List[str], List[str]]:
    """Short names -> ORT provider names that this build has, CPU last as ORT's own per-node fallback.
    Returns (providers, missing). A missing provider is an error unless ``allow_fallback``."""
    chosen, missing = [], []
    for name in requested or ["cpu"]:
        full = name if name.endswith("ExecutionProvider") else ORT_PROVIDERS.get(str(name).lower())
        if full is None:
            raise RunnerError(
                "bad_input", "unknown ONNX Runtime provider %r" % name, hint="known: %s" % ", ".join(ORT_PROVIDERS)
            )
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
            available=[_short(p) for p in available],
            missing=missing,
        )
    if "CPUExecutionProvider" in available and "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen, missing


class OrtSession:
    runtime = "onnxruntime"

    def __init__(
        self,
        path: str,
        providers: Optional[Sequence[str]] = None,
        threads: Optional[int] = None,
        allow_fallback: bool = False,
        profile_prefix: Optional[str] = None,
        provider_options: Optional[Dict[str, Dict[str, Any]]] = None,
        spin: bool = True,
    ) -> None:
        ort = import_onnxruntime()
        self.path = str(path)
        self.requested = [str(p) for p in (providers or ["cpu"])]
        available = list(ort.get_available_providers())
        chosen, missing = resolve_ort_providers(self.requested, available, allow_fallback)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if not spin:  # idle intra-op threads sleep: they would spin on a core another process needs
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = int(threads)
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = str(profile_prefix)
        opts = [dict((provider_options or {}).get(_short(p), {})) for p in chosen]
        try:
            self.session = ort.InferenceSession(
                self.path, sess_options=options, providers=chosen, provider_options=opts
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... types
            text = first_line(exc)
            missing_kernel = re.search(r"Could not find an implementation for (\w+\(\d+\))", text)
            if missing_kernel:  # a build without this operator's kernel (ConvInteger with int8 weights on ARM64)
                raise RunnerError(
                    "no_kernel",
                    "onnxruntime %s on this %s has no kernel for %s in %s"
                    % (ort.__version__, platform.machine(), missing_kernel.group(1), os.path.basename(self.path)),
                    hint="quantize with a recipe that holds on this CPU (shufflekit quantize without --target "
                    "or --weight-type makes one)",
                ) from None
            raise RunnerError(
                "load_failed",
                "onnxruntime cannot load %s: %s" % (os.path.basename(self.path), text),
                hint="check the file is a complete ONNX model (re-export it)",
            ) from None
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
                available=[_short(p) for p in running],
                missing=failed,
            )
        self.fallback = missing + failed
        self.providers = running
        self.threads = int(threads) if threads else None
        self.info = {
            "runtime": "onnxruntime",
            "runtime_version": ort.__version__,
            "providers_requested": self.requested,
            "providers_available": [_short(p) for p in available],
            "providers": running,
            "fallback": bool(self.fallback),
            "fallback_from": self.fallback,
            "threads": self.threads,
            "graph_optimization": "all",
        }
        self.inputs = [self._info(i) for i in self.session.get_inputs()]
        self.outputs = [self._info(o) for o in self.session.get_outputs()]

    @staticmethod
    def _info(arg: Any) -> TensorInfo:
        shape = [d if isinstance(d, int) and d > 0 else None for d in (arg.shape or [])]
        symbolic = [d if not isinstance(d, int) else None for d in (arg.shape or [])]
        return TensorInfo(arg.name, shape, _ORT_DTYPES.get(arg.type, arg.type), symbolic=symbolic)

    def run(self, feeds: Feeds) -> List[Any]:
        try:
            return self.session.run(None, feeds)
        except Exception as exc:
            raise RunnerError(
                "run_failed",
                "onnxruntime failed to run %s: %s" % (os.path.basename(self.path), first_line(exc)),
                hint=shape_hint(self.inputs),
            ) from None

    def end_profiling(self) -> str:
        return self.session.end_profiling()

    def close(self) -> None:
        self.session = None


def profile_ort_ops(
    path: str,
    providers: Optional[Sequence[str]],
    threads: Optional[int],
    allow_fallback: bool,
    feeds_list: Sequence[Feeds],
    warmup: int = 5,
    runs: int = 50,
) -> Dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="shufflekit-ortprof-")
    profile_file = None
    try:
        session = OrtSession(path, providers, threads, allow_fallback, profile_prefix=os.path.join(folder, "profile"))
        for _ in range(int(warmup)):
            for feeds in feeds_list:
                session.run(feeds)
        for _ in range(int(runs)):
            for feeds in feeds_list:
                session.run(feeds)
        profile_file = session.end_profiling()
        with open(profile_file) as handle:
            events = json.load(handle)
        return summarize_ort_profile(events, skip_runs=int(warmup) * len(feeds_list), batches=len(feeds_list))
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def summarize_ort_profile(events: List[Dict[str, Any]], skip_runs: int = 0, batches: int = 1) -> Dict[str, Any]:
    """ORT profiler events -> mean time per node per batch (ms), with op type, provider and shapes.
    The first ``skip_runs`` model runs (warmup) are left out."""
    runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"), key=lambda e: e["ts"]
    )
    kept = runs[skip_runs:] or runs
    windows = [(e["ts"], e["ts"] + e["dur"]) for e in kept]
    nodes: Dict[str, Dict[str, Any]] = {}
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
            node = nodes[name] = {
                "name": name,
                "op_type": args.get("op_name", "?"),
                "provider": args.get("provider"),
                "total_us": 0.0,
                "calls": 0,
                "input_shapes": _ort_shapes(args.get("input_type_shape")),
                "output_shapes": _ort_shapes(args.get("output_type_shape")),
            }
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
    placement: Dict[Any, int] = {}
    for node in out:
        placement[node["provider"]] = placement.get(node["provider"], 0) + 1
    return {
        "available": True,
        "method": "onnxruntime profiler (kernel time per node)",
        "runs": int(per),
        "nodes": out,
        "node_sum_ms": float(sum(n["mean_ms"] for n in out)),
        "run_ms": float(sum(run_ms) / per) if per else None,
        "node_providers": placement,
    }


def _ort_shapes(value: Any) -> List[List[Any]]:
    shapes: List[List[Any]] = []
    for item in value or []:
        if isinstance(item, dict):
            shapes.extend(list(v) for v in item.values())
    return shapes


def available_providers() -> List[str]:
    ort = import_onnxruntime()
    return [_short(p) for p in ort.get_available_providers()]


def versions() -> Dict[str, Any]:
    ort = import_onnxruntime()
    return {"version": ort.__version__, "providers": [_short(p) for p in ort.get_available_providers()]}


def unknown_providers(names: Sequence[str]) -> List[str]:
    return [p for p in names if p not in ORT_PROVIDERS and not p.endswith("ExecutionProvider")]


def _open(
    path: str,
    providers: Optional[List[str]] = None,
    threads: Optional[int] = None,
    allow_fallback: bool = False,
    profile_prefix: Optional[str] = None,
    spin: bool = True,
) -> OrtSession:
    return OrtSession(path, providers, threads, allow_fallback, profile_prefix=profile_prefix, spin=spin)


BACKEND = register(
    Backend(
        name="onnxruntime",
        label="ONNX Runtime",
        describe="ONNX Runtime; providers cpu, cuda, tensorrt, xnnpack, acl, coreml, nnapi, qnn",
        aliases=("ort",),
        formats=("onnx",),
        extensions=(".onnx", ".ort"),
        providers=tuple(ORT_PROVIDERS),
        modules=("onnxruntime",),
        extra="onnx",
        install_hint="install onnxruntime there (pip install onnxruntime)",
        load=import_onnxruntime,
        open=_open,
        available_providers=available_providers,
        profile_ops=profile_ort_ops,
        versions=versions,
        unknown_providers=unknown_providers,
        summarize_profile=summarize_ort_profile,
    )
)
