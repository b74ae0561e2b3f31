"""The measurement: count validation, the timed loop, latency statistics, memory, and ``benchmark``
(load, first inference, timed loop, op profile, parity outputs) as one JSON-ready dict."""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import backends, procfs
from .backends import parse_providers
from .errors import RunnerError
from .facts import host_facts, peak_rss_bytes, rss_bytes
from .session import open_session
from .tensors import Feeds, example_images, image_input, plan_batch, predict_all, prepare_feeds, save_outputs


def latency_stats(times_s: Sequence[float]) -> Dict[str, Any]:
    t = np.asarray(times_s, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(t, [50, 90, 99])
    return {
        "mean_ms": float(t.mean()),
        "std_ms": float(t.std(ddof=1)) if t.size > 1 else 0.0,
        "min_ms": float(t.min()),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "max_ms": float(t.max()),
    }


def check_counts(
    warmup: Any, iters: Any, seconds: Any, batch: Any = None, cli: bool = False, min_iters: Any = None
) -> None:
    """The one check of warm-up, iteration, duration and batch counts: a job's fields here, the CLI's
    options on the host before anything runs (``cli``: the message names the options, ``--iters``).
    ``min_iters`` goes with ``seconds``: time for that long, and at least that many iterations."""
    name = (
        {"warmup": "--warmup", "iters": "--iters", "seconds": "--seconds", "batch": "--batch", "min": "--min-iters"}
        if cli
        else {"warmup": "warmup", "iters": "iterations", "seconds": "seconds", "batch": "batch", "min": "min_iters"}
    )
    if warmup is not None and int(warmup) < 0:
        raise RunnerError(
            "bad_input", "%s must be 0 or more, got %s" % (name["warmup"], warmup), hint="pass --warmup 0 or more"
        )
    if iters is not None and seconds is not None:
        raise RunnerError(
            "bad_input",
            "%s and %s both given" % (name["iters"], name["seconds"]),
            hint="pass one of --iters, --seconds",
        )
    if iters is not None and int(iters) < 1:
        raise RunnerError(
            "bad_input", "%s must be at least 1, got %s" % (name["iters"], iters), hint="pass --iters 1 or more"
        )
    if seconds is not None and not float(seconds) > 0:
        raise RunnerError(
            "bad_input",
            "%s must be more than 0, got %s" % (name["seconds"], seconds),
            hint="pass --seconds with a positive number",
        )
    if min_iters is not None and seconds is None:
        raise RunnerError(
            "bad_input",
            "%s goes with %s (a time budget with a floor)" % (name["min"], name["seconds"]),
            hint="pass --seconds too, or --iters alone",
        )
    if min_iters is not None and int(min_iters) < 1:
        raise RunnerError(
            "bad_input",
            "%s must be at least 1, got %s" % (name["min"], min_iters),
            hint="pass --min-iters 1 or more",
        )
    if batch is not None and int(batch) < 1:
        raise RunnerError(
            "bad_input", "%s must be at least 1, got %s" % (name["batch"], batch), hint="pass --batch 1 or more"
        )


def timed_loop(
    session: Any,
    feeds_list: Sequence[Feeds],
    warmup: int = 10,
    iters: Optional[int] = None,
    seconds: Optional[float] = None,
    min_iters: Optional[int] = None,
) -> List[float]:
    """The measured loop: per iteration, one batch (one run, or one run per image when looping).
    Returns the list of per-batch wall times in seconds. Nothing but the runtime call is timed. With
    ``seconds``, it runs until that much time has passed and (``min_iters``) at least that many
    iterations were timed, so a slow file still gets enough samples for its percentiles."""
    floor = int(min_iters or 1)
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
            if end >= deadline and len(times) >= floor:
                break
    else:
        for _ in range(int(iters if iters is not None else 100)):
            start = clock()
            for feeds in feeds_list:
                run(feeds)
            times.append(clock() - start)
    return times


def benchmark(
    path: str,
    runtime: Optional[str] = None,
    providers: Union[str, Sequence[str], None] = None,
    threads: Optional[int] = None,
    allow_fallback: bool = False,
    layout: Optional[str] = None,
    batch: int = 1,
    warmup: int = 10,
    iters: Optional[int] = None,
    seconds: Optional[float] = None,
    min_iters: Optional[int] = None,
    op_profile: bool = False,
    op_profile_runs: Optional[int] = None,
    seed: int = 0,
    keep_times: bool = False,
    parity_inputs: Optional[str] = None,
    parity_outputs: Optional[str] = None,
) -> Dict[str, Any]:
    """Load, time, and (optionally) op-profile one model file. Returns a JSON-ready dict.
    With ``parity_inputs``/``parity_outputs``, the session then predicts those images (after the timing,
    so the timed figures are untouched) and writes its outputs for the host to judge."""
    providers = parse_providers(providers)
    check_counts(warmup, iters, seconds, min_iters=min_iters)
    if iters is None and seconds is None:
        iters = 100
    rss_before = rss_bytes()
    gc_was = _gc_off()
    try:
        start = time.perf_counter()
        session = open_session(path, runtime, providers, threads, allow_fallback)
        load_s = time.perf_counter() - start
        info = image_input(session)
        how, _per_call = plan_batch(info, int(batch))
        images = example_images(info, int(batch), layout, seed)
        feeds_list = prepare_feeds(session, images, layout)
        start = time.perf_counter()
        for feeds in feeds_list:
            session.run(feeds)
        first_s = time.perf_counter() - start
        contention = procfs.Contention()
        times = timed_loop(session, feeds_list, warmup, iters, seconds, min_iters)
        other_cores = contention.other_cores()
    finally:
        _gc_restore(gc_was)
    total = float(sum(times))
    result = dict(session.info)
    result.update(
        {
            "model": os.path.basename(str(path)),
            "model_bytes": os.path.getsize(str(path)),
            "input": info.to_dict(),
            "layout": layout,
            "batch": int(batch),
            "batching": "one call per batch" if how == "direct" else "model fixed at batch 1: one call per image",
            "warmup": int(warmup),
            "iters": len(times),
            "seconds_requested": seconds,
            "min_iters": int(min_iters) if min_iters is not None else None,
            "load_ms": load_s * 1e3,
            "first_inference_ms": first_s * 1e3,
            "latency_ms": latency_stats(times),
            "throughput_ips": len(times) * int(batch) / total if total else None,
            "rss_before_load_bytes": rss_before,
            "rss_after_bytes": rss_bytes(),
            "peak_rss_bytes": peak_rss_bytes(),
            "host": host_facts(),
            # what else ran while this was timed: the host judges whether the figures can be trusted
            "contention": {
                "other_busy_cores": other_cores,
                "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            },
        }
    )
    if keep_times:
        result["times_ms"] = [t * 1e3 for t in times]
    if op_profile:
        runs = int(op_profile_runs or min(max(len(times), 10), 100))
        result["op_profile"] = profile_ops(
            path,
            result["runtime"],
            providers,
            threads,
            allow_fallback,
            feeds_list,
            warmup=min(int(warmup), 10),
            runs=runs,
        )
    if parity_inputs:
        if not parity_outputs:
            raise RunnerError("bad_input", "parity_inputs given without parity_outputs", hint="set both")
        save_outputs(predict_all(session, np.load(parity_inputs, allow_pickle=False), layout)[0], parity_outputs)
        result["parity_outputs"] = os.path.basename(parity_outputs)
    session.close()
    return result


def conv_peak(
    entry: Dict[str, Any],
    runtime: Optional[str] = None,
    providers: Union[str, Sequence[str], None] = None,
    threads: Optional[int] = None,
    allow_fallback: bool = False,
) -> Dict[str, Any]:
    """Time the dense-convolution micro-benchmark ``entry["model"]`` (the host's ``runtimes.peak``) in
    the job's runtime, provider and threads: its p50, run count and what ran, for the host to turn
    into the device's peak. Runs after the artifact's figures are taken, so they stay its own."""
    if not isinstance(entry, dict) or "model" not in entry:
        raise RunnerError("bad_input", "a peak entry names its model", hint='set "peak": {"model": ...}')
    measured = benchmark(
        entry["model"],
        runtime=runtime,
        providers=providers,
        threads=threads,
        allow_fallback=allow_fallback,
        layout=entry.get("layout"),
        warmup=int(entry.get("warmup", 3)),
        seconds=entry.get("seconds", 0.1),
        min_iters=entry.get("min_iters", 10),
    )
    keys = ("runtime", "runtime_version", "providers", "delegate", "threads", "iters", "latency_ms", "model")
    return {k: measured[k] for k in keys if k in measured}


def _gc_off() -> bool:
    import gc

    was = gc.isenabled()
    gc.collect()
    gc.disable()  # a collection in the middle of the loop is harness noise, not model latency
    return was


def _gc_restore(was: bool) -> None:
    import gc

    if was:
        gc.enable()


def profile_ops(
    path: str,
    runtime: str,
    providers: Optional[List[str]],
    threads: Optional[int],
    allow_fallback: bool,
    feeds_list: Sequence[Feeds],
    warmup: int = 5,
    runs: int = 50,
) -> Dict[str, Any]:
    """Time per operator. ORT: its own profiler, in a separate session (profiling slows every node a little,
    so it never touches the benchmark's figures). TFLite: see profile_tflite_ops."""
    return backends.get(runtime).profile_ops(path, providers, threads, allow_fallback, feeds_list, warmup, runs)
