"""A latency figure is never given without saying when it cannot be trusted: a wide spread, or a device kept
busy by other processes while it was timed (measured on the device from /proc/stat, less the runner's own
CPU time)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shufflekit.device.bench import benchmark
from shufflekit.runtimes.noise import noise_warning

QUIET = {"p50_ms": 1.0, "p99_ms": 1.3, "mean_ms": 1.05, "std_ms": 0.1}


@pytest.mark.parametrize(
    "latency, contention, says",
    [
        (QUIET, {"other_busy_cores": 0.1}, None),
        (QUIET, None, None),  # a native tool: no contention measured, the spread alone
        ({**QUIET, "p99_ms": 26.0}, {"other_busy_cores": 0.0}, "p99 is 26.0x the p50"),
        ({**QUIET, "std_ms": 0.9}, None, "std is 86% of the mean"),
        (QUIET, {"other_busy_cores": 1.8}, "other processes kept 1.8 cores busy"),
        ({"p50_ms": None, "p99_ms": None, "mean_ms": 2.0, "std_ms": None}, None, None),  # benchmark_model's
    ],
)
def test_the_warning_says_what_makes_figures_unreliable(latency, contention, says):
    warning = noise_warning(latency, contention)
    assert warning is None if says is None else says in warning


def test_a_device_kept_busy_while_timing_is_measured_as_such(tiny_onnx):
    """Two processes spinning beside the timed loop: the runner reports the cores they took."""
    spin = [sys.executable, "-c", "while True: pass"]
    spinners = [subprocess.Popen(spin) for _ in range(2)]
    try:
        result = benchmark(str(tiny_onnx), threads=1, warmup=2, seconds=0.5)
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
    busy = result["contention"]["other_busy_cores"]
    assert busy >= 0.5, result["contention"]
    assert "other processes kept" in noise_warning(result["latency_ms"], result["contention"])
    assert len(result["contention"]["load_average"]) == 3
