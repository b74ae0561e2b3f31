"""A format added in one place gets the whole pipeline: this test registers a toy format (a converter
and a runtime for it) here only, and export, validate and the report take it with no other module
changed. The toy file is the ONNX file gzip-compressed; its runtime unpacks it and runs ONNX Runtime."""

from __future__ import annotations

import gzip
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from shufflekit import formats
from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.errors import ExportError
from shufflekit.export import ExportOptions, converters, export_model
from shufflekit.export.conversion import ConversionRequest, Converted
from shufflekit.records import Parity
from shufflekit.runtimes import base

SMALL_V2, SMALL_SIZE, SMALL_CLASSES = "shufflenet_v2_x0_5", 64, 10  # as conftest.py


def _convert(request: ConversionRequest) -> Converted:
    with open(request.onnx, "rb") as src, gzip.open(request.out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return Converted(
        inputs=request.onnx_inputs, outputs=request.onnx_outputs, tools=("onnx",), options={"compression": "gzip"}
    )


_UNPACKED: list[Path] = []


def _open(path: Path, options: base.RuntimeOptions, layout: str | None) -> base.Session:
    unpacked = Path(tempfile.mkdtemp(prefix="toy-")) / "model.onnx"
    _UNPACKED.append(unpacked.parent)
    with gzip.open(path, "rb") as src, open(unpacked, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return base.open_with_runner("onnxruntime", unpacked, options, layout)


@pytest.fixture
def toy_format() -> Iterator[formats.Format]:
    toy = formats.Format(
        "toy",
        ".onnx.gz",
        runtime="toyrt",
        precisions=("fp32",),
        marker="^",
        describe="gzip-compressed ONNX (a test format)",
    )
    runtime = base.Runtime(name="toyrt", formats=("toy",), extra="onnx", open=_open, describe="unpacks, runs ORT")
    with formats.registered(toy), converters.registered_converter("toy", _convert), base.registered_runtime(runtime):
        yield toy
    for folder in _UNPACKED:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_format_registered_in_a_test_is_exported_validated_and_reported(toy_format, tmp_path):
    out = tmp_path / "release"
    cli = CliRunner()
    exported = cli.invoke(
        main,
        [
            "export",
            "--model",
            SMALL_V2,
            "--num-classes",
            str(SMALL_CLASSES),
            "--input-size",
            str(SMALL_SIZE),
            "--formats",
            "onnx,toy",
            "--out",
            str(out),
        ],
    )
    assert exported.exit_code == 0, exported.output
    manifest = Manifest.load(out)
    toy = next(a for a in manifest.artifacts if a.format == "toy")
    assert toy.name.endswith(".onnx.gz") and toy.options["compression"] == "gzip"
    assert toy.parent_sha256 == next(a for a in manifest.artifacts if a.format == "onnx").sha256
    assert toy.input.shape == (1, 3, SMALL_SIZE, SMALL_SIZE) and toy.input.layout == "NCHW"

    validated = cli.invoke(main, ["validate", str(out)])
    assert validated.exit_code == 0, validated.output
    parity = Manifest.load(out).results(Parity)[toy.name]
    assert parity.passed and parity.runtime == "onnxruntime" and parity.key == "toy:fp32"
    assert parity.metrics is not None and parity.metrics["max_rel"] <= formats.tolerance_for("toy", "fp32").max_rel

    reported = cli.invoke(main, ["report", str(out)])
    assert reported.exit_code == 0, reported.output
    assert toy.name in (out / "README.md").read_text() and toy.name in (out / "report.html").read_text()


def _failing_convert(request: ConversionRequest) -> Converted:
    request.out.write_bytes(b"half a file")  # a converter that dies mid-write
    raise ExportError("toy conversion failed")


def test_a_failed_export_into_a_new_folder_leaves_no_folder(tmp_path):
    """A conversion that fails once the folder was made: the folder the export made is gone again."""
    broken = formats.Format("brokentoy", ".broken", runtime="none", precisions=("fp32",), describe="always fails")
    out = tmp_path / "new" / "release"
    out.parent.mkdir()
    with formats.registered(broken), converters.registered_converter("brokentoy", _failing_convert):
        with pytest.raises(ExportError, match="toy conversion failed"):
            export_model(
                out,
                model=SMALL_V2,
                num_classes=SMALL_CLASSES,
                input_size=SMALL_SIZE,
                options=ExportOptions(formats=("onnx", "brokentoy")),
            )
    assert list(out.parent.iterdir()) == []
