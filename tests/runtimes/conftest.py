"""Real model files for the runtime tests, built once per session: ONNX from a small shufflekit model
(torch.onnx.export), TFLite fp32 and full-int8 from a tiny Keras model (TFLiteConverter; the release
exporter's own TFLite files are exercised by the profile tests)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from build_once import build_once

from shufflekit.artifacts import Artifact, Manifest, TensorSpec
from shufflekit.metadata import ModelMeta, Preprocessing

SIZE = 64
CLASSES = 10


def _export_onnx(model, path: Path, batch: int | None) -> None:
    import torch

    x = torch.randn(batch or 1, 3, SIZE, SIZE)
    dynamic = {"input": {0: "batch"}, "logits": {0: "batch"}} if batch is None else None
    torch.onnx.export(
        model,
        (x,),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
        dynamic_axes=dynamic,
    )


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{'torch': module, 'onnx': fixed batch 1, 'onnx_dynamic', 'onnx_b2', 'tflite_fp32', 'tflite_int8', 'keras'}"""
    import torch

    from shufflekit.models.registry import model_spec

    folder = tmp_path_factory.mktemp("tiny-models")
    torch.manual_seed(0)
    model = model_spec("shufflenet_v2_x0_5")(num_classes=CLASSES).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so layout or BN mistakes cannot hide
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    files = {"onnx": folder / "v2.onnx", "onnx_dynamic": folder / "v2-dyn.onnx", "onnx_b2": folder / "v2-b2.onnx"}
    _export_onnx(model, files["onnx"], 1)
    _export_onnx(model, files["onnx_dynamic"], None)
    _export_onnx(model, files["onnx_b2"], 2)
    files.update(_tiny_tflite(folder))
    return {"torch": model, **files}


def _tiny_tflite(folder: Path) -> dict[str, Path]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((16, 16, 3), batch_size=1)
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    out = tf.keras.layers.Dense(5)(x)
    keras_model = tf.keras.Model(inp, out)
    fp32, int8 = folder / "tiny-fp32.tflite", folder / "tiny-int8.tflite"
    fp32.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras_model).convert())
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(20):
            yield [rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    int8.write_bytes(converter.convert())
    # Operators XNNPACK has no kernel for (cumulative sum, product reduction): it takes none of them.
    x = tf.keras.layers.Lambda(lambda t: tf.math.cumsum(t, axis=1))(inp)
    unsupported = tf.keras.Model(inp, tf.keras.layers.Lambda(lambda t: tf.math.reduce_prod(t, axis=[1, 2]))(x))
    no_xnnpack = folder / "tiny-no-xnnpack.tflite"
    no_xnnpack.write_bytes(tf.lite.TFLiteConverter.from_keras_model(unsupported).convert())
    reference = folder / "tiny-keras-reference.npz"
    images = rng.uniform(-1, 1, (3, 3, 16, 16)).astype(np.float32)  # NCHW, what callers hand a session
    logits = keras_model(np.transpose(images, (0, 2, 3, 1))).numpy()
    np.savez(reference, images=images, logits=logits)
    return {"tflite_fp32": fp32, "tflite_int8": int8, "tflite_no_xnnpack": no_xnnpack, "keras_reference": reference}


@pytest.fixture()
def release_folder(tmp_path: Path, tiny_models: dict) -> tuple[Path, Manifest]:
    """A release folder holding the ONNX model and the NHWC TFLite model, recorded as Artifacts."""
    import shutil

    meta = ModelMeta(model="shufflenet_v2_x0_5", num_classes=CLASSES, preprocessing=Preprocessing.for_size(SIZE))
    manifest = Manifest.new(tmp_path, meta)
    onnx_path = tmp_path / "model.onnx"
    shutil.copy(tiny_models["onnx"], onnx_path)
    manifest.add(
        Artifact.from_file(
            onnx_path,
            format="onnx",
            precision="fp32",
            meta=meta,
            inputs=(TensorSpec("input", (1, 3, SIZE, SIZE), "float32", "NCHW"),),
            outputs=(TensorSpec("logits", (1, CLASSES), "float32"),),
        )
    )
    tfl_path = tmp_path / "model.tflite"
    shutil.copy(tiny_models["tflite_fp32"], tfl_path)
    manifest.add(
        Artifact.from_file(
            tfl_path,
            format="tflite",
            precision="fp32",
            meta=meta,
            inputs=(TensorSpec("x", (1, 16, 16, 3), "float32", "NHWC"),),
            outputs=(TensorSpec("y", (1, 5), "float32"),),
        )
    )
    manifest.save()
    return tmp_path, manifest


@pytest.fixture(scope="session")
def full_release(small_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared small release (ONNX fp32, TFLite fp32) plus every other precision, so profiling is
    tested on each: TFLite fp16, dynamic and full-int8 (int8 input/output) from one onnx2tf conversion
    (export.tflite.convert_to_tflite), and ONNX int8 (static QDQ, onnxruntime.quantization).
    Read-only; tests that write copy it (``full_release_copy``)."""
    return build_once(
        tmp_path_factory, "full-release", lambda root: _add_every_precision(small_release, root / "release")
    )


def _add_every_precision(small_release: Path, folder: Path) -> Path:
    import shutil

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from shufflekit.artifacts import update_manifest
    from shufflekit.export.tflite import TFLiteTarget, convert_to_tflite

    shutil.copytree(small_release, folder)
    manifest = Manifest.load(folder)
    onnx_art = next(a for a in manifest.artifacts if a.key == "onnx:fp32")
    calibration = np.random.default_rng(0).standard_normal((8, 3, SIZE, SIZE)).astype(np.float32)
    stem = onnx_art.name[: -len("_fp32.onnx")]
    targets = [
        TFLiteTarget("fp16", folder / f"{stem}_fp16.tflite"),
        TFLiteTarget("dynamic", folder / f"{stem}_dynamic.tflite"),
        TFLiteTarget("int8", folder / f"{stem}_int8.tflite", io_dtype="int8"),
    ]
    conversion = convert_to_tflite(folder / onnx_art.name, targets, layout="NHWC", calibration=calibration)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{onnx_art.input.name: calibration[i : i + 1]} for i in range(len(calibration))])

        def get_next(self):
            return next(self.items, None)

    int8_onnx = folder / f"{stem}_int8.onnx"
    quantize_static(
        str(folder / onnx_art.name),
        str(int8_onnx),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    with update_manifest(folder) as m:
        for result in conversion.results:
            m.add(
                Artifact.from_file(
                    result.path,
                    format="tflite",
                    precision=result.target.precision,
                    meta=m.meta,
                    inputs=result.inputs,
                    outputs=result.outputs,
                    parent_sha256=onnx_art.sha256,
                    options=dict(result.options),
                )
            )
        m.add(
            Artifact.from_file(
                int8_onnx,
                format="onnx",
                precision="int8",
                meta=m.meta,
                inputs=onnx_art.inputs,
                outputs=onnx_art.outputs,
                parent_sha256=onnx_art.sha256,
                options={"quantization": "static QDQ, per-channel"},
            )
        )
    assert {a.key for a in Manifest.load(folder).artifacts} == {
        "onnx:fp32",
        "onnx:int8",
        "tflite:fp32",
        "tflite:fp16",
        "tflite:dynamic",
        "tflite:int8",
    }
    return folder


@pytest.fixture()
def full_release_copy(full_release: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "release"
    shutil.copytree(full_release, target)
    return target
