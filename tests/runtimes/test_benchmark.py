"""The benchmark loop, op profiling and the device package's job mode, run as the zipapp file the remote
layer pushes to a device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shufflekit.device import bench
from shufflekit.device.backends import litert_ops
from shufflekit.device.errors import RunnerError
from shufflekit.runtimes.device_file import device_file

RUNNER = device_file()


def _check_stats(result: dict, iters: int | None = None, numpy_version: str = np.__version__) -> None:
    lat = result["latency_ms"]
    assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert lat["min_ms"] <= lat["mean_ms"] <= lat["max_ms"] and lat["std_ms"] >= 0
    if iters is not None:
        assert result["iters"] == iters
    assert result["load_ms"] > 0 and result["first_inference_ms"] > 0
    assert result["throughput_ips"] > 0 and result["peak_rss_bytes"] >= result["rss_before_load_bytes"] > 0
    host = result["host"]
    assert host["logical_cores"] >= 1 and host["cpu_model"] and host["numpy"] == numpy_version


def test_benchmark_onnx_reports_every_figure(tiny_models: dict) -> None:
    result = bench.benchmark(str(tiny_models["onnx"]), layout="NCHW", warmup=2, iters=15, threads=1)
    _check_stats(result, 15)
    assert result["providers"] == ["CPUExecutionProvider"] and result["threads"] == 1
    assert "onnxruntime" in result["host"]["runtimes"]


def test_batch_on_a_batch1_model_loops_and_counts_every_image(tiny_models: dict) -> None:
    looped = bench.benchmark(str(tiny_models["onnx"]), batch=4, warmup=1, iters=5)
    direct = bench.benchmark(str(tiny_models["onnx_dynamic"]), batch=4, warmup=1, iters=5)
    assert looped["batching"].startswith("model fixed at batch 1") and direct["batching"] == "one call per batch"
    for result in (looped, direct):
        _check_stats(result, 5)
        mean_s = result["latency_ms"]["mean_ms"] / 1e3
        assert result["throughput_ips"] == pytest.approx(4 / mean_s, rel=1e-6)


def test_benchmark_by_seconds_runs_until_the_time_is_up(tiny_models: dict) -> None:
    result = bench.benchmark(str(tiny_models["tflite_fp32"]), layout="NHWC", warmup=0, seconds=0.2)
    _check_stats(result)
    assert result["iters"] >= 2 and result["seconds_requested"] == 0.2
    assert result["latency_ms"]["mean_ms"] * result["iters"] >= 200 * 0.9


def test_a_time_budget_with_a_floor_times_at_least_that_many_runs(tiny_models: dict) -> None:
    # a budget far shorter than one run: the floor decides the count, and says so in the result
    result = bench.benchmark(str(tiny_models["onnx"]), warmup=0, seconds=1e-6, min_iters=7)
    _check_stats(result, 7)
    assert result["seconds_requested"] == 1e-6 and result["min_iters"] == 7


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"min_iters": 5}, "min_iters goes with seconds"),
        ({"seconds": 1.0, "min_iters": 0}, "min_iters must be at least 1"),
        ({"iters": 0}, "iterations must be at least 1"),
        ({"iters": -3}, "iterations must be at least 1"),
        ({"seconds": 0}, "seconds must be more than 0"),
        ({"warmup": -1}, "warmup must be 0 or more"),
        ({"iters": 5, "seconds": 1.0}, "both given"),
        ({"batch": 0}, "batch must be at least 1"),
    ],
)
def test_bad_counts_are_refused_before_anything_runs(tiny_models: dict, kwargs: dict, match: str) -> None:
    with pytest.raises(RunnerError, match=match) as info:
        bench.benchmark(str(tiny_models["onnx"]), **kwargs)
    assert info.value.kind == "bad_input"


def test_ort_op_profile_is_consistent_with_the_run_time(tiny_models: dict) -> None:
    result = bench.benchmark(str(tiny_models["onnx"]), warmup=3, iters=20, op_profile=True, threads=1)
    prof = result["op_profile"]
    assert prof["available"] and prof["runs"] == 20
    types = {n["op_type"] for n in prof["nodes"]}
    assert {"Conv", "Concat", "Transpose"} <= types  # ShuffleNet v2: convolutions, concat, channel shuffle
    assert all(n["provider"] == "CPUExecutionProvider" and n["mean_ms"] >= 0 for n in prof["nodes"])
    assert prof["node_providers"] == {"CPUExecutionProvider": len(prof["nodes"])}
    # Kernels are timed inside the run: their sum cannot exceed the profiled run time, and they are most of it.
    assert 0.3 * prof["run_ms"] < prof["node_sum_ms"] <= prof["run_ms"]


def test_tflite_op_profile_times_every_operator_in_isolation(tiny_models: dict) -> None:
    result = bench.benchmark(str(tiny_models["tflite_fp32"]), layout="NHWC", warmup=1, iters=3, op_profile=True)
    prof = result["op_profile"]
    assert prof["available"] and "isolated" in prof["method"]
    assert [n["op_type"] for n in prof["nodes"]] == ["CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"]
    assert len(prof["nodes"]) == result["ops"]
    assert all(n["mean_ms"] > 0 and n["provider"] in ("xnnpack", "builtin") for n in prof["nodes"])
    assert prof["node_sum_ms"] == pytest.approx(sum(n["mean_ms"] for n in prof["nodes"]))


def test_tflite_op_profile_says_plainly_when_it_cannot_be_done(tiny_models: dict, monkeypatch) -> None:
    # tflite-runtime ships no flatbuffer schema; hide it the way such a device lacks it.
    monkeypatch.setattr(litert_ops, "tflite_schema", lambda: (None, "the flatbuffers package is not installed"))
    result = bench.benchmark(str(tiny_models["tflite_fp32"]), layout="NHWC", warmup=1, iters=3, op_profile=True)
    prof = result["op_profile"]
    assert not prof["available"] and "offers no per-operator profiler" in prof["reason"]


def _job(tmp_path: Path, job: dict, python: str = sys.executable) -> tuple[int, dict, str]:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    proc = subprocess.run([python, str(RUNNER), str(path)], capture_output=True, text=True, timeout=300)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, f"stdout must be one JSON line, got: {proc.stdout!r}"
    return proc.returncode, json.loads(lines[0]), proc.stderr


def test_job_mode_benchmarks_and_prints_one_json_object(tmp_path: Path, tiny_models: dict) -> None:
    code, reply, stderr = _job(
        tmp_path,
        {
            "mode": "benchmark",
            "model": str(tiny_models["tflite_int8"]),
            "layout": "NHWC",
            "warmup": 2,
            "iters": 10,
            "threads": 1,
        },
    )
    assert code == 0 and reply["ok"], stderr
    _check_stats(reply["result"], 10)
    assert reply["result"]["runtime"] == "litert" and reply["result"]["input"]["dtype"] == "int8"


def test_job_mode_run_writes_dequantized_outputs(tmp_path: Path, tiny_models: dict) -> None:
    ref = np.load(tiny_models["keras_reference"])
    np.save(tmp_path / "in.npy", ref["images"])
    code, reply, stderr = _job(
        tmp_path,
        {
            "mode": "run",
            "model": str(tiny_models["tflite_fp32"]),
            "layout": "NHWC",
            "inputs": str(tmp_path / "in.npy"),
            "outputs": str(tmp_path / "out.npy"),
        },
    )
    assert code == 0 and reply["ok"], stderr
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), ref["logits"], rtol=1e-4, atol=1e-5)
    assert reply["result"]["shape"] == [3, 5]


def test_job_mode_probe_reports_host_and_runtimes(tmp_path: Path) -> None:
    code, reply, _ = _job(tmp_path, {"mode": "probe"})
    assert code == 0 and reply["ok"]
    runtimes = reply["result"]["host"]["runtimes"]
    assert "cpu" in runtimes["onnxruntime"]["providers"] and runtimes["litert"]["interpreter"]
    assert "xnnpack" in reply["result"]["tflite_delegates"]


def test_job_mode_errors_are_json_with_exit_code_2(tmp_path: Path, tiny_models: dict) -> None:
    code, reply, _ = _job(tmp_path, {"mode": "benchmark", "model": str(tiny_models["onnx"]), "provider": "cuda"})
    assert code == 2 and not reply["ok"]
    assert reply["error"]["kind"] == "provider_unavailable" and "cpu" in reply["error"]["available"]
    code, reply, _ = _job(tmp_path, {"mode": "benchmark", "model": str(tmp_path / "nope.onnx")})
    assert code == 2 and reply["error"]["kind"] == "bad_input"
    code, reply, _ = _job(tmp_path, {"mode": "dance"})
    assert code == 2 and "unknown job mode" in reply["error"]["message"]


DEVICE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-device" / "bin" / "python"


def _device_python() -> str:
    """The lean device environment `make test` builds: numpy<2, tflite-runtime, onnxruntime (a Pi's)."""
    if not DEVICE_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(".venv-device is missing (make test builds it)")
        pytest.skip(".venv-device is missing; `make test` builds it")
    return str(DEVICE_PYTHON)


@pytest.mark.parametrize("key,layout", [("tflite_fp32", "NHWC"), ("tflite_int8", "NHWC"), ("onnx", "NCHW")])
def test_job_mode_in_the_lean_device_environment(tmp_path: Path, tiny_models: dict, key: str, layout: str) -> None:
    python = _device_python()
    code, reply, stderr = _job(
        tmp_path,
        {
            "mode": "benchmark",
            "model": str(tiny_models[key]),
            "layout": layout,
            "batch": 2,
            "warmup": 1,
            "iters": 5,
            "op_profile": True,
        },
        python=python,
    )
    assert code == 0 and reply["ok"], stderr
    result = reply["result"]
    _check_stats(result, 5, numpy_version=result["host"]["numpy"])
    assert result["host"]["numpy"].startswith("1.")  # numpy<2 there
    if key.startswith("tflite"):
        assert result["interpreter"] == "tflite-runtime"
        # tflite-runtime ships no flatbuffer schema: no isolated-op timing there, and it says so
        assert not result["op_profile"]["available"] and "flatbuffer schema" in result["op_profile"]["reason"]
    else:
        assert result["op_profile"]["available"]


def test_run_job_in_the_lean_device_environment_matches_the_host(tmp_path: Path, tiny_models: dict) -> None:
    python = _device_python()
    ref = np.load(tiny_models["keras_reference"])
    np.save(tmp_path / "in.npy", ref["images"])
    code, reply, stderr = _job(
        tmp_path,
        {
            "mode": "run",
            "model": str(tiny_models["tflite_int8"]),
            "layout": "NHWC",
            "inputs": str(tmp_path / "in.npy"),
            "outputs": str(tmp_path / "out.npy"),
        },
        python=python,
    )
    assert code == 0 and reply["ok"], stderr
    from shufflekit.runtimes import load_session

    with load_session(tiny_models["tflite_int8"], layout="NHWC", options=None) as session:
        host = session.predict(ref["images"])
    scale = session.outputs[0].quantization.scale
    assert np.max(np.abs(np.load(tmp_path / "out.npy") - host)) <= 2 * scale  # same int8 model, other build
