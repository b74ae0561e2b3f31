"""The format and precision registry: every list of formats or precisions in shufflekit comes from it."""

from __future__ import annotations

import pytest

from shufflekit import formats
from shufflekit.errors import UsageError


def test_builtin_formats_and_precisions_in_report_order() -> None:
    assert formats.format_names()[:2] == ("onnx", "tflite")
    assert formats.precision_names()[:4] == ("fp32", "fp16", "dynamic", "int8")
    assert formats.quantized_precisions()[:3] == ("fp16", "dynamic", "int8")
    assert [p.name for p in formats.precisions() if p.needs_calibration] == ["int8"]


@pytest.mark.parametrize("fmt", formats.formats(), ids=lambda f: f.name)
def test_every_format_names_a_runtime_an_extension_and_a_tolerance_per_precision(fmt: formats.Format) -> None:
    assert fmt.extension.startswith(".") and fmt.runtime
    assert fmt.layouts and set(fmt.layouts) <= {"NCHW", "NHWC"}
    assert formats.format_of_path(f"model_fp32{fmt.extension}") == fmt
    for precision in fmt.precisions:
        tolerance = formats.tolerance_for(fmt.name, precision)
        assert tolerance.basis, "every tolerance says what it rests on"
        judged = [tolerance.max_rel, tolerance.min_cosine, tolerance.min_top1, tolerance.min_top5]
        assert any(v is not None for v in judged), f"{fmt.name}:{precision} judges nothing"


def test_float32_is_judged_by_rounding_and_quantized_files_by_class_agreement() -> None:
    assert formats.tolerance_for("onnx", "fp32").max_rel == pytest.approx(2e-4)
    assert formats.tolerance_for("tflite", "int8").max_rel is None
    assert formats.tolerance_for("tflite", "int8").min_top1 == pytest.approx(0.9)


def test_a_name_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        formats.register_format(formats.ONNX)
    with pytest.raises(ValueError, match="registered twice"):
        formats.register_precision(formats.INT8)
    clash = formats.Format("onnx2", ".onnx", runtime="onnxruntime", precisions=("fp32",))
    with pytest.raises(ValueError, match="extension"):
        formats.register_format(clash)


def test_a_temporary_format_is_gone_after_its_block() -> None:
    toy = formats.Format("toyfmt", ".toy", runtime="onnxruntime", precisions=("fp32",))
    with formats.registered(toy):
        assert formats.get_format("toyfmt") is toy
        assert formats.format_of_path("a/b/m.toy") is toy
    assert "toyfmt" not in formats.format_names()
    assert formats.format_of_path("m.toy") is None


def test_unknown_names_are_one_line_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown format 'coreml'") as info:
        formats.get_format("coreml")
    assert "onnx" in (info.value.hint or "")
    with pytest.raises(UsageError, match="cannot hold"):
        formats.Format("fp32only", ".f32", runtime="onnxruntime", precisions=("fp32",)).tolerance("int8")


@pytest.mark.parametrize("fmt", formats.formats(), ids=lambda f: f.name)
def test_the_device_backend_of_every_format_runs_it(fmt: formats.Format) -> None:
    """The device package stands alone, so its backends name their formats themselves: they must agree."""
    from shufflekit.device import backends

    backend = backends.get(fmt.runtime)
    assert fmt.name in backend.formats and fmt.extension in backend.extensions
