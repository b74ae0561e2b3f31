"""One test per bad-input case of every ``cases_*.py`` module (see harness.py for what each asserts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from .conftest import make_workspace
from .harness import Case, changes, check_result, collect_cases, snapshot

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


# -- the harness catches what it promises to catch ------------------------------------------------------------
def _fake_run(tmp_path: Path, body):
    import click

    @click.command()
    def command() -> None:
        body(tmp_path)

    before = snapshot(tmp_path)
    result = CliRunner().invoke(command, [], catch_exceptions=True)
    return before, result, snapshot(tmp_path)


def _refuse(message: str):
    import click

    def body(root: Path) -> None:
        click.echo(f"error: {message}", err=True)
        raise SystemExit(2)

    return body


_CASE = Case(id="self-test", argv=lambda ws: [], error=r"bad thing")


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("traceback", lambda root: 1 / 0),
        ("no error line", lambda root: (_ for _ in ()).throw(SystemExit(2))),
        ("wrong text", _refuse("something else")),
        ("changed", lambda root: ((root / "ws" / "keep.txt").write_text("changed"), _refuse("bad thing")(root))),
        ("removed", lambda root: ((root / "ws" / "keep.txt").unlink(), _refuse("bad thing")(root))),
        ("created", lambda root: ((root / "ws" / "new.txt").write_text("x"), _refuse("bad thing")(root))),
        ("in $HOME", lambda root: ((root / "ws" / ".sandbox" / "x").write_text("x"), _refuse("bad thing")(root))),
        ("beside ws", lambda root: ((root / "stray").write_text("x"), _refuse("bad thing")(root))),
    ],
)
def test_the_harness_catches(tmp_path: Path, what: str, body) -> None:
    (tmp_path / "ws" / ".sandbox").mkdir(parents=True)
    (tmp_path / "ws" / "keep.txt").write_text("the user's")
    before, result, after = _fake_run(tmp_path, body)
    with pytest.raises(AssertionError):
        check_result(_CASE, result, before, after, out="ws/out", prefix="ws/")


def test_the_harness_passes_a_clean_refusal(tmp_path: Path) -> None:
    (tmp_path / "ws" / "keep.txt").parent.mkdir(parents=True)
    (tmp_path / "ws" / "keep.txt").write_text("the user's")

    def body(root: Path) -> None:
        (root / "ws" / "out").mkdir()
        (root / "ws" / "out" / "made.txt").write_text("the tool's own")
        _refuse("a bad thing happened; do this")(root)

    before, result, after = _fake_run(tmp_path, body)
    check_result(_CASE, result, before, after, out="ws/out", prefix="ws/")
    allowed = Case(id="self-test-2", argv=lambda ws: [], error="bad", may_create=("keep.*",), may_change=("keep.txt",))
    assert not changes(
        {"ws/keep.txt": "a"}, {"ws/keep.txt": "b", "ws/keep.new": "c"}, out=None, case=allowed, prefix="ws/"
    )


def test_duplicate_case_ids_fail_collection() -> None:
    from .harness import merge_cases

    one = Case(id="same", argv=lambda ws: [], error="x")
    with pytest.raises(ValueError, match="'same' is defined twice"):
        merge_cases([("cases_a", [one]), ("cases_b", [one])])
    with pytest.raises(TypeError):
        merge_cases([("cases_a", ["not a case"])])
