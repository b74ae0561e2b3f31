"""quantize's --data is release's: int8's calibration images and, when labelled, the accuracy fallback's
images of the ONNX int8/dynamic files; the old --calib and --accuracy-data still set one use each."""

from __future__ import annotations

import numpy as np
import pytest

from shufflekit.cli import main
from shufflekit.cli.output import command_params
from shufflekit.cli.quantize_cmd import quantize_options
from shufflekit.errors import UsageError


def _options(*argv: str):
    params = command_params(main.commands["quantize"].make_context("quantize", ["R", *argv]).params)
    params.pop("folder")
    return quantize_options(**params)


def test_labelled_data_calibrates_int8_and_gates_the_onnx_files():
    options = _options("--precisions", "int8,dynamic", "--data", "demo", "--eval-samples", "50")
    assert (options.calib, options.gate_data, options.gate_limit) == ("demo", "demo", 50)
    dynamic = _options("--precisions", "dynamic", "--data", "demo")
    assert (dynamic.calib, dynamic.gate_data) == (None, "demo")  # nothing to calibrate
    tflite = _options("--precisions", "int8", "--formats", "tflite", "--data", "demo")
    assert (tflite.calib, tflite.gate_data) == ("demo", None)  # the fallback is for ONNX files


def test_images_without_labels_only_calibrate(tmp_path):
    images = tmp_path / "images.npy"
    np.save(images, np.zeros((4, 32, 32, 3), dtype=np.uint8))
    options = _options("--precisions", "int8", "--data", str(images))
    assert (options.calib, options.gate_data) == (str(images), None)


def test_the_old_options_keep_their_one_use_and_win_over_data():
    assert (_options("--precision", "int8", "--calib", "demo").gate_data) is None  # as before: no fallback
    both = _options("--precisions", "int8", "--calib", "c", "--accuracy-data", "a", "--data", "demo")
    assert (both.calib, both.gate_data) == ("c", "a")


def test_data_that_would_do_nothing_is_refused():
    with pytest.raises(UsageError, match="neither is made here"):
        _options("--precisions", "fp16", "--data", "demo")
