"""The ``shufflekit`` console script: the command group, then a quick exit.

With torch imported, Python's own shutdown (module teardown, the final collections) takes half a second,
and a second after a release. By then the command has written everything it makes (atomically, files
closed) and joined its threads, so the script runs the exit handlers (the converter process is ended,
logging flushed), flushes stdout and stderr, and leaves with the command's exit status at once. Tests
call ``main`` through click's runner, which never comes here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys


def run() -> None:
    from . import main

    try:
        main()  # standalone: ends in SystemExit with the command's status
        code = 0
    except SystemExit as exc:
        code = _status(exc.code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # closed, or its reader went away
            stream.flush()
    os._exit(code)


def _status(code: object) -> int:
    """What Python's exit makes of a SystemExit code: None is 0, an int itself, anything else is
    printed to stderr and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
