"""One test per bad-input case of every ``cases_*.py`` module (see harness.py for what each asserts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from .conftest import make_workspace
from .harness import Case, check_result, collect_cases, snapshot

CASES = collect_cases()


def _param(case: Case):
    return pytest.param(case, id=case.id, marks=[pytest.mark.slow] if case.needs_release else [])


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    badinput_checkpoint: Path,
    request: pytest.FixtureRequest,
) -> None:
    from shufflekit.cli import main

    release = request.getfixturevalue("small_release") if case.needs_release else None
    ws = make_workspace(case, tmp_path, monkeypatch, badinput_checkpoint, release)
    if case.setup is not None:
        case.setup(ws)
    argv = case.argv(ws)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, argv, catch_exceptions=True)
    after = snapshot(tmp_path)
    check_result(case, result, before, after, out="ws/out", prefix="ws/")


def test_the_table_covers_every_command() -> None:
    """At least one case per command, so a new command cannot ship without bad-input cases."""
    from shufflekit.cli import main

    commands = set(main.commands)
    covered = _first_words()
    assert commands <= covered, f"commands with no bad-input case: {sorted(commands - covered)}"


def _first_words() -> set[str]:
    from .harness import SMALL, Workspace

    fake = Workspace(root=Path("/ws"), out=Path("/ws/out"), release=Path("/ws/release"), checkpoint=Path("/ws/m.pt"))
    assert fake.small == SMALL
    words = set()
    for case in CASES:
        argv = case.argv(fake)
        words.update(a for a in argv[:2] if not a.startswith("-"))
    return words
