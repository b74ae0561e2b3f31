"""Typed records: one class per manifest kind, strict from_dict, a registry that refuses duplicates, the
manifest filing and returning typed records (the old dict form checked the same way), and a version 1
folder read and upgraded."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from shufflekit import records
from shufflekit.artifacts import Manifest
from shufflekit.errors import ManifestError
from shufflekit.records import Accuracy, DeviceFacts, Latency, ProfileFailures, Record, ReleaseNotes, register, spec

V1 = Path(__file__).parent / "fixtures" / "manifest_v1.json"  # written by the version 1 code (export + records)


@pytest.fixture()
def v1_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "v1"
    folder.mkdir()
    shutil.copy(V1, folder / "manifest.json")
    return folder


def test_every_kind_round_trips_through_its_dict(v1_folder: Path) -> None:
    manifest = Manifest.load(v1_folder)
    for cls in records.registered():
        table = manifest.results(cls, group="local" if cls.grouped else None, fresh_only=False)
        for record in table.values():
            assert type(record).from_dict(record.to_dict()) == record
    assert set(records.kinds()) >= {
        "latency",
        "op_profile",
        "device_facts",
        "parity",
        "accuracy",
        "device_parity",
        "device_accuracy",
        "release_stages",
        "release",
        "latency_times",
    }


@pytest.mark.parametrize(
    ("cls", "data", "field"),
    [
        (Accuracy, {"name": "a", "key": "onnx:fp32", "runtime": "x", "top1": 120.0, "samples": 3}, "accuracy.top1"),
        (Accuracy, {"name": "a", "key": "onnx:fp32", "runtime": "x", "top1": "80", "samples": 3}, "accuracy.top1"),
        (Accuracy, {"name": "a", "key": "onnx:fp32", "runtime": "x", "top1": 80.0}, "accuracy.samples"),
        (Latency, {"latency_ms": {"p50_ms": -1.0}}, "latency.latency_ms.p50_ms"),
        (Latency, {"latency_ms": {"p50_ms": 1.0}, "batch": True}, "latency.batch"),
        (DeviceFacts, {"logical_cores": 0}, "device_facts.logical_cores"),
        (ProfileFailures, {"devices": {"pi": 3}}, "release.devices.pi"),
    ],
)
def test_from_dict_refuses_a_wrong_field_in_one_line_naming_it(cls: type[Record], data: dict, field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        cls.from_dict(data, where=cls.kind)
    line = caught.value.one_line()
    assert "\n" not in line and f"field {field}" in line


def test_unknown_fields_are_kept_in_extra_and_written_back() -> None:
    record = Latency.from_dict({"latency_ms": {"p50_ms": 1.0}, "xnnpack_declined": True})
    assert record.extra == {"xnnpack_declined": True} and record.to_dict()["xnnpack_declined"] is True


def test_a_kind_registered_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="registered twice"):

        @register
        @dataclass(frozen=True, kw_only=True)
        class OtherLatency(Record):
            kind: ClassVar[str] = "latency"
            grouped: ClassVar[bool] = True
            ms: float = spec(records.MS)


def test_the_manifest_files_and_returns_typed_records(small_release_copy: Path) -> None:
    manifest = Manifest.load(small_release_copy)
    onnx = manifest.artifacts[0]
    manifest.record(Latency(latency_ms={"p50_ms": 2.0}, batch=1), onnx, group="local")
    manifest.set_device_facts("local", DeviceFacts(logical_cores=2, cpu_model="Test"))
    manifest.record(ReleaseNotes(lines=("a note",), measured_at=""), "notes")
    manifest.save()
    again = Manifest.load(small_release_copy)
    (latency,) = again.results(Latency, group="local").values()
    assert isinstance(latency, Latency) and latency.sha256 == onnx.sha256 and latency.measured_at
    assert again.device_facts("local") == DeviceFacts(logical_cores=2, cpu_model="Test")
    assert again.results(ReleaseNotes)["notes"].lines == ("a note",)
    assert again.group_info("latency", "local")["logical_cores"] == 2  # the transition form reads the same


def test_the_old_dict_form_is_checked_like_the_typed_one(small_release_copy: Path) -> None:
    manifest = Manifest.load(small_release_copy)
    onnx = manifest.artifacts[0]
    manifest.record("latency", onnx, {"latency_ms": {"p50_ms": 2.0}}, group="local")
    assert manifest.results("latency", group="local")[onnx.name]["latency_ms"] == {"p50_ms": 2.0}
    with pytest.raises(ManifestError, match="field latency"):
        manifest.record("latency", onnx, {"ms": 1.0}, group="local")
    with pytest.raises(ManifestError, match="unknown result kind 'latncy'"):
        manifest.record("latncy", onnx, {"latency_ms": {}}, group="local")
    with pytest.raises(ManifestError, match="field device_facts.local.logical_cores"):
        manifest.set_group_info("latency", "local", {"logical_cores": "two"})


def test_a_version_1_folder_is_read_upgraded_and_saved_as_version_2(v1_folder: Path) -> None:
    assert json.loads(V1.read_text())["schema"] == "shufflekit.manifest/1"
    manifest = Manifest.load(v1_folder)
    facts = manifest.device_facts("local")
    assert facts is not None and facts.logical_cores == 2 and "cpu_count" not in facts.extra  # the probe's old name
    onnx = manifest.artifacts[0]
    accuracy = manifest.results(Accuracy)
    assert accuracy[onnx.name].delta_top1 == -1.0 and "top1_delta" not in accuracy[onnx.name].extra
    assert manifest.results(Latency, group="local")[onnx.name].per_image_p50_ms == 1.4
    manifest.save()
    data = json.loads((v1_folder / "manifest.json").read_text())
    assert data["schema"] == records.SCHEMA == "shufflekit.manifest/2"
    assert "latency_groups" not in data["results"] and data["results"]["device_facts"]["local"]["logical_cores"] == 2
    assert Manifest.load(v1_folder).to_dict()["results"] == data["results"]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda a: a["inputs"][0].update(dtype="int8"), "inputs[0].dtype: a fp32 file takes float32"),
        (lambda a: a["inputs"][0].update(shape=[1, 3, 128, 128], dtype="int8"), "inputs[0].dtype: a fp32 file takes"),
        (lambda a: a["inputs"][0].update(shape={"a": 1}), "inputs[0].shape"),
        (lambda a: a["inputs"][0].update(shape=[1, 3, 0, 64]), "inputs[0].shape[2]"),
        (lambda a: a["inputs"][0].update(dtype="float128"), "inputs[0].dtype"),
        (lambda a: a["inputs"][0].update(layout="CHW"), "inputs[0].layout"),
        (
            lambda a: a["outputs"][0].update(quantization={"scale": 0.0, "zero_point": 0}),
            "outputs[0].quantization.scale",
        ),
        (
            lambda a: a["outputs"][0].update(quantization={"scale": 0.1, "zero_point": 1.5}),
            "outputs[0].quantization.zero_point",
        ),
        (lambda a: a.update(sha256="abc"), "sha256"),
        (lambda a: a.update(size_bytes=-1), "size_bytes"),
    ],
)
def test_an_edited_artifact_is_refused_naming_the_field(small_release_copy: Path, edit, field: str) -> None:
    path = small_release_copy / "manifest.json"
    data = json.loads(path.read_text())
    edit(data["artifacts"][0])
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError) as caught:
        Manifest.load(small_release_copy)
    line = caught.value.one_line()
    assert "\n" not in line and "manifest.json" in line and field in line
