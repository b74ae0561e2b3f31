"""Real ONNX Runtime and LiteRT sessions through the Session API (COMMON.md)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from shufflekit.errors import BackendMissingError, IntegrityError, ProviderUnavailableError, UsageError
from shufflekit.runtimes import RuntimeOptions, list_runtimes, load_session, providers_available, register_runtime
from shufflekit.runtimes.base import Runtime

CLASSES, SIZE = 10, 64  # as in conftest.py


def _images(n: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


def _torch_logits(model, images: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(images)).numpy()


@pytest.mark.parametrize("key", ["onnx", "onnx_dynamic"])
def test_onnx_session_computes_what_pytorch_computes_for_any_batch(tiny_models: dict, key: str) -> None:
    images = _images(3)
    with load_session(tiny_models[key]) as session:
        assert session.providers == ["CPUExecutionProvider"]
        assert session.inputs[0].name == "input" and session.outputs[0].shape[-1] == CLASSES
        logits = session.predict(images)
    assert logits.shape == (3, CLASSES) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, _torch_logits(tiny_models["torch"], images), rtol=1e-3, atol=1e-4)


def test_fixed_batch_model_refuses_a_batch_it_cannot_take(tiny_models: dict) -> None:
    with load_session(tiny_models["onnx_b2"]) as session:
        assert session.predict(_images(2)).shape == (2, CLASSES)
        with pytest.raises(UsageError, match="fixed at batch 2 and cannot take a batch of 3"):
            session.predict(_images(3))


def test_images_of_the_wrong_size_are_one_clear_error(tiny_models: dict) -> None:
    with load_session(tiny_models["onnx"]) as session:
        with pytest.raises(UsageError, match=r"takes \[1, 3, 64, 64\]"):
            session.predict(_images(1, size=32))


def test_unavailable_provider_is_an_error_listing_what_exists(tiny_models: dict) -> None:
    with pytest.raises(ProviderUnavailableError) as info:
        load_session(tiny_models["onnx"], options=RuntimeOptions(provider="cuda"))
    message = info.value.one_line()
    assert "cuda" in message and "available: " in message and "cpu" in message
    assert "cpu" in info.value.available
    assert set(info.value.available) == set(providers_available("onnxruntime"))


def test_fallback_runs_on_what_exists_and_records_it(tiny_models: dict) -> None:
    with load_session(tiny_models["onnx"], options=RuntimeOptions(provider="cuda", allow_fallback=True)) as session:
        assert session.providers == ["CPUExecutionProvider"]
        assert session.info["fallback"] is True and session.info["fallback_from"] == ["cuda"]
        assert session.info["providers_requested"] == ["cuda"]
        assert session.predict(_images(1)).shape == (1, CLASSES)


def test_unknown_provider_name_is_refused(tiny_models: dict) -> None:
    with pytest.raises(UsageError, match="unknown ONNX Runtime provider 'cdua'"):
        load_session(tiny_models["onnx"], options=RuntimeOptions(provider="cdua", allow_fallback=True))


def test_threads_are_honoured_and_recorded(tiny_models: dict) -> None:
    with load_session(tiny_models["onnx"], options=RuntimeOptions(threads=1)) as session:
        assert session.info["threads"] == 1
        assert session.raw.session.get_session_options().intra_op_num_threads == 1
    with load_session(tiny_models["tflite_fp32"], options=RuntimeOptions(threads=2)) as session:
        assert session.info["threads"] == 2
    with pytest.raises(UsageError, match="threads must be at least 1"):
        RuntimeOptions(threads=0)


def test_predicting_sessions_let_idle_threads_sleep_and_timed_ones_keep_the_default(tiny_models: dict) -> None:
    """This computer's sessions only predict (the gate, evaluate, parity): ONNX Runtime's idle intra-op
    threads sleep there instead of spinning on the core the release's converter process works on. A
    job's session, which times the file, keeps ONNX Runtime's default, as an app would have it."""
    from shufflekit.device.session import open_session

    entry = "session.intra_op.allow_spinning"
    with load_session(tiny_models["onnx"]) as session:
        assert session.raw.session.get_session_options().get_session_config_entry(entry) == "0"
        np.testing.assert_allclose(
            session.predict(_images(2)), _torch_logits(tiny_models["torch"], _images(2)), rtol=1e-3, atol=1e-4
        )
    with load_session(tiny_models["onnx"], options=RuntimeOptions(op_profile=True)) as profiled:  # times ops
        with pytest.raises(RuntimeError, match="does not have configuration with key"):
            profiled.raw.session.get_session_options().get_session_config_entry(entry)
    timed = open_session(str(tiny_models["onnx"]))
    try:
        with pytest.raises(RuntimeError, match="does not have configuration with key"):  # ONNX Runtime's default
            timed.session.get_session_options().get_session_config_entry(entry)
    finally:
        timed.close()


def test_tflite_nhwc_session_lays_out_nchw_images_for_the_model(tiny_models: dict) -> None:
    ref = np.load(tiny_models["keras_reference"])
    with load_session(tiny_models["tflite_fp32"], layout="NHWC") as session:
        assert session.runtime == "litert"
        assert session.providers == ["xnnpack"] and session.info["delegate_partitions"] >= 1
        assert session.inputs[0].layout == "NHWC" and session.inputs[0].shape == (1, 16, 16, 3)
        np.testing.assert_allclose(session.predict(ref["images"]), ref["logits"], rtol=1e-4, atol=1e-5)


def test_tflite_int8_session_quantizes_inputs_and_dequantizes_outputs(tiny_models: dict) -> None:
    ref = np.load(tiny_models["keras_reference"])
    with load_session(tiny_models["tflite_int8"], layout="NHWC") as session:
        spec = session.inputs[0]
        assert spec.dtype == "int8" and spec.quantization is not None
        fed = session.prepare(ref["images"])[spec.name]
        assert fed.dtype == np.int8 and fed.shape == (3, 16, 16, 3)
        logits = session.predict(ref["images"])
    assert logits.dtype == np.float32
    scale = session.outputs[0].quantization.scale
    # int8 differs from fp32 by a few quantization steps of the output, not by a layout or scale mistake
    assert np.max(np.abs(logits - ref["logits"])) < 8 * scale + 0.05 * np.abs(ref["logits"]).max()
    assert (logits.argmax(1) == ref["logits"].argmax(1)).mean() >= 2 / 3


def test_tflite_builtin_kernels_without_xnnpack(tiny_models: dict) -> None:
    ref = np.load(tiny_models["keras_reference"])
    with load_session(tiny_models["tflite_fp32"], layout="NHWC", options=RuntimeOptions(provider="builtin")) as session:
        assert session.providers == ["builtin"] and session.info["delegate_partitions"] == 0
        np.testing.assert_allclose(session.predict(ref["images"]), ref["logits"], rtol=1e-4, atol=1e-5)


def test_tflite_missing_delegate_is_an_error_or_a_recorded_fallback(tiny_models: dict) -> None:
    if "gpu" in providers_available("litert"):
        pytest.skip("this machine has a TFLite GPU delegate")
    with pytest.raises(ProviderUnavailableError) as info:
        load_session(tiny_models["tflite_fp32"], options=RuntimeOptions(provider="gpu"))
    assert "available: cpu, xnnpack, builtin" in info.value.one_line()
    with load_session(tiny_models["tflite_fp32"], options=RuntimeOptions(provider="gpu", allow_fallback=True)) as s:
        assert s.providers == ["xnnpack"] and s.info["fallback_from"] == ["gpu"]


def test_artifact_is_verified_before_it_is_loaded(release_folder) -> None:
    folder, manifest = release_folder
    onnx_art, tfl_art = manifest.artifacts
    with load_session(onnx_art, folder) as session:
        assert session.runtime == "onnxruntime" and session.layout == "NCHW"
    with load_session(tfl_art, folder) as session:
        assert session.runtime == "litert" and session.layout == "NHWC"  # from the artifact's spec
        assert session.predict(_images(2, size=16)).shape == (2, 5)
    data = bytearray((folder / onnx_art.name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / onnx_art.name).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        load_session(onnx_art, folder)


def test_truncated_model_is_one_clear_error(tmp_path, tiny_models: dict) -> None:
    for key, name in (("onnx", "cut.onnx"), ("tflite_fp32", "cut.tflite")):
        cut = tmp_path / name
        cut.write_bytes(tiny_models[key].read_bytes()[:300])
        with pytest.raises(IntegrityError, match="cannot load cut"):
            load_session(cut)


@pytest.mark.parametrize("module,extra", [("onnxruntime", "onnx"), ("litert", "tflite")])
def test_missing_backend_names_the_pip_extra(monkeypatch, tiny_models: dict, module: str, extra: str) -> None:
    # The runtimes are installed here; hide them from import (None in sys.modules makes import fail), the
    # narrowest stand-in for a machine without them.
    hidden = ["onnxruntime"] if module == "onnxruntime" else ["ai_edge_litert", "tflite_runtime", "tensorflow"]
    for name in hidden:
        monkeypatch.setitem(sys.modules, name, None)
    path = tiny_models["onnx" if module == "onnxruntime" else "tflite_fp32"]
    with pytest.raises(BackendMissingError, match=rf"pip install 'shufflekit\[{extra}\]'"):
        load_session(path)


def test_registry_refuses_a_duplicate_name() -> None:
    existing = list_runtimes()[0]
    with pytest.raises(ValueError, match="registered twice"):
        register_runtime(
            Runtime(name=existing.name, formats=existing.formats, extra=existing.extra, open=existing.open)
        )


@pytest.mark.parametrize("runtime", [r.name for r in list_runtimes()])
def test_every_registered_runtime_opens_its_format(tiny_models: dict, runtime: str) -> None:
    path, layout, size = (
        (tiny_models["onnx"], "NCHW", SIZE) if runtime == "onnxruntime" else (tiny_models["tflite_fp32"], "NHWC", 16)
    )
    with load_session(path, options=RuntimeOptions(runtime=runtime), layout=layout) as session:
        assert session.runtime == runtime
        assert len(session.run(session.prepare(_images(1, size=size)))) == 1


def test_runtime_that_cannot_run_the_format_is_refused(tiny_models: dict) -> None:
    with pytest.raises(UsageError, match="cannot run a onnx file"):
        load_session(tiny_models["onnx"], options=RuntimeOptions(runtime="litert"))


@pytest.mark.gpu
def test_cuda_provider_runs_the_model_on_the_gpu(tiny_models: dict) -> None:
    if "cuda" not in providers_available("onnxruntime"):
        pytest.skip("this onnxruntime build has no CUDA provider (install onnxruntime-gpu)")
    images = _images(4)
    with load_session(tiny_models["onnx_dynamic"], options=RuntimeOptions(provider="cuda")) as session:
        assert session.providers[0] == "CUDAExecutionProvider" and not session.info["fallback"]
        logits = session.predict(images)
    np.testing.assert_allclose(logits, _torch_logits(tiny_models["torch"], images), rtol=1e-2, atol=1e-3)


@pytest.mark.gpu
def test_cuda_op_profile_says_which_nodes_ran_on_the_gpu(tiny_models: dict) -> None:
    from shufflekit.device.bench import benchmark

    if "cuda" not in providers_available("onnxruntime"):
        pytest.skip("this onnxruntime build has no CUDA provider (install onnxruntime-gpu)")
    result = benchmark(str(tiny_models["onnx"]), providers=["cuda"], warmup=2, iters=10, op_profile=True)
    placement = result["op_profile"]["node_providers"]
    assert placement.get("CUDAExecutionProvider", 0) > 0
    assert sum(placement.values()) == len(result["op_profile"]["nodes"])


@pytest.mark.gpu
def test_tflite_gpu_delegate_where_the_platform_has_it(tiny_models: dict) -> None:
    if "gpu" not in providers_available("litert"):
        pytest.skip("no TFLite GPU delegate library on this machine")
    ref = np.load(tiny_models["keras_reference"])
    with load_session(tiny_models["tflite_fp32"], layout="NHWC", options=RuntimeOptions(provider="gpu")) as session:
        assert session.providers == ["gpu"]
        np.testing.assert_allclose(session.predict(ref["images"]), ref["logits"], rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("key,layout", [("onnx", "NCHW"), ("tflite_fp32", "NHWC")])
def test_session_op_profile_through_the_session_api(tiny_models: dict, key: str, layout: str) -> None:
    import tempfile
    from pathlib import Path

    before = set(Path(tempfile.gettempdir()).glob("shufflekit-ortprof-*"))
    with load_session(tiny_models[key], layout=layout, options=RuntimeOptions(op_profile=True)) as session:
        session.predict(_images(2, size=SIZE if key == "onnx" else 16))
        prof = session.op_profile()
    assert prof["available"] and prof["nodes"] and prof["node_sum_ms"] > 0
    assert set(Path(tempfile.gettempdir()).glob("shufflekit-ortprof-*")) == before  # nothing left behind
    with load_session(tiny_models[key], layout=layout) as session:
        with pytest.raises(UsageError, match="opened without op profiling"):
            session.op_profile()


def test_a_model_xnnpack_declines_runs_on_builtin_kernels_for_cpu_and_errors_for_xnnpack(tiny_models: dict) -> None:
    path = tiny_models["tflite_no_xnnpack"]
    with load_session(path, layout="NHWC") as session:  # provider cpu: the CPU runs it, and says how
        assert session.providers == ["builtin"] and session.info["xnnpack_declined"]
        assert session.info["fallback"] is False
        assert session.predict(_images(1, size=16)).shape == (1, 3)
    with pytest.raises(ProviderUnavailableError, match="XNNPACK takes none of the operators") as info:
        load_session(path, options=RuntimeOptions(provider="xnnpack"))
    assert "available: builtin" in info.value.one_line()
    with load_session(path, options=RuntimeOptions(provider="xnnpack", allow_fallback=True)) as session:
        assert session.providers == ["builtin"] and session.info["fallback_from"] == ["xnnpack"]
