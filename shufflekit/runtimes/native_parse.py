"""Read the output of the native benchmark tools into the figures the Python runner's benchmark gives.

Two tools, the formats learned from their sources and from outputs users pasted in issues:

- TFLite's ``benchmark_model`` (tensorflow/lite/tools/benchmark: benchmark_model.cc, the Stat printer of
  tensorflow/core/util/stats_calculator.h, the op-profile tables of stats_calculator.cc /
  profile_summary_formatter.cc). Times in microseconds; ``count=N first= curr= min= max= avg= std=``
  per run phase, newer builds append ``p5= median= p95=``; ``count=N curr=X(all same)`` when every run
  took the same time. Lines may carry an ``INFO: `` prefix. The op table's columns vary by version
  ([start] came and went, the LiteRT one is space-aligned), so rows are read by the header's columns.
- ONNX Runtime's ``onnxruntime_perf_test`` (onnxruntime/test/perftest/performance_runner.cc): seconds
  and milliseconds with their unit after the number, older builds without the space after ':' and
  ``P50 Latency is 0.05sec``; the per-run times go to the result file, one ``model,seconds,...`` row each.

Every line that starts like a figure must read completely, or the whole output is refused with a
NativeOutputError naming that line: a format that moved on gets one clear line, never a wrong number.
Figures a tool does not print stay None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DeviceError
from . import opcategories

BENCHMARK_MODEL = "benchmark_model"
PERF_TEST = "onnxruntime_perf_test"

NUM = r"[-+]?(?:nan|inf|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_NUM = re.compile(rf"^{NUM}$", re.IGNORECASE)
# Log prefixes the tools put before a line: TFLite's logger, and adb logcat's when read from there.
_PREFIX = re.compile(
    r"^(?:\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+[VDIWEF] [\w.]+\s*: )?"
    r"(?:(?:INFO|WARN|WARNING|ERROR|VERBOSE|DEBUG): )?"
)


def ms_from_us(value: float | None) -> float | None:
    """Microseconds -> milliseconds, rounded to the nanosecond so no float dust trails the tool's digits."""
    return None if value is None else round(value / 1e3, 9)


def ms_from_s(value: float | None) -> float | None:
    return None if value is None else round(value * 1e3, 9)


class NativeOutputError(DeviceError):
    """A native tool's output that cannot be read (a format this version does not know)."""


def number(text: str, line_no: int, line: str, tool: str) -> float:
    if not _NUM.match(text.strip()):
        raise unreadable(tool, line_no, line, f"{text.strip()!r} is not a number")
    return float(text)


def unreadable(tool: str, line_no: int, line: str, why: str) -> NativeOutputError:
    shown = " ".join(line.split())
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    what = tool if " " in tool else f"{tool}'s output"  # a tool's name, or e.g. "X's result file"
    return NativeOutputError(
        f"cannot read {what}: line {line_no} {shown!r}: {why}",
        hint="this tool version prints a format shufflekit does not know; run it by hand "
        "on the device to see, or profile without --benchmark-binary",
    )


def strip_prefix(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n")).strip()


def last_error_line(text: str) -> str:
    """The line that best says why a tool failed: its last ERROR line, else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^(?:ERROR|E |Error|error|Run failed|Failed|terminate)", line)]
    return (errors or lines or ["no output"])[-1]


# ------------------------------------------------------------------------------------------------------
# benchmark_model
# ------------------------------------------------------------------------------------------------------
@dataclass
class RunStat:
    """One ``count=...`` line of benchmark_model (microseconds)."""

    count: int
    first: float | None = None
    curr: float | None = None
    min: float | None = None
    max: float | None = None
    avg: float | None = None
    std: float | None = None
    percentiles: dict[str, float] = field(default_factory=dict)  # p5, p50 (median), p95 where printed
    all_same: bool = False

    def latency_ms(self) -> dict[str, float | None]:
        """The runner's latency fields (ms). std becomes the sample std (n-1) like the runner's; p90/p99
        stay None unless every run took the same time (then every percentile is that time)."""
        ms = ms_from_us
        n = self.count
        std = self.std or 0.0
        sample_std = std * math.sqrt(n / (n - 1)) if n > 1 else 0.0
        data: dict[str, float | None] = {
            "mean_ms": ms(self.avg),
            "std_ms": ms(sample_std),
            "min_ms": ms(self.min),
            "p50_ms": None,
            "p90_ms": None,
            "p99_ms": None,
            "max_ms": ms(self.max),
        }
        if self.all_same:
            data.update(p50_ms=ms(self.curr), p90_ms=ms(self.curr), p99_ms=ms(self.curr))
        for key, value in self.percentiles.items():
            data[f"{key}_ms"] = ms(value)
        return data


_STAT_TOKEN = re.compile(r"(\w+)=([^\s(]+)(\(all same\))?")
_STAT_KEYS = {"count", "first", "curr", "min", "max", "avg", "std", "median"}


def parse_run_stat(text: str, line_no: int, line: str, tool: str = BENCHMARK_MODEL) -> RunStat:
    """``count=50 first=.. curr=.. min=.. max=.. avg=.. std=.. [p5=.. median=.. p95=..]``,
    ``count=1 curr=X``, ``count=9 curr=X(all same)`` or ``count=0``."""
    tokens = list(_STAT_TOKEN.finditer(text))
    if _STAT_TOKEN.sub("", text).strip() or not tokens or tokens[0].group(1) != "count":
        raise unreadable(tool, line_no, line, "not a statistics line (count=... first=... avg=...)")
    values: dict[str, float] = {}
    stat = RunStat(count=0)
    for token in tokens:
        key = token.group(1)
        if key not in _STAT_KEYS and not re.fullmatch(r"p\d+", key):
            raise unreadable(tool, line_no, line, f"unknown field {key!r}")
        if key in values:
            raise unreadable(tool, line_no, line, f"field {key!r} twice")
        values[key] = number(token.group(2), line_no, line, tool)
        stat.all_same = stat.all_same or bool(token.group(3))
    count = values.pop("count")
    if count < 0 or count != int(count):
        raise unreadable(tool, line_no, line, "the run count is not a whole number")
    stat.count = int(count)
    for key in ("first", "curr", "min", "max", "avg", "std"):
        setattr(stat, key, values.pop(key, None))
    if "median" in values:
        values["p50"] = values.pop("median")
    stat.percentiles = values
    if stat.count == 0:
        return stat
    full = ("first", "curr", "min", "max", "avg", "std")
    missing = [k for k in full if getattr(stat, k) is None]
    if missing and (stat.count == 1 or stat.all_same):  # 'count=1 curr=X', 'count=9 curr=X(all same)'
        if stat.curr is None or len(missing) != len(full) - 1:
            raise unreadable(tool, line_no, line, "a single-valued statistics line needs curr= alone")
        stat.all_same = True
        stat.first = stat.min = stat.max = stat.avg = stat.curr
        stat.std = 0.0
        return stat
    if missing:
        raise unreadable(tool, line_no, line, f"no {', '.join(missing)}")
    # none of `full` is missing here
    assert stat.min is not None and stat.max is not None and stat.avg is not None and stat.std is not None
    slack = 1e-5 * max(abs(stat.max), 1.0) + 1.0  # avg is printed to 6 digits, min/max in whole us
    if not (stat.min - slack <= stat.avg <= stat.max + slack) or not math.isfinite(stat.avg) or stat.std < 0:
        raise unreadable(tool, line_no, line, "min <= avg <= max does not hold")
    for key, value in stat.percentiles.items():
        if not stat.min - slack <= value <= stat.max + slack:
            raise unreadable(tool, line_no, line, f"{key} lies outside min..max")
    return stat


@dataclass
class BenchmarkModelOutput:
    warmup: RunStat
    timed: RunStat
    init_us: float | None
    timings: dict[str, float]  # the 'Inference timings in us' line, by its own labels
    model_mb: float | None = None
    memory_delta_mb: dict[str, float] | None = None  # init/overall resident-memory growth the tool saw
    peak_memory_mb: float | None = None  # --report_peak_memory_footprint's periodic monitor
    version: str | None = None
    banner: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # parameters as the tool echoed them
    unconsumed: list[str] = field(default_factory=list)
    xnnpack_created: bool = False
    applied: dict[str, str] = field(default_factory=dict)  # delegate name (upper) -> completely|partially
    declined: list[str] = field(default_factory=list)  # delegates applied that took no node
    delegated_nodes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def first_inference_us(self) -> float | None:
        if self.warmup.count:
            return self.warmup.first
        return self.timed.first  # no warm-up: the first timed run was the first inference


_B_VERSION = re.compile(r"^(?:TensorFlow|Tensorflow|LiteRT|TFLite|TensorFlow Lite) [Vv]ersion\s*:?\s*(\S+)")
_B_PARAM = re.compile(r"^([A-Za-z#][^:\[\]]*?)\s*:\s*\[(.*)\]$")
_B_APPLIED = re.compile(
    r"^(?:Explicitly )?[Aa]pplied (\w+) delegate, and the model graph will be "
    r"(completely|partially) executed"
)
_B_DECLINED = re.compile(r"^Though (\w+) delegate is (?:explicitly )?applied, the model graph will not be executed")
_B_REPLACING = re.compile(
    r"^Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]*)\) node, "
    r"yielding (\d+) partitions"
)

# (prefix, full pattern): a line that starts with the prefix must match the pattern.
_B_LINES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Initialized session in", re.compile(rf"^Initialized session in ({NUM})\s*ms\.?$")),
    ("The input model file size (MB):", re.compile(rf"^The input model file size \(MB\): ({NUM})$")),
    (
        "Memory footprint delta from the start of the tool (MB):",
        re.compile(rf"^Memory footprint delta from the start of the tool \(MB\): init=({NUM}) overall=({NUM})$"),
    ),
    ("Peak memory footprint (MB):", re.compile(rf"^Peak memory footprint \(MB\): init=({NUM}) overall=({NUM})$")),
    (
        "Overall peak memory footprint (MB) via periodic monitoring:",
        re.compile(rf"^Overall peak memory footprint \(MB\) via periodic monitoring: ({NUM})$"),
    ),
)


def parse_benchmark_model(text: str) -> BenchmarkModelOutput:
    """Latency, load and memory figures of one benchmark_model run (its stdout and stderr, in order)."""
    tool = BENCHMARK_MODEL
    stats: list[tuple[int, RunStat]] = []
    sections = 0
    out: dict[str, Any] = {
        "timings": {},
        "params": {},
        "unconsumed": [],
        "applied": {},
        "declined": [],
        "delegated_nodes": [],
        "notes": [],
    }
    values: dict[str, Any] = {}
    in_profile = False
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = strip_prefix(raw)
        if not line:
            continue
        out.setdefault("banner", line)
        if line.startswith(("Profiling Info for Benchmark Initialization", "Operator-wise Profiling Info")):
            in_profile = True  # op tables: parse_benchmark_model_ops reads them
        if in_profile and not line.startswith(("Inference timings", "Average inference timings")):
            continue
        if line.startswith("Running benchmark for at least"):
            sections += 1
            continue
        if line.startswith("count="):
            stats.append((line_no, parse_run_stat(line, line_no, raw, tool)))
            continue
        timing = re.match(r"^(?:Average )?[Ii]nference timings in us:\s*(.*)$", line)
        if timing:
            out["timings"] = _timing_pairs(timing.group(1), line_no, raw)
            in_profile = False
            continue
        if line.startswith("Unconsumed cmdline flags:"):
            out["unconsumed"] = line.split(":", 1)[1].split()
            continue
        for prefix, pattern in _B_LINES:
            if line.startswith(prefix):
                match = pattern.match(line)
                if not match:
                    raise unreadable(tool, line_no, raw, "its figures are not where they should be")
                values[prefix] = [number(g, line_no, raw, tool) for g in match.groups()]
                break
        else:
            _benchmark_model_fact(line, out)
    if sections != len(stats) or len(stats) != 2:
        if not stats:
            raise NativeOutputError(
                f"{tool} printed no run statistics ('count=...' lines); its last line was {last_error_line(text)!r}",
                hint="check that the binary is TFLite's "
                "benchmark_model and that it ran the model (run it by hand on the device)",
            )
        raise NativeOutputError(
            f"cannot read {tool}'s output: expected one warm-up and one timed phase, found "
            f"{len(stats)} statistics lines after {sections} 'Running benchmark' lines",
            hint="pass the plain benchmark_model binary (not a multi-option variant)",
        )
    (_, warmup), (timed_line, timed) = stats
    if timed.count < 1:
        raise NativeOutputError(
            f"{tool} ran no timed iteration (line {timed_line}: count=0)",
            hint="give it more time: raise --seconds, or check the device is not stuck",
        )
    timings = out["timings"]
    _agree(
        tool,
        timed_line,
        "the timed phase's avg",
        timed.avg,
        "'Inference (avg)'",
        timings.get("Inference (avg)", timings.get("Inference")),
    )
    if warmup.count:
        _agree(
            tool,
            timed_line,
            "the warm-up phase's first run",
            warmup.first,
            "'First inference'",
            timings.get("First inference"),
        )
    init_ms = values.get("Initialized session in", [None])[0]
    init_us = timings.get("Init", init_ms * 1e3 if init_ms is not None else None)
    memory = values.get("Memory footprint delta from the start of the tool (MB):") or values.get(
        "Peak memory footprint (MB):"
    )
    return BenchmarkModelOutput(
        warmup=warmup,
        timed=timed,
        init_us=init_us,
        timings=timings,
        model_mb=values.get("The input model file size (MB):", [None])[0],
        memory_delta_mb={"init": memory[0], "overall": memory[1]} if memory else None,
        peak_memory_mb=values.get("Overall peak memory footprint (MB) via periodic monitoring:", [None])[0],
        version=out.get("version"),
        banner=out.get("banner"),
        params=out["params"],
        unconsumed=out["unconsumed"],
        xnnpack_created=bool(out.get("xnnpack_created")),
        applied=out["applied"],
        declined=out["declined"],
        delegated_nodes=out["delegated_nodes"],
        notes=out["notes"],
    )


def _timing_pairs(text: str, line_no: int, raw: str) -> dict[str, float]:
    """'Init: 855, First inference: 49060, Warmup (avg): 34825.1, Inference (avg): 33209.4'."""
    pairs = {}
    for part in text.split(","):
        if ":" not in part:
            raise unreadable(BENCHMARK_MODEL, line_no, raw, f"{part.strip()!r} is not 'label: value'")
        label, value = part.rsplit(":", 1)
        pairs[label.strip()] = number(value, line_no, raw, BENCHMARK_MODEL)
    return pairs


def _agree(tool: str, line_no: int, what: str, value: float | None, other_what: str, other: float | None) -> None:
    """Two lines of one output that print the same figure must agree (else one was misread)."""
    if value is None or other is None or not math.isfinite(other):
        return
    if abs(value - other) > 5e-3 * max(abs(value), abs(other)) + 1e-9:
        raise NativeOutputError(
            f"cannot read {tool}'s output: {what} ({value:g}) and {other_what} ({other:g}) "
            f"disagree (near line {line_no})",
            hint="this tool version prints its figures differently; profile without "
            "--benchmark-binary, or report the output",
        )


def _benchmark_model_fact(line: str, out: dict[str, Any]) -> None:
    """Facts that are no figures: version, echoed parameters, which delegates took the graph."""
    match = _B_VERSION.match(line)
    if match:
        out["version"] = match.group(1)
        return
    if "XNNPACK delegate for CPU" in line or line.startswith("XNNPACK delegate created"):
        out["xnnpack_created"] = True
    match = _B_APPLIED.match(line)
    if match:
        out["applied"][match.group(1).upper()] = match.group(2)
        return
    match = _B_DECLINED.match(line)
    if match:
        out["declined"].append(match.group(1).upper())
        return
    match = _B_REPLACING.match(line)
    if match:
        out["delegated_nodes"].append(
            {
                "nodes": int(match.group(1)),
                "of": int(match.group(2)),
                "kernel": match.group(3),
                "partitions": int(match.group(4)),
            }
        )
        return
    if ("unsupported on this platform" in line or "is not supported" in line) and len(out["notes"]) < 20:
        out["notes"].append(line)
        return
    match = _B_PARAM.match(line)
    if match:
        out["params"][match.group(1).strip()] = match.group(2)


# -- op profile ----------------------------------------------------------------------------------------
# XNNPACK's operator names (its operator-type strings, e.g. "Convolution (NHWC, F32) DWConv") by the
# words they start with, in the categories of opcategories.
_XNNPACK_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("Convolution", opcategories.CONV),
    ("Deconvolution", opcategories.CONV),
    ("Fully Connected", opcategories.FC),
    ("Dynamic Fully Connected", opcategories.FC),
    ("Batch Matrix Multiply", opcategories.FC),
    ("Max Pooling", opcategories.POOLING),
    ("Average Pooling", opcategories.POOLING),
    ("Global Average Pooling", opcategories.POOLING),
    ("ArgMax Pooling", opcategories.POOLING),
    ("Global Sum Pooling", opcategories.POOLING),
    ("Mean", opcategories.POOLING),
    ("Sum", opcategories.POOLING),
    ("Transpose", opcategories.SHUFFLE),
    ("Copy", opcategories.SHUFFLE),
    ("Channel Shuffle", opcategories.SHUFFLE),
    ("Depth To Space", opcategories.SHUFFLE),
    ("Space To Depth", opcategories.SHUFFLE),
    ("Slice", opcategories.CONCAT_SPLIT),
    ("Concatenate", opcategories.CONCAT_SPLIT),
    ("Even Split", opcategories.CONCAT_SPLIT),
    ("Constant Pad", opcategories.PAD),
    ("Convert", opcategories.QUANT),
    ("Binary Elementwise", opcategories.ELEMENTWISE),
    ("Unary Elementwise", opcategories.ELEMENTWISE),
    ("Add", opcategories.ELEMENTWISE),
    ("Subtract", opcategories.ELEMENTWISE),
    ("Multiply", opcategories.ELEMENTWISE),
    ("Divide", opcategories.ELEMENTWISE),
    ("Maximum", opcategories.ELEMENTWISE),
    ("Minimum", opcategories.ELEMENTWISE),
    ("Clamp", opcategories.ELEMENTWISE),
    ("Sigmoid", opcategories.ELEMENTWISE),
    ("HardSwish", opcategories.ELEMENTWISE),
    ("Leaky ReLU", opcategories.ELEMENTWISE),
    ("Softmax", opcategories.ELEMENTWISE),
    ("Tanh", opcategories.ELEMENTWISE),
    ("Abs", opcategories.ELEMENTWISE),
    ("Negate", opcategories.ELEMENTWISE),
    ("Square", opcategories.ELEMENTWISE),
    ("ELU", opcategories.ELEMENTWISE),
    ("PReLU", opcategories.ELEMENTWISE),
    ("Reciprocal Square Root", opcategories.ELEMENTWISE),
    ("Squared Difference", opcategories.ELEMENTWISE),
    ("Bankers Rounding", opcategories.ELEMENTWISE),
    ("Ceiling", opcategories.ELEMENTWISE),
    ("Floor", opcategories.ELEMENTWISE),
    ("Resize Bilinear", opcategories.OTHER),
    ("Unpooling", opcategories.OTHER),
)
_DELEGATE_KERNEL = re.compile(r"^TfLite\w*Delegate\w*$|^DELEGATE$")


def categorize_op(op_type: str, input_shapes: Sequence[Sequence[int]] | None = None) -> str:
    """A TFLite builtin, an ONNX Runtime op type, or an XNNPACK operator -> an opcategories category."""
    if "(" in op_type:
        for prefix, category in sorted(_XNNPACK_CATEGORIES, key=lambda item: -len(item[0])):
            if op_type.startswith(prefix + " ") or op_type == prefix:
                if category == opcategories.CONV and op_type.endswith("DWConv"):
                    return opcategories.DEPTHWISE
                return category
    return opcategories.categorize(op_type, input_shapes)


def provider_of(op_type: str, name: str) -> str:
    if _DELEGATE_KERNEL.match(op_type):
        return op_type
    if name.startswith("Delegate/") or "(" in op_type:
        return "xnnpack"
    return "builtin"


def parse_benchmark_model_ops(text: str) -> dict[str, Any]:
    """The per-operator table of the regular runs (--enable_op_profiling=true) -> the runner's op-profile
    form: one node per row, ``mean_ms`` per run (the table's avg is per call, times the calls per run).

    Delegate kernels (TfLiteXNNPackDelegate ...) are one row for a whole delegated partition; where the
    tool also lists the operators inside (``Delegate/...`` rows, or a 'Delegate internal' table), those
    replace the kernel rows so no time is counted twice."""
    tool = BENCHMARK_MODEL
    lines = text.splitlines()
    start = next(
        (i for i, raw in enumerate(lines) if strip_prefix(raw).startswith("Operator-wise Profiling Info")), None
    )
    if start is None:
        return {
            "available": False,
            "method": None,
            "reason": f"{tool} printed no 'Operator-wise Profiling Info' (is this build's op profiler on?)",
        }
    rows: list[dict[str, Any]] = []
    internal: list[dict[str, Any]] = []
    run_stat: RunStat | None = None
    table: str | None = None
    columns: list[str] | None = None
    in_delegate = False
    for line_no in range(start + 1, len(lines)):
        raw = lines[line_no]
        line = strip_prefix(raw)
        title = re.match(r"^=+ (.+?) =+$", line)
        if title:
            table, columns = title.group(1), None
            continue
        if not line:
            table, columns = (None, None) if columns else (table, columns)
            continue
        if line.startswith("Delegate internal"):
            in_delegate = True
            continue
        if line.startswith("Timings (microseconds):"):
            stat = parse_run_stat(line.split(":", 1)[1].strip(), line_no + 1, raw, tool)
            if not in_delegate and run_stat is None:
                run_stat = stat
            continue
        if line.startswith(("Inference timings", "Average inference timings")):
            break
        if table != "Run Order":
            continue
        if columns is None:
            if "[node type]" not in line or "[Name]" not in line:
                raise unreadable(tool, line_no + 1, raw, "no column header after the 'Run Order' title")
            columns = re.findall(r"\[([^\]]+)\]", line)
            continue
        (internal if in_delegate else rows).append(_op_row(columns, line, line_no + 1, raw))
    if not rows and not internal:
        raise NativeOutputError(
            f"cannot read {tool}'s output: its op profile has no 'Run Order' rows",
            hint="run with fewer options, or profile without --op-profile",
        )
    per_op = any(r["name"].startswith("Delegate/") for r in rows) or internal
    nodes = [r for r in rows if not (per_op and _DELEGATE_KERNEL.match(r["op_type"]))] + internal
    placement: dict[str, int] = {}
    for node in nodes:
        node["provider"] = provider_of(node["op_type"], node["name"])
        node["category"] = categorize_op(node["op_type"])
        placement[node["provider"]] = placement.get(node["provider"], 0) + 1
    return {
        "available": True,
        "method": "benchmark_model --enable_op_profiling (TFLite's own op profiler, on the device)",
        "runs": run_stat.count if run_stat else None,
        "nodes": nodes,
        "node_sum_ms": float(sum(n["mean_ms"] for n in nodes)),
        "run_ms": ms_from_us(run_stat.avg) if run_stat else None,
        "node_providers": placement,
    }


_CELL = re.compile(rf"{NUM}%?", re.IGNORECASE)


def _op_row(columns: list[str], line: str, line_no: int, raw: str) -> dict[str, Any]:
    """One row: the node type (may hold spaces: 'Convolution (NHWC, F32) IGEMM'), then one number per
    column between [node type] and [Name], then the name (may hold spaces too)."""
    if columns[0] != "node type" or columns[-1] != "Name" or "avg ms" not in columns:
        raise unreadable(BENCHMARK_MODEL, line_no, raw, "an op table with unknown columns")
    numeric = columns[1:-1]
    cells = line.split("\t") if "\t" in line else None
    if cells is not None and len(cells) == len(columns):
        op_type, figures, name = cells[0].strip(), [c.strip() for c in cells[1:-1]], cells[-1].strip()
    else:  # space-aligned tables: the type is the shortest prefix followed by the right count of numbers
        pattern = rf"^(.+?)\s+((?:{NUM}%?\s+){{{len(numeric)}}})(.+)$"
        match = re.match(pattern, line, re.IGNORECASE)
        if not match:
            raise unreadable(BENCHMARK_MODEL, line_no, raw, f"not a row of {len(columns)} columns")
        op_type, figures, name = match.group(1).strip(), match.group(2).split(), match.group(3).strip()
    if len(figures) != len(numeric) or not all(_CELL.fullmatch(f) for f in figures):
        raise unreadable(BENCHMARK_MODEL, line_no, raw, f"not a row of {len(columns)} columns")
    row = dict(zip(numeric, (float(f.rstrip("%")) for f in figures)))
    calls = int(row.get("times called", 1)) or 1  # old builds print 0 there
    bracketed = re.match(r"^\[(.*)\](?::(\d+))?$", name)
    if bracketed:
        name = f"{bracketed.group(2)}:{bracketed.group(1)}" if bracketed.group(2) else bracketed.group(1)
    return {
        "name": name,
        "op_type": op_type,
        "calls": calls,
        "mean_ms": row["avg ms"] * calls,
        "first_ms": row.get("first"),
    }


# ------------------------------------------------------------------------------------------------------
# onnxruntime_perf_test
# ------------------------------------------------------------------------------------------------------
@dataclass
class PerfTestOutput:
    requests: int
    mean_ms: float
    total_s: float | None = None
    session_s: float | None = None
    first_ms: float | None = None
    run_time_s: float | None = None
    per_second: float | None = None
    cpu_percent: float | None = None
    peak_bytes: int | None = None
    percentiles_s: dict[str, float] = field(default_factory=dict)  # min, max, p50, p90, p95, p99, p999
    banner: str | None = None
    notes: list[str] = field(default_factory=list)


def _p(label: str, pattern: str) -> tuple[str, re.Pattern[str]]:
    return label, re.compile(rf"^{re.escape(label)}\s*:?\s*{pattern}$")


# (label a line starts with, its full pattern); first match per key wins
_P_LINES: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    "session_s": (_p("Session creation time cost", rf"({NUM})\s*s"),),
    "first_ms": (_p("First inference time cost", rf"({NUM})\s*ms"),),
    "total_s": (_p("Total inference time cost", rf"({NUM})\s*s?"), _p("Total time cost", rf"({NUM})\s*s?")),
    "requests": (_p("Total inference requests", r"(\d+)"), _p("Total iterations", r"(\d+)")),
    "mean_ms": (_p("Average inference time cost", rf"({NUM})\s*ms"), _p("Average time cost", rf"({NUM})\s*ms")),
    "run_time_s": (_p("Total inference run time", rf"({NUM})\s*s"), _p("Total run time", rf"({NUM})\s*s")),
    "per_second": (_p("Number of inferences per second", rf"({NUM})"),),
    "cpu_percent": (_p("Avg CPU usage", rf"({NUM})\s*%?"),),
    "peak_bytes": (_p("Peak working set size", r"(\d+)\s*(?:bytes)?"),),
}
_P_LATENCY = re.compile(rf"^(Min|Max|P\d+) Latency(?:\s*:\s*|\s+is\s+)({NUM})\s*(?:s|sec)$")


def parse_perf_test(text: str) -> PerfTestOutput:
    """The summary onnxruntime_perf_test prints at the end of a run."""
    tool = PERF_TEST
    found: dict[str, float] = {}
    percentiles: dict[str, float] = {}
    banner = None
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        banner = banner or line
        if line.startswith("Run failed"):
            raise NativeOutputError(f"{tool}: {line}", hint="see the tool's message; check the provider and model")
        if re.match(r"^(Min|Max|P\d+) Latency", line):
            match = _P_LATENCY.match(line)
            if not match:
                raise unreadable(tool, line_no, raw, "a latency line without 'NUMBER s'")
            key = match.group(1).lower()
            percentiles[key] = number(match.group(2), line_no, raw, tool)
            continue
        for key, patterns in _P_LINES.items():
            hit = next(((label, pattern) for label, pattern in patterns if line.startswith(label)), None)
            if hit is None:
                continue
            match = hit[1].match(line)
            if not match:
                raise unreadable(tool, line_no, raw, "its figure is not where it should be")
            found.setdefault(key, number(match.group(1), line_no, raw, tool))
            break
    if "requests" not in found or "mean_ms" not in found:
        raise NativeOutputError(
            f"{tool} printed no summary ('Total inference requests' / 'Average inference time "
            f"cost'); its last line was {last_error_line(text)!r}",
            hint="check that the binary is onnxruntime_perf_test and that it ran the model",
        )
    requests = int(found["requests"])
    if requests < 1:
        raise NativeOutputError(f"{tool} ran no timed inference (0 requests)", hint="raise --iters or --seconds")
    if "total_s" in found:
        _agree(
            tool,
            0,
            "'Total inference time cost' / requests",
            found["total_s"] / requests * 1e3,
            "'Average inference time cost'",
            found["mean_ms"],
        )
    return PerfTestOutput(
        requests=requests,
        mean_ms=found["mean_ms"],
        total_s=found.get("total_s"),
        session_s=found.get("session_s"),
        first_ms=found.get("first_ms"),
        run_time_s=found.get("run_time_s"),
        per_second=found.get("per_second"),
        cpu_percent=found.get("cpu_percent"),
        peak_bytes=int(found["peak_bytes"]) if "peak_bytes" in found else None,
        percentiles_s=percentiles,
        banner=banner,
    )


def parse_perf_test_times(text: str) -> list[float]:
    """Per-run seconds from onnxruntime_perf_test's result file: one ``model,seconds,peak,cpu,index`` row
    per timed run (then, with -s, a blank line and the latency lines, which are not rows)."""
    times = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or re.match(r"^(Min|Max|P\d+) Latency", line):
            continue
        cells = line.split(",")
        if len(cells) < 5 or not _NUM.match(cells[-4].strip()) or not cells[-1].strip().isdigit():
            raise unreadable(f"{PERF_TEST}'s result file", line_no, raw, "not a 'model,seconds,peak,cpu,run' row")
        value = float(cells[-4])
        if not value >= 0 or not math.isfinite(value):
            raise unreadable(f"{PERF_TEST}'s result file", line_no, raw, "a run time that is not a duration")
        times.append(value)
    return times
