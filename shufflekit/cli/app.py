"""The click group and what every command shares: one-line errors with exit codes (and the JSON envelope
with --json, see ``output``), rich tables that fit the terminal (``tables``), and a progress renderer
for the library's progress callback (``progress``). Only the CLI prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from .. import __version__
from .output import (
    Command,
    SubGroup,
    cli_error,
    console,
    emit_parse_error,
    filesystem_error_line,
    remember_args,
    usage_error_line,
)
from .progress import ProgressFn, progress_bar
from .tables import Shorten, print_table


class _Group(click.Group):
    """Turns a ShufflekitError (and click's own usage errors) into 'error: <one line>' on stderr and the
    error's exit code (and, with --json, the envelope on stdout). Its commands are ``output.Command``s:
    each takes --json, -q and -v."""

    command_class = Command
    group_class = SubGroup

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        remember_args(ctx, args)
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:  # an option of the group itself (shufflekit --bogus)
            self._fail(ctx, exc)
            raise  # not reached: _fail exits

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BaseException as exc:
            if cli_error(exc) is None:
                raise  # a bug: its traceback
            self._fail(ctx, exc)

    @staticmethod
    def _fail(ctx: click.Context, exc: BaseException) -> None:
        error = cli_error(exc)
        assert error is not None
        emit_parse_error(ctx, exc)  # the envelope too, where the command did not get to print it
        click.echo(f"error: {error.line()}", err=True)
        ctx.exit(error.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="shufflekit")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug); also after the command.")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """ShuffleNet v1/v2 from PyTorch to phones and boards: export, check, quantize, profile, release.

    Every command takes --json (one JSON envelope on stdout), -q (only warnings, errors and the result)
    and -v/-vv (info, debug: the ssh/adb commands run and the libraries' own logs)."""
    ctx.meta["shufflekit.group_verbose"] = verbose


def fmt_millions(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value / 1e6:.{digits}f}M"


def shorten_names(column: str | None, names: Sequence[str]) -> Shorten | None:
    """Where every file name in ``names`` starts with the same registered model's name
    (``shufflenet_v2_x0_5_fp32.onnx``...), the table may show them without it (``fp32.onnx``) in
    ``column`` (None: in the headers)."""
    from ..models import list_models

    shared = [s.name for s in list_models() if names and all(n.startswith(f"{s.name}_") for n in names)]
    return Shorten(column, f"{max(shared, key=len)}_") if shared else None


RANDOM_WEIGHTS_WARNING = (
    "no --checkpoint: these files carry random weights, good for checking the toolchain and "
    "measuring speed, not for predictions; pass --checkpoint FILE (`shufflekit train` makes one)"
)

__all__ = [
    "RANDOM_WEIGHTS_WARNING",
    "ProgressFn",
    "Shorten",
    "console",
    "filesystem_error_line",
    "fmt_millions",
    "main",
    "print_table",
    "progress_bar",
    "shorten_names",
    "usage_error_line",
]
