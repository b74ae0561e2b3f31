"""The release folder's one transaction: a lock, a staging directory, an atomic commit, and the clean-up
of what an interrupted run of this tool left.

Every command that changes a folder (export, quantize, the release, every ``update_manifest``) goes
through ``ReleaseFolder``: files are made in a ``.staging-*`` directory inside the folder (same file
system, so the renames are atomic), renamed into place under the folder's lock, and the manifest is
written last; until then the old manifest stays in charge. Only names this tool makes are ever cleaned
up: ``.staging-*`` directories and ``.*.partial`` files (``files.atomic_path``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from .files import remove_partials

log = logging.getLogger(__name__)

LOCK_NAME = ".manifest.lock"
STAGING_PREFIX = ".staging-"

# flock serialises processes; the workers of one process (one per device) share an open-file table, so
# they are serialised by a thread lock first. Not reentrant: flock on a second descriptor would deadlock.
_process_lock = threading.Lock()


class Saveable(Protocol):
    def save(self) -> None: ...


class ReleaseFolder:
    """A release folder on disk. Cheap to make; holds no open file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ReleaseFolder({str(self.path)!r})"

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_NAME

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The one lock on the folder: no one reads-modifies-writes the manifest (or commits) meanwhile."""
        with _process_lock:
            self.path.mkdir(parents=True, exist_ok=True)
            with open(self.lock_file, "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def staging(self, kind: str = "") -> Iterator[Path]:
        """A fresh staging directory inside the folder, removed when the block ends (whatever was not
        committed out of it, on success; everything, on failure)."""
        self.path.mkdir(parents=True, exist_ok=True)
        prefix = f"{STAGING_PREFIX}{kind}-" if kind else STAGING_PREFIX
        staging = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path))
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def commit(
        self,
        staging: Path,
        names: Iterable[str],
        manifest: Saveable | Callable[[], Saveable],
        *,
        after: Callable[[], Any] | None = None,
    ) -> Saveable:
        """Under the lock: rename each staged file in ``names`` into the folder, then write the manifest
        (the commit point). ``manifest`` may be a callable that builds it under the lock (from what the
        folder holds now); if it raises, nothing is renamed. ``after`` runs under the lock once the
        manifest is written (removing files the new manifest no longer lists). Returns the manifest."""
        with self.lock():
            current = manifest() if callable(manifest) else manifest
            for name in names:
                os.replace(staging / name, self.path / name)
            current.save()
            if after is not None:
                after()
        return current

    def remove_staging(self) -> int:
        """Remove the staging directories a killed run left; returns how many."""
        count = 0
        if not self.path.is_dir():
            return 0
        for leftover in self.path.glob(f"{STAGING_PREFIX}*"):
            if leftover.is_dir():
                log.info("removing %s left by an interrupted run", leftover)
                shutil.rmtree(leftover, ignore_errors=True)
                count += 1
        return count

    def clean_leftovers(self) -> int:
        """Remove the temporary files and staging directories an interrupted run left. Returns how many."""
        if not self.path.is_dir():
            return 0
        count = remove_partials(self.path) + self.remove_staging()
        if count:
            log.info("removed %d leftover temporary file(s) from %s", count, self.path)
        return count
