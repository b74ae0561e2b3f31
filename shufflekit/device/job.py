"""Job mode: ``python3 shufflekit-device.pyz JOB.json`` (``-`` for stdin; ``python -m shufflekit.device`` on
the host) prints one JSON object on stdout:
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
    batch, warmup, iters, seconds, min_iters, op_profile, op_profile_runs, seed, keep_times   (benchmark)
    parity_inputs, parity_outputs   (benchmark, optional) .npy paths: after the timed loop, the same session
                    predicts these float32 NCHW images and writes its float32 outputs, for parity on the device
    peak            (benchmark, optional) {"model", "layout", "warmup", "seconds", "min_iters"}: after the
                    artifact (its figures taken), time that dense-convolution micro-benchmark in the same
                    runtime, provider and threads; its figures come back as "conv_peak" (not on an emulator)
    inputs, outputs .npy paths (run): float32 NCHW images in, float32 (dequantized) outputs out
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from typing import Any, Dict, List, Optional

import numpy as np

from .backends import parse_providers
from .backends.litert import available_tflite_delegates
from .bench import benchmark, conv_peak
from .errors import RunnerError, first_line
from .facts import host_facts, runtime_versions
from .session import open_session
from .tensors import predict_all, save_outputs

RUNNER_PROTOCOL = 1


def run_job(job: Any) -> Dict[str, Any]:
    """Execute one job dict; returns the result dict or raises RunnerError."""
    if not isinstance(job, dict):
        raise RunnerError("bad_input", "a job is a JSON object", hint="see the runner's docstring")
    mode = job.get("mode", "benchmark")
    if mode not in ("probe", "benchmark", "run"):
        raise RunnerError("bad_input", "unknown job mode %r" % mode, hint="use probe, benchmark or run")
    if mode == "probe":
        return {
            "host": host_facts(),
            "tflite_delegates": available_tflite_delegates() if "litert" in runtime_versions() else [],
            "protocol": RUNNER_PROTOCOL,
        }
    if "model" not in job:
        raise RunnerError("bad_input", "the job names no model", hint='set "model" to a .onnx or .tflite path')
    providers = parse_providers(job.get("provider", job.get("providers")))
    common: Dict[str, Any] = dict(
        runtime=job.get("runtime"),
        providers=providers,
        threads=job.get("threads"),
        allow_fallback=bool(job.get("allow_fallback", False)),
    )
    if mode == "benchmark":
        measured = benchmark(
            job["model"],
            layout=job.get("layout"),
            batch=int(job.get("batch", 1)),
            warmup=int(job.get("warmup", 10)),
            iters=job.get("iters"),
            seconds=job.get("seconds"),
            min_iters=job.get("min_iters"),
            op_profile=bool(job.get("op_profile", False)),
            op_profile_runs=job.get("op_profile_runs"),
            seed=int(job.get("seed", 0)),
            keep_times=bool(job.get("keep_times", False)),
            parity_inputs=job.get("parity_inputs"),
            parity_outputs=job.get("parity_outputs"),
            **common,
        )
        if job.get("peak") and not measured["host"].get("emulated"):  # an emulator's speed is no device's peak
            try:
                measured["conv_peak"] = conv_peak(job["peak"], **common)
            except RunnerError as exc:  # the artifact's figures stand; the host shows no fraction and says why
                measured["conv_peak_error"] = exc.message
        return measured
    if mode == "run":
        for key in ("inputs", "outputs"):
            if key not in job:
                raise RunnerError("bad_input", "a run job needs %r (an .npy path)" % key, hint="set it in the job")
        images = np.load(job["inputs"], allow_pickle=False)
        session = open_session(job["model"], **common)
        outputs = predict_all(session, images, job.get("layout"))
        save_outputs(outputs[0], job["outputs"])
        result: Dict[str, Any] = dict(session.info)
        result.update(
            {
                "model": os.path.basename(job["model"]),
                "outputs": job["outputs"],
                "shape": list(outputs[0].shape),
                "host": host_facts(with_runtimes=False),
            }
        )
        return result
    raise RunnerError("bad_input", "unknown job mode %r" % mode, hint="use probe, benchmark or run")


def _exit_when_orphaned(interval: float = 1.0) -> None:
    """A job whose parent is gone (the command killed, the ssh or adb session dropped) has no reader for
    its answer: exit instead of measuring on, maybe for hours, on a device someone else may be timing."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:  # re-parented to init or a subreaper
                os._exit(3)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def main(argv: Optional[List[str]] = None) -> int:
    """``shufflekit-device.pyz JOB.json|-`` -> one JSON object on stdout. Exit 0 ok, 2 a RunnerError, 1 a crash."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _exit_when_orphaned()
    # Runtimes print to stdout from C++ (delegate banners, warnings): keep fd 1 for our JSON only.
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    code = 0
    try:
        try:
            if len(argv) != 1:
                raise RunnerError(
                    "bad_input", "usage: shufflekit-device.pyz JOB.json (or - for stdin)", hint="pass one job"
                )
            if argv[0] == "-":
                text = sys.stdin.read()
            else:
                with open(argv[0]) as handle:
                    text = handle.read()
            try:
                job = json.loads(text)
            except ValueError as exc:
                raise RunnerError(
                    "bad_input", "the job is not valid JSON (%s)" % exc, hint="check the job file"
                ) from None
            reply = {"ok": True, "protocol": RUNNER_PROTOCOL, "result": run_job(job)}
        except RunnerError as exc:
            reply, code = {"ok": False, "protocol": RUNNER_PROTOCOL, "error": exc.to_dict()}, 2
        except Exception as exc:
            reply, code = (
                {
                    "ok": False,
                    "protocol": RUNNER_PROTOCOL,
                    "error": {
                        "kind": "internal",
                        "message": "%s: %s" % (type(exc).__name__, first_line(exc)),
                        "hint": "this is a bug in the runner",
                        "traceback": traceback.format_exc(),
                    },
                },
                1,
            )
        sys.stdout.flush()
    finally:
        os.dup2(real_stdout, 1)
        os.close(real_stdout)
    sys.stdout.write(json.dumps(reply, default=_json_default) + "\n")
    sys.stdout.flush()
    return code


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
