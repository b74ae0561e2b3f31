"""`shufflekit export` bad input: one line, exit 2, nothing written."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip() and not is_progress_line(line)]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "shufflenet_v3"], "unknown model 'shufflenet_v3'"),
        (["--model", "shufflenet_v2_x0_5", "--checkpoint", "missing.pt"], "checkpoint missing.pt does not exist"),
        (["--model", "shufflenet_v2_x0_5", "--input-size", "640x20"], "has a side below 32 px"),
        (
            ["--model", "shufflenet_v2_x0_5", "--batch", "zero"],
            "batch 'zero' is neither a positive integer nor 'dynamic'",
        ),
        (["--model", "shufflenet_v2_x0_5", "--formats", "onnx,coreml"], "unknown format coreml"),
        (["--model", "shufflenet_v2_x0_5", "--num-classes", "0"], "--num-classes must be an integer from 1 to 100,000"),
        ([], "no model to export"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", *args, "--out", "release"])
    assert message in _one_error_line(result)
    assert list(tmp_path.iterdir()) == []


def test_output_folder_that_is_a_file(tmp_path):
    target = tmp_path / "release"
    target.write_text("not a folder")
    result = CliRunner().invoke(main, ["export", "--model", "shufflenet_v2_x0_5", "--out", str(target)])
    assert "is a file" in _one_error_line(result)
    assert target.read_text() == "not a folder"


def test_damaged_checkpoint_is_one_line(tmp_path):
    checkpoint = tmp_path / "cut.pt"
    checkpoint.write_bytes(b"PK\x03\x04 truncated")
    result = CliRunner().invoke(
        main,
        [
            "export",
            "--model",
            "shufflenet_v2_x0_5",
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "release"),
        ],
    )
    assert "damaged or truncated" in _one_error_line(result)
    assert not (tmp_path / "release").exists()


def test_an_export_without_a_checkpoint_says_its_weights_are_random(tmp_path):
    args = ["export", "--model", "shufflenet_v2_x0_5", "--num-classes", "10", "--input-size", "64"]
    result = CliRunner().invoke(main, [*args, "--formats", "onnx", "--out", str(tmp_path / "release")])
    assert result.exit_code == 0, result.output
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "no --checkpoint" in warning and "random weights" in warning and "not for predictions" in warning
