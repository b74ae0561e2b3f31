"""What runs on a phone or a board (and, in a fresh process, on this computer): stdlib + numpy only, the
runtimes imported lazily, Python 3.8+. One job in, one JSON object out (``job``).

    errors      RunnerError and its kinds (the host maps them: ``runtimes.base.translate``)
    tensors     TensorInfo, layouts, (de)quantization, batching and fixed-batch padding
    backends/   the backend registry: one module per runtime (onnxruntime, litert + litert_ops)
    session     opening a file in its backend
    bench       count validation, the timed loop, latency statistics, ``benchmark``
    procfs      the one parser of /proc facts (shared with the probe and the native tools)
    facts       host facts: CPU, cores, frequencies, thermal, memory, emulation, runtime versions
    job         job mode: ``run_job``, ``main``

The host pushes this package as one file, a zipapp built by ``runtimes.device_file`` and cached by the
sha256 of these sources: ``python3 shufflekit-device.pyz job.json`` on the device.
"""

from __future__ import annotations

from .errors import RunnerError
from .job import RUNNER_PROTOCOL

__all__ = ["RUNNER_PROTOCOL", "RunnerError"]
