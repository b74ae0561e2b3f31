"""Third-party chatter off stderr: the INFO lines TensorFlow, LiteRT and absl print from C++ straight to
file descriptor 2 (``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``, ``I0000 ... port.cc]
oneDNN custom operations are on``), which no Python logging level and no TF_CPP_MIN_LOG_LEVEL reaches
(LiteRT's minimal logger ignores it; TF 2.21's absl lines before ``InitializeLog`` do too).

While a command runs, fd 2 is a pipe read by a thread that drops those lines and passes every other line
through; Python's own ``sys.stderr`` (progress bars, warnings, ``error:``) keeps writing to the real
stream directly, so a terminal stays a terminal. ``-vv`` turns the filter off.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# What is chatter: LiteRT/TFLite's minimal logger at INFO ("INFO: ..."), absl's note that it was not
# initialized, and glog/absl INFO lines ("I0000 00:00:1796.. 7213 port.cc:153] ..."). Warnings and errors
# from the same libraries ("W...", "E...", "ERROR: ...") still pass.
CHATTER = re.compile(
    rb"^(?:INFO: "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]\s]+:\d+\] )"
)
_JOIN_S = 2.0  # how long the end of a command waits for the last lines a child process wrote


def is_chatter(line: bytes) -> bool:
    return CHATTER.match(line) is not None


def _pump(read_fd: int, write_fd: int) -> None:
    """Copy lines from ``read_fd`` to ``write_fd`` without the chatter, until every writer has closed."""
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not is_chatter(line))
        if kept:
            _write_all(write_fd, kept)
    if pending and not is_chatter(pending):
        _write_all(write_fd, pending)


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:  # the reader of our stderr went away: nothing to tell it
        pass


def _python_stderr_is_fd2() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False


@contextmanager
def filtered_stderr(*, enabled: bool = True) -> Iterator[None]:
    """Filter the chatter off fd 2 for the duration (nothing changes when not ``enabled`` or fd 2 is not
    open)."""
    if not enabled:
        yield
        return
    try:
        real = os.dup(2)
    except OSError:
        yield
        return
    swap = _python_stderr_is_fd2()
    saved_stderr = sys.stderr
    if saved_stderr is not None:
        saved_stderr.flush()
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    direct = None
    if swap:  # Python's own writes bypass the pipe: ordered with ours, and isatty() stays true on a terminal
        direct = io.TextIOWrapper(
            io.FileIO(os.dup(real), "w"),
            encoding=saved_stderr.encoding,
            errors=saved_stderr.errors or "backslashreplace",
            line_buffering=True,
            write_through=True,
        )
        sys.stderr = direct
    pump = threading.Thread(target=_pump, args=(read_fd, real), name="stderr-filter", daemon=True)
    pump.start()
    try:
        yield
    finally:
        if direct is not None:
            direct.flush()
            sys.stderr = saved_stderr
            direct.close()
        os.dup2(real, 2)  # closes our end of the pipe: the pump ends once children that hold it have too
        pump.join(_JOIN_S)
        if not pump.is_alive():
            os.close(read_fd)
            os.close(real)
