"""Third-party chatter off stderr: the INFO lines TensorFlow, LiteRT and absl print from C++ straight to
file descriptor 2 (``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``, ``I0000 ... port.cc]
oneDNN custom operations are on``), which no Python logging level and no TF_CPP_MIN_LOG_LEVEL reaches
(LiteRT's minimal logger ignores it; TF 2.21's absl lines before ``InitializeLog`` do too).

While a command runs, fd 2 is a pipe read by a small filter process that drops those lines and passes
every other line through; Python's own ``sys.stderr`` (progress bars, warnings, ``error:``) keeps writing to the real
stream directly, so a terminal stays a terminal. ``-vv`` turns the filter off.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator

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


# The filter runs in a process of its own, so that what a crashing library writes last (an abort message,
# faulthandler's traceback) still reaches the terminal after this process is gone. Its own session keeps
# Ctrl-C (meant for the command) from stopping it before it has passed on the command's last words.
_PUMP = """
import os, re
chatter = re.compile(%r)
def put(data):
    try:
        while data:
            data = data[os.write(1, data):]
    except OSError:  # whoever read our stderr went away
        pass
pending = b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    pending += chunk
    *lines, pending = pending.split(b"\\n")
    put(b"".join(line + b"\\n" for line in lines if not chatter.match(line)))
if pending and not chatter.match(pending):
    put(pending)
"""


def _python_stderr_is_fd2() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def filtered_stderr(*, enabled: bool = True) -> Iterator[None]:
    """Filter the chatter off fd 2 for the duration (nothing changes when not ``enabled``, when fd 2 is
    not open or the filter cannot start)."""
    if not enabled:
        yield
        return
    try:
        real = os.dup(2)
    except OSError:
        yield
        return
    read_fd, write_fd = os.pipe()
    try:
        pump = subprocess.Popen(
            [sys.executable, "-I", "-c", _PUMP % CHATTER.pattern],
            stdin=read_fd,
            stdout=real,
            start_new_session=True,
        )
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        os.close(real)
        yield
        return
    os.close(read_fd)
    saved_stderr = sys.stderr
    swap = _python_stderr_is_fd2()
    if saved_stderr is not None:
        saved_stderr.flush()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    direct = None
    if swap:  # Python's own writes bypass the filter: in order with ours, and isatty() stays true on a terminal
        direct = io.TextIOWrapper(
            io.FileIO(os.dup(real), "w"),
            encoding=saved_stderr.encoding,
            errors=saved_stderr.errors or "backslashreplace",
            line_buffering=True,
            write_through=True,
        )
        sys.stderr = direct
    try:
        yield
    finally:
        if direct is not None:
            direct.flush()
            sys.stderr = saved_stderr
            direct.close()
        os.dup2(real, 2)  # closes our end of the pipe: the filter ends once children that hold it have too
        os.close(real)
        with contextlib.suppress(subprocess.TimeoutExpired):  # a child of the command still holds the pipe:
            pump.wait(_JOIN_S)  # the filter ends after it
