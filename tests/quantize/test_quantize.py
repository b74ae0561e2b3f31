"""Quantization of a briefly trained model: every precision keeps its accuracy within the gate and passes
validate; the manifest records lineage, options, tools and calibration; bad calibration data and
failures leave the folder as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line
from shufflekit.data import train_val_sets
from shufflekit.errors import ExportError
from shufflekit.export import quantize_onnx
from shufflekit.export.quantize import QuantizeOptions, quantize_release
from shufflekit.files import sha256_file
from shufflekit.validate.accuracy import evaluate_release
from shufflekit.validate.parity import validate_release

MODEL = "shufflenet_v2_x0_5"
MADE = {
    f"{MODEL}_{p}.{ext}": (fmt, p)
    for fmt, ext in (("onnx", "onnx"), ("tflite", "tflite"))
    for p in ("fp16", "dynamic", "int8")
}


def _cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_error_line(result) -> str:
    lines = [
        line
        for line in result.output.splitlines()
        if line.strip() and not line.startswith("WARNING") and not is_progress_line(line)
    ]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder in ``folder`` (hidden ones too) with its content hash."""
    return {
        str(p.relative_to(folder)): (sha256_file(p) if p.is_file() else "dir")
        for p in sorted(folder.rglob("*"))
        if p.name != ".manifest.lock"
    }


@pytest.fixture(scope="module")
def digit_pngs() -> list[Path]:
    """Some readable demo images (PNG files of the demo set's train split)."""
    train, _ = train_val_sets("demo")
    return [train.items[i] for i in range(0, len(train), 30)]


# -- the gate ---------------------------------------------------------------------------------------------
def test_every_precision_keeps_accuracy_within_the_gate_and_passes_validate(quantized, quantized_copy):
    assert {a.name for a in quantized.report.artifacts} == set(MADE)
    accuracy = evaluate_release(quantized_copy, "demo")
    assert accuracy.passed, accuracy.to_dict()
    assert accuracy.samples == 359 and accuracy.pytorch.top1 > 70.0  # a trained model, not chance (10 %)
    assert {r.name for r in accuracy.results} == set(MADE) | {f"{MODEL}_fp32.onnx", f"{MODEL}_fp32.tflite"}
    for result in accuracy.results:
        assert result.drop <= 1.0 and result.agreement > 90.0, result

    parity = validate_release(quantized_copy)
    assert parity.passed, [r.failures for r in parity.results]
    judged = {r.artifact: r for r in parity.results}
    for name in MADE:  # quantized files are judged by class agreement and the accuracy just measured
        assert judged[name].accuracy["delta_top1"] == pytest.approx(
            next(r.delta_top1 for r in accuracy.results if r.name == name)
        )
        if MADE[name][1] in ("dynamic", "int8"):
            assert judged[name].tolerance.max_rel is None  # never a tiny absolute tolerance
    recorded = Manifest.load(quantized_copy).results("accuracy")
    assert set(recorded) == {r.name for r in accuracy.results} | {"pytorch"}


def test_every_precision_keeps_parity_on_a_board_python(quantized_copy):
    """Every file of the trained release run where a Raspberry Pi would run it (the lean device Python:
    numpy<2, tflite-runtime 2.14, onnxruntime), through the remote layer, its outputs judged against
    PyTorch by the tolerance table: what an app team learns before shipping a quantized file."""
    device_python = Path(__file__).resolve().parents[2] / ".venv-device" / "bin" / "python"
    if not device_python.exists():
        pytest.skip(".venv-device is missing; `make test` builds it")
    result = _cli(
        "profile",
        quantized_copy,
        "--warmup",
        "0",
        "--iters",
        "1",
        "--device",
        f"local?python={device_python}",
        "--json",
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert len(rows) == 8 and all(r["parity"]["passed"] for r in rows), [r["parity"]["failures"] for r in rows]
    assert {r["interpreter"] for r in rows if r["format"] == "tflite"} == {"tflite-runtime"}


def test_artifacts_record_lineage_options_tools_and_the_calibration_used(quantized):
    manifest = Manifest.load(quantized.folder)
    parent = manifest.artifact(f"{MODEL}_fp32.onnx")
    # every TFLite precision from ONE conversion (none when the export's, same process, is reused)
    assert quantized.onnx2tf_conversions <= 1
    for name, (fmt, precision) in MADE.items():
        artifact = manifest.artifact(name)
        assert (artifact.format, artifact.precision) == (fmt, precision)
        assert artifact.parent_sha256 == parent.sha256 and artifact.verify(quantized.folder)
        assert artifact.meta == parent.meta and artifact.tools["shufflekit"]
        assert ("onnxruntime" if fmt == "onnx" else "onnx2tf") in artifact.tools
        assert artifact.input.dtype == "float32"
        if precision == "int8" or (fmt == "tflite" and precision == "dynamic"):
            assert artifact.options["per_channel"] is True
        if fmt == "onnx" and precision in ("dynamic", "int8"):  # the recipe that holds on every CPU
            assert artifact.options["recipe"] == "portable" and artifact.options["target"] == "any"
            assert set(artifact.options["holds_on"]) == {"x86-avx2", "x86-vnni", "arm64"}
            assert artifact.options["recipe_why"]
        if precision == "int8":
            calibration = artifact.options["calibration"]
            # by default ONNX calibrates on 256 images and TFLite (whose calibrator is slow) on 128
            expected = 256 if fmt == "onnx" else 128
            assert calibration["used"] == expected and calibration["requested"] == expected
            if fmt == "tflite":
                assert artifact.options["calibration_samples"] == 128
            assert calibration["source"] == "demo" and calibration["split"] == "train"
            assert calibration["preprocessing"]["input_size"] == {"height": 32, "width": 32}  # the model's own
        if fmt == "onnx" and precision != "fp16":
            assert artifact.options["pre_process"] == "onnxruntime.quantization.quant_pre_process"
            assert "vnni" in artifact.options["host_cpu"]
    assert manifest.artifact(f"{MODEL}_int8.onnx").options["quant_format"] == "QDQ"
    assert manifest.artifact(f"{MODEL}_int8.onnx").options["calibration_method"] == "minmax"
    assert not list(quantized.folder.glob(".staging*"))
    assert all(s.stat().st_size < parent.size_bytes for s in quantized.folder.glob(f"{MODEL}_[di]*.*"))


def test_onnx_files_pass_the_checker_keep_float_io_and_carry_the_model_metadata(quantized):
    parent = onnx.load(str(quantized.folder / f"{MODEL}_fp32.onnx"))
    labels = {p.key: p.value for p in parent.metadata_props}["labels"]
    ops = {}
    for precision in ("fp16", "dynamic", "int8"):
        path = quantized.folder / f"{MODEL}_{precision}.onnx"
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path))
        props = {p.key: p.value for p in model.metadata_props}
        assert props["labels"] == labels and props["precision"] == precision
        assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert {op.domain for op in model.opset_import} <= {"", "ai.onnx", "com.microsoft"}
        ops[precision] = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops["int8"]
    assert "ConvInteger" in ops["dynamic"] and "Cast" in ops["fp16"]


@pytest.mark.slow
def test_tflite_int8_with_uint8_input_and_output_for_apps(trained_release_copy):
    report = quantize_release(
        trained_release_copy,
        QuantizeOptions(precisions=("int8",), formats=("tflite",), calib="demo", calib_samples=64, io_dtype="uint8"),
    )
    (artifact,) = report.artifacts
    assert artifact.name == f"{MODEL}_int8_uint8io.tflite"
    assert artifact.input.dtype == "uint8" and artifact.input.quantization is not None
    assert artifact.outputs[0].dtype == "uint8" and artifact.options["calibration"]["used"] == 64
    accuracy = evaluate_release(trained_release_copy, "demo", select=[artifact.name], limit=200)
    assert accuracy.passed and accuracy.results[0].agreement > 90.0, accuracy.to_dict()


# -- calibration data -----------------------------------------------------------------------------------
def test_int8_without_calibration_data_is_one_line_and_changes_nothing(trained_release_copy):
    before = _snapshot(trained_release_copy)
    result = _cli("quantize", trained_release_copy, "--precision", "fp16,int8")
    assert result.exit_code == 2
    assert "--data" in _one_error_line(result)
    assert _snapshot(trained_release_copy) == before


@pytest.mark.parametrize("content", ["nothing", "only-corrupt"])
def test_empty_calibration_data_is_one_line_and_changes_nothing(trained_release_copy, tmp_path, content):
    calib = tmp_path / "calib"
    (calib / "7").mkdir(parents=True)
    if content == "only-corrupt":
        (calib / "7" / "a.png").write_bytes(b"not a png")
    before = _snapshot(trained_release_copy)
    result = _cli("quantize", trained_release_copy, "--precision", "int8", "--calib", calib)
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "holds no images" in line or "could be decoded" in line
    assert _snapshot(trained_release_copy) == before


def test_corrupt_calibration_files_are_skipped_counted_and_calibration_still_works(
    trained_release_copy, tmp_path, digit_pngs, caplog
):
    calib = tmp_path / "calib"
    for path in digit_pngs:
        (calib / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, calib / path.parent.name / path.name)
    good = len(digit_pngs)
    (calib / "3" / "garbage.png").write_bytes(b"\x89PNG but not really")
    (calib / "3" / "truncated.png").write_bytes(digit_pngs[0].read_bytes()[:60])  # header reads, pixels do not
    (calib / "3" / "notes.txt").write_text("not an image")
    result = _cli(
        "quantize",
        trained_release_copy,
        "--precision",
        "int8",
        "--formats",
        "onnx",
        "--calib",
        calib,
        "--calib-samples",
        "500",
        "--json",
    )
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 3 files that are not readable images" in warnings[0]  # counted once
    envelope = json.loads(result.stdout)
    assert sum("skipped 3 files" in w for w in envelope["warnings"]) == 1  # the library's warning, in the JSON too
    calibration = envelope["report"]["calibration"]
    assert calibration["used"] == good and calibration["skipped_files"] == 3 and calibration["requested"] == 500
    artifact = Manifest.load(trained_release_copy).artifact(f"{MODEL}_int8.onnx")
    assert artifact.options["calibration"]["used"] == good
    accuracy = evaluate_release(trained_release_copy, "demo", select=["onnx:int8"], limit=150)
    assert accuracy.results[0].agreement > 85.0, accuracy.to_dict()


def test_a_failure_midway_leaves_the_folder_as_it_was(trained_release_copy, monkeypatch):
    def broken(*args, **kwargs):
        raise ExportError("TFLite conversion failed: simulated")

    monkeypatch.setattr("shufflekit.export.tflite.convert_to_tflite", broken)
    before = _snapshot(trained_release_copy)
    with pytest.raises(ExportError, match="simulated"):  # after the ONNX files were made
        quantize_release(trained_release_copy, QuantizeOptions(precisions=("fp16", "dynamic")))
    assert _snapshot(trained_release_copy) == before


# -- options ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, expected",
    [
        (["--precision", "int4"], "unknown precision int4"),
        (["--precision", "int8", "--formats", "onnx", "--calib", "demo", "--io-dtype", "uint8"], "TFLite int8 only"),
        (
            ["--precision", "int8", "--formats", "tflite", "--calib", "demo", "--calibration", "entropy"],
            "ONNX int8 only",
        ),
        (["--precision", "fp16", "--formats", "tflite", "--reduce-range"], "ONNX int8 and dynamic only"),
        (
            ["--precision", "int8", "--calib", "demo", "--calib-samples", "0"],
            "--calib-samples must be an integer from 1",
        ),
        (["--precision", "fp16", "--formats", "coreml"], "unknown format coreml"),
    ],
)
def test_options_that_cannot_apply_are_one_line(trained_release, args, expected):
    before = _snapshot(trained_release)
    result = _cli("quantize", trained_release, *args)
    assert result.exit_code == 2 and expected in _one_error_line(result)
    assert _snapshot(trained_release) == before


def test_a_folder_without_its_fp32_onnx_file_is_one_line(trained_release_copy):
    manifest = Manifest.load(trained_release_copy)
    manifest.remove(f"{MODEL}_fp32.onnx")
    manifest.save()
    result = _cli("quantize", trained_release_copy, "--precision", "fp16")
    assert result.exit_code == 2 and "no fp32 ONNX artifact" in _one_error_line(result)


def test_cpu_facts_come_from_cpuinfo(tmp_path):
    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    vnni = tmp_path / "vnni"
    vnni.write_text("flags\t\t: sse2 avx2 avx512f avx512_vnni\n")
    arm = tmp_path / "arm"
    arm.write_text("Features\t: fp asimd evtstrm aes crc32 asimddp\n")
    assert quantize_onnx.cpu_int8_facts(avx2)["overflow_risk"] is True
    assert quantize_onnx.cpu_int8_facts(vnni)["vnni"] is True
    assert quantize_onnx.cpu_int8_facts(vnni)["overflow_risk"] is False
    assert quantize_onnx.cpu_flags(arm) >= {"asimddp"}
    assert quantize_onnx.cpu_flags(tmp_path / "missing") == frozenset()


def test_a_recipe_that_saturates_without_vnni_is_warned_on_such_a_cpu_and_the_default_is_not(
    trained_release_copy, monkeypatch, tmp_path
):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: sse2 avx avx2 fma\n")
    real = quantize_onnx.cpu_int8_facts
    monkeypatch.setattr(quantize_onnx, "cpu_int8_facts", lambda: {**real(cpuinfo), "x86": True, "overflow_risk": True})
    report = quantize_release(
        trained_release_copy,
        QuantizeOptions(precisions=("int8",), formats=("onnx",), calib="demo", calib_samples=32, target="x86-vnni"),
    )
    (artifact,) = report.artifacts
    assert artifact.options["recipe"] == "full-range" and artifact.options["reduce_range"] is False
    assert artifact.options["holds_on"] == ["x86-vnni", "arm64"] and artifact.options["target"] == "x86-vnni"
    assert any("no VNNI" in w for w in report.warnings) and "VNNI" in artifact.options["warning"]

    report = quantize_release(
        trained_release_copy,
        QuantizeOptions(precisions=("int8", "dynamic"), formats=("onnx",), calib="demo", calib_samples=32),
    )
    assert not report.warnings and all("warning" not in a.options for a in report.artifacts)
    assert {a.options["recipe"] for a in report.artifacts} == {"portable"}
    assert Manifest.load(trained_release_copy).artifact(f"{MODEL}_int8.onnx").options["reduce_range"] is True


def test_explicit_settings_make_a_custom_recipe_that_says_where_it_holds(trained_release_copy):
    report = quantize_release(
        trained_release_copy, QuantizeOptions(precisions=("dynamic",), formats=("onnx",), weight_type="int8")
    )
    (artifact,) = report.artifacts
    assert artifact.options["recipe"] == "custom" and artifact.options["weight_type"] == "int8"
    assert "arm64" not in artifact.options["holds_on"]  # ConvInteger has no int8-weight kernel on ARM64
    assert any("does not hold on" in w and "ARM64" in w for w in report.warnings)


def test_the_cli_adds_onnx_artifacts_with_a_table(trained_release_copy):
    result = _cli(
        "quantize",
        trained_release_copy,
        "--precision",
        "fp16",
        "--precision",
        "dynamic",
        "--formats",
        "onnx",
        "--per-tensor",
    )
    assert result.exit_code == 0, result.output
    assert f"{MODEL}_fp16.onnx" in result.output and "per-tensor" in result.output
    manifest = Manifest.load(trained_release_copy)
    assert manifest.artifact(f"{MODEL}_dynamic.onnx").options["per_channel"] is False
    # about half: the weights halve; the graph's int64 shapes (more of them with the rewrites) do not
    ratio = manifest.artifact(f"{MODEL}_fp16.onnx").size_bytes / manifest.artifact(f"{MODEL}_fp32.onnx").size_bytes
    assert 0.45 < ratio < 0.56, ratio
