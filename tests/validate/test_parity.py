"""Parity of release folders against PyTorch: passing exports, tampered artifacts, bad folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line
from shufflekit.export.reference import Reference
from shufflekit.files import sha256_file
from shufflekit.validate.metrics import compare, judge
from shufflekit.validate.parity import validate_release
from shufflekit.validate.tolerances import tolerance_for

SMALL_V2, SMALL_V1, SMALL_SIZE, SMALL_CLASSES = "shufflenet_v2_x0_5", "shufflenet_v1_g3_x0_5", 64, 10  # as conftest.py


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip() and not is_progress_line(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _rehash(folder: Path, name: str) -> None:
    """What a careless release script does: change a file and re-record its hash."""
    manifest = Manifest.load(folder)
    artifact = manifest.artifact(name)
    path = folder / name
    manifest.add(artifact.with_(sha256=sha256_file(path), size_bytes=path.stat().st_size))
    manifest.save()


def test_v2_release_passes_and_results_are_recorded(small_release_copy):
    result = _cli("validate", str(small_release_copy))
    assert result.exit_code == 0, result.output
    assert result.output.count("pass") == 2 and "onnxruntime" in result.output and "litert" in result.output
    parity = Manifest.load(small_release_copy).results("parity")
    assert set(parity) == {"shufflenet_v2_x0_5_fp32.onnx", "shufflenet_v2_x0_5_fp32.tflite"}
    for entry in parity.values():
        assert entry["passed"] and entry["samples"] == 16 and entry["metrics"]["max_rel"] < 1e-4
        assert entry["metrics"]["top1"] == 1.0 and entry["reference"] == "stored reference.npz"
    # and the GPU-delegate line of its one TFLite file (tests/validate/test_gpu_compat.py has the details)
    assert "shufflenet_v2_x0_5_fp32.tflite: GPU delegate: all " in result.output
    gpu = Manifest.load(small_release_copy).results("gpu_compatibility")
    assert gpu["shufflenet_v2_x0_5_fp32.tflite"]["compatible"]


@pytest.mark.slow
def test_v1_exported_by_the_cli_to_onnx_and_tflite_passes(tmp_path):
    out = tmp_path / "v1"
    exported = _cli(
        "export",
        "--model",
        SMALL_V1,
        "--num-classes",
        str(SMALL_CLASSES),
        "--input-size",
        str(SMALL_SIZE),
        "--out",
        str(out),
    )
    assert exported.exit_code == 0, exported.output
    assert "shufflenet_v1_g3_x0_5_fp32.tflite" in exported.output
    result = _cli("validate", str(out), "--json")
    assert result.exit_code == 0, result.output
    envelope = json.loads(result.stdout)
    assert envelope["ok"] and {r["key"] for r in envelope["results"]} == {"onnx:fp32", "tflite:fp32"}


@pytest.mark.slow
def test_a_megvii_1_0x_checkpoint_exports_to_onnx_and_tflite_and_passes(tmp_path):
    """Megvii's published v2 1.0x layout (its own keys, 'module.' prefixes, no classifier bias) exported
    as it is, through the *_megvii variant, with the even/odd split converted by onnx2tf."""
    import torch

    from shufflekit.models import get_model

    model = get_model("shufflenet_v2_x1_0_megvii", num_classes=SMALL_CLASSES)
    with torch.no_grad():  # trained-like BatchNorm statistics, so a layout mistake cannot hide
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    checkpoint = tmp_path / "ShuffleNetV2.1.0x.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, checkpoint)
    out = tmp_path / "megvii"
    # no --model: the variant is the one the file holds
    exported = _cli("export", "--checkpoint", str(checkpoint), "--input-size", str(SMALL_SIZE), "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert Manifest.load(out).meta.model == "shufflenet_v2_x1_0_megvii"
    result = _cli("validate", str(out), "--checkpoint", str(checkpoint), "--json")
    assert result.exit_code == 0, result.output
    assert {r["key"] for r in json.loads(result.stdout)["results"]} == {"onnx:fp32", "tflite:fp32"}


@pytest.mark.slow
def test_nchw_tflite_with_a_fixed_batch_of_2_passes(tmp_path):
    out = tmp_path / "nchw"
    exported = _cli(
        "export",
        "--model",
        SMALL_V2,
        "--num-classes",
        str(SMALL_CLASSES),
        "--input-size",
        str(SMALL_SIZE),
        "--batch",
        "2",
        "--layout",
        "nchw",
        "--out",
        str(out),
    )
    assert exported.exit_code == 0, exported.output
    manifest = Manifest.load(out)
    tflite, onnx = manifest.select(["tflite"])[0], manifest.select(["onnx"])[0]
    assert tflite.input.layout == "NCHW" and tflite.input.shape == (2, 3, SMALL_SIZE, SMALL_SIZE)
    assert onnx.input.shape == (2, 3, SMALL_SIZE, SMALL_SIZE)
    report = validate_release(out, samples=5)  # not a multiple of 2: the last batch is filled up
    assert report.passed and report.samples == 5, report.to_dict()


def test_dynamic_batch_onnx_passes_and_dynamic_tflite_is_refused(tmp_path):
    out = tmp_path / "dynamic"
    refused = _cli(
        "export", "--model", SMALL_V2, "--input-size", str(SMALL_SIZE), "--batch", "dynamic", "--out", str(out)
    )
    assert refused.exit_code == 2 and "fixed batch" in _one_error_line(refused) and not out.exists()
    exported = _cli(
        "export",
        "--model",
        SMALL_V2,
        "--num-classes",
        str(SMALL_CLASSES),
        "--input-size",
        str(SMALL_SIZE),
        "--batch",
        "dynamic",
        "--formats",
        "onnx",
        "--out",
        str(out),
    )
    assert exported.exit_code == 0, exported.output
    (onnx,) = Manifest.load(out).artifacts
    assert onnx.input.shape == ("batch", 3, SMALL_SIZE, SMALL_SIZE)
    assert validate_release(out).passed


def test_changed_bytes_are_refused_with_one_line(small_release_copy):
    path = small_release_copy / "shufflenet_v2_x0_5_fp32.tflite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = _cli("validate", str(small_release_copy))
    assert result.exit_code == 2
    assert "shufflenet_v2_x0_5_fp32.tflite was changed after it was made (sha256 mismatch)" in _one_error_line(result)


def test_wrong_weights_fail_parity_with_a_table_that_says_by_how_much(small_release_copy):
    import onnx
    from onnx import numpy_helper

    name = "shufflenet_v2_x0_5_fp32.onnx"
    model = onnx.load(str(small_release_copy / name))
    weight = next(w for w in model.graph.initializer if len(w.dims) == 4)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.05, weight.name))
    onnx.save(model, str(small_release_copy / name))
    _rehash(small_release_copy, name)

    result = _cli("validate", str(small_release_copy))
    assert result.exit_code == 1
    row = next(line for line in result.output.splitlines() if name in line and "FAIL" in line)
    assert "max rel err" in row and "x)" in row
    assert "tflite" in result.output and "pass" in result.output  # the other artifact is still judged
    assert result.output.strip().splitlines()[-1].startswith("error: parity failed for 1 of 2 artifacts")
    parity = Manifest.load(small_release_copy).results("parity")
    assert parity[name]["passed"] is False and parity["shufflenet_v2_x0_5_fp32.tflite"]["passed"] is True


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5_fp32.onnx", "shufflenet_v2_x0_5_fp32.tflite"])
def test_truncated_artifact_is_one_line(small_release_copy, name):
    path = small_release_copy / name
    path.write_bytes(path.read_bytes()[:5000])
    _rehash(small_release_copy, name)  # hashed after truncation: only loading can tell
    result = _cli("validate", str(small_release_copy))
    assert result.exit_code == 2
    assert name in _one_error_line(result)


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: "{ not json",
        lambda text: json.dumps({"schema": "something else"}),
        lambda text: text.replace('"artifacts": [', '"artifacts": [{"name": 5}, ', 1),
        lambda text: text.replace('"format": "onnx"', '"format": "coreml"', 1),
        lambda text: text.replace('"reference": {', '"reference": {"file": 3, "x": {', 1),
    ],
)
def test_manifest_edited_into_nonsense_is_one_line(small_release_copy, damage):
    path = small_release_copy / "manifest.json"
    path.write_text(damage(path.read_text()))
    result = _cli("validate", str(small_release_copy))
    assert result.exit_code == 2
    assert "manifest.json" in _one_error_line(result)


def test_changed_reference_is_refused(small_release_copy):
    path = small_release_copy / "reference.npz"
    reference = Reference.load(path)
    Reference(reference.inputs, reference.logits + 1, reference.seed).save(path)
    result = _cli("validate", str(small_release_copy))
    assert result.exit_code == 2 and "reference.npz was changed after export" in _one_error_line(result)


def test_missing_folder_and_missing_artifact(tmp_path, small_release_copy):
    assert _cli("validate", str(tmp_path / "nope")).exit_code == 2
    (small_release_copy / "shufflenet_v2_x0_5_fp32.onnx").unlink()
    result = _cli("validate", str(small_release_copy))
    assert result.exit_code == 2 and "missing" in _one_error_line(result)


def test_fewer_samples_use_the_stored_head_more_are_recomputed_from_the_seed(small_release_copy):
    few = validate_release(small_release_copy, samples=4, record=False)
    assert few.samples == 4 and few.passed and few.reference == "stored reference.npz"
    more = validate_release(small_release_copy, samples=20, select=["onnx"], record=False)
    assert more.samples == 20 and more.passed and more.reference == "recomputed from seed"
    assert _cli("validate", str(small_release_copy), "--samples", "0").exit_code == 2


def test_checkpoint_must_be_the_one_exported(tmp_path):
    from shufflekit.export import ExportOptions, export_model
    from shufflekit.export.source import seeded_model
    from shufflekit.metadata import ModelMeta, Preprocessing
    from shufflekit.models.checkpoints import save_checkpoint

    meta = ModelMeta(model=SMALL_V2, num_classes=SMALL_CLASSES, preprocessing=Preprocessing.for_size(SMALL_SIZE))
    paths = []
    for seed in (3, 4):
        paths.append(tmp_path / f"seed{seed}.pt")
        save_checkpoint(
            paths[-1], seeded_model(SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, seed=seed), meta
        )
    out = tmp_path / "release"
    export_model(out, model=SMALL_V2, checkpoint=paths[0], options=ExportOptions(formats=("onnx",)))
    good = _cli("validate", str(out), "--checkpoint", str(paths[0]))
    assert good.exit_code == 0, good.output
    assert "recomputed from checkpoint seed3.pt" in good.output
    bad = _cli("validate", str(out), "--checkpoint", str(paths[1]))
    assert bad.exit_code == 2 and "is not what this folder was exported from" in _one_error_line(bad)


def test_the_reference_catches_layout_and_batchnorm_mistakes(small_release):
    """The reference inputs are image-like and BatchNorm is far from identity, so the usual mistakes
    fail the fp32 limits by a wide margin instead of hiding."""
    import torch

    from shufflekit.export.source import seeded_model
    from shufflekit.runtimes import load_session

    manifest = Manifest.load(small_release)
    reference = Reference.load(small_release / "reference.npz")
    fp32 = tolerance_for("tflite", "fp32")
    session = load_session(manifest.select(["tflite"])[0], small_release)
    wrong = []
    for image in reference.inputs:  # NCHW bytes fed as NHWC without a transpose
        (name,) = session.prepare(image[None]).keys()
        wrong.append(session.run({name: image.reshape(1, SMALL_SIZE, SMALL_SIZE, 3)})[0])
    session.close()
    assert judge(compare(reference.logits, np.concatenate(wrong)), fp32)

    model = seeded_model(SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, seed=0)
    for module in model.modules():  # BatchNorm ignored: identity statistics and affine
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_parameters()
    with torch.no_grad():
        no_bn = model(torch.from_numpy(reference.inputs)).numpy()
    assert judge(compare(reference.logits, no_bn), fp32)
    swapped = reference.inputs[:, ::-1].copy()  # BGR instead of RGB
    with torch.no_grad():
        bgr = seeded_model(SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, seed=0)(
            torch.from_numpy(swapped)
        )
    assert judge(compare(reference.logits, bgr.numpy()), fp32)
