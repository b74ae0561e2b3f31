"""Tables at 80 columns: the artifact column is never cut, no cell is an ellipsis, secondary columns are
left out in each table's order and the caption says which, file names lose their shared model prefix
(the title names it); a wide terminal still shows every column and the whole names."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.cli.tables import Shorten, print_table

PREFIX = "shufflenet_v2_x0_5_"


def _cells(output: str) -> list[list[str]]:
    """The body cells of every rich table in ``output`` (rows drawn with │)."""
    rows = []
    for line in output.splitlines():
        if line.startswith("│") and line.endswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def _at(width: int, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["validate", "--no-gpu-check"],
        ["profile", "--iters", "3", "--warmup", "0", "--op-profile"],
    ],
    ids=["validate", "profile"],
)
def test_at_80_columns_every_artifact_name_is_whole_and_no_cell_is_cut(small_release_copy, command):
    names = [a.name for a in Manifest.load(small_release_copy).artifacts]
    out = _at(80, command[0], str(small_release_copy), *command[1:])
    assert "…" not in out
    assert all(len(line) <= 80 for line in out.splitlines()), max(out.splitlines(), key=len)
    first = [row[0] for row in _cells(out)]
    for name in names:  # the artifact column holds each name, shortened to what follows the model's prefix
        assert name[len(PREFIX) :] in first, (name, first)
    assert f"({PREFIX}*)" in " ".join(out.split()) or f"(artifacts {PREFIX}*)" in " ".join(out.split())
    assert "left out at 80 columns:" in out and "--json or a wider terminal shows them" in " ".join(out.split())


def test_a_wide_terminal_shows_every_column_and_the_whole_names(small_release_copy):
    out = _at(240, "validate", str(small_release_copy), "--no-gpu-check")
    assert "left out" not in out and "runtime" in out and "top-5" in out
    assert {row[0] for row in _cells(out)} == {a.name for a in Manifest.load(small_release_copy).artifacts}


def test_columns_are_left_out_in_the_given_order_and_the_caption_names_them(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    rows = [
        [f"{PREFIX}fp32.onnx", "onnx:fp32", "a long explanation of the figures", "0.123", "12.5 MB"],
        [f"{PREFIX}int8.tflite", "tflite:int8", "short", "0.045", "3.2 MB"],
    ]
    print_table(
        "t",
        ["artifact", "kind", "notes", "p50", "size"],
        rows,
        keep_whole=["artifact"],
        drop=["size", "notes", "kind"],
        shorten=Shorten("artifact", PREFIX),
    )
    out = capsys.readouterr().out
    assert all(len(line) <= 50 for line in out.splitlines())
    flat = " ".join(out.split())
    assert "left out at 50 columns: size, notes (" in flat  # in the given order, and no more than needed
    assert f"t (artifacts {PREFIX}*)" in flat
    assert [row[:3] for row in _cells(out)] == [
        ["fp32.onnx", "onnx:fp32", "0.123"],
        ["int8.tflite", "tflite:int8", "0.045"],
    ]
    assert "…" not in out


def test_the_name_column_is_never_cut_even_when_nothing_else_fits(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    name = "a_file_name_that_is_forty_five_characters.onnx"
    print_table(None, ["artifact", "verdict"], [[name, "pass"]], keep_whole=["artifact"], drop=["verdict"])
    out = capsys.readouterr().out
    assert name in out and "…" not in out
