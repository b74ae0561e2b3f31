"""One JSON shape for every command: the envelope on stdout with --json, on success, on a failing check
(exit 1, every result still there), on bad input (exit 2) and on click's own usage errors; --json, -q
and -v on every subcommand."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.cli.output import SCHEMA
from shufflekit.files import sha256_file

ENVELOPE_KEYS = {"schema", "shufflekit", "command", "ok", "error", "warnings", "units", "report", "results"}


def _commands(group: click.Group = main, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
        else:
            found.append((f"{prefix}{name}", command))
    return found


def _envelope(text: str) -> dict:
    data = json.loads(text)
    assert set(data) == ENVELOPE_KEYS and data["schema"] == SCHEMA, data
    assert data["units"] == {"accuracy": "percent"}
    return data


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


@pytest.mark.parametrize("name, command", _commands(), ids=[n for n, _ in _commands()])
def test_every_subcommand_takes_json_quiet_and_verbose(name, command):
    opts = {opt for param in command.params for opt in param.opts}
    assert {"--json", "-q", "--quiet", "-v", "--verbose"} <= opts, name
    assert len(_commands()) >= 15  # board build and board list included


def test_a_listing_is_the_envelope_with_one_result_per_item():
    result = CliRunner().invoke(main, ["models", "--json", "--family", "v2", "--input-size", "64"])
    assert result.exit_code == 0, result.output
    data = _envelope(result.stdout)
    assert data["command"] == "models" and data["ok"] is True and data["error"] is None
    assert data["report"] == {"input_size": {"height": 64, "width": 64}, "num_classes": 1000, "family": "v2"}
    assert {r["model"] for r in data["results"]} >= {"shufflenet_v2_x0_5", "shufflenet_v2_x2_0"}


def test_clicks_usage_error_with_json_is_an_envelope_too():
    result = CliRunner().invoke(main, ["models", "--json", "--bogus"])
    assert result.exit_code == 2
    data = _envelope(result.stdout)
    assert data["ok"] is False and data["command"] == "models" and data["results"] == []
    assert data["error"]["exit_code"] == 2 and "--bogus" in data["error"]["message"]
    assert _error_lines(result.stderr) == [f"error: {data['error']['message']}"]  # the same line as without --json


def test_a_bad_value_refused_while_parsing_is_an_envelope_with_its_hint():
    result = CliRunner().invoke(main, ["models", "--input-size", "10", "--json"])
    assert result.exit_code == 2
    data = _envelope(result.stdout)
    assert data["error"]["kind"] == "UsageError" and "--input-size" in data["error"]["message"]
    (line,) = _error_lines(result.stderr)
    assert data["error"]["message"] in line


def test_without_json_stdout_stays_empty_on_an_error(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert len(_error_lines(result.stderr)) == 1


def test_an_error_in_the_command_is_the_envelope_and_the_same_one_line(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(tmp_path), "--json"])
    assert result.exit_code == 2
    data = _envelope(result.stdout)
    assert data["command"] == "validate" and data["ok"] is False and data["report"] is None
    error = data["error"]
    assert error["kind"] == "ManifestError" and error["exit_code"] == 2
    line = f"{error['message']}; {error['hint']}" if error["hint"] else error["message"]
    assert _error_lines(result.stderr) == [f"error: {' '.join(line.split())}"]


def test_a_subgroup_command_is_named_in_full(tmp_path):
    result = CliRunner().invoke(main, ["board", "list", str(tmp_path), "--json"])
    assert result.exit_code == 2
    assert _envelope(result.stdout)["command"] == "board list"


def test_validate_results_are_named_by_artifact_and_key_with_accuracy_in_percent(small_release_copy):
    result = CliRunner().invoke(main, ["validate", str(small_release_copy), "--no-gpu-check", "--json"])
    assert result.exit_code == 0, result.output
    data = _envelope(result.stdout)
    assert data["ok"] and data["report"]["samples"] == 16
    manifest = Manifest.load(small_release_copy)
    assert [(r["artifact"], r["key"]) for r in data["results"]] == [(a.name, a.key) for a in manifest.artifacts]
    for item in data["results"]:  # float32 files agree with PyTorch on every sample: 100 percent
        assert item["metrics"]["top1"] == 100.0 and item["tolerance"]["min_top1"] == 100.0
    recorded = manifest.results("parity")  # the manifest keeps its own unit (a share)
    assert {e["metrics"]["top1"] for e in recorded.values()} == {1.0}


def test_a_failing_check_prints_every_result_with_ok_false_and_exits_1(small_release_copy: Path):
    import onnx
    from onnx import numpy_helper

    name = "shufflenet_v2_x0_5_fp32.onnx"
    model = onnx.load(str(small_release_copy / name))
    weight = next(w for w in model.graph.initializer if len(w.dims) == 4)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.05, weight.name))
    onnx.save(model, str(small_release_copy / name))
    manifest = Manifest.load(small_release_copy)  # re-recorded as a careless script would
    path = small_release_copy / name
    manifest.add(manifest.artifact(name).with_(sha256=sha256_file(path), size_bytes=path.stat().st_size))
    manifest.save()

    result = CliRunner().invoke(main, ["validate", str(small_release_copy), "--no-gpu-check", "--json"])
    assert result.exit_code == 1
    data = _envelope(result.stdout)
    assert data["ok"] is False and data["error"]["kind"] == "CheckFailed" and data["error"]["exit_code"] == 1
    verdicts = {r["artifact"]: r["passed"] for r in data["results"]}
    assert verdicts == {name: False, "shufflenet_v2_x0_5_fp32.tflite": True}
    assert _error_lines(result.stderr)[0].startswith("error: parity failed for 1 of 2 artifacts")


def test_warnings_go_into_the_envelope_and_stay_on_stderr(small_release, tmp_path):
    from PIL import Image

    image = tmp_path / "grey.png"
    Image.new("RGB", (64, 64), (128, 128, 128)).save(image)
    result = CliRunner().invoke(main, ["predict", str(small_release), str(image), "--json"])
    assert result.exit_code == 0, result.output
    data = _envelope(result.stdout)
    (warning,) = data["warnings"]  # the release carries seeded weights: its classes mean nothing
    assert "random weights" in warning and f"warning: {warning}" in result.stderr.splitlines()
    assert data["report"]["artifact"] == "shufflenet_v2_x0_5_fp32.onnx" and data["report"]["key"] == "onnx:fp32"
    assert [Path(r["image"]).name for r in data["results"]] == ["grey.png"]


def test_quiet_keeps_the_result_and_drops_progress_and_hints(small_release_copy):
    loud = CliRunner().invoke(main, ["validate", str(small_release_copy), "--no-gpu-check"])
    quiet = CliRunner().invoke(main, ["validate", str(small_release_copy), "--no-gpu-check", "-q"])
    assert loud.exit_code == quiet.exit_code == 0, quiet.output
    assert "progress: parity started" in loud.stderr
    assert quiet.stderr == "" and "parity vs PyTorch" in quiet.stdout


def test_vv_shows_the_commands_run_on_a_device_and_v_does_not():
    quiet = CliRunner().invoke(main, ["devices", "-v"])
    debug = CliRunner().invoke(main, ["devices", "-vv"])
    before = CliRunner().invoke(main, ["-vv", "devices"])  # the group's own -v keeps working
    assert quiet.exit_code == debug.exit_code == before.exit_code == 0, debug.output
    run = "DEBUG shufflekit.runtimes.remote.local: run: "
    assert run not in quiet.stderr
    assert run in debug.stderr and run in before.stderr
    line = next(line for line in debug.stderr.splitlines() if line.startswith(run))
    assert " -c " in line and "characters]" in line  # the probe script by its start and its length
