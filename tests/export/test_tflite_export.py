"""ONNX -> TFLite: offline (sockets blocked), nothing left in the working directory, the input file
untouched, and one onnx2tf conversion yielding every precision."""

from __future__ import annotations

import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from shufflekit.errors import ExportError, UsageError
from shufflekit.export import tflite
from shufflekit.export.onnx import export_onnx
from shufflekit.export.reference import reference_inputs
from shufflekit.export.source import load_source
from shufflekit.export.tflite import ONNX2TF_SAMPLE_FILE, TFLiteTarget, convert_to_tflite
from shufflekit.files import sha256_file
from shufflekit.validate.metrics import compare, judge
from shufflekit.validate.tolerances import tolerance_for

SMALL_V2, SMALL_SIZE, SMALL_CLASSES = "shufflenet_v2_x0_5", 64, 10  # as conftest.py


class NetworkAttempt(OSError):
    pass


@pytest.fixture()
def no_network(monkeypatch):
    """Every way out of the process fails and is written down: connect, DNS lookups, create_connection."""
    attempts: list[str] = []

    def refuse(what):
        def blocked(*args, **kwargs):
            attempts.append(f"{what} {args[1:] if what == 'connect' else args}")
            raise NetworkAttempt(f"network blocked by the test: {what}")

        return blocked

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    return attempts


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    source = load_source(model=SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE)
    folder = tmp_path_factory.mktemp("onnx")
    made = export_onnx(source.model, source.meta, folder / "small.onnx", source=source.record)
    return source, made.path


@pytest.mark.slow
def test_the_socket_block_catches_onnx2tf_downloading(tmp_path, monkeypatch, no_network):
    """Control: without the sample file in the working directory, onnx2tf reaches for the network, and
    the block sees it. So a conversion that passes under the block really opened no connection."""
    from onnx2tf.utils.common_functions import download_test_image_data

    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception):  # noqa: B017 - whatever onnx2tf makes of the refused socket
        download_test_image_data()
    assert no_network, "onnx2tf did not try the network: the guard in tflite.py may no longer be needed"


@pytest.mark.slow
def test_one_conversion_makes_every_precision_offline_and_leaves_nothing(tmp_path, monkeypatch, no_network, small_onnx):
    import onnx2tf

    source, onnx_path = small_onnx
    calls = []
    real_convert = onnx2tf.convert

    def counting_convert(*args, **kwargs):
        calls.append(kwargs)
        return real_convert(*args, **kwargs)

    monkeypatch.setattr(onnx2tf, "convert", counting_convert)
    monkeypatch.setattr(tflite, "_last_keras", {})  # an earlier test may have converted the same bytes
    user_cwd = tmp_path / "user-cwd"
    user_cwd.mkdir()
    monkeypatch.chdir(user_cwd)
    out = tmp_path / "out"
    onnx_sha = sha256_file(onnx_path)
    targets = [
        TFLiteTarget("fp32", out / "fp32.tflite"),
        TFLiteTarget("fp16", out / "fp16.tflite"),
        TFLiteTarget("dynamic", out / "dynamic.tflite"),
        TFLiteTarget("int8", out / "int8.tflite"),
        TFLiteTarget("int8", out / "int8_io.tflite", io_dtype="int8"),
        TFLiteTarget("int8", out / "uint8_io.tflite", io_dtype="uint8"),
    ]
    calibration = reference_inputs(16, source.meta.preprocessing, seed=3)
    private_tmp = tmp_path / "tmp"  # the conversion's own temporary folder must go too
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))

    conversion = convert_to_tflite(onnx_path, targets, calibration=calibration)

    assert no_network == []
    assert len(calls) == 1
    assert list(user_cwd.iterdir()) == [] and Path.cwd() == user_cwd
    assert list(private_tmp.glob("shufflekit-*")) == []  # (TF's autograph files go at exit, by TF)
    assert sorted(p.name for p in out.iterdir()) == sorted(t.path.name for t in targets)
    assert sha256_file(onnx_path) == onnx_sha  # onnx2tf rewrites the file it is given: it got a copy
    by_name = {r.path.name: r for r in conversion.results}
    assert by_name["fp32.tflite"].inputs[0].shape == (1, SMALL_SIZE, SMALL_SIZE, 3)
    assert by_name["fp32.tflite"].inputs[0].layout == "NHWC"
    assert by_name["int8_io.tflite"].inputs[0].dtype == "int8" and by_name["int8_io.tflite"].inputs[0].quantization
    assert by_name["uint8_io.tflite"].outputs[0].dtype == "uint8" and by_name["uint8_io.tflite"].outputs[0].quantization
    assert (
        by_name["int8.tflite"].inputs[0].dtype == "float32"
        and by_name["int8.tflite"].options["calibration_samples"] == 16
    )
    from ai_edge_litert.interpreter import Interpreter

    for name in by_name:  # 5-D tensors break TFLite GPU delegates: the shuffle must stay 4-D here too
        interpreter = Interpreter(model_path=str(out / name))
        ranks = {len(t["shape"]) for t in interpreter.get_tensor_details()}
        assert max(ranks) <= 4, (name, ranks)
        # an app calls the file by its signature, with the ONNX file's names
        assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["input"], "outputs": ["logits"]}}
        assert [d["name"] for d in interpreter.get_output_details()] == ["logits"], name
        assert by_name[name].outputs[0].name == "logits"
    device_python = Path(__file__).resolve().parents[2] / ".venv-device" / "bin" / "python"
    if device_python.exists():  # made by `make test`: tflite-runtime 2.14, what Raspberry Pis run
        loads = (
            "import sys\nfrom tflite_runtime.interpreter import Interpreter\nfor p in sys.argv[1:]:\n"
            "    Interpreter(model_path=p).allocate_tensors()\n"
        )
        done = subprocess.run(
            [str(device_python), "-c", loads, *(str(out / n) for n in by_name)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-500:]
    sizes = {name: (out / name).stat().st_size for name in by_name}
    assert sizes["fp16.tflite"] < 0.6 * sizes["fp32.tflite"] and sizes["int8.tflite"] < 0.45 * sizes["fp32.tflite"]

    from shufflekit.runtimes import load_session

    images = reference_inputs(8, source.meta.preprocessing)
    import torch

    with torch.no_grad():
        want = source.model(torch.from_numpy(images)).numpy()
    outputs = {}
    for name in by_name:
        session = load_session(out / name, layout="NHWC")
        outputs[name] = session.predict(images)
        session.close()
    for name, precision in [("fp32.tflite", "fp32"), ("fp16.tflite", "fp16")]:
        assert judge(compare(want, outputs[name]), tolerance_for("tflite", precision)) == [], name
    for name in ["int8.tflite", "int8_io.tflite", "uint8_io.tflite"]:
        # A random model quantises poorly, so no accuracy claim here (issue 4 measures a trained one);
        # but int8 logits must follow the input. MaxPool padded with the float minimum made them constant.
        assert np.std(outputs[name], axis=0).mean() > 0.1 * np.std(want, axis=0).mean(), name
        assert compare(want, outputs[name]).cosine > 0.3, name

    # A release converts fp32 in its export stage and the other precisions in its quantize stage, from
    # the same ONNX bytes: the second conversion reuses the first's onnx2tf model, with the same result.
    again = convert_to_tflite(onnx_path, [TFLiteTarget("fp16", tmp_path / "again" / "fp16.tflite")])
    assert len(calls) == 1
    session = load_session(again.results[0].path, layout="NHWC")
    assert np.array_equal(session.predict(images), outputs["fp16.tflite"])
    session.close()


def test_int8_needs_calibration(tmp_path, small_onnx):
    _, onnx_path = small_onnx
    with pytest.raises(UsageError, match="calibration"):
        convert_to_tflite(onnx_path, [TFLiteTarget("int8", tmp_path / "q.tflite")])
    with pytest.raises(UsageError, match="N x 3 x H x W"):
        convert_to_tflite(onnx_path, [TFLiteTarget("int8", tmp_path / "q.tflite")], calibration=np.zeros((4, 64, 64)))
    assert not list(tmp_path.iterdir())


def test_int8_io_only_for_int8():
    with pytest.raises(UsageError, match="full-integer int8"):
        TFLiteTarget("fp16", Path("x.tflite"), io_dtype="uint8")
    with pytest.raises(UsageError, match="unknown TFLite precision"):
        TFLiteTarget("int4", Path("x.tflite"))


def test_a_broken_onnx_file_is_one_line(tmp_path, monkeypatch):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07not an onnx model")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExportError) as caught:
        convert_to_tflite(broken, [TFLiteTarget("fp32", tmp_path / "x.tflite")])
    assert "\n" not in caught.value.one_line()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx"]
    assert not (tmp_path / ONNX2TF_SAMPLE_FILE).exists()


@pytest.mark.slow
def test_a_release_converts_in_its_worker_process_like_in_this_one(tmp_path, small_onnx):
    """export.tflite_worker: files that compute what the ONNX file computes, with the specs and options of
    a conversion in this process, errors as the same one line, and a worker that died reported in one
    line and replaced by the next run."""
    from shufflekit.export import tflite_worker
    from shufflekit.runtimes import load_session

    source, onnx_path = small_onnx
    calibration = reference_inputs(8, source.meta.preprocessing, seed=3)
    with tflite_worker.conversions_in_worker():
        worker = tflite_worker.current()
        assert worker is not None
        there = convert_to_tflite(
            onnx_path,
            [TFLiteTarget("fp32", tmp_path / "there.tflite"), TFLiteTarget("int8", tmp_path / "int8.tflite")],
            calibration=calibration,
        )
        broken = tmp_path / "broken.onnx"
        broken.write_bytes(b"\x08\x07not an onnx model")
        with pytest.raises(ExportError) as caught:
            convert_to_tflite(broken, [TFLiteTarget("fp32", tmp_path / "x.tflite")])
    assert tflite_worker.current() is None
    assert "is not a readable ONNX file" in caught.value.message and "\n" not in caught.value.one_line()
    assert not (tmp_path / "x.tflite").exists()
    assert there.results[0].inputs[0].shape == (1, SMALL_SIZE, SMALL_SIZE, 3)
    assert there.results[1].options["calibration_samples"] == 8
    images = reference_inputs(4, source.meta.preprocessing)
    outputs = []
    for path in (onnx_path, tmp_path / "there.tflite"):
        session = load_session(path, layout="NHWC" if path.suffix == ".tflite" else None)
        outputs.append(session.predict(images))
        session.close()
    assert judge(compare(outputs[0], outputs[1]), tolerance_for("tflite", "fp32")) == []

    worker._proc.kill()  # a worker that died (out of memory, killed) fails the conversion in one line
    worker._proc.wait()
    with tflite_worker.conversions_in_worker():
        restarted = tflite_worker.current()
    assert restarted is not worker and restarted is not None and restarted.alive  # the next run starts a new one
    with pytest.raises(ExportError, match="converter process ended"):
        worker.convert(
            onnx_path, [TFLiteTarget("fp32", tmp_path / "y.tflite")], layout="NHWC", calibration=None, per_channel=True
        )


def test_closing_the_worker_ends_it_and_leaves_nothing_in_the_temporary_folder(tmp_path, small_onnx, monkeypatch):
    """At the end of a release the converter process is ended: it runs its exit handlers (TensorFlow's
    removes the autograph files it wrote to the temporary folder) and leaves; the file it handed back
    stays whole and loadable, and nothing is left beside it or in the temporary folder."""
    import tempfile

    from shufflekit.export import tflite_worker
    from shufflekit.runtimes import load_session

    _source, onnx_path = small_onnx
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the worker's temporary folder (it starts below)
    monkeypatch.setattr(tempfile, "tempdir", None)
    out = tmp_path / "out"
    out.mkdir()
    with tflite_worker.conversions_in_worker():
        worker = tflite_worker.current()
        assert worker is not None
        convert_to_tflite(onnx_path, [TFLiteTarget("fp32", out / "kept.tflite")])
    worker.close()
    assert not worker.alive and worker._proc.returncode == 0  # it ended by itself, not killed
    with load_session(out / "kept.tflite", layout="NHWC") as session:
        assert session.outputs[0].shape[-1] == SMALL_CLASSES
    assert sorted(p.name for p in out.iterdir()) == ["kept.tflite"]  # no leftover beside it
    # nor TensorFlow's autograph files in the temporary folder (ONNX Runtime keeps a .ses id file there)
    assert not list(scratch.glob("__autograph_generated_file*"))
