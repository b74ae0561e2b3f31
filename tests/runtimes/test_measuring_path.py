"""One measuring path: plain `local` runs its job through the local transport and the device file like
`local?python=`, ssh and adb devices; one error mapping (``translate``) for a session here and a job on any
device; one registry of backends for the host facade and the job code."""

from __future__ import annotations

from pathlib import Path

import pytest

from shufflekit.artifacts import Manifest
from shufflekit.device import backends
from shufflekit.device.errors import RunnerError
from shufflekit.errors import BackendMissingError, DeviceError, IntegrityError, ProviderUnavailableError, UsageError
from shufflekit.runtimes import get_runtime, list_runtimes
from shufflekit.runtimes.base import translate
from shufflekit.runtimes.profile import ProfileSettings, RuntimeOptions, benchmark_job, run_on_device


def test_plain_local_takes_the_transport_path_with_the_probe_and_the_device_file(
    release_folder: tuple[Path, Manifest], tmp_path: Path
) -> None:
    folder, manifest = release_folder
    art = manifest.select(["onnx"])[0]
    job = benchmark_job(art, art.name, RuntimeOptions(), ProfileSettings(warmup=1, iters=3))
    key, result, facts = run_on_device("local", art, art.path_in(folder), job, timeout=300)
    assert key == "local" and result["iters"] == 3
    # the probe ran (as before every job on every device) and its facts are filed with the runner's
    assert facts["python_ok"] is True and facts["runtime"] == "onnxruntime"
    assert facts["logical_cores"] >= 1 and "cpu_count" not in facts
    same = run_on_device("local?name=again", art, art.path_in(folder), job, timeout=300)[2]
    assert set(same) == set(facts)  # `local` and a named local device record the same facts


def test_a_run_of_jobs_on_one_device_probes_it_once(
    release_folder: tuple[Path, Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shufflekit.runtimes.remote import job as remote_job

    folder, manifest = release_folder
    art = manifest.select(["onnx"])[0]
    calls: list[str] = []
    real = remote_job.probe
    monkeypatch.setattr(remote_job, "probe", lambda transport, **kw: calls.append("probe") or real(transport, **kw))
    job = benchmark_job(art, art.name, RuntimeOptions(), ProfileSettings(warmup=0, iters=1))
    probed: dict = {}
    first = run_on_device("local", art, art.path_in(folder), job, timeout=300, probed=probed)[2]
    second = run_on_device("local", art, art.path_in(folder), job, timeout=300, probed=probed)[2]
    assert calls == ["probe"] and probed["key"] == "local"
    assert second["runtime"] == first["runtime"] == "onnxruntime" and set(second) == set(first)
    run_on_device("local?name=other", art, art.path_in(folder), job, timeout=300, probed=probed)
    assert calls == ["probe", "probe"]  # another device is asked for itself


def test_a_broken_file_fails_the_same_way_on_local_and_on_a_device(
    tmp_path: Path, release_folder: tuple[Path, Manifest]
) -> None:
    _folder, manifest = release_folder
    art = manifest.select(["onnx"])[0]
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not a model")
    job = benchmark_job(art, broken.name, RuntimeOptions(), ProfileSettings(warmup=0, iters=1))
    with pytest.raises(IntegrityError) as info:
        run_on_device("local", art, broken, job, timeout=300)
    assert isinstance(info.value, DeviceError) and info.value.one_line().startswith("local: ")
    assert "broken.onnx" in info.value.one_line()


@pytest.mark.parametrize(
    "kind, cls",
    [
        ("provider_unavailable", ProviderUnavailableError),
        ("bad_input", UsageError),
        ("load_failed", IntegrityError),
        ("no_kernel", DeviceError),
        ("backend_missing", BackendMissingError),
    ],
)
def test_one_error_mapping_for_sessions_here_and_jobs_on_devices(kind: str, cls: type) -> None:
    error = RunnerError(kind, "it failed", hint="do this", extra="onnx", available=["cpu"])
    here = translate(error, subject="m.onnx")
    there = translate(error.to_dict(), device="ssh://pi@board")
    assert isinstance(here, cls) and isinstance(there, cls)
    assert here.one_line().startswith("m.onnx: it failed") and there.one_line().startswith("ssh://pi@board: it failed")
    assert here.available == there.available == ["cpu"]  # type: ignore[attr-defined]
    if kind == "backend_missing":  # where to install it: shufflekit's extra here, the device's own line there
        assert "pip install 'shufflekit[onnx]'" in here.one_line() and "on the device: do this" in there.one_line()
        assert isinstance(there, DeviceError)


def test_a_job_that_failed_on_a_device_is_a_device_error() -> None:
    for kind in ("run_failed", "internal", "something_new"):
        assert isinstance(translate({"kind": kind, "message": "boom"}, device="adb://phone"), DeviceError)
        assert isinstance(translate(RunnerError(kind, "boom")), UsageError)  # a session opened here


def test_the_host_runtimes_are_the_device_backends() -> None:
    assert [r.name for r in list_runtimes()] == list(backends.names())
    for backend in backends.all_backends():
        runtime = get_runtime(backend.name)
        assert runtime.formats == backend.formats and runtime.extra == backend.extra
        assert all(get_runtime(alias) is runtime for alias in backend.aliases)
        assert runtime.available() == backend.available()
    with pytest.raises(ValueError, match="registered twice"):
        backends.register(backends.get("onnxruntime"))


def test_a_fixed_batch_file_predicts_any_number_of_images_through_the_one_padding(tiny_models: dict) -> None:
    import numpy as np

    from shufflekit.runtimes import load_session

    images = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    with load_session(tiny_models["onnx_b2"]) as fixed, load_session(tiny_models["onnx_dynamic"]) as dynamic:
        padded = fixed.predict_all(images)  # type: ignore[attr-defined]
        np.testing.assert_allclose(padded, dynamic.predict(images), rtol=1e-4, atol=1e-5)
        assert padded.shape[0] == 3
