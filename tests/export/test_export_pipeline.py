"""The release folder: what the manifest records, lineage, the parity reference, and atomic re-export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shufflekit.artifacts import Artifact, Manifest
from shufflekit.errors import ExportError, ManifestError
from shufflekit.export import ExportOptions, export_model
from shufflekit.export.onnx import read_metadata
from shufflekit.export.reference import Reference
from shufflekit.files import PARTIAL_GLOB, sha256_file
from shufflekit.folder import STAGING_PREFIX
from shufflekit.metadata import InputSize
from shufflekit.records import Latency

SMALL_V2, SMALL_SIZE, SMALL_CLASSES = "shufflenet_v2_x0_5", 64, 10  # as conftest.py
ONNX_ONLY = ExportOptions(formats=("onnx",))


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".manifest.lock"}


def test_manifest_records_every_artifact_with_lineage_tools_and_reference(small_release):
    manifest = Manifest.load(small_release)
    onnx, tflite = manifest.select(["onnx:fp32"])[0], manifest.select(["tflite:fp32"])[0]
    assert onnx.name == "shufflenet_v2_x0_5_fp32.onnx" and tflite.name == "shufflenet_v2_x0_5_fp32.tflite"
    for artifact in (onnx, tflite):
        path = artifact.verify(small_release)
        assert artifact.size_bytes == path.stat().st_size and artifact.sha256 == sha256_file(path)
        assert artifact.meta.model == SMALL_V2 and artifact.meta.input_size == InputSize.square(SMALL_SIZE)
        assert artifact.outputs[0].shape == (1, SMALL_CLASSES)
    assert onnx.input.layout == "NCHW" and onnx.input.shape == (1, 3, SMALL_SIZE, SMALL_SIZE)
    assert tflite.input.layout == "NHWC" and tflite.input.shape == (1, SMALL_SIZE, SMALL_SIZE, 3)
    assert tflite.parent_sha256 == onnx.sha256 and onnx.parent_sha256 is None  # seeded: no checkpoint
    assert {"torch", "onnx", "onnxslim", "shufflekit"} <= set(onnx.tools)
    assert {"onnx2tf", "tensorflow"} <= set(tflite.tools)
    assert onnx.options["opset"] == 17 and onnx.options["exporter"] == "torchscript"
    assert manifest.source == {"kind": "seed", "seed": 0, "note": "random weights, BatchNorm made non-trivial"}
    record = manifest.reference
    reference = Reference.load(small_release / record["file"], sha256=record["sha256"])
    assert record["samples"] == reference.samples == 16 and record["layout"] == "NCHW"
    assert reference.inputs.shape == (16, 3, SMALL_SIZE, SMALL_SIZE) and reference.logits.shape == (16, SMALL_CLASSES)
    # Inputs that exercise the model: image-like, varied, not constant; outputs that differ per image.
    assert reference.inputs.std() > 0.5 and len(np.unique(reference.inputs)) > 10_000
    assert len(set(reference.logits.argmax(1))) >= 4
    assert sorted(p.name for p in small_release.iterdir()) == sorted(
        [".manifest.lock", "manifest.json", "reference.npz", onnx.name, tflite.name]
    )


def test_seeded_model_has_non_trivial_batchnorm():
    import torch

    from shufflekit.export.source import seeded_model

    model = seeded_model(SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, seed=0)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.running_mean.abs().max() > 1e-3 and (m.running_var - 1).abs().max() > 1e-2 for m in norms)
    assert all((m.weight - 1).abs().max() > 1e-2 and m.bias.abs().max() > 1e-2 for m in norms)
    again = seeded_model(SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_export_from_checkpoint_records_its_sha256(tmp_path):
    from shufflekit.export.source import seeded_model
    from shufflekit.metadata import ModelMeta, Preprocessing
    from shufflekit.models.checkpoints import save_checkpoint

    meta = ModelMeta(
        model=SMALL_V2,
        num_classes=SMALL_CLASSES,
        preprocessing=Preprocessing.for_size(SMALL_SIZE),
        labels=tuple(f"class-{i}" for i in range(SMALL_CLASSES)),
    )
    checkpoint = tmp_path / "ckpt.pt"
    save_checkpoint(checkpoint, seeded_model(SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, seed=5), meta)
    out = tmp_path / "release"
    export_model(out, model=SMALL_V2, checkpoint=checkpoint, options=ONNX_ONLY)  # size and classes from the file
    manifest = Manifest.load(out)
    digest = sha256_file(checkpoint)
    assert manifest.source["kind"] == "checkpoint" and manifest.source["checkpoint_sha256"] == digest
    (onnx,) = manifest.artifacts
    assert onnx.parent_sha256 == digest and onnx.meta.labels == meta.labels
    props = read_metadata(out / onnx.name)
    assert props["source_checkpoint_sha256"] == digest and json.loads(props["labels"])[0] == "class-0"


def test_a_failed_re_export_leaves_the_previous_release_untouched(tmp_path, monkeypatch):
    out = tmp_path / "release"
    export_model(out, model=SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, options=ONNX_ONLY)
    before = _snapshot(out)

    import shufflekit.export.tflite as tflite

    def failing(*args, **kwargs):
        raise ExportError("simulated converter crash")

    monkeypatch.setattr(tflite, "convert_to_tflite", failing)
    with pytest.raises(ExportError, match="simulated"):
        export_model(
            out, model=SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, options=ExportOptions(seed=1)
        )  # new weights, so every file would change
    assert _snapshot(out) == before
    assert not list(out.glob(f"{STAGING_PREFIX}*")) and not list(out.glob(PARTIAL_GLOB))


def test_re_export_keeps_valid_children_and_drops_orphans(tmp_path):
    out = tmp_path / "release"
    export_model(out, model=SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, options=ONNX_ONLY)
    manifest = Manifest.load(out)
    (onnx,) = manifest.artifacts
    child_path = out / "child_int8.onnx"  # stands in for a quantized artifact made from the ONNX file
    child_path.write_bytes(b"quantized bytes")
    manifest.add(
        Artifact.from_file(
            child_path,
            format="onnx",
            precision="int8",
            inputs=onnx.inputs,
            outputs=onnx.outputs,
            meta=onnx.meta,
            parent_sha256=onnx.sha256,
        )
    )
    manifest.record(Latency(latency_ms={"mean_ms": 1.0}), onnx, group="local")
    manifest.save()

    same = export_model(out, model=SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, options=ONNX_ONLY)
    assert same.artifacts[0].sha256 == onnx.sha256  # the export is deterministic
    assert same.kept == ("child_int8.onnx",) and child_path.exists()
    assert Manifest.load(out).results(Latency, group="local")  # still about the same bytes

    other = export_model(
        out,
        model=SMALL_V2,
        num_classes=SMALL_CLASSES,
        input_size=SMALL_SIZE,
        options=ExportOptions(formats=("onnx",), seed=1),
    )
    assert other.dropped == ("child_int8.onnx",) and not child_path.exists()
    manifest = Manifest.load(out)
    assert [a.name for a in manifest.artifacts] == [onnx.name]
    assert manifest.results(Latency, group="local") == {}  # measured on the old file: stale, not reported
    assert manifest.source["seed"] == 1


def test_an_interrupted_export_is_cleaned_by_the_next(tmp_path):
    out = tmp_path / "release"
    leftover = out / f"{STAGING_PREFIX}killed"
    leftover.mkdir(parents=True)
    (leftover / "half.onnx").write_bytes(b"half")
    export_model(out, model=SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, options=ONNX_ONLY)
    assert not leftover.exists()


def test_an_unreadable_manifest_in_the_output_folder_is_refused_untouched(tmp_path):
    out = tmp_path / "release"
    out.mkdir()
    (out / "manifest.json").write_text("{ this is not json")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ManifestError, match="cannot read"):
        export_model(out, model=SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE, options=ONNX_ONLY)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt"]
    assert (out / "manifest.json").read_text() == "{ this is not json"
