"""validate FOLDER [ARTIFACT...] checks only the artifacts named, as profile and evaluate select them."""

from __future__ import annotations

from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main


def test_validate_checks_only_the_artifacts_named(small_release_copy):
    names = {a.key: a.name for a in Manifest.load(small_release_copy).artifacts}
    result = CliRunner().invoke(main, ["validate", str(small_release_copy), "onnx:fp32"])
    assert result.exit_code == 0, result.output
    assert set(Manifest.load(small_release_copy).results("parity")) == {names["onnx:fp32"]}
    assert names["tflite:fp32"] not in result.stdout
    result = CliRunner().invoke(main, ["validate", str(small_release_copy), "tflite", "--no-gpu-check"])
    assert result.exit_code == 0, result.output
    assert set(Manifest.load(small_release_copy).results("parity")) == set(names.values())
