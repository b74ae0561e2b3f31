"""The trained release quantized once per test session to every precision, ONNX and TFLite."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Quantized:
    folder: Path  # read-only: tests that write use ``quantized_copy``
    report: object  # the QuantizeReport
    onnx2tf_conversions: int  # onnx2tf.convert calls made by the quantize run


@pytest.fixture(scope="session")
def quantized(trained_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Quantized:
    """``trained_release`` plus ONNX fp16/dynamic/int8 and TFLite fp16/dynamic/int8 (float I/O),
    calibrated on 256 demo images, per-channel, min/max."""
    import onnx2tf

    from shufflekit.export.quantize import QuantizeOptions, quantize_release

    folder = tmp_path_factory.mktemp("quantized") / "release"
    shutil.copytree(trained_release, folder)
    calls = []
    real = onnx2tf.convert
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(onnx2tf, "convert", lambda *a, **k: calls.append(1) or real(*a, **k))
        report = quantize_release(folder, QuantizeOptions(precisions=("fp16", "dynamic", "int8"), calib="demo"))
    return Quantized(folder, report, len(calls))


@pytest.fixture()
def quantized_copy(quantized: Quantized, tmp_path: Path) -> Path:
    target = tmp_path / "quantized"
    shutil.copytree(quantized.folder, target)
    return target
