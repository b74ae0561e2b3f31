"""The ONNX recipes, the accuracy-aware fallback and the per-layer error report, on the trained test
release with the real quantizer and ONNX Runtime (the kernels of other CPUs are in
tests/remote/test_emulated_kernels.py)."""

from __future__ import annotations

import json

import onnx
import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line
from shufflekit.errors import UsageError
from shufflekit.export import recipes
from shufflekit.export.fallback import FLOAT_LAYER_STEPS, AccuracyGate
from shufflekit.export.quantize import QuantizeOptions, quantize_release
from shufflekit.runtimes import load_session
from shufflekit.validate.accuracy import labelled_arrays
from shufflekit.validate.gate import TOOLS

MODEL = "shufflenet_v2_x0_5"
EVERY_CPU = {"x86-avx2", "x86-vnni", "arm64"}


def test_the_default_recipes_hold_on_every_cpu_family():
    for precision in ("int8", "dynamic"):
        default = recipes.default_recipe(precision)
        assert default.name == "portable" and set(default.holds_on) == EVERY_CPU
        assert all(r.valid_for("any") for r in recipes.ladder(precision))
    assert recipes.default_recipe("int8").reduce_range  # 7-bit weights: no int16 saturation without VNNI
    dynamic = recipes.default_recipe("dynamic")
    assert dynamic.weight_type == "uint8" and not dynamic.per_channel  # the one ConvInteger ARM64 has


def test_a_release_units_options_hold_only_what_changes_its_file():
    """A release fingerprints each unit by these options: a setting of another format or precision must
    not remake it (a new --io-dtype would otherwise remake the ONNX files), one of its own must."""
    base = QuantizeOptions(precisions=("fp16", "dynamic", "int8"), calib="demo", gate_data="demo", layout="NCHW")
    others = {"io_dtype": "int8", "calibration": "entropy", "target": "x86-vnni", "reduce_range": False}
    for fmt, precision, changed in (
        ("tflite", "fp16", others),
        ("onnx", "fp16", others),
        ("tflite", "int8", {k: v for k, v in others.items() if k != "io_dtype"}),
        ("onnx", "dynamic", {"io_dtype": "int8", "calibration": "entropy", "layout": "NHWC", "calib": "elsewhere"}),
    ):
        for name, value in changed.items():
            moved = QuantizeOptions(**{**base.__dict__, name: value})
            assert moved.applicable_to(fmt, (precision,)) == base.applicable_to(fmt, (precision,)), (fmt, name)
    own = {("tflite", "int8"): "io_dtype", ("onnx", "int8"): "calibration", ("onnx", "dynamic"): "target"}
    for (fmt, precision), name in own.items():
        moved = QuantizeOptions(**{**base.__dict__, name: others[name]})
        assert moved.applicable_to(fmt, (precision,)) != base.applicable_to(fmt, (precision,)), (fmt, name)
    onnx_int8 = base.applicable_to("onnx", ("int8",))
    assert onnx_int8.gate_data == "demo" and onnx_int8.calib_samples == 256 and onnx_int8.formats == ("onnx",)
    assert base.applicable_to("tflite", ("int8",)).calib_samples == 128  # each format's own default
    assert base.applicable_to("tflite", ("int8",)).gate_data is None  # the fallback is ONNX's


def test_a_target_unlocks_the_recipe_valid_only_there():
    assert recipes.default_recipe("int8", "x86-vnni").name == "full-range"
    assert recipes.default_recipe("int8", "arm64").name == "full-range"
    assert recipes.default_recipe("int8", "x86-avx2").name == "portable"
    assert "full-range" not in {r.name for r in recipes.ladder("int8", "x86-avx2")}
    assert "full-range" not in {r.name for r in recipes.ladder("dynamic", "arm64")}
    with pytest.raises(UsageError, match="unknown --target"):
        recipes.ladder("int8", "riscv")


@pytest.mark.parametrize(
    "settings, missing",
    [
        ({"reduce_range": False}, "x86-avx2"),  # 8-bit u8 x s8 pair sums saturate int16 without VNNI
        ({"weight_type": "uint8"}, None),  # u8 x u8 widens first: holds everywhere
    ],
)
def test_explicit_settings_hold_where_their_arithmetic_does(settings, missing):
    custom = recipes.default_recipe("int8").with_settings(**settings)
    assert custom.name == "custom" and "user" in custom.why
    assert (missing not in custom.holds_on) if missing else set(custom.holds_on) == EVERY_CPU


def test_the_kernel_family_of_a_device_comes_from_its_facts():
    assert recipes.kernel_family({"machine": "aarch64"}) == "arm64"
    assert recipes.kernel_family({"machine": "x86_64", "cpu_flags": ["avx2", "avx512_vnni"]}) == "x86-vnni"
    assert recipes.kernel_family({"machine": "x86_64", "cpu_flags": ["avx2", "fma"]}) == "x86-avx2"
    assert recipes.kernel_family({"machine": "x86_64", "vnni": False, "cpu_flags": ["avx512_vnni"]}) == "x86-avx2"
    assert recipes.kernel_family({"machine": "riscv64"}) is None


def test_with_accuracy_data_every_file_records_the_gate_it_passed(trained_release_copy):
    report = quantize_release(
        trained_release_copy,
        QuantizeOptions(
            precisions=("dynamic", "int8"),
            formats=("onnx",),
            calib="demo",
            calib_samples=64,
            gate_data="demo",
            gate_limit=100,
        ),
        gate=TOOLS,
    )
    for artifact in report.artifacts:
        fallback = artifact.options["fallback"]
        assert fallback["passed"] and fallback["gate_images"] == 100 and fallback["gate_data"] == "demo"
        assert fallback["attempts"][-1]["recipe"] == artifact.options["recipe"]
        assert fallback["judged_on"] == "this computer's kernels"


class _Unpassable(AccuracyGate):
    """The real top-1 on real images, judged against a limit no file can meet: every rung is tried."""

    def judge(self, path, parent):
        found = super().judge(path, parent)
        return type(found)(found.recipe, found.top1, found.drop, False)


def test_a_gate_no_recipe_passes_tries_the_whole_ladder_then_float_layers_and_keeps_the_best(
    trained_release_copy, monkeypatch
):
    import shufflekit.export.quantize as quantize

    monkeypatch.setattr(quantize, "AccuracyGate", _Unpassable)
    report = quantize_release(
        trained_release_copy,
        QuantizeOptions(
            precisions=("int8",), formats=("onnx",), calib="demo", calib_samples=64, gate_data="demo", gate_limit=60
        ),
        gate=TOOLS,
    )
    (artifact,) = report.artifacts
    attempts = artifact.options["fallback"]["attempts"]
    ladder = [r.name for r in recipes.ladder("int8")]
    assert [a["recipe"] for a in attempts[: len(ladder)]] == ladder  # in order, each measured
    float_rungs = attempts[len(ladder) :]
    assert float_rungs and all(a["recipe"] == "portable+float-layers" for a in float_rungs)
    assert len(float_rungs) <= len(FLOAT_LAYER_STEPS)
    assert artifact.options["fallback"]["passed"] is False
    assert artifact.options["recipe"] == max(attempts, key=lambda a: a["top1"])["recipe"]  # the best one kept
    assert any("no recipe passed the accuracy gate" in w for w in report.warnings)
    assert not list(trained_release_copy.glob("**/*.candidates"))  # the scratch files are gone


def test_layers_kept_in_float_are_recorded_and_the_file_still_runs(trained_release_copy, monkeypatch):
    import shufflekit.export.quantize as quantize

    monkeypatch.setattr(quantize, "AccuracyGate", _Unpassable)
    monkeypatch.setattr(recipes, "STATIC_RECIPES", recipes.STATIC_RECIPES[:1])  # straight to the float rungs
    monkeypatch.setattr("shufflekit.export.fallback.FLOAT_LAYER_STEPS", (2,))
    report = quantize_release(
        trained_release_copy,
        QuantizeOptions(
            precisions=("int8",), formats=("onnx",), calib="demo", calib_samples=64, gate_data="demo", gate_limit=60
        ),
        gate=TOOLS,
    )
    (artifact,) = report.artifacts
    kept = [a for a in artifact.options["fallback"]["attempts"] if a["recipe"].endswith("float-layers")]
    assert len(kept) == 1
    path = trained_release_copy / artifact.name
    if artifact.options["recipe"].endswith("float-layers"):
        floats = artifact.options["nodes_kept_in_float"]
        assert len(floats) == 2
        graph = onnx.load(str(path)).graph
        convs = {n.name for n in graph.node if n.op_type == "Conv"}
        assert set(floats) <= convs  # still float convolutions, not QDQ-wrapped ones
    manifest = Manifest.load(trained_release_copy)
    arrays = labelled_arrays("demo", manifest, limit=8)
    session = load_session(manifest.artifact(artifact.name), trained_release_copy)
    assert session.predict(arrays.images[:1]).shape == (1, 10)
    session.close()


def test_validate_per_layer_names_where_an_int8_file_departs_from_float(quantized_copy):
    result = CliRunner().invoke(main, ["validate", str(quantized_copy), "--per-layer", "--json"])
    assert result.exit_code == 0, result.output
    (report,) = [r["per_layer"] for r in json.loads(result.stdout)["results"] if r["per_layer"] is not None]
    assert report["artifact"] == f"{MODEL}_int8.onnx" and report["parent"] == f"{MODEL}_fp32.onnx"
    assert report["tool"] == "onnxruntime.quantization.qdq_loss_debug"
    layers = report["layers"]
    assert len(layers) > 20 and {"Conv"} <= {layer["op_type"] for layer in layers}
    assert all(layer["sqnr_db"] is None or layer["sqnr_db"] > 0 for layer in layers)
    assert report["worst"]["sqnr_db"] == min(layer["sqnr_db"] for layer in layers if layer["sqnr_db"] is not None)

    strict = CliRunner().invoke(
        main, ["validate", str(quantized_copy), "--per-layer", "--threshold-db", "199", "--json"]
    )
    (strict_report,) = [r["per_layer"] for r in json.loads(strict.stdout)["results"] if r["per_layer"] is not None]
    first = strict_report["first_departure"]
    assert first is not None and first["sqnr_db"] < 199 and "departs from float at" in strict_report["summary"]

    table = CliRunner().invoke(main, ["validate", str(quantized_copy), "--per-layer"], terminal_width=200)
    assert "per-layer error against" in table.output and "SQNR vs float dB" in table.output


def test_per_layer_on_a_folder_without_int8_onnx_is_one_line(small_release_copy):
    result = CliRunner().invoke(main, ["validate", str(small_release_copy), "--per-layer"])
    assert result.exit_code == 2
    (line,) = [line for line in result.stderr.splitlines() if line.strip() and not is_progress_line(line)]
    assert line.startswith("error: ") and "no int8 ONNX artifact" in line
