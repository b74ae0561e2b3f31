"""The release folder's one transaction: a lock, a staging directory, an atomic commit, and the clean-up
of what an interrupted run of this tool left.

Every command that changes a folder (export, quantize, the release, report, every ``update_manifest``)
goes through ``ReleaseFolder``: files are made in a ``.shufflekit-staging-*`` directory inside the folder
(same file system, so the renames are atomic), renamed into place under the folder's lock, and the
manifest is written last; until then the old manifest stays in charge.

Ownership: a file in the folder is the tool's when the folder's manifest records it by name (artifacts,
the parity reference, the report files under ``files``), or when the commit journal names it (the names a
commit was renaming when it was killed, before its manifest was written). A commit never renames onto a
name the folder does not own (``check_replaceable``; commands run the same check before any work), so a
user's README.md, labels.txt, reference.npz or same-named model file is never replaced. Only names this
tool makes are ever cleaned up: ``.shufflekit-staging-*`` directories and ``.NAME.shufflekit-*.partial``
files (``files.atomic_path``); a user's ``.notes.partial`` or ``.staging-foo`` is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from .errors import UsageError
from .files import atomic_write_text, remove_partials

log = logging.getLogger(__name__)

LOCK_NAME = ".manifest.lock"
STAGING_PREFIX = ".shufflekit-staging-"
JOURNAL_NAME = ".shufflekit-commit.json"  # the names a commit is renaming in, until its manifest is saved
MANIFEST_FILE = "manifest.json"  # artifacts.MANIFEST_NAME (artifacts imports this module)
REPLACE_HINT = "move it away or choose another folder"

# flock serialises processes; the workers of one process (one per device) share an open-file table, so
# they are serialised by a thread lock first. Not reentrant: flock on a second descriptor would deadlock.
_process_lock = threading.Lock()


def recorded_names(data: Any) -> set[str]:
    """The file names a manifest's data records as the tool's: its artifacts, the parity reference and
    the report files (``files``). Tolerant of any shape (it only ever shrinks what is owned)."""
    if not isinstance(data, dict):
        return set()
    names: set[str] = set()
    artifacts = data.get("artifacts")
    for entry in artifacts if isinstance(artifacts, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            names.add(entry["name"])
    ref = data.get("reference")
    if isinstance(ref, dict) and isinstance(ref.get("file"), str):
        names.add(ref["file"])
    files = data.get("files")
    if isinstance(files, dict):
        names.update(name for name in files if isinstance(name, str))
    return {name for name in names if name and "/" not in name and name not in (".", "..")}


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
        prefix = f"{STAGING_PREFIX}{kind}-" if kind else STAGING_PREFIX
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=prefix, dir=self.path))
        except OSError as exc:
            raise UsageError(
                f"cannot write to {self.path} ({exc.strerror or exc})", hint="choose a folder you can write to"
            ) from None
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- ownership -----------------------------------------------------------------------------------
    def _journal(self) -> set[str]:
        try:
            names = json.loads((self.path / JOURNAL_NAME).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return set()
        return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()

    def _recorded(self) -> set[str]:
        try:
            data = json.loads((self.path / MANIFEST_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return set()
        return recorded_names(data)

    def owned_names(self) -> set[str]:
        """The names in the folder that are shufflekit's: what its manifest records, what an interrupted
        commit's journal names, and the manifest, lock and journal themselves."""
        return {MANIFEST_FILE, LOCK_NAME, JOURNAL_NAME} | self._recorded() | self._journal()

    def check_replaceable(self, names: Iterable[str], *, hint: str = REPLACE_HINT) -> None:
        """Refuse (UsageError naming the file) when any of ``names`` exists in the folder and the folder
        does not own it. Cheap: commands call it before any work, and ``commit`` again under the lock."""
        owned: set[str] | None = None
        for name in names:
            path = self.path / name
            if not (path.exists() or path.is_symlink()):
                continue
            owned = self.owned_names() if owned is None else owned
            if name not in owned:
                raise UsageError(f"{path} exists and shufflekit did not make it; refusing to replace it", hint=hint)

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
        folder holds now); if it raises, nothing is renamed. A name the folder holds but does not own is
        refused (``check_replaceable``) before anything moves. The names are journalled before the
        renames and the journal removed once the manifest is written, so a kill in between leaves files
        the next commit still knows as the tool's (and removes, when its manifest does not list them).
        ``after`` runs under the lock once the manifest is written (removing files the new manifest no
        longer lists). Returns the manifest."""
        names = list(names)
        with self.lock():
            current = manifest() if callable(manifest) else manifest
            self.check_replaceable(names)
            leftover = self._journal()
            journal = self.path / JOURNAL_NAME
            atomic_write_text(journal, json.dumps(sorted(leftover | set(names))))
            for name in names:
                os.replace(staging / name, self.path / name)
            current.save()
            if after is not None:
                after()
            orphans = leftover - set(names) - self._recorded() - {MANIFEST_FILE, LOCK_NAME, JOURNAL_NAME}
            for name in sorted(orphans):  # renamed in by a killed commit, listed by no manifest since
                path = self.path / name
                if path.is_file() and not path.is_symlink():
                    log.info("removing %s left by an interrupted commit", path)
                    path.unlink()
            journal.unlink(missing_ok=True)
        return current

    def remove_staging(self) -> int:
        """Remove the staging directories (``.shufflekit-staging-*``, never a user's ``.staging-foo``) a
        killed run left; returns how many."""
        count = 0
        if not self.path.is_dir():
            return 0
        for leftover in self.path.glob(f"{STAGING_PREFIX}*"):
            if leftover.is_dir() and not leftover.is_symlink():
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
