"""What every command shares about its output: ``--json``, ``-q`` and ``-v`` through one click Command
class (set as the group's default, so no command declares them), the one JSON envelope, warnings, the
mapping of errors to one line and an exit code, and the logging levels.

The envelope (``SCHEMA``) is the same for every command::

    {"schema": "shufflekit.cli/1", "shufflekit": "0.x", "command": "validate", "ok": true,
     "error": null, "warnings": [], "units": {"accuracy": "percent"}, "report": {...}, "results": [...]}

``results`` holds one item per thing the command made or measured (an artifact, a device, a model...);
an item about an artifact names it by ``artifact`` (its file name) and ``key`` (``format:precision``),
as the manifest does. ``report`` holds what the run shares (the folder, the sample count, the host).
On an error ``ok`` is false and ``error`` is ``{"message", "hint", "kind", "exit_code"}``; a check that
ran and failed (exit 1) still carries every result.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click

from .. import __version__
from ..errors import ShufflekitError

SCHEMA = "shufflekit.cli/1"
# Every accuracy figure in the JSON is in percent (0-100): top1, top5, agreement, deltas, drops and
# --max-drop alike, as the manifest records accuracy and as --max-drop is given. Parity's top-1/top-5
# agreement, kept as shares in the manifest, is converted (``parity_metrics``).
UNITS = {"accuracy": "percent"}
_META_KEY = "shufflekit.output"
_ARGS_KEY = "shufflekit.args"


# -- errors: one line, an exit code, and the same as JSON ----------------------------------------------
@dataclass(frozen=True)
class CliError:
    """An error as the user sees it: ``error: <line>`` on stderr, the exit code, and the envelope's
    ``error`` object."""

    message: str
    exit_code: int
    hint: str | None = None
    kind: str = "error"

    def line(self) -> str:
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        return " ".join(text.split())

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "hint": self.hint, "kind": self.kind, "exit_code": self.exit_code}


def usage_error_line(exc: click.UsageError) -> str:
    """click's own parse errors (unknown option, missing argument, bad choice) as one line naming the
    command's help, instead of click's four-line Usage block."""
    names = _command_names(exc.ctx) if exc.ctx is not None else []  # the root's name is the program's
    command = " ".join(["shufflekit", *names])
    return " ".join(f"{exc.format_message().rstrip('.')}; see '{command} -h' for its options".split())


_FILESYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
_FILESYSTEM_HINTS = {
    errno.ENOSPC: "free some space (or write somewhere else) and run it again",
    errno.EDQUOT: "your disk quota is used up: free some space and run it again",
    errno.EFBIG: "the file system takes no file that large: write somewhere else",
    errno.EROFS: "the file system is read-only: copy the folder somewhere writable",
    errno.EACCES: "check its permissions, or copy the folder somewhere you may write",
    errno.EPERM: "check its permissions, or copy the folder somewhere you may write",
}
INTERRUPTED = "interrupted; finished files were kept, partial ones removed"


def filesystem_error_line(exc: OSError) -> str:
    """One line for an OSError a write met (ENOSPC, EROFS, EACCES...): the file and what to do."""
    reason = exc.strerror or os.strerror(exc.errno or 0)
    hint = _FILESYSTEM_HINTS.get(exc.errno or 0, "check the folder and run it again")
    text = f"{exc.filename}: {reason}; {hint}" if exc.filename is not None else f"{reason}; {hint}"
    return " ".join(text.split())


class Failed(click.exceptions.Exit):
    """A command that has already said on stderr what went wrong (one line per failing device, say) and
    exits with ``exit_code``; ``message`` is the envelope's error."""

    def __init__(self, message: str, exit_code: int = 2, *, hint: str | None = None) -> None:
        super().__init__(exit_code)
        self.error = CliError(message, exit_code, hint, "Failed")


def cli_error(exc: BaseException) -> CliError | None:
    """The user's view of an exception a command raised, or None for one that is a bug (a traceback)
    or a plain exit (``Exit(0)``, ``--help``)."""
    if isinstance(exc, Failed):
        return exc.error
    if isinstance(exc, click.exceptions.Exit):
        return None if exc.exit_code == 0 else CliError(f"exit {exc.exit_code}", exc.exit_code, kind="Exit")
    if isinstance(exc, click.UsageError):
        return CliError(usage_error_line(exc), exc.exit_code, kind="UsageError")
    if isinstance(exc, ShufflekitError):
        return CliError(" ".join(exc.message.split()), exc.exit_code, exc.hint, type(exc).__name__)
    if isinstance(exc, KeyboardInterrupt):
        return CliError(INTERRUPTED, 130, kind="Interrupted")
    if isinstance(exc, OSError) and exc.errno in _FILESYSTEM_ERRNOS:
        return CliError(filesystem_error_line(exc), 2, kind="OSError")
    return None


# -- the state of one command's output ---------------------------------------------------------------
@dataclass
class Output:
    """How the running command prints: ``json`` (only the envelope on stdout), ``quiet`` (no progress,
    no informational lines), ``verbosity`` (0 warnings, 1 info, 2 debug and third-party chatter)."""

    command: str
    json: bool = False
    quiet: bool = False
    verbosity: int = 0
    warnings: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None
    results: list[Any] = field(default_factory=list)
    emitted: bool = False

    @property
    def progress(self) -> bool:
        """Progress is shown unless the output is JSON or quiet."""
        return not (self.json or self.quiet)

    def respond(self, results: Sequence[Any], report: dict[str, Any] | None = None) -> None:
        """The command's JSON: its results and run-wide report, printed in the envelope when it ends
        (so a failing check still carries them, with ``ok`` false)."""
        self.results = list(results)
        self.report = report

    def warn(self, text: str) -> None:
        """``warning: text`` on stderr (also with --json and -q), and into the envelope's warnings."""
        self.warnings.append(text)
        click.echo(f"warning: {text}", err=True)

    def info(self, text: str, *, err: bool = False) -> None:
        """A line for a person (``next: ...``, ``wrote ...``): not with --json or -q."""
        if not (self.json or self.quiet):
            click.echo(text, err=err)

    def envelope(self, error: CliError | None) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "shufflekit": __version__,
            "command": self.command,
            "ok": error is None,
            "error": None if error is None else error.to_dict(),
            "warnings": list(dict.fromkeys(self.warnings)),
            "units": dict(UNITS),
            "report": self.report,
            "results": self.results,
        }

    def emit(self, error: CliError | None) -> None:
        """Print the envelope once (``json`` only)."""
        if self.emitted or not self.json:
            return
        self.emitted = True
        click.echo(json.dumps(self.envelope(error), indent=2, default=str))


def current() -> Output:
    """The running command's Output (a plain one outside a command, e.g. a library caller's test)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return Output(command="")
    found = ctx.meta.get(_META_KEY)
    if found is None:
        found = ctx.meta[_META_KEY] = Output(command=ctx.command_path)
    return found


# -- the shared options, on every command -------------------------------------------------------------
OUTPUT_PARAMS = ("as_json", "quiet", "verbose")  # the parameter names Command adds and takes off again


def command_params(params: dict[str, Any]) -> dict[str, Any]:
    """A parsed context's params without the output options: what the command's function is called with."""
    return {k: v for k, v in params.items() if k not in OUTPUT_PARAMS}


def _shared_params() -> list[click.Parameter]:
    return [
        click.Option(["--json", "as_json"], is_flag=True, help="Machine-readable output: one JSON envelope on stdout."),
        click.Option(["-q", "--quiet"], is_flag=True, help="Only warnings, errors and the result."),
        click.Option(
            ["-v", "--verbose"], count=True, help="More log output: -v info, -vv debug (commands run, libraries' logs)."
        ),
    ]


class Command(click.Command):
    """Every shufflekit command: adds ``--json``, ``-q/--quiet`` and ``-v/--verbose`` and runs the command
    with its Output set up (logging levels, chatter filter, warnings collected, the JSON envelope)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        taken = {name for p in self.params for name in p.opts}
        self.params.extend(p for p in _shared_params() if not taken & set(p.opts))

    def invoke(self, ctx: click.Context) -> Any:
        as_json = bool(ctx.params.pop("as_json", False))
        quiet = bool(ctx.params.pop("quiet", False))
        verbose = int(ctx.params.pop("verbose", 0) or 0) + int(ctx.meta.get("shufflekit.group_verbose", 0))
        command = " ".join(_command_names(ctx)) or self.name or ""
        out = Output(command=command, json=as_json, quiet=quiet and verbose == 0, verbosity=verbose)
        ctx.meta[_META_KEY] = out
        with _running(out):
            try:
                value = super().invoke(ctx)
            except BaseException as exc:
                error = cli_error(exc)
                if error is None and not isinstance(exc, click.exceptions.Exit):
                    error = CliError(f"{type(exc).__name__}: {exc}", 1, kind="internal")
                out.emit(error)
                raise
            out.emit(None)
            return value


def _command_names(ctx: click.Context) -> list[str]:
    """``["board", "build"]``: the names under the root, whatever the program is called."""
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return names


class SubGroup(click.Group):
    """A group under ``shufflekit`` (``board``) whose commands are Commands."""

    command_class = Command


def emit_parse_error(ctx: click.Context, exc: BaseException) -> None:
    """An error met before a command ran (a bad option value while parsing) as the envelope, when
    ``--json`` is on the command line."""
    args: list[str] = ctx.meta.get(_ARGS_KEY, [])
    words = args[: args.index("--")] if "--" in args else args
    error = cli_error(exc)
    if "--json" not in words or error is None:
        return
    existing = ctx.meta.get(_META_KEY)
    if existing is not None and existing.emitted:
        return
    names: list[str] = []
    group: Any = ctx.command
    for word in words:
        if isinstance(group, click.Group) and word in group.commands:
            names.append(word)
            group = group.commands[word]
    out = Output(command=" ".join(names), json=True)
    ctx.meta[_META_KEY] = out
    out.emit(error)


def remember_args(ctx: click.Context, args: Sequence[str]) -> None:
    ctx.meta[_ARGS_KEY] = list(args)


# -- logging and third-party chatter -----------------------------------------------------------------
class _StderrHandler(logging.Handler):
    """Log lines on the current ``sys.stderr`` (looked up at each line: click's test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


class _WarningCollector(logging.Handler):
    """The library's warnings (``log.warning``) into the envelope's ``warnings``."""

    def __init__(self, out: Output) -> None:
        super().__init__(logging.WARNING)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] == "shufflekit":
            self.out.warnings.append(record.getMessage())


_HANDLER = _StderrHandler()
_HANDLER.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))


@contextmanager
def _running(out: Output) -> Iterator[None]:
    """Logging at the command's verbosity for its duration: shufflekit's own loggers at WARNING, INFO
    (-v) or DEBUG (-vv); other libraries' at WARNING unless -vv. Third-party C++ chatter is filtered off
    stderr unless -vv (``chatter``)."""
    from .chatter import filtered_stderr

    # TensorFlow and onnx2tf are chatty on import; keep their C++ logs to errors unless asked.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if out.verbosity < 2 else "0")
    root, ours = logging.getLogger(), logging.getLogger("shufflekit")
    saved = root.level, ours.level
    collector = _WarningCollector(out)
    with filtered_stderr(enabled=out.verbosity < 2):
        if _HANDLER not in root.handlers:
            root.addHandler(_HANDLER)
        root.setLevel(logging.DEBUG if out.verbosity >= 2 else logging.WARNING)
        ours.setLevel((logging.WARNING, logging.INFO, logging.DEBUG)[min(out.verbosity, 2)])
        root.addHandler(collector)
        try:
            yield
        finally:
            root.removeHandler(collector)
            root.setLevel(saved[0])
            ours.setLevel(saved[1])


def is_progress_line(line: str) -> bool:
    """A plain progress line (``progress: ...``) on stderr, as opposed to an ``error:`` or a warning."""
    return line.startswith("progress: ")


def stream_is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


__all__ = [
    "SCHEMA",
    "CliError",
    "Command",
    "Failed",
    "Output",
    "SubGroup",
    "cli_error",
    "console",
    "current",
    "emit_parse_error",
    "filesystem_error_line",
    "is_progress_line",
    "remember_args",
    "usage_error_line",
]


def console(stderr: bool = False):  # noqa: ANN201 - rich is imported lazily
    """A rich Console on stdout (or stderr) as wide as the terminal, COLUMNS, or 240 columns when piped."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    columns = os.environ.get("COLUMNS", "")
    # Piped output (CI logs, `| less`) gets a wide canvas instead of rich's 80-column fallback; COLUMNS
    # (set by the shell or by hand) wins.
    width = int(columns) if columns.isdigit() and int(columns) > 0 else None if stream_is_tty(stream) else 240
    return Console(file=stream, highlight=False, soft_wrap=False, width=width)
