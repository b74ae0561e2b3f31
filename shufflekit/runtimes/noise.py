"""Whether a latency measurement can be trusted: its spread, and how busy the rest of the device was while
it was timed (the device measures the other processes' CPU use over the timed loop, ``device.procfs``).
A figure taken on a busy machine is still recorded, but never without saying so."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A p99 this many times the p50, or a standard deviation above half the mean: the runs did not agree.
SPREAD_P99_OVER_P50 = 2.0
SPREAD_STD_OVER_MEAN = 0.5
# Other processes keeping this many cores busy while timing (of any device: one busy core is enough to
# move a single-threaded figure by tens of percent on a small board).
BUSY_OTHER_CORES = 0.5


def noise_warning(latency_ms: Mapping[str, float | None], contention: Mapping[str, Any] | None) -> str | None:
    """Why these figures are unreliable, in a few words, or None when nothing says so."""
    reasons = []
    p50, p99 = latency_ms.get("p50_ms"), latency_ms.get("p99_ms")
    mean, std = latency_ms.get("mean_ms"), latency_ms.get("std_ms")
    if p50 and p99 and p99 > SPREAD_P99_OVER_P50 * p50:
        reasons.append(f"p99 is {p99 / p50:.1f}x the p50")
    elif mean and std is not None and std > SPREAD_STD_OVER_MEAN * mean:
        reasons.append(f"std is {std / mean:.0%} of the mean")
    busy = (contention or {}).get("other_busy_cores")
    if busy is not None and busy >= BUSY_OTHER_CORES:
        reasons.append(f"other processes kept {busy:.1f} cores busy while it was timed")
    return "; ".join(reasons) or None
