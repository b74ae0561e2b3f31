"""validate FOLDER [ARTIFACT...] checks only the artifacts named, as profile and evaluate select them."""

from __future__ import annotations

import json

from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main


def _validate(folder, *args: str) -> list[str]:
    """The artifacts one validate run checked (its envelope), after checking it recorded each of them."""
    result = CliRunner().invoke(main, ["validate", str(folder), *args, "--json"])
    assert result.exit_code == 0, result.output
    checked = [item["artifact"] for item in json.loads(result.stdout)["results"]]
    recorded = Manifest.load(folder).results("parity")
    assert all(name in recorded for name in checked)
    return checked


def test_validate_checks_only_the_artifacts_named(small_release_copy):
    # the shared fixture may carry parity results of other runs: what counts is what this run checked
    names = {a.key: a.name for a in Manifest.load(small_release_copy).artifacts}
    assert _validate(small_release_copy, "onnx:fp32") == [names["onnx:fp32"]]
    assert _validate(small_release_copy, "tflite", "--no-gpu-check") == [
        name for key, name in names.items() if key.startswith("tflite:")
    ]
    assert sorted(_validate(small_release_copy, "--no-gpu-check")) == sorted(names.values())


def test_an_unknown_selector_is_one_line_naming_what_the_folder_holds(small_release_copy):
    result = CliRunner().invoke(main, ["validate", str(small_release_copy), "onnx:int4"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "onnx:int4" in lines[0], result.stderr
