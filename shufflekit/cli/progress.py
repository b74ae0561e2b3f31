"""The renderer of the library's progress callback ``(task, done, total)``: rich bars on a terminal, plain
``progress:`` lines on stderr elsewhere (a pipe, a CI log), so ``export ... | cat`` is never silent for
long: a line when a task starts, when it ends (with its time), and while it runs at most one line per
``INTERVAL_S`` seconds, also when the library calls nothing for a while (a long conversion)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click

ProgressFn = Callable[[str, int, "int | None"], None]
INTERVAL_S = 5.0  # the longest a running task stays silent off a terminal
_TICK_S = 0.5


@dataclass
class _Task:
    started: float
    done: int = 0
    total: int | None = None
    finished: bool = False
    said: float = 0.0  # when its last line was printed


class PlainProgress:
    """Progress as plain lines: ``progress: TASK started``, ``progress: TASK 2/4, 12 s``, ``progress: TASK
    done in 19.5 s``. ``tick()`` prints the line of each task silent for ``interval`` seconds; ``close()``
    ends the tasks still open. ``clock`` and ``say`` are injectable for tests."""

    def __init__(
        self,
        say: Callable[[str], None] | None = None,
        *,
        interval: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.say = say or (lambda line: click.echo(line, err=True))
        self.interval = interval
        self.clock = clock
        self.tasks: dict[str, _Task] = {}
        self.lock = threading.Lock()

    def __call__(self, task: str, done: int, total: int | None) -> None:
        with self.lock:
            now = self.clock()
            state = self.tasks.get(task)
            if state is None or state.finished:
                state = self.tasks[task] = _Task(started=now, said=now)
                self.say(f"progress: {task} started")
            state.done, state.total = done, total
            if total is not None and done >= total:
                self._finish(task, state, now)
            elif now - state.said >= self.interval:
                self._line(task, state, now)

    def tick(self) -> None:
        with self.lock:
            now = self.clock()
            for task, state in self.tasks.items():
                if not state.finished and now - state.said >= self.interval:
                    self._line(task, state, now)

    def close(self) -> None:
        with self.lock:
            now = self.clock()
            for task, state in self.tasks.items():
                if not state.finished:
                    self._finish(task, state, now)

    def _line(self, task: str, state: _Task, now: float) -> None:
        count = f"{state.done}/{state.total}, " if state.total else ""
        self.say(f"progress: {task} {count}{now - state.started:.0f} s")
        state.said = now

    def _finish(self, task: str, state: _Task, now: float) -> None:
        state.finished = True
        self.say(f"progress: {task} done in {now - state.started:.1f} s")


@contextmanager
def plain_progress() -> Iterator[ProgressFn]:
    """PlainProgress with a thread that ticks it, so a long step between two calls still prints."""
    lines = PlainProgress()
    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(_TICK_S):
            lines.tick()

    thread = threading.Thread(target=ticker, name="progress-lines", daemon=True)
    thread.start()
    try:
        yield lines
    finally:
        stop.set()
        thread.join()
    lines.close()  # not on an error: its line says what stopped the tasks


@contextmanager
def progress_bar(enabled: bool | None = None) -> Iterator[ProgressFn]:
    """Render the library's progress callback ``(task, done, total)`` on stderr: rich bars naming each
    task on a terminal, plain lines elsewhere. Off with --json or -q (``enabled`` None: the running
    command's choice), when it swallows the calls."""
    from .output import current, stream_is_tty

    if enabled is None:
        enabled = current().progress
    if not enabled:
        yield lambda task, done, total: None
        return
    if not stream_is_tty(sys.stderr):
        with plain_progress() as lines:
            yield lines
        return
    yield from _rich_bars()


def _rich_bars() -> Iterator[ProgressFn]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .output import console

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}", style="bold", markup=False),
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
