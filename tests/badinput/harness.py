"""The bad-input table's API and its checks.

A :class:`Case` runs ``shufflekit <argv>`` in-process (click's CliRunner) with the working directory at
``ws.root`` after ``setup(ws)`` made the bad input. :func:`run_case` asserts: the exit code; exactly one
stderr line starting ``error: `` whose text matches ``error`` (``re.search``, case-insensitive); no
traceback; every file that existed under ``ws.root`` (and beside it, in the test's tmp_path) is
byte-identical afterwards unless it is under ``ws.out`` or listed in ``may_change``; nothing new appears
outside ``ws.out`` unless it matches a ``may_create`` glob. $HOME, $TMPDIR and $XDG_CACHE_HOME point inside
``ws.root/.sandbox``, so anything written there counts as written outside the output folder.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import os
import pkgutil
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

SMALL = "shufflenet_v2_x0_5"
SANDBOX = ".sandbox"  # HOME, TMPDIR and XDG_CACHE_HOME live under ws.root/.sandbox


@dataclass(frozen=True)
class Workspace:
    root: Path  # the sandbox and the working directory
    out: Path  # root/"out": absent at the start; the one place a case may write
    release: Path | None  # root/"release": a private copy of small_release when the case needs_release
    checkpoint: Path  # root/"model.pt": a valid shufflekit checkpoint of SMALL, 10 classes, 64x64
    small: str = SMALL


@dataclass(frozen=True)
class Case:
    id: str  # unique over every cases_*.py module, e.g. "export-out-empty-string"
    argv: Callable[[Workspace], list[str]]
    error: str  # regex for the text after "error: " (re.search, case-insensitive)
    exit_code: int = 2
    setup: Callable[[Workspace], None] | None = None
    needs_release: bool = False  # ws.release: a private copy of small_release (ONNX+TFLite fp32); slow
    may_change: tuple[str, ...] = ()  # paths relative to ws.root allowed to change
    may_create: tuple[str, ...] = ()  # globs relative to ws.root allowed to appear


def collect_cases() -> list[Case]:
    """Every ``CASES`` of every ``cases_*.py`` module of this package; a duplicate id is an error (it fails
    collection, so two helpers cannot silently shadow each other's case)."""
    package = __name__.rsplit(".", 1)[0]
    here = Path(__file__).parent
    modules = []
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda i: i.name):
        if info.name.startswith("cases_"):
            modules.append((info.name, getattr(importlib.import_module(f"{package}.{info.name}"), "CASES", [])))
    return merge_cases(modules)


def merge_cases(modules: Iterable[tuple[str, Iterable[Case]]]) -> list[Case]:
    """The cases of every (module name, CASES); a duplicate id or a non-Case is a ValueError/TypeError."""
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for name, module_cases in modules:
        for case in module_cases:
            if not isinstance(case, Case):
                raise TypeError(f"{name}.CASES holds {case!r}, not a Case")
            if case.id in seen:
                raise ValueError(f"bad-input case id {case.id!r} is defined twice ({seen[case.id]}, {name})")
            seen[case.id] = name
            cases.append(case)
    return cases


# -- snapshots ---------------------------------------------------------------------------------------------
def _digest(path: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    if path.is_dir():
        return "dir"
    if not path.is_file():  # a FIFO, socket or device a case made on purpose: never opened
        return "special"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot(root: Path, *, skip: Iterable[Path] = ()) -> dict[str, str]:
    """{path relative to ``root``: sha256 (or link target, "dir")} of everything under ``root``, symlinks
    not followed, leaving out the folders in ``skip``."""
    skipped = {Path(p) for p in skip}
    found: dict[str, str] = {}
    for current, dirs, files in os.walk(root, followlinks=False):
        base = Path(current)
        keep = []
        for name in dirs:
            path = base / name
            if path in skipped:
                continue
            found[path.relative_to(root).as_posix()] = _digest(path)
            if not path.is_symlink():
                keep.append(name)
        dirs[:] = keep
        for name in files:
            path = base / name
            found[path.relative_to(root).as_posix()] = _digest(path)
    return found


def _under(rel: str, folder: str) -> bool:
    return rel == folder or rel.startswith(folder + "/")


def changes(
    before: dict[str, str], after: dict[str, str], *, out: str | None, case: Case, prefix: str = ""
) -> list[str]:
    """What broke the promises: pre-existing files changed or removed, new ones outside ``out``. Paths are
    relative to the snapshot's root; ``prefix`` is ws.root's path there (the case's paths are relative to it)."""
    may_change = {prefix + rel for rel in case.may_change}
    may_create = [prefix + glob for glob in case.may_create]
    problems = []
    for rel, digest in before.items():
        if (out and _under(rel, out)) or rel in may_change:
            continue
        if rel not in after:
            problems.append(f"removed: {rel}")
        elif after[rel] != digest and digest != "dir":
            problems.append(f"changed: {rel}")
    for rel in sorted(set(after) - set(before)):
        if (out and _under(rel, out)) or any(fnmatch.fnmatch(rel, glob) for glob in may_create):
            continue
        problems.append(f"created outside the output folder: {rel}")
    return problems


# -- the checks ----------------------------------------------------------------------------------------------
def check_result(
    case: Case, result, before: dict[str, str], after: dict[str, str], *, out: str | None, prefix: str = ""
) -> None:
    """Assert every promise for one case (the messages say what the command printed)."""
    stderr = result.stderr
    shown = f"\n--- stdout:\n{result.stdout[-2000:]}\n--- stderr:\n{stderr[-3000:]}"
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        import traceback

        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise AssertionError(f"{case.id}: traceback instead of one line:\n{tb[-4000:]}{shown}")
    assert "Traceback" not in result.output, f"{case.id}: a traceback was printed{shown}"
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, f"{case.id}: expected exactly one 'error: ' line on stderr, got {len(lines)}{shown}"
    text = lines[0][len("error: ") :]
    assert re.search(case.error, text, re.IGNORECASE), f"{case.id}: {text!r} does not match {case.error!r}{shown}"
    assert result.exit_code == case.exit_code, f"{case.id}: exit code {result.exit_code}, not {case.exit_code}{shown}"
    problems = changes(before, after, out=out, case=case, prefix=prefix)
    assert not problems, f"{case.id}: " + "; ".join(problems) + shown
