"""`shufflekit profile --benchmark-binary`: the native tools pushed to the device with each artifact, run
there, their output read into the runner's figures, and everything removed afterwards.

Neither TFLite's benchmark_model nor onnxruntime_perf_test is on a package registry, and no Android
device runs here. So the tools are stand-ins (tests/runtimes/native_tools/: POSIX sh scripts, runnable
by a phone's shell as well) that take the real tools' flags and print the real tools' output, line for
line in their formats; their docstrings name the sources (the tools' own sources and outputs pasted in
tensorflow/tensorflow and microsoft/onnxruntime issues). They run through the real transports: this
computer (local), the stand-in adb of tests/remote/fake_adb (its device file system is a temporary
folder) and the real OpenSSH server of tests/remote/conftest.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line
from shufflekit.device.bench import latency_stats
from shufflekit.runtimes import RuntimeOptions
from shufflekit.runtimes.native import NativeTools, identify
from shufflekit.runtimes.profile import ProfileSettings
from shufflekit.runtimes.remote import DeviceTimeoutError

TOOLS = Path(__file__).with_name("native_tools")
FAKE_ADB = Path(__file__).parents[1] / "remote" / "fake_adb"
FAST = ("--warmup", "3", "--iters", "20")
# the per-run seconds the onnxruntime_perf_test stand-in writes into its result file, cyclically
ORT_RUNS = (0.001802, 0.001791, 0.001833, 0.001788, 0.001947, 0.001796, 0.001810, 0.001757)


@pytest.fixture
def release(tmp_path: Path, small_release: Path) -> Path:
    """A copy of the session's release folder (one TFLite and one ONNX file). The stand-ins only check the
    file arrived, but the files are real: the host checks every file's tensors against the manifest."""
    folder = tmp_path / "release"
    shutil.copytree(small_release, folder)
    return folder


@pytest.fixture
def tools(tmp_path: Path):
    """Copies of the stand-ins under the names a user has (the name picks a variant)."""
    folder = tmp_path / "tools"
    folder.mkdir()

    def make(name: str, source: str = "benchmark_model") -> Path:
        target = folder / name
        shutil.copy(TOOLS / source, target)
        target.chmod(0o755)
        return target

    return make


@pytest.fixture
def android(tmp_path: Path, monkeypatch) -> Path:
    """The stand-in adb first on PATH; the device's /data/local/tmp is <root>/data/local/tmp."""
    root = tmp_path / "android"
    (root / "data" / "local" / "tmp").mkdir(parents=True)
    monkeypatch.setenv("PATH", f"{FAKE_ADB}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(root))
    monkeypatch.setenv("FAKE_ADB_DEVICES", "emulator-5554=device")
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    return root / "data" / "local" / "tmp"


def _profile(*args: str):
    return CliRunner().invoke(main, ["profile", *map(str, args)])


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip() and not is_progress_line(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return " ".join(lines[0].split())


def _rows(result) -> dict[str, dict]:
    assert result.exit_code == 0, result.output
    return {r["format"]: r for r in json.loads(result.stdout)["results"]}


def test_both_tools_measure_locally_and_the_figures_are_theirs(release, tools, tmp_path):
    device_tmp = tmp_path / "device"
    device_tmp.mkdir()
    bm, ort = tools("linux_x86-64_benchmark_model"), tools("onnxruntime_perf_test", "onnxruntime_perf_test")
    result = _profile(
        release,
        *FAST,
        "--device",
        f"local?tmp={device_tmp}",
        "--benchmark-binary",
        bm,
        "--benchmark-binary",
        ort,
        "--json",
    )
    rows = _rows(result)
    tfl, onnx = rows["tflite"], rows["onnx"]
    # benchmark_model: its Stat lines (us) as the runner's fields (ms); its median is the p50, p90/p99
    # are printed by no build of it and stay empty
    assert tfl["tool"]["name"] == "benchmark_model" and tfl["tool"]["binary"] == bm.name
    assert tfl["tool"]["version"] == "2.19.0" and tfl["tool"]["sha256"] == runner_sha(bm)
    assert (tfl["warmup"], tfl["iters"]) == (3, 20)  # the flags reached the tool: its counts say so
    lat = tfl["latency_ms"]
    assert (lat["mean_ms"], lat["min_ms"], lat["max_ms"], lat["p50_ms"]) == (1.85327, 1.788, 2.41, 1.841)
    assert lat["p90_ms"] is None and lat["p99_ms"] is None
    assert lat["std_ms"] == pytest.approx(0.061 * np.sqrt(20 / 19))  # population std -> sample std
    assert (tfl["load_ms"], tfl["first_inference_ms"]) == (10.457, 2.14)
    assert tfl["peak_rss_bytes"] == int(14.7539 * 1048576)
    assert tfl["throughput_ips"] == pytest.approx(1000 / 1.85327)
    assert tfl["providers"] == ["xnnpack"] and tfl["runtime"] == "litert"
    # onnxruntime_perf_test: statistics from its per-run result file, computed like the runner's
    times = [ORT_RUNS[i % 8] for i in range(20)]
    expected = latency_stats(times)
    assert onnx["tool"]["name"] == "onnxruntime_perf_test" and onnx["iters"] == 20 and onnx["warmup"] == 1
    assert onnx["latency_ms"] == pytest.approx(expected)
    assert (onnx["load_ms"], onnx["first_inference_ms"], onnx["peak_rss_bytes"]) == (41.9207, 3.0, 41271296)
    assert onnx["providers"] == ["CPUExecutionProvider"] and onnx["runtime"] == "onnxruntime"
    assert any("--warmup 3 could not be applied" in w for w in onnx["tool"]["warnings"])
    # in the manifest like any profile, under the device, with the tool
    manifest = Manifest.load(release)
    latency = manifest.results("latency", group="local")
    assert latency["shufflenet_v2_x0_5_fp32.tflite"]["tool"]["name"] == "benchmark_model"
    assert latency["shufflenet_v2_x0_5_fp32.onnx"]["latency_ms"]["mean_ms"] == pytest.approx(expected["mean_ms"])
    assert manifest.group_info("latency", "local")["facts_from"].startswith("device shell")
    assert list(device_tmp.iterdir()) == []  # nothing left on the "device"


def runner_sha(path: Path) -> str:
    from shufflekit.files import sha256_file

    return sha256_file(path)


def test_android_over_adb_with_op_profiles_leaves_nothing_behind(release, tools, android):
    bm, ort = tools("android_aarch64_benchmark_model"), tools("onnxruntime_perf_test", "onnxruntime_perf_test")
    device = f"adb://emulator-5554?tmp={android}"
    result = _profile(
        release,
        *FAST,
        "--op-profile",
        "--device",
        device,
        "--benchmark-binary",
        bm,
        "--benchmark-binary",
        ort,
        "--json",
    )
    rows = _rows(result)
    assert {r["device"] for r in json.loads(result.stdout)["results"]} == {"adb://emulator-5554"}
    tfl = rows["tflite"]
    ops = tfl["op_profile"]
    assert ops["available"] and ops["method"].startswith("benchmark_model --enable_op_profiling")
    # XNNPACK's operators, each per run (avg per call x calls per run), in the runner's categories
    by_type = {t["op_type"]: t for t in tfl["breakdown"]["op_types"]}
    assert by_type["Convolution (NHWC, F32) DWConv"]["category"] == "depthwise conv"
    assert by_type["Convolution (NHWC, F32) DWConv"]["ms"] == pytest.approx(0.027 * 8)
    assert by_type["Transpose (ND, X32)"]["category"] == "transpose/reshape/shuffle"
    assert by_type["Fully Connected (NC, F32) GEMM"]["category"] == "fully connected"
    assert ops["node_providers"] == {"xnnpack": 10, "builtin": 1}
    assert ops["run_ms"] == pytest.approx(1.84911) and ops["node_sum_ms"] == pytest.approx(1.82)
    onnx_ops = rows["onnx"]["op_profile"]  # ONNX Runtime's profiler file, pulled and read as the runner does
    assert [n["op_type"] for n in onnx_ops["nodes"]] == ["Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"]
    assert onnx_ops["nodes"][0]["mean_ms"] == pytest.approx(0.420) and onnx_ops["runs"] == 20  # warm-up left out
    categories = {c["category"] for c in rows["onnx"]["breakdown"]["categories"]}
    assert {"conv", "element-wise", "pooling", "fully connected"} <= categories
    manifest = Manifest.load(release)
    assert set(manifest.results("op_profile", group="adb://emulator-5554")) == {a.name for a in manifest.artifacts}
    facts = manifest.group_info("latency", "adb://emulator-5554")
    assert facts["logical_cores"] and facts["cpu_model"]  # read by the device's shell, no Python there
    assert list(android.iterdir()) == []  # binary, model, result and profile files all gone


@pytest.mark.ssh
def test_a_board_over_ssh(release, tools, ssh_client, tmp_path):
    device_tmp = tmp_path / "board-tmp"
    device_tmp.mkdir()
    result = _profile(
        release,
        "tflite",
        *FAST,
        "--device",
        ssh_client.url(tmp=str(device_tmp)),
        "--ssh-config",
        ssh_client.config,
        "--benchmark-binary",
        tools("benchmark_model"),
        "--json",
    )
    row = _rows(result)["tflite"]
    assert row["iters"] == 20 and row["tool"]["name"] == "benchmark_model"
    assert {r["device"] for r in json.loads(result.stdout)["results"]} == {ssh_client.address().key}
    assert list(device_tmp.iterdir()) == []


@pytest.mark.ssh
def test_a_phone_on_a_lab_computer_and_a_board_behind_a_gateway_are_measured_together(
    release, tools, android, ssh_client, tmp_path, monkeypatch
):
    """Devices on other computers: a phone on another computer's adb server (adb://SERIAL@HOST:PORT, the
    stand-in adb holds it on the server lab-pc:5038) and a board reached through a jump host (ProxyJump to
    the real sshd), in one profile run, each filed under its own key."""
    monkeypatch.setenv("FAKE_ADB_SERVER", "lab-pc:5038")
    server = ssh_client.server
    ssh_client.config.write_text(
        f"Host gateway\n  HostName 127.0.0.1\n  Port {server.port}\n  User {server.user}\n"
        + ssh_client.config.read_text()
    )
    board_tmp = tmp_path / "board-tmp"
    board_tmp.mkdir()
    phone = f"adb://emulator-5554@lab-pc:5038?tmp={android}"
    board = ssh_client.url(tmp=str(board_tmp), jump="gateway")
    result = _profile(
        release,
        "tflite",
        *FAST,
        "--device",
        phone,
        "--device",
        board,
        "--ssh-config",
        ssh_client.config,
        "--benchmark-binary",
        tools("benchmark_model"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    rows = {r["device"]: r for r in json.loads(result.stdout)["results"]}  # one tflite file on each device
    assert set(rows) == {"adb://emulator-5554@lab-pc:5038", ssh_client.address().key}
    for row in rows.values():
        assert row["iters"] == 20 and row["tool"]["name"] == "benchmark_model"
    assert list(android.iterdir()) == [] and list(board_tmp.iterdir()) == []


def test_a_tool_that_fails_is_one_line_and_cleaned_up(release, tools, android):
    result = _profile(
        release,
        "tflite",
        *FAST,
        "--device",
        f"adb://?tmp={android}",
        "--benchmark-binary",
        tools("benchmark_model_fail"),
    )
    line = _one_error_line(result)
    assert "benchmark_model_fail failed on shufflenet_v2_x0_5_fp32.tflite (exit 1)" in line
    assert "Failed to construct interpreter" in line
    assert list(android.iterdir()) == []
    assert Manifest.load(release).results("latency", group="adb://emulator-5554") == {}


def test_unexpected_output_is_one_line_naming_the_line_and_no_figure_is_recorded(release, tools, android):
    result = _profile(
        release,
        "tflite",
        *FAST,
        "--device",
        f"adb://?tmp={android}",
        "--benchmark-binary",
        tools("benchmark_model_garbled"),
    )
    line = _one_error_line(result)
    assert re.search(r"cannot read benchmark_model's output: line \d+ 'INFO: count=3 first=2140 .* avg=1866.5us", line)
    assert "'1866.5us' is not a number" in line
    assert list(android.iterdir()) == []
    assert Manifest.load(release).results("latency", group="adb://emulator-5554") == {}


def test_a_binary_that_is_no_benchmark_tool(release, tools, tmp_path):
    odd = tmp_path / "mystery_tool"  # neither its name nor its contents say what it is: trusted, then read
    odd.write_text("#!/bin/sh\necho 'hello from some other program'\n")
    odd.chmod(0o755)
    line = _one_error_line(_profile(release, "tflite", *FAST, "--benchmark-binary", odd))
    assert "benchmark_model printed no run statistics" in line and "hello from some other program" in line


def test_a_renamed_tool_is_known_by_its_contents(tmp_path):
    renamed = tmp_path / "bm"
    shutil.copy(TOOLS / "benchmark_model", renamed)
    assert identify(renamed) == "benchmark_model"
    shutil.copy(TOOLS / "onnxruntime_perf_test", renamed)
    assert identify(renamed) == "onnxruntime_perf_test"


def test_the_wrong_tool_for_the_format_is_refused_before_anything_runs(release, tools):
    ort = tools("onnxruntime_perf_test", "onnxruntime_perf_test")
    line = _one_error_line(_profile(release, "tflite", "--benchmark-binary", ort))
    assert (
        "onnxruntime_perf_test (ONNX Runtime's onnxruntime_perf_test) cannot measure "
        "shufflenet_v2_x0_5_fp32.tflite: tflite artifacts need TFLite's benchmark_model" in line
    )
    line = _one_error_line(_profile(release, "--benchmark-binary", tools("benchmark_model")))
    assert "onnx artifacts need ONNX Runtime's onnxruntime_perf_test" in line
    assert Manifest.load(release).results("latency", group="local") == {}


def test_what_the_tools_cannot_do_is_refused(release, tools):
    bm, ort = tools("benchmark_model"), tools("onnxruntime_perf_test", "onnxruntime_perf_test")
    assert "--batch 4 needs the Python runner" in _one_error_line(
        _profile(release, "tflite", "--batch", "4", "--benchmark-binary", bm)
    )
    assert "onnxruntime_perf_test runs one provider" in _one_error_line(
        _profile(release, "onnx", "--provider", "cuda,xnnpack", "--benchmark-binary", ort)
    )
    assert "has no provider fallback" in _one_error_line(
        _profile(release, "onnx", "--allow-fallback", "--benchmark-binary", ort)
    )
    assert "does not exist" in _one_error_line(_profile(release, "--benchmark-binary", "/nowhere/benchmark_model"))


def test_a_delegate_the_tool_could_not_apply_is_an_error_unless_fallback_is_allowed(release, tools):
    bm = tools("benchmark_model")
    line = _one_error_line(_profile(release, "tflite", *FAST, "--provider", "nnapi", "--benchmark-binary", bm))
    assert "did not run shufflenet_v2_x0_5_fp32.tflite on the nnapi delegate (it took no operator" in line
    line = _one_error_line(_profile(release, "tflite", *FAST, "--provider", "gpu", "--benchmark-binary", bm))
    assert "GPU acceleration is unsupported on this platform" in line
    row = _rows(
        _profile(
            release, "tflite", *FAST, "--provider", "nnapi", "--allow-fallback", "--benchmark-binary", bm, "--json"
        )
    )["tflite"]
    assert row["fallback"] is True and row["fallback_from"] == ["nnapi"] and row["providers"] == ["xnnpack"]


def test_a_provider_the_tool_was_built_without(release, tools):
    ort = tools("onnxruntime_perf_test", "onnxruntime_perf_test")
    line = _one_error_line(_profile(release, "onnx", *FAST, "--provider", "cuda", "--benchmark-binary", ort))
    assert "cannot use the requested provider" in line and "CUDA execution provider is not supported" in line


def test_an_old_tool_its_missing_figures_stay_empty(release, tools, tmp_path):
    """An old benchmark_model: no percentiles, flags it did not know. p50 stays empty (never the mean),
    the table and the plots still render, and the user is told which flags were ignored."""
    old = tools("old_benchmark_model")
    result = _profile(release, "tflite", *FAST, "--benchmark-binary", old, "--plot", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "fp32.tflite: the tool did not know --warmup_min_secs=0" in text
    entry = Manifest.load(release).results("latency", group="local")["shufflenet_v2_x0_5_fp32.tflite"]
    assert entry["latency_ms"]["p50_ms"] is None and entry["per_image_p50_ms"] is None
    assert entry["us_per_mmac"] is None and entry["latency_ms"]["mean_ms"] == 1.85327
    assert entry["peak_rss_bytes"] is None  # the old tool's memory line is a delta, not a peak
    assert (tmp_path / "plots").is_dir()
    report = CliRunner().invoke(main, ["report", str(release)])  # the release report takes the empty p50 too
    assert report.exit_code == 0, report.output


def test_a_tool_that_never_finishes_is_stopped_and_cleaned_up(release, tools, tmp_path):
    device_tmp = tmp_path / "device"
    device_tmp.mkdir()
    native = NativeTools.from_paths([tools("benchmark_model_hang")])
    art = Manifest.load(release).select(["tflite"])[0]
    with pytest.raises(DeviceTimeoutError, match="ran past its 2 s limit"):
        native.measure(
            f"local?tmp={device_tmp}",
            art,
            release / art.name,
            RuntimeOptions(),
            ProfileSettings(warmup=1, iters=5),
            timeout=2,
        )
    assert list(device_tmp.iterdir()) == []
