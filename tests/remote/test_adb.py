"""The adb transport. No Android device or emulator can run on the test machines, so these tests put a
stand-in `adb` first on PATH (tests/remote/fake_adb/adb): it keeps the device's file system in a
temporary folder, runs `adb shell` lines with the local /bin/sh and passes exit statuses back, and
words its errors as real adb does. What is tested is shufflekit's side: device selection, quoting,
copies, the work folder and its removal, and the whole job running through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shufflekit.errors import DeviceError
from shufflekit.runtimes.remote import open_transport, parse_address
from shufflekit.runtimes.remote.adb import list_adb_devices
from shufflekit.runtimes.remote.job import run_job

FAKE_ADB = Path(__file__).with_name("fake_adb")


@pytest.fixture
def android(tmp_path, monkeypatch) -> Path:
    """The stand-in device's file system; its /data/local/tmp is <root>/data/local/tmp."""
    root = tmp_path / "android"
    (root / "data" / "local" / "tmp").mkdir(parents=True)
    monkeypatch.setenv("PATH", f"{FAKE_ADB}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(root))
    monkeypatch.setenv("FAKE_ADB_DEVICES", "emulator-5554=device")
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    return root


def _address(android: Path, serial: str = "emulator-5554", **params: str):
    query = "&".join(f"{k}={v}" for k, v in {"tmp": str(android / "data/local/tmp"), **params}.items())
    return parse_address(f"adb://{serial}?{query}")


def test_devices_are_listed_with_their_states(android, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DEVICES", "emulator-5554=device,R58M12ABC=unauthorized")
    found = {d.serial: d for d in list_adb_devices()}
    assert found["emulator-5554"].state == "device" and found["emulator-5554"].details["model"] == "Pixel_7"
    assert found["R58M12ABC"].state == "unauthorized"


def test_the_only_device_attached_is_picked_and_several_are_refused(android, monkeypatch):
    with open_transport(parse_address("adb://"), None) as device:
        assert device.serial == "emulator-5554"
    monkeypatch.setenv("FAKE_ADB_DEVICES", "emulator-5554=device,R58M12ABC=device")
    with pytest.raises(DeviceError, match=r"2 devices are attached \(emulator-5554, R58M12ABC\) \(name one"):
        with open_transport(parse_address("adb://"), None):
            pass
    monkeypatch.setenv("FAKE_ADB_DEVICES", "")
    with pytest.raises(DeviceError, match="no Android device is ready"):
        with open_transport(parse_address("adb://"), None):
            pass


@pytest.mark.parametrize(
    "state, says", [("unauthorized", "accept the USB debugging prompt"), ("offline", "is offline")]
)
def test_a_device_that_is_not_ready_is_one_line(android, monkeypatch, state, says):
    monkeypatch.setenv("FAKE_ADB_DEVICES", f"emulator-5554={state}")
    with pytest.raises(DeviceError, match=says):
        with open_transport(parse_address("adb://emulator-5554"), None):
            pass
    with pytest.raises(DeviceError, match="not attached"):
        with open_transport(parse_address("adb://R58M00000"), None):
            pass


def test_no_adb_installed_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DeviceError, match="`adb` is not installed.*platform-tools"):
        with open_transport(parse_address("adb://"), None):
            pass


def test_push_run_pull_and_quoting_through_adb_shell(android, tmp_path):
    nasty = tmp_path / "model 'v2' \"$(touch pwned)\".tflite"
    nasty.write_bytes(b"\x00tflite\xff")
    with open_transport(_address(android), None) as device:
        work = device.make_workdir()
        assert Path(work).parent == android / "data/local/tmp"
        device.push([nasty], work)
        echoed = device.run(["printf", "%s|", "$(touch pwned)", "a b", "'q'"], timeout=30, cwd=work)
        failed = device.run(["sh", "-c", "exit 3"], timeout=30)
        device.pull(f"{work}/{nasty.name}", tmp_path / "back.tflite")
        assert not list(Path(work).glob("pwned")) and not (android / "pwned").exists()
        device.remove_workdir(work)
    assert echoed.stdout == "$(touch pwned)|a b|'q'|" and failed.rc == 3
    assert (tmp_path / "back.tflite").read_bytes() == b"\x00tflite\xff"
    assert list((android / "data/local/tmp").iterdir()) == []


def test_a_whole_job_runs_through_adb_and_leaves_nothing(android, device_python, tiny_onnx, tmp_path):
    images = tmp_path / "images.npy"
    np.save(images, np.zeros((1, 3, 32, 32), np.float32))
    job = {"mode": "run", "model": tiny_onnx.name, "inputs": images.name, "outputs": "logits.npy"}
    done = run_job(
        _address(android, python=device_python),
        job,
        [tiny_onnx, images],
        artifact_format="onnx",
        pull=["logits.npy"],
        pull_into=tmp_path / "back",
        timeout=120,
    )
    assert np.load(done.pulled["logits.npy"]).shape == (1, 10)
    assert done.address == f"adb://emulator-5554?python={device_python}"  # the interpreter is part of the key
    assert list((android / "data/local/tmp").iterdir()) == []


def test_a_failed_copy_names_the_cause(android, tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    with open_transport(_address(android), None) as device:
        with pytest.raises(DeviceError, match="cannot copy files to the device .*outside the device"):
            device.push([model], str(tmp_path))


def test_a_phone_without_python_points_to_the_native_tools(android):
    """Android ships no Python: the device check says how such a phone is measured instead."""
    from shufflekit.runtimes.remote.probe import check_device

    check = check_device(_address(android, python="/system/bin/no-python3"))
    assert not check.ok and "no Python at '/system/bin/no-python3'" in check.error
    assert "--benchmark-binary" in check.error and "\n" not in check.error


def test_a_phone_on_another_computers_adb_server(android, monkeypatch):
    """adb://SERIAL@HOST:PORT runs every adb command against that computer's server (adb -H HOST -P PORT).
    No second computer runs here: the stand-in adb holds its devices on the server $FAKE_ADB_SERVER and
    refuses a command pointed at any other, as adb does when no server answers."""
    monkeypatch.setenv("FAKE_ADB_SERVER", "lab-pc:5038")
    remote = parse_address(f"adb://emulator-5554@lab-pc:5038?tmp={android / 'data/local/tmp'}")
    with open_transport(remote, None) as device:
        result = device.run(["echo", "on the lab's phone"], timeout=30)
    assert (result.rc, result.stdout.strip()) == (0, "on the lab's phone")
    with open_transport(parse_address("adb://@lab-pc:5038"), None) as device:
        assert device.serial == "emulator-5554"
    with pytest.raises(DeviceError) as info:
        with open_transport(_address(android), None):  # this computer's server has no device here
            pass
    assert "cannot connect to daemon" in info.value.one_line()
    with pytest.raises(DeviceError, match="adb server at other-pc:5037 failed"):
        with open_transport(parse_address("adb://emulator-5554@other-pc"), None):
            pass
