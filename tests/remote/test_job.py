"""A whole remote job: probe -> work folder -> push the device file (shufflekit-device.pyz), job and files ->
run -> pull -> clean up,
through the real sshd into the lean device Python (numpy<2, tflite-runtime, onnxruntime), and through
``local`` by the same path. The device is this machine, so a test can look into the device's folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shufflekit.errors import DeviceError
from shufflekit.runtimes.remote import DeviceTimeoutError, open_transport, parse_address
from shufflekit.runtimes.remote.job import run_job


def interruptible() -> None:
    """``preexec_fn`` for a child a test will Ctrl-C: SIGINT at its default and unblocked, as in a process
    a terminal starts. A test runner started in the background (``cmd &`` in a script) passes SIGINT on
    ignored, and a process that starts with SIGINT ignored is meant to ignore it (nohup)."""
    import signal

    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _host_logits(model: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"images": images[i : i + 1]})[0] for i in range(len(images))])


def _running_in(folder: Path) -> list[int]:
    """Processes whose working directory is (or was, before it was removed) inside ``folder``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "cwd").startswith(str(folder)):
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture
def images(tmp_path) -> Path:
    path = tmp_path / "images.npy"
    np.save(path, np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32))
    return path


@pytest.mark.ssh
@pytest.mark.parametrize("fmt, runtime", [("onnx", "onnxruntime"), ("tflite", "tflite_runtime")])
def test_exported_artifact_runs_on_the_lean_device_within_parity_of_pytorch(
    ssh_client, device_python, device_tmp, small_release, tmp_path, fmt, runtime
):
    """Export -> push -> run -> pull -> compare: the release's own artifact, on a Raspberry Pi-like
    Python (numpy<2, onnxruntime / tflite-runtime), judged against PyTorch with the tolerance table."""
    from shufflekit.artifacts import Manifest
    from shufflekit.export.reference import REFERENCE_NAME, Reference
    from shufflekit.validate import tolerance_for
    from shufflekit.validate.metrics import compare, judge

    artifact = next(a for a in Manifest.load(small_release).artifacts if a.format == fmt and a.precision == "fp32")
    reference = Reference.load(small_release / REFERENCE_NAME)
    inputs = tmp_path / "inputs.npy"
    np.save(inputs, reference.inputs[:4])
    address = ssh_client.address(python=device_python, tmp=str(device_tmp))
    job = {
        "mode": "run",
        "model": artifact.name,
        "inputs": inputs.name,
        "outputs": "logits.npy",
        "layout": artifact.input.layout,
    }
    done = run_job(
        address,
        job,
        [artifact.path_in(small_release), inputs],
        artifact_format=fmt,
        pull=["logits.npy"],
        pull_into=tmp_path / "back",
        timeout=300,
        options=ssh_client.options(),
    )
    device_logits = np.load(done.pulled["logits.npy"])
    assert device_logits.shape == reference.logits[:4].shape
    assert judge(compare(reference.logits[:4], device_logits), tolerance_for(fmt, "fp32")) == []
    assert done.device["runtime"] == runtime  # the lean runtime a board has, not the host's
    assert done.result["host"]["numpy"].startswith("1.")  # and the device's numpy<2
    assert done.address == address.key  # with its ?python=: the interpreter is part of the key
    assert list(device_tmp.iterdir()) == []  # nothing left on the device


@pytest.mark.ssh
def test_benchmark_job_returns_latency_figures_from_the_device(ssh_client, device_python, device_tmp, tiny_onnx):
    address = ssh_client.address(python=device_python, tmp=str(device_tmp))
    job = {"mode": "benchmark", "model": tiny_onnx.name, "warmup": 2, "iters": 5, "threads": 1}
    done = run_job(address, job, [tiny_onnx], artifact_format="onnx", timeout=120, options=ssh_client.options())
    latency = done.result["latency_ms"]
    assert done.result["iters"] == 5 and 0 < latency["min_ms"] <= latency["p50_ms"] <= latency["max_ms"]
    assert done.result["host"]["runtimes"]["onnxruntime"]["version"]
    assert list(device_tmp.iterdir()) == []


@pytest.mark.ssh
def test_device_without_a_runtime_is_one_line_before_anything_is_copied(
    ssh_client, bare_device_python, device_tmp, tiny_onnx
):
    address = ssh_client.address(python=bare_device_python, tmp=str(device_tmp))
    with pytest.raises(DeviceError) as info:
        run_job(
            address,
            {"mode": "benchmark", "model": tiny_onnx.name},
            [tiny_onnx],
            artifact_format="onnx",
            options=ssh_client.options(),
        )
    assert info.value.one_line() == (
        f"{address}: no runtime for onnx artifacts on the device; install onnxruntime there (pip install onnxruntime)"
    )
    with pytest.raises(DeviceError, match="no runtime for tflite artifacts.*ai-edge-litert"):
        run_job(address, {}, [], artifact_format="tflite", options=ssh_client.options())
    assert list(device_tmp.iterdir()) == []


@pytest.mark.ssh
def test_a_failing_job_reports_the_runners_line_and_cleans_up(ssh_client, device_python, device_tmp, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not a model")
    address = ssh_client.address(python=device_python, tmp=str(device_tmp))
    with pytest.raises(DeviceError) as info:
        run_job(
            address,
            {"mode": "benchmark", "model": broken.name},
            [broken],
            artifact_format="onnx",
            options=ssh_client.options(),
        )
    line = info.value.one_line()
    assert line.startswith(f"{address}: ") and "broken.onnx" in line and "\n" not in line
    assert list(device_tmp.iterdir()) == []


@pytest.mark.ssh
def test_a_job_past_its_timeout_is_killed_and_cleaned_up(ssh_client, device_python, device_tmp, tiny_onnx):
    address = ssh_client.address(python=device_python, tmp=str(device_tmp))
    job = {"mode": "benchmark", "model": tiny_onnx.name, "warmup": 0, "seconds": 60}
    with pytest.raises(DeviceTimeoutError, match="ran past its 3 s limit"):
        run_job(address, job, [tiny_onnx], artifact_format="onnx", timeout=3, options=ssh_client.options())
    assert list(device_tmp.iterdir()) == []
    assert _running_in(device_tmp) == [], "the timed-out runner is still running on the device"


_INTERRUPTED_JOB = """
import sys
from shufflekit.runtimes.remote import ConnectOptions, parse_address
from shufflekit.runtimes.remote.job import run_job
from pathlib import Path
address, config, model = sys.argv[1:]
try:
    run_job(parse_address(address), {"mode": "benchmark", "model": Path(model).name, "warmup": 0, "seconds": 60},
            [Path(model)], artifact_format="onnx", timeout=120, options=ConnectOptions(ssh_config=Path(config)))
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.ssh
def test_ctrl_c_stops_the_job_on_the_device_and_cleans_up(ssh_client, device_python, device_tmp, tiny_onnx):
    address = ssh_client.url(python=device_python, tmp=str(device_tmp))
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED_JOB, address, str(ssh_client.config), str(tiny_onnx)],
        preexec_fn=interruptible,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(device_tmp.glob("shufflekit.*/.shufflekit.pid")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(device_tmp.glob("shufflekit.*/.shufflekit.pid")), "the job never started"
        time.sleep(1)  # let the runner get going
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
    assert list(device_tmp.iterdir()) == []
    assert _running_in(device_tmp) == []


@pytest.mark.ssh
def test_not_enough_space_on_the_device_is_one_line_before_copying(
    ssh_client, device_python, device_tmp, tiny_onnx, tmp_path
):
    free = os.statvfs(device_tmp).f_bavail * os.statvfs(device_tmp).f_frsize
    huge = tmp_path / "huge.tflite"
    with open(huge, "wb") as handle:  # sparse: large on paper, nothing on disk
        handle.truncate(free + (1 << 30))
    address = ssh_client.address(python=device_python, tmp=str(device_tmp))
    with pytest.raises(DeviceError, match=r"not enough space on the device: .* MB free"):
        run_job(address, {"mode": "benchmark", "model": huge.name}, [huge], options=ssh_client.options())
    assert list(device_tmp.iterdir()) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MiB file system (tmpfs) to fill up; needs the right to mount (root here and in CI)."""
    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.ssh
def test_a_disk_that_fills_up_during_the_copy_is_named(ssh_client, tiny_disk, tmp_path):
    blob = tmp_path / "model.onnx"
    blob.write_bytes(os.urandom(3 << 20))
    with open_transport(ssh_client.address(tmp=str(tiny_disk)), ssh_client.options()) as device:
        work = device.make_workdir()
        with pytest.raises(DeviceError, match="disk is full .*No space left on device"):
            device.push([blob], work)
        device.remove_workdir(work)
    assert list(tiny_disk.iterdir()) == []


def test_local_runs_the_same_job_through_the_same_path(device_python, device_tmp, tiny_onnx, images, tmp_path):
    address = parse_address(f"local?python={device_python}&tmp={device_tmp}")
    job = {"mode": "run", "model": tiny_onnx.name, "inputs": images.name, "outputs": "logits.npy"}
    done = run_job(
        address,
        job,
        [tiny_onnx, images],
        artifact_format="onnx",
        pull=["logits.npy"],
        pull_into=tmp_path / "back",
        timeout=120,
    )
    np.testing.assert_allclose(
        np.load(done.pulled["logits.npy"]), _host_logits(tiny_onnx, np.load(images)), rtol=1e-5, atol=1e-5
    )
    assert (
        done.result["host"]["numpy"].startswith("1.") and done.address == f"local?python={device_python}"
    )  # not the host's own local
    assert list(device_tmp.iterdir()) == []


def test_local_timeout_kills_the_job(device_tmp, tiny_onnx):
    address = parse_address(f"local?tmp={device_tmp}")
    with pytest.raises(DeviceTimeoutError):
        run_job(
            address,
            {"mode": "benchmark", "model": tiny_onnx.name, "warmup": 0, "seconds": 60},
            [tiny_onnx],
            artifact_format="onnx",
            timeout=3,
        )
    assert list(device_tmp.iterdir()) == []
    assert _running_in(device_tmp) == []
