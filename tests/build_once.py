"""Session fixtures that convert or train, built once per test run even when pytest-xdist runs the suite
on several workers (``make test`` runs ``-n 2``; a plain module: tests/ has no packages).

Without xdist, ``build_once`` simply builds into a fresh ``tmp_path_factory.mktemp(name)``. Under xdist
each worker is its own process with its own session, so every session fixture would be built once per
worker (the trained release and its quantized copy twice on 2 cores). Here the first worker to ask builds
into ``<the run's base temp>/shared/<name>`` while holding an exclusive lock on ``<name>.lock``; a worker
that asks meanwhile waits on the lock, then reads the built value (pickled beside the folder) instead of
building it again. A build that failed leaves no pickle, so the next worker that asks builds it afresh
(and fails in its own test, with its own traceback).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def worker() -> str | None:
    """The xdist worker id (gw0, gw1...), None when pytest runs in one process."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Where the workers of this run share their builds (None without xdist): beside the workers' own
    base temp folders, so pytest's clean-up of old runs removes it with them."""
    if worker() is None:
        return None
    return tmp_path_factory.getbasetemp().parent / "shared"


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], T]) -> T:
    """``build(folder)`` run once per test run in an empty folder of its own; its (picklable) value is
    what every worker gets. The folder is the same for all workers: treat it as read-only."""
    root = shared_root(tmp_path_factory)
    if root is None:
        return build(tmp_path_factory.mktemp(name))
    root.mkdir(parents=True, exist_ok=True)
    folder, value_file = root / name, root / f"{name}.pickle"
    with open(root / f"{name}.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if the worker dies
        if value_file.is_file():
            return pickle.loads(value_file.read_bytes())
        if folder.exists():  # what a failed build on another worker left
            shutil.rmtree(folder)
        folder.mkdir()
        value = build(folder)
        partial = value_file.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(value))
        partial.rename(value_file)
        return value
