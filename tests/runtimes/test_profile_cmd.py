"""`shufflekit profile`: every format and precision of a small release measured on this CPU, figures in
the manifest keyed by device, op breakdowns, plots, and one clear line for each bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Artifact, Manifest, TensorSpec
from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line
from shufflekit.metadata import ModelMeta, Preprocessing
from shufflekit.runtimes import opcategories

# full_release holds seeded (untrained) weights, whose reduced-precision files fail parity by design (see
# test_parity_on_the_device_is_judged_and_a_failure_exits_1): the latency tests leave parity out.
FAST = ["--warmup", "1", "--iters", "5", "--no-parity"]


def _invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["profile", *args], env=env)


def _error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip() and not is_progress_line(line)]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def profiled(full_release: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    """The whole release profiled once, with op profiles and plots (JSON output and the manifest kept)."""
    folder = tmp_path_factory.mktemp("profiled") / "release"
    shutil.copytree(full_release, folder)
    plots = folder.parent / "plots"
    result = _invoke(str(folder), *FAST, "--op-profile", "--plot", str(plots), "--json")
    assert result.exit_code == 0, result.output
    return folder, json.loads(result.stdout), plots


def test_every_format_and_precision_is_profiled_on_cpu(profiled) -> None:
    folder, report, _ = profiled
    manifest = Manifest.load(folder)
    by_name = {a["artifact"]: a for a in report["results"]}
    assert set(by_name) == {a.name for a in manifest.artifacts}
    latency = manifest.results("latency", group="local")
    for art in manifest.artifacts:
        row = by_name[art.name]
        lat = row["latency_ms"]
        assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert row["iters"] == 5 and row["throughput_ips"] > 0 and row["load_ms"] > 0 and row["peak_rss_bytes"] > 0
        assert row["runtime"] == ("onnxruntime" if art.format == "onnx" else "litert")
        assert (row["format"], row["precision"], row["size_bytes"]) == (art.format, art.precision, art.size_bytes)
        # the figures are in the manifest, for this file (sha256), under this device
        assert latency[art.name]["sha256"] == art.sha256
        assert latency[art.name]["latency_ms"]["p50_ms"] == lat["p50_ms"]
    assert {row["device"] for row in report["results"]} == {"local"}
    assert [d["device"] for d in report["report"]["devices"]] == ["local"]
    host = manifest.group_info("latency", "local")
    assert host["cpu_model"] and host["logical_cores"] >= 1 and "onnxruntime" in host["runtimes"]


def test_parity_on_the_device_is_judged_and_a_failure_exits_1(full_release_copy: Path) -> None:
    """Every artifact's outputs on the reference inputs, from the runner that timed it, against PyTorch's.
    fp32 agrees; the seeded reduced-precision files do not (noise on a random network), which exits 1
    with validate's explanation, after every figure was recorded."""
    result = _invoke(str(full_release_copy), "--warmup", "1", "--iters", "2", "--json")
    assert result.exit_code == 1, result.output
    verdicts = {
        row["precision"] + ":" + row["format"]: row["parity"]["passed"] for row in json.loads(result.stdout)["results"]
    }
    assert verdicts["fp32:onnx"] and verdicts["fp32:tflite"] and not all(verdicts.values())
    assert "parity on the device failed" in result.stderr and "seeded random weights" in result.stderr
    manifest = Manifest.load(full_release_copy)
    recorded = manifest.results("device_parity", group="local")
    assert {name: entry["passed"] for name, entry in recorded.items()} == {
        row["artifact"]: row["parity"]["passed"] for row in json.loads(result.stdout)["results"]
    }
    assert set(manifest.results("latency", group="local")) == set(recorded)
    skipped = _invoke(str(full_release_copy), "onnx:int8", *FAST)  # --no-parity: latency alone
    assert skipped.exit_code == 0, skipped.output


def test_multiply_adds_and_latency_per_mmac_sit_beside_each_figure(profiled) -> None:
    from shufflekit.models.complexity import model_complexity

    folder, report, _ = profiled
    meta = Manifest.load(folder).meta
    mult_adds = model_complexity(meta.model, meta.input_size, meta.num_classes).mult_adds
    for row in report["results"]:
        assert row["mult_adds"] == mult_adds
        assert row["us_per_mmac"] == pytest.approx(row["per_image_p50_ms"] * 1e3 / (mult_adds / 1e6))


def test_op_profile_breaks_time_down_by_operator_and_category(profiled) -> None:
    folder, report, _ = profiled
    ops = Manifest.load(folder).results("op_profile", group="local")
    for row in report["results"]:
        prof = row["op_profile"]
        if row["format"] == "tflite" and not prof["available"]:
            pytest.fail(f"{row['artifact']}: {prof['reason']}")
        cats = {c["category"] for c in row["breakdown"]["categories"]}
        # ShuffleNet v2: convolutions and the operators FLOPs miss (shuffle, split/concat) all show up
        assert {opcategories.CONV, opcategories.DEPTHWISE, opcategories.SHUFFLE, opcategories.CONCAT_SPLIT} <= cats
        assert sum(c["share"] for c in row["breakdown"]["categories"]) == pytest.approx(1.0)
        assert row["breakdown"]["total_ms"] == pytest.approx(prof["node_sum_ms"])
        assert ops[row["artifact"]]["categories"] == row["breakdown"]["categories"]
        if row["format"] == "onnx":
            # kernels are timed inside each profiled run: their sum is most of the run, never more
            assert 0.3 * prof["run_ms"] <= prof["node_sum_ms"] <= prof["run_ms"] * 1.001
        else:  # isolated timing: every operator of the model, each once
            assert len(prof["nodes"]) == row["ops"] > 100


def test_plots_are_png_files(profiled) -> None:
    _, report, plots = profiled
    for name in ("latency.png", "op_breakdown.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (device,) = report["report"]["devices"]
    assert sorted(Path(p).name for p in device["plots"]) == ["latency.png", "op_breakdown.png"]


def test_table_output_names_every_column_and_the_host(full_release_copy: Path) -> None:
    result = _invoke(str(full_release_copy), "onnx:fp32", "tflite:fp32", *FAST)
    assert result.exit_code == 0, result.output
    for text in (
        "p50",
        "p99",
        "img/s",
        "peak RSS MB",
        "µs/M-MAC",
        "% peak",
        "mult-adds",
        "local:",
        "_fp32.onnx",
        "_fp32.tflite",
    ):
        assert text in result.output
    assert "_int8" not in result.output


def test_batch_and_seconds_and_threads(full_release_copy: Path) -> None:
    result = _invoke(
        str(full_release_copy),
        "onnx:fp32",
        "--batch",
        "3",
        "--seconds",
        "0.3",
        "--threads",
        "1",
        "--warmup",
        "0",
        "--json",
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["results"][0]
    assert row["batch"] == 3 and row["threads"] == 1 and row["seconds_requested"] == 0.3
    assert row["batching"].startswith("model fixed at batch 1")  # looped: still 3 images per iteration
    assert row["per_image_p50_ms"] == pytest.approx(row["latency_ms"]["p50_ms"] / 3)


def test_runtime_option_keeps_the_artifacts_it_runs(full_release_copy: Path) -> None:
    result = _invoke(str(full_release_copy), "--runtime", "litert", *FAST, "--json")
    assert result.exit_code == 0, result.output
    assert {a["format"] for a in json.loads(result.stdout)["results"]} == {"tflite"}
    assert "cannot run" in _error_line(_invoke(str(full_release_copy), "onnx:fp32", "--runtime", "litert"))


def test_unavailable_provider_is_one_line_listing_what_exists(full_release_copy: Path) -> None:
    line = _error_line(_invoke(str(full_release_copy), "onnx:fp32", "--provider", "cuda", *FAST))
    assert "cuda is not available" in line and "available: " in line and "cpu" in line
    assert Manifest.load(full_release_copy).results("latency", group="local") == {}


def test_fallback_is_recorded_when_allowed(full_release_copy: Path) -> None:
    result = _invoke(str(full_release_copy), "onnx", "--provider", "cuda", "--allow-fallback", *FAST)
    assert result.exit_code == 0, result.output
    assert "fallback from cuda (not available), ran on CPU" in " ".join(result.output.split())
    for entry in Manifest.load(full_release_copy).results("latency", group="local").values():
        assert entry["fallback"] is True and entry["fallback_from"] == ["cuda"]
        assert entry["providers"] == ["CPUExecutionProvider"] and entry["providers_requested"] == ["cuda"]


def test_a_provider_the_tflite_runtime_does_not_know_is_refused_before_running(full_release_copy: Path) -> None:
    line = _error_line(_invoke(str(full_release_copy), "--provider", "cuda", *FAST))
    assert "litert has no provider 'cuda'" in line and "shufflekit profile DIR onnx --provider cuda" in line


def test_artifact_missing_from_the_manifest(full_release_copy: Path) -> None:
    line = _error_line(_invoke(str(full_release_copy), "nope.onnx"))
    assert "no artifact matches 'nope.onnx'" in line


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--iters", "0"], "--iters must be an integer from 1"),
        (["--iters", "-5"], "--iters must be an integer from 1"),
        (["--seconds", "0"], "--seconds must be a number above 0"),
        (["--warmup", "-1"], "--warmup must be an integer from 0"),
        (["--batch", "0"], "--batch must be an integer from 1"),
        (["--threads", "0"], "--threads must be an integer from 1"),
        (["--iters", "3", "--seconds", "1"], "--iters and --seconds both given"),
        (["--min-iters", "5"], "--min-iters goes with --seconds"),
        (["--seconds", "1", "--min-iters", "0"], "--min-iters must be an integer from 1"),
    ],
)
def test_bad_counts_are_one_line_and_nothing_runs(full_release_copy: Path, args: list, expected: str) -> None:
    before = (full_release_copy / "manifest.json").read_bytes()
    result = _invoke(str(full_release_copy), *args)
    assert result.exit_code == 2 and expected in _error_line(result)
    assert (full_release_copy / "manifest.json").read_bytes() == before


def test_a_changed_artifact_is_refused(full_release_copy: Path) -> None:
    art = Manifest.load(full_release_copy).select(["tflite:fp32"])[0]
    with open(full_release_copy / art.name, "ab") as handle:
        handle.write(b"\0")
    assert "sha256 mismatch" in _error_line(_invoke(str(full_release_copy), *FAST))


def test_missing_runtime_names_the_pip_extra(full_release_copy: Path, tmp_path: Path) -> None:
    # onnxruntime is installed here; the runner process gets a stand-in package that fails to import,
    # the narrowest way to be a machine without it.
    shim = tmp_path / "shim" / "onnxruntime"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named onnxruntime')\n")
    result = _invoke(str(full_release_copy), "onnx:fp32", *FAST, env={"PYTHONPATH": str(shim.parent)})
    line = _error_line(result)
    assert result.exit_code == 2 and "onnxruntime is not installed" in line and "pip install 'shufflekit[onnx]'" in line


def test_a_batch_the_model_cannot_take(tmp_path: Path, tiny_models: dict) -> None:
    meta = ModelMeta(model="shufflenet_v2_x0_5", num_classes=10, preprocessing=Preprocessing.for_size(64))
    manifest = Manifest.new(tmp_path, meta)
    shutil.copy(tiny_models["onnx_b2"], tmp_path / "b2.onnx")
    manifest.add(
        Artifact.from_file(
            tmp_path / "b2.onnx",
            format="onnx",
            precision="fp32",
            meta=meta,
            inputs=(TensorSpec("input", (2, 3, 64, 64), "float32", "NCHW"),),
            outputs=(TensorSpec("logits", (2, 10), "float32"),),
        )
    )
    manifest.save()
    line = _error_line(_invoke(str(tmp_path), "--batch", "3", *FAST))
    assert "fixed at batch 2 and cannot take a batch of 3" in line and "--batch 2" in line
    assert _invoke(str(tmp_path), "--batch", "2", *FAST).exit_code == 0


def test_not_a_release_folder(tmp_path: Path) -> None:
    assert "has no manifest.json" in _error_line(_invoke(str(tmp_path)))


def test_categories_of_ort_and_tflite_operators() -> None:
    cat = opcategories.categorize
    assert cat("Conv", [[1, 24, 8, 8], [24, 1, 3, 3], [24]]) == opcategories.DEPTHWISE
    assert cat("Conv", [[1, 24, 8, 8], [48, 24, 1, 1], [48]]) == opcategories.CONV
    assert cat("Conv", [[1, 3, 64, 64], [24, 3, 3, 3]]) == opcategories.CONV
    assert cat("QLinearConv", [[1, 24, 8, 8], [], [], [24, 1, 3, 3]]) == opcategories.DEPTHWISE
    assert cat("DEPTHWISE_CONV_2D") == opcategories.DEPTHWISE and cat("CONV_2D") == opcategories.CONV
    assert cat("Transpose") == cat("RESHAPE") == opcategories.SHUFFLE
    assert cat("Split") == cat("STRIDED_SLICE") == cat("CONCATENATION") == opcategories.CONCAT_SPLIT
    assert cat("GlobalAveragePool") == cat("MEAN") == opcategories.POOLING
    assert cat("Gemm") == cat("FULLY_CONNECTED") == opcategories.FC
    assert cat("Add") == cat("RELU") == opcategories.ELEMENTWISE
    assert cat("SomethingNew") == opcategories.OTHER
    parts = opcategories.breakdown(
        [
            {"op_type": "Conv", "mean_ms": 3.0, "input_shapes": [[1, 8, 4, 4], [8, 8, 1, 1]]},
            {"op_type": "Transpose", "mean_ms": 1.0},
        ]
    )
    assert [(c["category"], c["share"]) for c in parts["categories"]] == [
        ("conv", 0.75),
        ("transpose/reshape/shuffle", 0.25),
    ]
    assert np.isclose(parts["total_ms"], 4.0)


def test_profile_on_a_device_environment_through_the_remote_layer(full_release_copy: Path) -> None:
    """`--device local?python=...` goes through the remote layer (push the device file and the artifact into a
    work folder, run, read the JSON) with the lean device Python: numpy<2 and tflite-runtime."""
    device_python = Path(__file__).resolve().parents[2] / ".venv-device" / "bin" / "python"
    if not device_python.exists():
        if os.environ.get("CI"):
            pytest.fail(".venv-device is missing (make test builds it)")
        pytest.skip(".venv-device is missing; `make test` builds it")
    result = _invoke(
        str(full_release_copy),
        "tflite:fp32",
        "tflite:int8",
        "onnx:fp32",
        *FAST,
        "--device",
        f"local?python={device_python}",
        "--json",
    )
    assert result.exit_code == 0, result.output
    envelope = json.loads(result.stdout)
    rows = {r["artifact"]: r for r in envelope["results"]}
    assert {r["interpreter"] for r in rows.values() if r["format"] == "tflite"} == {"tflite-runtime"}
    (report,) = envelope["report"]["devices"]
    assert report["host"]["numpy"].startswith("1.")
    recorded = Manifest.load(full_release_copy).results("latency", group=report["device"])
    assert set(recorded) == set(rows)


def test_one_device_named_twice_is_refused(full_release_copy: Path) -> None:
    line = _error_line(_invoke(str(full_release_copy), "--device", "local", "--device", "local?tmp=/tmp"))
    assert "--device names local more than once" in line


def test_xnnpack_declining_a_model_is_recorded_and_never_hidden(tmp_path: Path, tiny_models: dict) -> None:
    """A model XNNPACK takes no operator of: --provider cpu runs it on the built-in kernels and the table
    and the manifest say so; --provider xnnpack is an error naming what is available."""
    meta = ModelMeta(model="shufflenet_v2_x0_5", num_classes=3, preprocessing=Preprocessing.for_size(64))
    manifest = Manifest.new(tmp_path, meta)
    shutil.copy(tiny_models["tflite_no_xnnpack"], tmp_path / "odd.tflite")
    manifest.add(
        Artifact.from_file(
            tmp_path / "odd.tflite",
            format="tflite",
            precision="fp32",
            meta=meta,
            inputs=(TensorSpec("x", (1, 16, 16, 3), "float32", "NHWC"),),
            outputs=(TensorSpec("y", (1, 3), "float32"),),
        )
    )
    manifest.save()
    result = _invoke(str(tmp_path), *FAST)
    assert result.exit_code == 0, result.output
    assert "odd.tflite: XNNPACK declined the model, TFLite's built-in kernels ran" in " ".join(result.output.split())
    entry = Manifest.load(tmp_path).results("latency", group="local")["odd.tflite"]
    assert entry["providers"] == ["builtin"] and entry["xnnpack_declined"] and entry["fallback"] is False
    line = _error_line(_invoke(str(tmp_path), "--provider", "xnnpack", *FAST))
    assert "XNNPACK takes none of the operators of odd.tflite" in line and "available: builtin" in line
