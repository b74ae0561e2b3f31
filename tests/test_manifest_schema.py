"""The published JSON Schema (schemas/manifest.schema.json) is the one the record classes generate, and
it agrees with the loader: the folders the tests make validate (tests/conftest.py checks every one after
each test), and the edits the loader refuses, the schema refuses too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shufflekit.artifacts import manifest_schema, schema_text

SCHEMA_FILE = Path(__file__).parent.parent / "schemas" / "manifest.schema.json"


def test_the_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), (
        "regenerate it: PYTHONPATH=. python -m shufflekit.artifacts > schemas/manifest.schema.json"
    )


def test_the_schema_is_valid_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(manifest_schema())


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["artifacts"][0]["inputs"][0].update(dtype="int8"),
        lambda d: d["artifacts"][0]["inputs"][0].update(shape={"a": 1}),
        lambda d: d["artifacts"][0].update(format="coreml"),
        lambda d: d["results"].update(latncy={}),
        lambda d: d["results"].setdefault("latency", {}).update(local={"x.onnx": {"ms": 1.0}}),
    ],
)
def test_what_the_loader_refuses_the_schema_refuses(small_release: Path, edit) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = json.loads((small_release / "manifest.json").read_text())
    validator = jsonschema.Draft202012Validator(manifest_schema())
    assert not list(validator.iter_errors(data))
    edit(data)
    assert list(validator.iter_errors(data))
