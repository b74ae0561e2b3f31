"""Measure with the native benchmark tools a user provides: TFLite's ``benchmark_model`` for .tflite
files and ONNX Runtime's ``onnxruntime_perf_test`` for .onnx files (``shufflekit profile
--benchmark-binary PATH``). This is how Android phones get measured at all: an ``adb shell`` has no
Python, so the Python runner cannot run there, but a native binary can.

For each artifact: connect (adb, ssh or local, through the remote layer), read the device's facts with
its shell, make a private work folder, push the binary (executable) and the artifact, run the tool with
the flags that ask for what the Python runner measures, read its output into the runner's result fields
(native_parse), and remove the work folder whatever happened. The result records ``tool`` (the binary's
name, sha256, version or banner) so nobody mistakes these figures for the Python runner's.

What the tools cannot do is refused up front in one line: a binary for the other format, a batch other
than the model's own, a TFLite delegate library path, several ONNX Runtime providers, fallback for
onnxruntime_perf_test (it has none).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from ..artifacts import Artifact
from ..device.backends.onnxruntime import ORT_PROVIDERS, summarize_ort_profile
from ..device.bench import latency_stats
from ..errors import DeviceError, ProviderUnavailableError, UsageError
from ..files import sha256_file
from ..formats import formats
from . import native_facts, opcategories
from .native_parse import (
    BENCHMARK_MODEL,
    PERF_TEST,
    NativeOutputError,
    last_error_line,
    ms_from_s,
    ms_from_us,
    parse_benchmark_model,
    parse_benchmark_model_ops,
    parse_perf_test,
    parse_perf_test_times,
)

log = logging.getLogger(__name__)

TOOL_FOR_FORMAT = {f.name: f.native_tool for f in formats() if f.native_tool}  # tflite: benchmark_model, ...
RUNTIME_FOR_TOOL = {BENCHMARK_MODEL: "litert", PERF_TEST: "onnxruntime"}
_DESCRIBE = {BENCHMARK_MODEL: "TFLite's benchmark_model", PERF_TEST: "ONNX Runtime's onnxruntime_perf_test"}
# Strings each tool's binary holds (its flag names, its output labels): how an oddly named file is told.
_MARKERS = {
    BENCHMARK_MODEL: (b"enable_op_profiling", b"Inference timings in us"),
    PERF_TEST: (b"onnxruntime_perf_test", b"Total inference requests"),
}
# TFLite delegates by name -> benchmark_model flags (cpu: the tool's default, XNNPACK in current builds)
TFLITE_FLAGS = {
    "cpu": [],
    "xnnpack": ["--use_xnnpack=true"],
    "builtin": ["--use_xnnpack=false"],
    "none": ["--use_xnnpack=false"],
    "gpu": ["--use_gpu=true"],
    "nnapi": ["--use_nnapi=true"],
}
# ONNX Runtime providers onnxruntime_perf_test takes with -e (shufflekit's short names are its names)
PERF_TEST_PROVIDERS = (
    "cpu",
    "cuda",
    "tensorrt",
    "xnnpack",
    "acl",
    "armnn",
    "coreml",
    "nnapi",
    "qnn",
    "openvino",
    "dml",
    "rocm",
)
_PERF_RESULT = "perf_result.csv"
_ORT_PROFILE = "ort_profile"
# Flags whose loss changes what a figure means; the others (timing bounds, memory monitor) only add notes.
_ESSENTIAL_FLAGS = (
    "--graph",
    "--num_runs",
    "--warmup_runs",
    "--use_xnnpack",
    "--use_gpu",
    "--use_nnapi",
    "--enable_op_profiling",
)


def identify(path: Path) -> str | None:
    """Which tool a binary is: by its name, else by the strings inside it; None when neither says."""
    name = path.name.lower()
    if "perf_test" in name or "onnxruntime" in name:
        return PERF_TEST
    if "benchmark_model" in name:
        return BENCHMARK_MODEL
    found: set[str] = set()
    tail = b""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            window = tail + block
            found.update(tool for tool, marks in _MARKERS.items() if any(m in window for m in marks))
            tail = block[-64:]
    return found.pop() if len(found) == 1 else None


@dataclass(frozen=True)
class NativeBinary:
    path: Path
    tool: str | None  # BENCHMARK_MODEL, PERF_TEST, or None when the file does not say
    sha256: str
    size_bytes: int

    @classmethod
    def from_path(cls, path: str | Path) -> NativeBinary:
        path = Path(path).expanduser()
        if not path.is_file():
            raise UsageError(
                f"--benchmark-binary {path} does not exist",
                hint="give the path of benchmark_model or onnxruntime_perf_test on this computer",
            )
        return cls(path.absolute(), identify(path), sha256_file(path), path.stat().st_size)

    def record(self) -> dict[str, Any]:
        return {"name": self.tool, "binary": self.path.name, "sha256": self.sha256, "size_bytes": self.size_bytes}


@dataclass(frozen=True)
class NativeTools:
    """The binaries given with --benchmark-binary (one per format at most)."""

    binaries: tuple[NativeBinary, ...]

    @classmethod
    def from_paths(cls, paths: Sequence[str | Path]) -> NativeTools:
        binaries = tuple(NativeBinary.from_path(p) for p in paths)
        tools = [b.tool for b in binaries if b.tool]
        twice = sorted({t for t in tools if tools.count(t) > 1})
        if twice:
            raise UsageError(f"--benchmark-binary names two {twice[0]} binaries", hint="give one per tool")
        if len(binaries) > 2 or sum(1 for b in binaries if b.tool is None) > 1:
            raise UsageError(
                "--benchmark-binary takes one benchmark_model and one onnxruntime_perf_test at most",
                hint="name the files after their tool so each can be told apart",
            )
        return cls(binaries)

    def for_artifact(self, art: Artifact) -> NativeBinary:
        """The binary that measures ``art``, or one UsageError line naming the mismatch."""
        want = TOOL_FOR_FORMAT.get(art.format)
        if want is None:
            raise UsageError(
                f"no native benchmark tool measures {art.format} artifacts ({art.name})",
                hint="profile them without --benchmark-binary",
            )
        for binary in self.binaries:
            if binary.tool == want:
                return binary
        unknown = [b for b in self.binaries if b.tool is None]
        if unknown:  # a file that does not say what it is: trust the user; its output tells if it is wrong
            return replace(unknown[0], tool=want)
        given = ", ".join(f"{b.path.name} ({_DESCRIBE[b.tool]})" for b in self.binaries if b.tool)
        other = next(fmt for fmt, tool in TOOL_FOR_FORMAT.items() if tool != want)
        raise UsageError(
            f"--benchmark-binary {given} cannot measure {art.name}: {art.format} artifacts need {_DESCRIBE[want]}",
            hint=f"add --benchmark-binary PATH/{want}, or name only the {other} artifacts "
            f"(shufflekit profile DIR {other} --benchmark-binary ...)",
        )

    def check(self, chosen: Sequence[Artifact], options: Any, settings: Any) -> None:
        """Refuse, before anything runs, what the tools cannot do for these artifacts."""
        for art in chosen:
            binary = self.for_artifact(art)
            fixed = art.input.shape[0] if art.input.shape and isinstance(art.input.shape[0], int) else 1
            if settings.batch != fixed:
                raise UsageError(
                    f"{binary.path.name} runs {art.name} at the model's own batch ({fixed}); "
                    f"--batch {settings.batch} needs the Python runner",
                    hint=f"pass --batch {fixed}, or profile without --benchmark-binary",
                )
            providers = list(options.providers)
            if binary.tool == BENCHMARK_MODEL:
                if len(providers) != 1 or providers[0] not in TFLITE_FLAGS:
                    raise UsageError(
                        f"benchmark_model takes one delegate by name, not {options.provider!r}",
                        hint=f"pass --provider with one of {', '.join(TFLITE_FLAGS)}",
                    )
            else:
                if options.allow_fallback:
                    raise UsageError(
                        "onnxruntime_perf_test has no provider fallback; --allow-fallback cannot be honoured",
                        hint="leave out --allow-fallback with --benchmark-binary",
                    )
                chosen_eps = [p for p in providers if p != "cpu"]
                bad = [p for p in providers if p not in PERF_TEST_PROVIDERS]
                if bad or len(chosen_eps) > 1:
                    raise UsageError(
                        f"onnxruntime_perf_test runs one provider (-e), not {options.provider!r}",
                        hint=f"pass --provider with one of {', '.join(PERF_TEST_PROVIDERS)}",
                    )

    def measure(
        self,
        device: str,
        art: Artifact,
        path: Path,
        options: Any,
        settings: Any,
        *,
        timeout: float,
        connect: Any = None,
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """Push the tool and ``path`` to ``device``, run, read. Returns (device key, result, device facts)
        in the shapes profile.run_on_device returns them."""
        from .remote import open_transport, parse_address
        from .remote.transport import check_space

        binary = self.for_artifact(art)
        address = parse_address(device, ssh_config=getattr(connect, "ssh_config", None))
        with open_transport(address, connect) as transport:
            facts = native_facts.collect(transport)
            workdir = transport.make_workdir()
            try:
                check_space(transport, workdir, [binary.path, path], "the tool and the model need")
                transport.push([binary.path], workdir, executable=True)
                transport.push([path], workdir)
                run = _ToolRun(transport, workdir, binary, art, facts, timeout)
                measure = _measure_tflite if binary.tool == BENCHMARK_MODEL else _measure_onnx
                result = measure(run, path, options, settings)
            finally:
                try:
                    transport.remove_workdir(workdir)
                except DeviceError as exc:  # never hide the error that got us here
                    log.warning("%s", exc.one_line())
        result["host"] = facts
        return address.key, result, facts


@dataclass
class _ToolRun:
    transport: Any
    workdir: str
    binary: NativeBinary
    art: Artifact
    facts: dict[str, Any]
    timeout: float

    def remote(self, name: str) -> str:
        return str(PurePosixPath(self.workdir) / name)

    def __call__(self, args: Sequence[str]) -> str:
        """Run the tool with ``args`` in the work folder; its stdout and stderr in order (merged on the
        device). A failure is one line: what the tool said, and what to do."""
        argv = ["sh", "-c", 'exec "$0" "$@" 2>&1', self.remote(self.binary.path.name), *args]
        result = self.transport.run(argv, timeout=self.timeout, cwd=self.workdir)
        text = result.stdout + (("\n" + result.stderr) if result.stderr.strip() else "")
        log.debug("%s %s -> exit %s:\n%s", self.binary.path.name, " ".join(args), result.rc, text[-6000:])
        if result.rc != 0:
            raise self.failure(result.rc, text)
        return text

    def failure(self, rc: int, text: str) -> Exception:
        address, name = self.transport.address, self.binary.path.name
        line = last_error_line(text)
        if rc in (126, 127) or "Exec format error" in text or "not executable" in text:
            return DeviceError(
                f"{address}: {name} cannot be executed on the device ({line})",
                hint=f"use a build of the tool for this device's CPU "
                f"({self.facts.get('machine') or 'see `uname -m` there'})",
            )
        if (
            "not supported in this build" in line
            or line.startswith(("Failed to apply", "ERROR: Failed to apply"))
            or ("Failed to create" in line and "delegate" in line)
        ):
            return ProviderUnavailableError(
                f"{address}: {name} cannot use the requested provider for {self.art.name} ({line})",
                hint="pick a provider this build of the tool has (--provider cpu)",
            )
        return DeviceError(
            f"{address}: {name} failed on {self.art.name} (exit {rc}): {line}",
            hint="run it by hand on the device to see its whole output (or -vv here)",
        )

    def unreadable(self, exc: NativeOutputError) -> NativeOutputError:
        return NativeOutputError(f"{self.transport.address}: {self.art.name}: {exc.message}", hint=exc.hint)

    def tool_record(self, **extra: Any) -> dict[str, Any]:
        return {**self.binary.record(), **{k: v for k, v in extra.items() if v not in (None, [], {})}}


def _common(run: _ToolRun, path: Path, options: Any, settings: Any) -> dict[str, Any]:
    art = run.art
    assert run.binary.tool is not None  # for_artifact() names the tool of every binary it returns
    return {
        "runtime": RUNTIME_FOR_TOOL[run.binary.tool],
        "runtime_version": None,
        "providers_requested": list(options.providers),
        "model": art.name,
        "model_bytes": path.stat().st_size,
        "input": art.input.to_dict(),
        "layout": art.input.layout,
        "batch": settings.batch,
        "batching": "one call per batch (the tool runs the model at its own batch)",
        "seconds_requested": settings.seconds,
        "rss_before_load_bytes": None,
        "rss_after_bytes": None,
    }


def _op_runs(settings: Any, iters: int) -> int:
    return int(min(max(iters, 10), 100))


# ------------------------------------------------------------------------------------------------------
# benchmark_model
# ------------------------------------------------------------------------------------------------------
def benchmark_model_args(
    model: str, options: Any, settings: Any, timeout: float, *, op_profile: bool = False, runs: int | None = None
) -> list[str]:
    """Flags that ask benchmark_model for exactly the runner's loop: ``warmup`` untimed runs (no minimum
    time), then ``iters`` timed runs (no minimum time) or runs for ``seconds``."""
    warmup = min(settings.warmup, 10) if op_profile else settings.warmup
    args = [f"--graph={model}", f"--warmup_runs={warmup}", "--warmup_min_secs=0"]
    if settings.seconds is not None and runs is None:
        args += ["--num_runs=1", f"--min_secs={settings.seconds:g}", f"--max_secs={settings.seconds:g}"]
    else:
        count = runs if runs is not None else (settings.iters or 100)
        args += [f"--num_runs={count}", "--min_secs=0", f"--max_secs={max(150, int(timeout * 0.8))}"]
    if options.threads:
        args.append(f"--num_threads={options.threads}")
    args += TFLITE_FLAGS[options.providers[0]]
    if op_profile:
        args += ["--enable_op_profiling=true", "--allow_dynamic_profiling_buffer_increase=true"]
    else:
        args.append("--report_peak_memory_footprint=true")
    return args


def _measure_tflite(run: _ToolRun, path: Path, options: Any, settings: Any) -> dict[str, Any]:
    args = benchmark_model_args(run.remote(path.name), options, settings, run.timeout)
    text = run(args)
    try:
        out = parse_benchmark_model(text)
    except NativeOutputError as exc:
        raise run.unreadable(exc) from None
    notes, warnings = list(out.notes), []
    lost = [f for f in out.unconsumed if f.split("=", 1)[0] in _ESSENTIAL_FLAGS]
    if any(f.startswith("--graph") for f in lost):
        raise DeviceError(
            f"{run.transport.address}: {run.binary.path.name} did not take --graph: is it benchmark_model?",
            hint="pass TFLite's benchmark_model with --benchmark-binary",
        )
    if out.unconsumed:
        warnings.append(
            f"the tool did not know {' '.join(out.unconsumed)} (an older build); the figures are what it "
            f"measured: {out.warmup.count} warm-up and {out.timed.count} timed runs"
        )
    ran, fallback = _tflite_delegate(run, out, options)
    threads = (
        options.threads if options.threads and not any(f.startswith("--num_threads") for f in out.unconsumed) else None
    )
    latency = out.timed.latency_ms()
    partitions = sum(d["partitions"] for d in out.delegated_nodes) if out.delegated_nodes else None
    result = _common(run, path, options, settings)
    result.update(
        {
            "runtime_version": out.version,
            "interpreter": run.binary.path.name,
            "providers": ran,
            "delegate": ran[0],
            "fallback": bool(fallback),
            "fallback_from": fallback,
            "threads": threads,
            "delegate_partitions": partitions,
            "warmup": out.warmup.count,
            "iters": out.timed.count,
            "load_ms": ms_from_us(out.init_us),
            "first_inference_ms": ms_from_us(out.first_inference_us),
            "latency_ms": latency,
            "throughput_ips": settings.batch * 1e3 / latency["mean_ms"] if latency["mean_ms"] else None,
            "peak_rss_bytes": int(out.peak_memory_mb * 1048576) if out.peak_memory_mb is not None else None,
            "tool": run.tool_record(
                version=out.version,
                banner=out.banner,
                argv=[run.binary.path.name, *_relative(args, run.workdir)],
                params=out.params,
                unconsumed_flags=out.unconsumed,
                reported={
                    k: v
                    for k, v in {
                        "memory_delta_mb": out.memory_delta_mb,
                        "model_mb": out.model_mb,
                        "warmup_avg_ms": ms_from_us(out.warmup.avg),
                        "delegates_applied": out.applied,
                        "delegates_declined": out.declined,
                        "delegated_nodes": out.delegated_nodes,
                    }.items()
                    if v not in (None, [], {})
                },
                notes=notes + _stat_notes(latency),
                warnings=warnings,
            ),
        }
    )
    if settings.op_profile:
        op_args = benchmark_model_args(
            run.remote(path.name),
            options,
            settings,
            run.timeout,
            op_profile=True,
            runs=_op_runs(settings, out.timed.count),
        )
        try:
            result["op_profile"] = parse_benchmark_model_ops(run(op_args))
        except NativeOutputError as exc:
            raise run.unreadable(exc) from None
    return result


def _stat_notes(latency: dict[str, Any]) -> list[str]:
    notes = ["std: the tool's population figure scaled to the sample std (n-1), as the runner reports it"]
    missing = [k[:-3] for k in ("p50_ms", "p90_ms", "p99_ms") if latency.get(k) is None]
    if missing:
        notes.append(f"{'/'.join(missing)}: not printed by this build of the tool, left empty")
    return notes


def _tflite_delegate(run: _ToolRun, out: Any, options: Any) -> tuple[list[str], list[str]]:
    """(what ran, fallback_from) from the tool's own statements; a requested delegate that did not take
    the graph is an error unless --allow-fallback (benchmark_model itself falls back silently)."""
    requested = options.providers[0]
    xnnpack = (
        out.xnnpack_created
        or "XNNPACK" in out.applied
        or any("xnnpack" in d["kernel"].lower() for d in out.delegated_nodes)
    )
    if requested in ("builtin", "none"):
        if "XNNPACK" in out.applied or "--use_xnnpack=false" in out.unconsumed:
            raise ProviderUnavailableError(
                f"{run.transport.address}: {run.binary.path.name} cannot switch XNNPACK off",
                hint="use --provider cpu with this build of the tool",
            )
        return ["builtin"], []
    if requested == "cpu":
        return ["xnnpack" if xnnpack else "builtin"], []
    name = requested.upper()
    cpu_kernels = "xnnpack" if xnnpack and requested != "xnnpack" else "builtin"
    if out.applied.get(name) == "completely":
        return [requested], []
    if name in out.applied:  # partially: the rest of the graph ran on the CPU
        return [requested, cpu_kernels], []
    why = (
        "it took no operator of the model"
        if name in out.declined
        else "; ".join(out.notes) or f"the tool reports no {name} delegate applied"
    )
    if not options.allow_fallback:
        raise ProviderUnavailableError(
            f"{run.transport.address}: {run.binary.path.name} did not run {run.art.name} on the {requested} "
            f"delegate ({why})",
            hint="pass --allow-fallback to record its CPU run instead, or --provider cpu",
        )
    return [cpu_kernels], [requested]


def _relative(args: Sequence[str], workdir: str) -> list[str]:
    """The command as recorded: the work folder (gone after the run) written as '.'."""
    return [a.replace(workdir.rstrip("/") + "/", "./") for a in args]


# ------------------------------------------------------------------------------------------------------
# onnxruntime_perf_test
# ------------------------------------------------------------------------------------------------------
def perf_test_args(
    model: str,
    result_file: str,
    options: Any,
    settings: Any,
    *,
    profile_prefix: str | None = None,
    runs: int | None = None,
) -> list[str]:
    """-I: random inputs (no test-data folder); -s: its latency statistics; -m times -r N or -m duration
    -t S (whole seconds); -x threads; -e the provider; -p the profiler's file prefix."""
    providers = [p for p in options.providers if p != "cpu"] or ["cpu"]
    args = ["-e", providers[0], "-I", "-s"]
    if options.threads:
        args += ["-x", str(options.threads)]
    if settings.seconds is not None and runs is None:
        args += ["-m", "duration", "-t", str(max(1, math.ceil(settings.seconds)))]
    else:
        args += ["-m", "times", "-r", str(runs if runs is not None else (settings.iters or 100))]
    if profile_prefix:
        args += ["-p", profile_prefix]
    return [*args, model, result_file]


def _measure_onnx(run: _ToolRun, path: Path, options: Any, settings: Any) -> dict[str, Any]:
    args = perf_test_args(run.remote(path.name), run.remote(_PERF_RESULT), options, settings)
    text = run(args)
    try:
        out = parse_perf_test(text)
        times = _pull_times(run, out.requests)
    except NativeOutputError as exc:
        raise run.unreadable(exc) from None
    notes, warnings = list(out.notes), []
    if settings.warmup != 1:
        warnings.append(
            f"onnxruntime_perf_test runs exactly one warm-up inference (it has no option for more); "
            f"--warmup {settings.warmup} could not be applied"
        )
    if settings.seconds is not None and math.ceil(settings.seconds) != settings.seconds:
        warnings.append(f"onnxruntime_perf_test times whole seconds: ran {max(1, math.ceil(settings.seconds))} s")
    total: float | None
    if times:
        latency = latency_stats(times)
        total = sum(times)
    else:
        p = out.percentiles_s
        ms = lambda key: ms_from_s(p.get(key))  # noqa: E731
        latency = {
            "mean_ms": out.mean_ms,
            "std_ms": None,
            "min_ms": ms("min"),
            "p50_ms": ms("p50"),
            "p90_ms": ms("p90"),
            "p99_ms": ms("p99"),
            "max_ms": ms("max"),
        }
        total = out.total_s
        warnings.append("no per-run times (no result file came back): figures as the tool printed them")
    requests = len(times) if times else out.requests
    ep = ([p for p in options.providers if p != "cpu"] or ["cpu"])[0]
    providers = [ORT_PROVIDERS[ep]] + (["CPUExecutionProvider"] if ep != "cpu" else [])
    result = _common(run, path, options, settings)
    result.update(
        {
            "providers": providers,
            "fallback": False,
            "fallback_from": [],
            "threads": options.threads,
            "warmup": 1,
            "iters": requests,
            "load_ms": ms_from_s(out.session_s),
            "first_inference_ms": out.first_ms,
            "latency_ms": latency,
            "throughput_ips": requests * settings.batch / total if total else out.per_second,
            "peak_rss_bytes": out.peak_bytes,
            "tool": run.tool_record(
                banner=out.banner,
                argv=[run.binary.path.name, *_relative(args, run.workdir)],
                reported={
                    k: v
                    for k, v in {
                        "cpu_percent": out.cpu_percent,
                        "inferences_per_second": out.per_second,
                        "percentiles_s": out.percentiles_s,
                    }.items()
                    if v not in (None, {})
                },
                notes=notes
                + (
                    [
                        "statistics computed from the tool's per-run times (its result file), as the runner "
                        "computes its own"
                    ]
                    if times
                    else []
                ),
                warnings=warnings,
            ),
        }
    )
    if settings.op_profile:
        result["op_profile"] = _ort_op_profile(run, path, options, settings, requests)
    if settings.keep_times and times:
        result["times_ms"] = [t * 1e3 for t in times]
    return result


def _pull_times(run: _ToolRun, requests: int) -> list[float] | None:
    with tempfile.TemporaryDirectory(prefix="shufflekit-native-") as tmp:
        local = Path(tmp) / _PERF_RESULT
        try:
            run.transport.pull(run.remote(_PERF_RESULT), local)
        except DeviceError as exc:
            log.info("no per-run times from %s: %s", run.binary.path.name, exc.one_line())
            return None
        times = parse_perf_test_times(local.read_text(encoding="utf-8", errors="replace"))
    if len(times) != requests:
        raise NativeOutputError(
            f"cannot read {PERF_TEST}'s output: its result file holds {len(times)} runs where "
            f"it reported {requests} requests",
            hint="this tool version writes its result file differently; profile without "
            "--benchmark-binary, or report it",
        )
    return times


def _ort_op_profile(run: _ToolRun, path: Path, options: Any, settings: Any, iters: int) -> dict[str, Any]:
    """A second run with ONNX Runtime's profiler on (-p), read like the runner reads its own profile."""
    runs = _op_runs(settings, iters)
    run(
        perf_test_args(
            run.remote(path.name),
            run.remote("profile_" + _PERF_RESULT),
            options,
            settings,
            profile_prefix=run.remote(_ORT_PROFILE),
            runs=runs,
        )
    )
    listing = run.transport.run(["ls", "-1", run.workdir], timeout=60)
    names = sorted(
        n.strip()
        for n in listing.stdout.splitlines()
        if n.strip().startswith(_ORT_PROFILE) and n.strip().endswith(".json")
    )
    if not names:
        return {
            "available": False,
            "method": None,
            "reason": f"{run.binary.path.name} -p wrote no profile file into its folder",
        }
    with tempfile.TemporaryDirectory(prefix="shufflekit-native-") as tmp:
        local = Path(tmp) / "profile.json"
        run.transport.pull(run.remote(names[-1]), local)
        try:
            events = json.loads(local.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise NativeOutputError(
                f"{run.transport.address}: {run.art.name}: {PERF_TEST}'s profile file is not JSON ({exc})",
                hint="profile without --op-profile",
            ) from None
    if not isinstance(events, list):
        raise NativeOutputError(
            f"{run.transport.address}: {run.art.name}: {PERF_TEST}'s profile file is not a list of trace events",
            hint="profile without --op-profile",
        )
    prof = summarize_ort_profile(events, skip_runs=1, batches=1)  # the tool's one warm-up run
    prof["method"] = "onnxruntime profiler through onnxruntime_perf_test -p (kernel time per node, on the device)"
    for node in prof["nodes"]:
        node["category"] = opcategories.categorize(node["op_type"], node.get("input_shapes"))
    return prof
