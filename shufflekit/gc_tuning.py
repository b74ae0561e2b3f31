"""Python's cyclic garbage collector, tuned for a process that does one long batch of work.

By default the collector runs after every 700 net allocations of container objects, and its older
generations walk every object alive: with torch, onnx and TensorFlow imported, hundreds of thousands of
them, again and again while the quantizer and the converters allocate millions of short-lived objects.
Measured on the v2 1.0x release (`benchmarks/release_demo.py --v2-1x`, 2-core AMD EPYC): the collector
took about 4 % of all CPU samples in the main process, and this tuning took the release from 48-56 s to
44-49 s (five runs each, interleaved).
"""

from __future__ import annotations

import gc

FIRST_GENERATION_THRESHOLD = 50_000  # allocations between young collections (default 700)
OLDER_THRESHOLDS = (20, 20)  # young collections per middle one, middle per full one (default 10, 10)


def for_batch_work() -> None:
    """Freeze what is alive now (the imported modules: never garbage in a command's life) out of the
    collector's sight, and collect the young generation less often. For a command's process, not for a
    library caller's: frozen objects are never freed."""
    gc.freeze()
    gc.set_threshold(FIRST_GENERATION_THRESHOLD, *OLDER_THRESHOLDS)
