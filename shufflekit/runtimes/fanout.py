"""The per-device fan-out of `profile` and `release`: one worker thread per device, all at once.

Devices are measured concurrently (each on its own CPU, so they do not slow each other down), but one
device is never given two workers: two timings on one CPU would disturb each other, so a device named
twice (by two spellings of one address) is refused. Every device runs to its end and the first failure
is raised after the others finished, so what they measured is kept; an interruption (Ctrl-C) sets the
``stop`` event every worker is handed, and they stop after their current artifact.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import UsageError

T = TypeVar("T")


def device_keys(devices: Sequence[str], ssh_config: Any = None) -> dict[str, str]:
    """address as given -> the key its results are filed under; a device named twice is an error."""
    from .remote import parse_address

    keys: dict[str, str] = {}
    for device in devices:
        key = parse_address(device, ssh_config=ssh_config).key
        if key in keys.values():
            raise UsageError(f"--device names {key} more than once", hint="give each device once")
        keys[device] = key
    return keys


def per_device(work: Mapping[str, Callable[[threading.Event], T]]) -> dict[str, T]:
    """Run ``work[device](stop)`` for every device at once; their results by device, in the given order."""
    stop = threading.Event()
    if len(work) == 1:  # no thread for one device: a traceback and Ctrl-C read as usual
        ((device, job),) = work.items()
        return {device: job(stop)}
    with ThreadPoolExecutor(max_workers=max(1, len(work)), thread_name_prefix="device") as pool:
        futures: dict[str, Future[T]] = {device: pool.submit(job, stop) for device, job in work.items()}
        try:
            for future in futures.values():
                future.exception()  # wait for every device, whatever the others did
        except BaseException:  # Ctrl-C while waiting: the workers stop after their current artifact
            stop.set()
            raise
    failed = [f.exception() for f in futures.values() if f.exception() is not None]
    if failed:
        raise failed[0]  # type: ignore[misc]
    return {device: future.result() for device, future in futures.items()}
