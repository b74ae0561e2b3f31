"""TFLite conversions in a process of their own, for a release.

A release converts to TFLite twice from one ONNX file: fp32 in its export stage, fp16/dynamic/int8 in its
quantize stage. In a process of its own the converter keeps its onnx2tf model between the two (see
``tflite._keras_model``), imports TensorFlow while the main process exports the ONNX file, and makes the
quantize stage's TFLite files while the main process quantizes the ONNX ones: on two cores that stage
takes the longer of the two, not their sum. TensorFlow's console output, which a conversion sends to a log
file by redirecting the process's descriptors 1 and 2, stays in that process too, so the main process's
terminal is never redirected under a progress bar.

Protocol: one JSON request per line on the worker's stdin, one JSON reply per line on a private
descriptor (the worker's own stdout goes to its stderr, so nothing TensorFlow prints can corrupt a
reply). Calibration images travel as a .npy file in a private temporary folder. Warnings the conversion
logs come back with the reply and are logged again here. The worker ends at the end of its input: when
the main process closes it, or dies.
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
from typing import IO, Any

import numpy as np

from .. import errors
from ..errors import ExportError, ShufflekitError

log = logging.getLogger(__name__)


class ConversionWorker:
    """The main process's end: starts the worker and sends it one conversion at a time."""

    def __init__(self) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "shufflekit.export.tflite_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self._lock = threading.Lock()

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
    ) -> dict[str, Any]:
        """Convert in the worker; returns its reply (``results``: seconds and options per target), or
        raises the error the conversion raised there."""
        with self._lock, tempfile.TemporaryDirectory(prefix="shufflekit-calibration-") as private:
            request: dict[str, Any] = {
                "onnx": str(onnx_path),
                "targets": [{"precision": t.precision, "path": str(t.path), "io_dtype": t.io_dtype} for t in targets],
                "layout": layout,
                "per_channel": per_channel,
                "calibration": None,
            }
            if calibration is not None:
                request["calibration"] = str(Path(private) / "calibration.npy")
                np.save(request["calibration"], calibration)
            assert self._proc.stdin is not None and self._proc.stdout is not None
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
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()  # end of input: the worker returns
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


_shared: ConversionWorker | None = None
_current: ConversionWorker | None = None


def current() -> ConversionWorker | None:
    """The worker conversions go to now (inside ``conversions_in_worker``), or None: in this process."""
    return _current


@contextlib.contextmanager
def conversions_in_worker() -> Iterator[None]:
    """Send the TFLite conversions made inside to the worker process, started now (so TensorFlow loads
    meanwhile) or kept from an earlier run of this process, with its onnx2tf model."""
    global _shared, _current
    if _current is not None:  # nested: the outer run's worker
        yield
        return
    if _shared is None or not _shared.alive:
        _shared = ConversionWorker()
        atexit.register(_shared.close)
    _current = _shared
    try:
        yield
    finally:
        _current = None


# -- the worker's end -------------------------------------------------------------------------------------
class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage())


def _serve(requests: IO[str], replies: IO[str]) -> None:
    from .tflite import TFLiteTarget, convert_to_tflite

    collect = _Collect()
    logging.getLogger("shufflekit").addHandler(collect)
    for line in requests:
        request = json.loads(line)
        collect.texts.clear()
        try:
            calibration = np.load(request["calibration"]) if request["calibration"] else None
            conversion = convert_to_tflite(
                request["onnx"],
                [TFLiteTarget(t["precision"], Path(t["path"]), t["io_dtype"]) for t in request["targets"]],
                layout=request["layout"],
                calibration=calibration,
                per_channel=request["per_channel"],
            )
            reply: dict[str, Any] = {
                "ok": True,
                "results": [{"seconds": r.seconds, "options": dict(r.options)} for r in conversion.results],
                "onnx2tf_seconds": conversion.onnx2tf_seconds,
                "seconds": conversion.seconds,
            }
        except ShufflekitError as exc:
            reply = {"ok": False, "error": type(exc).__name__, "message": exc.message, "hint": exc.hint}
        except Exception as exc:  # noqa: BLE001 - a bug in the conversion: the main process reports it in one line
            reply = {"ok": False, "error": "ExportError", "message": f"TFLite conversion failed: {exc}"[:300]}
        reply["warnings"] = list(collect.texts)
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()


def main() -> None:
    replies = os.fdopen(os.dup(1), "w")  # a private descriptor for the replies
    os.dup2(2, 1)  # anything else printed goes where stderr goes
    sys.stdout = sys.stderr
    try:
        import onnx2tf  # noqa: F401 - loaded now, while the main process exports the ONNX file
        import tensorflow  # noqa: F401
    except ImportError:
        pass  # the first request reports the missing backend in one line
    try:
        _serve(sys.stdin, replies)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the main process reports it
        sys.exit(130)


if __name__ == "__main__":
    main()
