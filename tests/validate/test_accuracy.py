"""shufflekit evaluate: accuracy of PyTorch and of every artifact on labelled images, the top-1 drop gate,
what goes into the manifest, and the one-line errors (checkpoint missing or changed, unusable data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import numpy_helper

from shufflekit.artifacts import Artifact, Manifest
from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line
from shufflekit.models.checkpoints import load_checkpoint, save_checkpoint
from shufflekit.validate.accuracy import _labelled_images, evaluate_release

MODEL = "shufflenet_v2_x0_5"
FP32 = (f"{MODEL}_fp32.onnx", f"{MODEL}_fp32.tflite")


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_error_line(result) -> str:
    lines = [
        line
        for line in result.output.splitlines()
        if line.strip() and not line.startswith("WARNING") and not is_progress_line(line)
    ]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _add_swapped_classes_artifact(folder: Path) -> str:
    """A deliberately broken artifact: the fp32 ONNX file with the classifier rows of digits 0 and 1
    swapped, so every 0 reads as 1 and back (about a fifth of the images), recorded as a dynamic file."""
    manifest = Manifest.load(folder)
    parent = manifest.artifact(FP32[0])
    model = onnx.load(str(folder / parent.name))
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    for init in model.graph.initializer:
        if init.name in gemm.input[1:]:
            values = numpy_helper.to_array(init).copy()
            values[[0, 1]] = values[[1, 0]]
            init.CopyFrom(numpy_helper.from_array(values, init.name))
    path = folder / f"{MODEL}_dynamic_broken.onnx"
    onnx.save(model, str(path))
    manifest.add(
        Artifact.from_file(
            path,
            format="onnx",
            precision="dynamic",
            inputs=parent.inputs,
            outputs=parent.outputs,
            meta=parent.meta,
            parent_sha256=parent.sha256,
        )
    )
    manifest.save()
    return path.name


def test_evaluate_measures_pytorch_and_every_artifact_and_records_them(trained_release_copy):
    result = _cli("evaluate", trained_release_copy, "--data", "demo", "--limit", "120", "--json")
    assert result.exit_code == 0, result.output
    envelope = json.loads(result.stdout)
    report = envelope["report"]
    assert envelope["ok"] and report["passed"] and report["samples"] == 120 and report["data"] == "demo"
    assert report["pytorch"]["top1"] > 70.0  # the trained model, from the folder's source checkpoint
    assert {r["artifact"] for r in envelope["results"]} == set(FP32)
    for entry in envelope["results"]:  # float32 files compute what PyTorch computes
        assert entry["delta_top1"] == pytest.approx(0.0, abs=1.0) and entry["agreement"] >= 99.0
    manifest = Manifest.load(trained_release_copy)
    recorded = manifest.results("accuracy")
    assert set(recorded) == {*FP32, "pytorch"}
    assert recorded["pytorch"]["checkpoint_sha256"] == manifest.source["checkpoint_sha256"]
    for name in FP32:
        assert recorded[name]["sha256"] == manifest.artifact(name).sha256
        assert recorded[name]["samples"] == 120 and recorded[name]["limit"] == 120


def test_an_artifact_losing_more_than_max_drop_fails_with_a_table_and_validate_agrees(trained_release_copy):
    broken = _add_swapped_classes_artifact(trained_release_copy)
    result = _cli("evaluate", trained_release_copy, "--data", "demo")
    assert result.exit_code == 1, result.output
    row = next(line for line in result.output.splitlines() if broken in line)
    assert "FAIL" in row and "points" in row
    drop = -Manifest.load(trained_release_copy).results("accuracy")[broken]["delta_top1"]
    assert drop > 10.0  # about a fifth of the digits are now misread
    assert f"-{drop:.2f} points" in row
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("error: 1 of 3 artifacts lose more than 1 points") and broken in error
    for fine in FP32:
        assert "pass" in next(line for line in result.output.splitlines() if fine in line)

    assert _cli("evaluate", trained_release_copy, "--data", "demo", "--max-drop", "100").exit_code == 0

    # validate judges quantised artifacts by the accuracy measured on this very file, too
    parity = _cli("validate", trained_release_copy, "--json")
    assert parity.exit_code == 1
    judged = {r["artifact"]: r for r in json.loads(parity.stdout)["results"]}
    assert any("top-1 accuracy" in f and "below PyTorch" in f for f in judged[broken]["failures"])
    assert judged[broken]["accuracy"]["delta_top1"] == pytest.approx(-drop)
    assert all(judged[name]["passed"] for name in FP32)


def test_a_missing_source_checkpoint_is_one_line(trained_release_copy):
    manifest = Manifest.load(trained_release_copy)
    manifest.set_source(checkpoint=str(trained_release_copy / "moved-away.pt"))
    manifest.save()
    result = _cli("evaluate", trained_release_copy, "--data", "demo", "--limit", "10")
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert "missing" in line and "--checkpoint" in line


def test_a_changed_checkpoint_is_one_line(trained_release_copy, tmp_path):
    manifest = Manifest.load(trained_release_copy)
    loaded = load_checkpoint(manifest.source["checkpoint"])
    with torch.no_grad():
        next(loaded.model.parameters()).add_(0.01)
    other = tmp_path / "retrained.pt"
    save_checkpoint(other, loaded.model, loaded.meta)
    result = _cli("evaluate", trained_release_copy, "--data", "demo", "--checkpoint", other)
    assert result.exit_code == 2 and "is not what this folder was exported from" in _one_error_line(result)
    manifest.set_source(checkpoint=str(other))
    manifest.save()
    result = _cli("evaluate", trained_release_copy, "--data", "demo")
    assert result.exit_code == 2 and "is not what this folder was exported from" in _one_error_line(result)


def test_data_evaluate_cannot_use_is_one_line(trained_release, tmp_path):
    before = (trained_release / "manifest.json").read_bytes()
    unlabelled = tmp_path / "pixels.npy"
    np.save(unlabelled, np.zeros((4, 32, 32, 3), dtype=np.uint8))
    result = _cli("evaluate", trained_release, "--data", unlabelled)
    assert result.exit_code == 2 and "has no labels" in _one_error_line(result)
    (tmp_path / "pets" / "cat").mkdir(parents=True)
    Image = pytest.importorskip("PIL.Image")
    Image.new("RGB", (40, 40)).save(tmp_path / "pets" / "cat" / "a.png")
    result = _cli("evaluate", trained_release, "--data", tmp_path / "pets")
    assert result.exit_code == 2 and "classes the model does not know" in _one_error_line(result)
    for bad in (["--limit", "0"], ["--max-drop", "-1"]):
        assert _cli("evaluate", trained_release, "--data", "demo", *bad).exit_code == 2
    assert (trained_release / "manifest.json").read_bytes() == before


def test_limit_takes_a_fixed_subset_spread_over_every_class(trained_release):
    manifest = Manifest.load(trained_release)
    first = _labelled_images("demo", manifest, 60)
    again = _labelled_images("demo", manifest, 60)
    assert len(first) == 60 and list(first.items) == list(again.items)
    assert len(set(first.labels.tolist())) == 10  # not the first classes of a class-sorted folder
    report = evaluate_release(trained_release, "demo", limit=60, select=["onnx"], record=False)
    assert report.samples == 60 and len(report.results) == 1


def test_a_release_run_classifies_the_images_once_and_reuses_the_gates_predictions(trained_release_copy, monkeypatch):
    """Inside a release run (run_cache), the quantizer's gate, evaluate and the device checks share one
    set of labelled images with PyTorch's logits, and evaluate takes the gate's predictions of a file whose
    graph it judged (the quantizer writes metadata after judging): the figures equal a separate evaluate."""
    import shufflekit.runtimes as runtimes
    from shufflekit.validate import accuracy, run_cache
    from shufflekit.validate.gate import TOOLS

    folder = trained_release_copy
    broken = _add_swapped_classes_artifact(folder)
    alone = evaluate_release(folder, "demo", record=False)

    made, loaded = [], []
    real_arrays, real_load = accuracy._labelled_arrays, runtimes.load_session
    monkeypatch.setattr(accuracy, "_labelled_arrays", lambda *a: made.append(a) or real_arrays(*a))
    monkeypatch.setattr(
        runtimes,
        "load_session",
        lambda path, *a, **k: (
            loaded.append(getattr(path, "name", None) or Path(str(path)).name) or real_load(path, *a, **k)
        ),
    )
    with run_cache.shared_within_run():
        manifest = Manifest.load(folder)
        arrays = TOOLS.labelled_arrays("demo", manifest, limit=None)
        gate_logits = TOOLS.predict(folder / broken, manifest.artifact(FP32[0]), arrays.images)
        model = onnx.load(str(folder / broken))  # what the quantizer does after its gate: metadata only
        model.metadata_props.add(key="quantization", value="{}")
        onnx.save(model, str(folder / broken))
        manifest.add(
            Artifact.from_file(
                folder / broken,
                format="onnx",
                precision="dynamic",
                inputs=manifest.artifact(broken).inputs,
                outputs=manifest.artifact(broken).outputs,
                meta=manifest.meta,
                parent_sha256=manifest.artifact(FP32[0]).sha256,
            )
        )
        manifest.save()
        loaded.clear()
        shared = evaluate_release(folder, "demo", record=False)
        assert TOOLS.labelled_arrays("demo", Manifest.load(folder), limit=60).labels.shape == (60,)
    assert len(made) == 1  # one preprocessing and one PyTorch pass for the whole run (a subset: taken from it)
    assert broken not in loaded and sorted(loaded) == sorted(FP32)  # the gate's predictions were taken
    assert gate_logits is not None and gate_logits.shape == (len(arrays.labels), 10)
    assert shared.pytorch.to_dict() == alone.pytorch.to_dict()
    assert [r.to_dict() for r in shared.results] == [r.to_dict() for r in alone.results]
    assert not run_cache.active()  # outside the run, nothing is kept


def test_labelled_arrays_made_while_the_export_converts_are_the_ones_the_stages_ask_for(tmp_path, monkeypatch):
    """A release makes PyTorch's logits on the labelled images during its export (``export_model``'s
    ``meanwhile``, from the model in hand); the quantizer's gate and evaluate, which ask by the folder's
    manifest afterwards, must find them rather than make them again, and they must be what a run of
    their own makes."""
    from shufflekit.export.pipeline import ExportOptions, export_model
    from shufflekit.validate import accuracy, run_cache

    folder = tmp_path / "release"
    made, sources = [], []
    real = accuracy._labelled_arrays
    monkeypatch.setattr(accuracy, "_labelled_arrays", lambda *a: made.append(a) or real(*a))
    with run_cache.shared_within_run():
        export_model(
            folder,
            model=MODEL,
            num_classes=10,
            input_size=64,
            options=ExportOptions(formats=("onnx",)),
            meanwhile=lambda source: sources.append(source) or accuracy.warm_labelled_arrays("demo", source),
        )
        manifest = Manifest.load(folder)
        warmed = accuracy.labelled_arrays("demo", manifest)
        subset = accuracy.labelled_arrays("demo", manifest, limit=40)
    assert not made  # found by the manifest's key: neither the whole set nor a subset was made again
    alone = accuracy.labelled_arrays("demo", manifest)  # outside a run: made afresh
    assert made and subset.labels.shape == (40,)
    np.testing.assert_array_equal(warmed.labels, alone.labels)
    np.testing.assert_allclose(warmed.pytorch_logits, alone.pytorch_logits, rtol=1e-5, atol=1e-5)

    monkeypatch.setattr(run_cache, "MAX_KEPT_BYTES", 1)  # a set too large to keep for the run
    monkeypatch.setattr(accuracy, "_classified", lambda *a: pytest.fail("classified only to be dropped"))
    with run_cache.shared_within_run():
        accuracy.warm_labelled_arrays("demo", sources[0])
