"""The converter process of ``export.tflite_worker``: reads conversion requests, one JSON line each, on
stdin, converts with ``export.tflite.convert_to_tflite`` and answers on a private descriptor."""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import ShufflekitError


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
                optimize=request["optimize"],
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
    from ..gc_tuning import for_batch_work

    for_batch_work()  # TensorFlow's modules frozen out of the collector's walks
    try:
        _serve(sys.stdin, replies)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the main process reports it
        sys.exit(130)
    # the end of the input: the exit handlers run (TensorFlow's removes the autograph files it wrote to
    # the temporary folder), then the process leaves without unloading TensorFlow, which takes seconds
    atexit._run_exitfuncs()
    replies.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
