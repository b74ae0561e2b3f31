"""TFLite conversions in a process of their own, for a release.

A release converts to TFLite twice from one ONNX file: fp32 in its export stage, fp16/dynamic/int8 in its
quantize stage. In a process of its own the converter keeps its onnx2tf model between the two (see
``tflite._keras_model``), imports TensorFlow while the main process exports the ONNX file, and makes the
quantize stage's TFLite files while the main process quantizes the ONNX ones: on two cores that stage
takes the longer of the two, not their sum. TensorFlow's console output, which a conversion sends to a log
file by redirecting the process's descriptors 1 and 2, stays in that process too, so the main process's
terminal is never redirected under a progress bar.

Protocol (the worker is ``export.tflite_worker_main``): one JSON request per line on its stdin, one
JSON reply per line on a private descriptor (the worker's own stdout goes to its stderr, so nothing
TensorFlow prints can corrupt a reply). Calibration images travel as a .npy file in a private temporary folder. Warnings the conversion
logs come back with the reply and are logged again here. The worker ends at the end of its input: when
the main process closes it (``close``), or dies.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import errors
from ..errors import ExportError, ShufflekitError

log = logging.getLogger(__name__)
CLOSE_WAIT_S = 10.0  # a worker told to end that has not ended by then is killed


class ConversionWorker:
    """The main process's end: starts the worker and sends it one conversion at a time."""

    def __init__(self) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "shufflekit.export.tflite_worker_main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self._lock = threading.Lock()
        self._used = False

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def convert(
        self,
        onnx_path: Path,
        targets: Sequence[Any],
        *,
        layout: str,
        calibration: np.ndarray | None,
        per_channel: bool,
        optimize: bool = True,
    ) -> dict[str, Any]:
        """Convert in the worker; returns its reply (``results``: seconds and options per target), or
        raises the error the conversion raised there."""
        with self._lock, tempfile.TemporaryDirectory(prefix="shufflekit-calibration-") as private:
            request: dict[str, Any] = {
                "onnx": str(onnx_path),
                "targets": [{"precision": t.precision, "path": str(t.path), "io_dtype": t.io_dtype} for t in targets],
                "layout": layout,
                "per_channel": per_channel,
                "optimize": optimize,
                "calibration": None,
            }
            if calibration is not None:
                request["calibration"] = str(Path(private) / "calibration.npy")
                np.save(request["calibration"], calibration)
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._used = True
            try:
                self._proc.stdin.write(json.dumps(request) + "\n")
                self._proc.stdin.flush()
                line = self._proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if not line:
                code = self._proc.wait()
                raise ExportError(
                    f"the TFLite converter process ended during the conversion (exit code {code})",
                    hint="run the same command again: only what is missing runs",
                )
        reply: dict[str, Any] = json.loads(line)
        for text in reply.get("warnings", []):
            log.warning("%s", text)
        if not reply["ok"]:
            kind = getattr(errors, reply["error"], ExportError)  # the worker's error, by its class
            if not (isinstance(kind, type) and issubclass(kind, ShufflekitError)):
                kind = ExportError
            raise kind(reply["message"], hint=reply.get("hint"))
        return reply

    def close(self) -> None:
        """End the worker. One never asked anything is killed at once, mid-import or not. Otherwise the end
        of its input makes it run its exit handlers (TensorFlow removes its temporary files there) and
        leave without unloading TensorFlow, which takes seconds (``tflite_worker_main``); one still busy
        after ``CLOSE_WAIT_S`` (a conversion of another thread) is killed."""
        if not self._used:
            self._proc.kill()
            self._proc.wait()
            return
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()  # end of input: the worker returns after its conversion
        try:
            self._proc.wait(timeout=CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


_shared: ConversionWorker | None = None  # kept for the process: a later run reuses its onnx2tf model
_wanted = False  # inside conversions_in_worker


def current() -> ConversionWorker | None:
    """The worker conversions go to now (inside ``conversions_in_worker``; started on first use), or
    None: conversions run in this process."""
    global _shared
    if not _wanted:
        return None
    if _shared is None or not _shared.alive:
        _shared = ConversionWorker()
        atexit.register(_shared.close)
    return _shared


def warm_up() -> None:
    """Start the worker now, if conversions go to one, so TensorFlow loads while this process works."""
    current()


@contextlib.contextmanager
def conversions_in_worker() -> Iterator[None]:
    """Send the TFLite conversions made inside to the worker process (see ``current`` and ``warm_up``)."""
    global _wanted
    if _wanted:  # nested: the outer run's worker
        yield
        return
    _wanted = True
    try:
        yield
    finally:
        _wanted = False
