"""One name per idea across commands (the README's "Options" table): the old names still parse, into the
same value as the new one, and name themselves in a message; --help shows only the new names."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from shufflekit.cli import main
from shufflekit.cli.renamed import aliases_of

# the names replaced, and by what (one idea each); a command that brings one back as a visible option fails
RETIRED = {
    "--limit": "--eval-samples",
    "--samples": "--parity-samples",
    "--accuracy-samples": "--device-accuracy-samples",
    "--batch-size": "--batch",
    "--precision": "--precisions",
}


def _commands() -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(main.commands.items()):
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in sorted(command.commands.items())]
        else:
            found.append((name, command))
    return found


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option)]


ALIASES = [(name, old, new) for name, command in _commands() for old, new in aliases_of(command).items()]


def test_the_old_names_are_kept_and_no_command_shows_one():
    assert {old for _, old, _ in ALIASES} == set(RETIRED)
    assert all(RETIRED[old] == new for _, old, new in ALIASES)
    for name, _ in _commands():
        shown = CliRunner().invoke(main, [*name.split(), "-h"]).output.split()
        assert not set(RETIRED) & set(shown), name


def test_one_variable_one_option_name_across_commands():
    """The same value (click's parameter name) is asked for under the same option name everywhere."""
    names: dict[str, set[str]] = {}
    for _, command in _commands():
        for option in _options(command):
            if not option.hidden and option.name:
                names.setdefault(option.name, set()).add(option.opts[0])
    assert {name: opts for name, opts in names.items() if len(opts) > 1} == {}


_VALUES = {"--precision": ("fp16", ("fp16",)), "--batch-size": ("7", 7)}


@pytest.mark.parametrize("command, old, new", ALIASES, ids=[f"{c}{o}" for c, o, _ in ALIASES])
def test_an_old_name_parses_into_the_new_options_value(command, old, new):
    text, value = _VALUES.get(old, ("7", 7))
    cmd = main.commands[command]
    base = {"release": [], "train": ["--model", "m", "--data", "demo", "--out", "c.pt"]}.get(command, ["R"])
    if command == "quantize" and old != "--precision":
        base = [*base, "--precisions", "fp16"]
    if command == "evaluate":
        base = [*base, "--data", "demo"]
    by_old = cmd.make_context(command, [*base, old, text]).params
    by_new = cmd.make_context(command, [*base, new, text]).params
    assert by_old == by_new
    assert value in by_new.values() or (value,) in by_new.values()


def test_a_bad_value_is_named_as_it_was_typed():
    from shufflekit.errors import UsageError

    for typed in ("--limit", "--eval-samples"):
        with pytest.raises(UsageError, match=f"^{typed} must be an integer from 1"):
            main.commands["evaluate"].make_context("evaluate", ["R", "--data", "demo", typed, "0"])
