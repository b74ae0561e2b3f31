"""Layout and quantization conversions: what every session does to the images a caller hands it."""

from __future__ import annotations

import numpy as np
import pytest

from shufflekit.device import tensors
from shufflekit.device.errors import RunnerError


def test_layout_round_trip_moves_channels_and_restores_them() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 7)).astype(np.float32)
    nhwc = tensors.convert_layout(x, "NCHW", "NHWC")
    assert nhwc.shape == (2, 5, 7, 3)
    assert nhwc[1, 4, 6, 2] == x[1, 2, 4, 6]
    assert nhwc.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(tensors.convert_layout(nhwc, "NHWC", "NCHW"), x)
    np.testing.assert_array_equal(tensors.convert_layout(x, "NCHW", "NCHW"), x)


def test_layout_conversion_refuses_unknown_layouts_and_non_images() -> None:
    with pytest.raises(RunnerError, match="unknown layout"):
        tensors.convert_layout(np.zeros((1, 3, 2, 2)), "NCHW", "CHWN")
    with pytest.raises(RunnerError, match="4-D"):
        tensors.convert_layout(np.zeros((3, 2, 2)), "NCHW", "NHWC")


@pytest.mark.parametrize("dtype,zero_point", [("int8", -3), ("uint8", 128)])
def test_quantization_round_trip_is_within_half_a_step(dtype: str, zero_point: int) -> None:
    scale = 0.02
    info = np.iinfo(dtype)
    x = np.random.default_rng(1).uniform((info.min - zero_point) * scale, (info.max - zero_point) * scale, 1000)
    q = tensors.quantize(x, scale, zero_point, dtype)
    assert q.dtype == np.dtype(dtype)
    back = tensors.dequantize(q, scale, zero_point)
    assert np.max(np.abs(back - x)) <= scale / 2 + 1e-6


def test_quantization_saturates_instead_of_wrapping() -> None:
    q = tensors.quantize(np.array([1e6, -1e6]), 0.1, 0, "int8")
    assert q.tolist() == [127, -128]


def test_model_input_is_laid_out_and_quantized_for_an_int8_nhwc_model() -> None:
    spec = tensors.TensorInfo("x", (1, 4, 4, 3), "int8", quantization=(0.05, -10))
    images = np.random.default_rng(2).uniform(-1, 1, (2, 3, 4, 4)).astype(np.float32)
    fed = tensors.to_model_input(images, spec, "NHWC")
    assert fed.dtype == np.int8 and fed.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(
        tensors.dequantize(fed, 0.05, -10), np.transpose(images, (0, 2, 3, 1)), atol=0.025 + 1e-6
    )
    out = tensors.TensorInfo("y", (1, 3), "int8", quantization=(0.5, 2))
    np.testing.assert_allclose(tensors.from_model_output(np.array([[2, 4, -2]], np.int8), out), [[0.0, 1.0, -2.0]])


def test_batch_plan() -> None:
    dynamic = tensors.TensorInfo("x", (None, 3, 8, 8), "float32")
    fixed1 = tensors.TensorInfo("x", (1, 3, 8, 8), "float32")
    fixed2 = tensors.TensorInfo("x", (2, 3, 8, 8), "float32")
    assert tensors.plan_batch(dynamic, 5) == ("direct", 5)
    assert tensors.plan_batch(fixed1, 5) == ("loop", 1)
    assert tensors.plan_batch(fixed2, 2) == ("direct", 2)
    with pytest.raises(RunnerError, match="fixed at batch 2 and cannot take a batch of 3"):
        tensors.plan_batch(fixed2, 3)
    with pytest.raises(RunnerError, match="at least 1"):
        tensors.plan_batch(dynamic, 0)
