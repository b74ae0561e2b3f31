"""Every numeric option of every command is finite and in a stated range, refused in one line naming the
option and the range before any work (nothing is read or built: the values are checked while parsing)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from shufflekit.cli import main
from shufflekit.cli.numbers import Number
from shufflekit.errors import UsageError


def _numeric_options() -> list[tuple[str, click.Option]]:
    found = []
    for name, command in sorted(main.commands.items()):
        for param in command.params:
            if isinstance(param, click.Option) and not param.is_flag and not param.count:  # -v takes no value
                found.append((name, param))
    return found


NUMERIC = [(c, p) for c, p in _numeric_options() if isinstance(p.type, Number)]


def test_no_number_escapes_the_range_types():
    """A plain int/float (or click's Int/FloatRange, which take nan and inf) on any command fails here."""
    plain = [
        f"{command} {param.opts[0]}"
        for command, param in _numeric_options()
        if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType))
    ]
    assert plain == []
    assert len(NUMERIC) >= 30  # every command's numbers are covered by the cases below


def _error_line(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _bad_values(kind: Number) -> list[str]:
    above = str(int(kind.high) * 1000 + 1) if kind.kind is int else str(kind.high * 1000)
    below = str(int(kind.low) - 1) if kind.kind is int else str(kind.low - 1)
    values = ["nan", "inf", "-inf", above, below, "abc", ""]
    if kind.kind is int:
        values.append("2.5")
    return values


@pytest.mark.parametrize("command, param", NUMERIC, ids=[f"{c}{p.opts[0]}" for c, p in NUMERIC])
def test_bad_number_is_refused_naming_the_option_and_range(command, param):
    """Parsed as the command parses it (no work runs: the check is in the option's type)."""
    option = param.opts[0]
    for value in _bad_values(param.type):
        with pytest.raises(UsageError) as caught:
            main.commands[command].make_context(command, [f"{option}={value}"])
        text = caught.value.one_line()
        assert text.startswith(f"{option} must be ") and " to " in text, (value, text)
        assert "\n" not in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "--model", "shufflenet_v2_x0_5", "--num-classes", "10000000000", "--out", "o"], "100,000"),
        (["profile", "R", "--seconds", "inf"], "--seconds must be a number above 0"),
        (["profile", "R", "--iters", "100000000000000"], "--iters must be an integer from 1 to 1,000,000"),
        (["evaluate", "R", "--data", "demo", "--limit", "-5"], "--limit must be an integer from 1"),
        (["quantize", "R", "--precision", "int8", "--max-drop", "nan"], "--max-drop must be a number from 0 to 100"),
        (["quantize", "R", "--precision", "int8", "--calib-samples", "0"], "--calib-samples must be an integer"),
        (["models", "--input-size", "99999"], "--input-size: input size 99999x99999 has a side above 2048 px"),
        (["profile", "R", "--threads", "100000"], "--threads must be an integer from 1 to 1,024"),
        (["train", "--model", "m", "--data", "demo", "--out", "c.pt", "--epochs", "0"], "--epochs must be"),
        (["train", "--model", "m", "--data", "demo", "--out", "c.pt", "--lr", "nan"], "--lr must be a number"),
        (["train", "--model", "m", "--data", "demo", "--out", "c.pt", "--batch-size", "0"], "--batch-size must"),
        (["devices", "--connect-timeout", "inf"], "--connect-timeout must be a number from 1"),
        (["release", "--demo", "--iters", "0"], "--iters must be an integer from 1"),
    ],
)
def test_reported_numbers(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert message in _error_line(args)
    assert list(tmp_path.iterdir()) == []


def test_good_numbers_and_defaults_still_parse():
    context = main.commands["release"].make_context("release", ["--demo", "--max-drop", "0.5", "--iters", "3"])
    assert context.params["max_drop"] == 0.5 and context.params["iters"] == 3 and context.params["warmup"] == 10
    assert main.commands["devices"].make_context("devices", []).params["connect_timeout"] == 10.0
    kind = Number(float, 0, 10, low_open=True)
    assert kind.convert(2, None, None) == 2.0 and kind.convert("1e-3", None, None) == 0.001
    assert Number(int, 1, 5).convert("3", None, None) == 3
