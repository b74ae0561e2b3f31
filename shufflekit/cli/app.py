"""The click group and what every command shares: one-line errors with exit codes, JSON output,
rich tables, and a progress renderer for the library's progress callback. Only the CLI prints."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from .. import __version__
from ..errors import ShufflekitError


def usage_error_line(exc: click.UsageError) -> str:
    """click's own parse errors (unknown option, missing argument, bad choice) as one line naming the
    command's help, instead of click's four-line Usage block."""
    names: list[str] = []
    ctx = exc.ctx
    while ctx is not None and ctx.parent is not None:  # the root's own name is the program's, however run
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    command = " ".join(["shufflekit", *names])
    return " ".join(f"{exc.format_message().rstrip('.')}; see '{command} -h' for its options".split())


class _Group(click.Group):
    """Turns a ShufflekitError (and click's own usage errors) into 'error: <one line>' on stderr and the
    error's exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:  # an option of the group itself (shufflekit --bogus)
            click.echo(f"error: {usage_error_line(exc)}", err=True)
            ctx.exit(exc.exit_code)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            click.echo(f"error: {usage_error_line(exc)}", err=True)
            ctx.exit(exc.exit_code)
        except ShufflekitError as exc:
            click.echo(f"error: {exc.one_line()}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted; finished files were kept, partial ones removed", err=True)
            ctx.exit(130)
        except OSError as exc:  # the last line of defence: a full disk or a read-only folder met mid-write
            if exc.errno not in _FILESYSTEM_ERRNOS:
                raise
            click.echo(f"error: {filesystem_error_line(exc)}", err=True)
            ctx.exit(2)


_FILESYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
_FILESYSTEM_HINTS = {
    errno.ENOSPC: "free some space (or write somewhere else) and run it again",
    errno.EDQUOT: "your disk quota is used up: free some space and run it again",
    errno.EFBIG: "the file system takes no file that large: write somewhere else",
    errno.EROFS: "the file system is read-only: copy the folder somewhere writable",
    errno.EACCES: "check its permissions, or copy the folder somewhere you may write",
    errno.EPERM: "check its permissions, or copy the folder somewhere you may write",
}


def filesystem_error_line(exc: OSError) -> str:
    """One line for an OSError a write met (ENOSPC, EROFS, EACCES...): the file and what to do."""
    reason = exc.strerror or os.strerror(exc.errno or 0)
    hint = _FILESYSTEM_HINTS.get(exc.errno or 0, "check the folder and run it again")
    text = f"{exc.filename}: {reason}; {hint}" if exc.filename is not None else f"{reason}; {hint}"
    return " ".join(text.split())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="shufflekit")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """ShuffleNet v1/v2 from PyTorch to phones and boards: export, check, quantize, profile, release."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # TensorFlow and onnx2tf are chatty on import; keep their C++ logs to errors unless asked.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if verbose < 2 else "0")


def console(stderr: bool = False):  # noqa: ANN201 - rich is imported lazily
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output (CI logs, `| less`) gets a wide canvas instead of rich's 80-column fallback.
    width = None if stream.isatty() else 240
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    right_align: Sequence[str] = (),
    caption: str | None = None,
    keep_whole: Sequence[str] = (),
) -> None:
    """A rich table; the ``keep_whole`` columns are never shortened (a file name must stay readable when
    the table is wider than the terminal: the other columns wrap instead)."""
    from rich.table import Table

    table = Table(title=title, caption=caption, header_style="bold")
    for index, column in enumerate(columns):
        widest = max((len(str(row[index])) for row in rows if index < len(row) and row[index] is not None), default=0)
        table.add_column(
            column,
            justify="right" if column in right_align else "left",
            min_width=max(widest, len(column)) if column in keep_whole else None,
        )
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console().print(table)


ProgressFn = Callable[[str, int, "int | None"], None]


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[ProgressFn]:
    """Render the library's progress callback ``(task, done, total)`` as rich progress bars on stderr.
    Disabled (e.g. with --json or when stderr is not a terminal) it swallows the calls."""
    if not enabled or not sys.stderr.isatty():
        yield lambda task, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
    ) as progress:

        def update(task: str, done: int, total: int | None) -> None:
            if task not in tasks:
                tasks[task] = progress.add_task(task, total=total)
            progress.update(tasks[task], completed=done, total=total)

        yield update


def fmt_millions(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value / 1e6:.{digits}f}M"


RANDOM_WEIGHTS_WARNING = (
    "warning: no --checkpoint: these files carry random weights, good for checking the toolchain and "
    "measuring speed, not for predictions; pass --checkpoint FILE (`shufflekit train` makes one)"
)
