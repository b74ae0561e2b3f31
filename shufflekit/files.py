"""File helpers every stage uses: write under a temporary name and rename, so a crash or a bad input
never leaves a half-written file that looks whole; and content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20
PARTIAL_MARK = ".shufflekit-"  # in every temporary name atomic_path makes, and only in those
PARTIAL_GLOB = f".*{PARTIAL_MARK}*.partial"
_UMASK = os.umask(0o022)  # read once at import (os.umask can only be read by setting it)
os.umask(_UMASK)


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``, on error delete it.

    The temporary name is ``.NAME.shufflekit-XXXXXXXX[SUFFIX].partial`` (``PARTIAL_GLOB``): it starts
    with '.' so no reader mistakes it for an artifact, and carries the tool's mark so the clean-up
    (``remove_partials``) never takes a user's own ``.notes.partial`` for one of ours. ``suffix`` keeps
    an extension tools insist on (onnx.save, torch.save do not care; some converters do).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}{PARTIAL_MARK}", suffix=(suffix or "") + ".partial", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # the bytes reach the disk before the name does
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a release file is as readable as any other
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def remove_partials(folder: str | os.PathLike[str]) -> int:
    """Delete the temporary files (``atomic_path``'s ``.NAME.shufflekit-*.partial``) a killed process left
    behind; returns how many. Only files of that mark: a user's ``.notes.partial`` or a folder of that
    name is not one this function's writers make."""
    count = 0
    for leftover in Path(folder).glob(PARTIAL_GLOB):
        if leftover.is_file() or leftover.is_symlink():
            leftover.unlink(missing_ok=True)
            count += 1
    return count


def cache_root() -> Path:
    """shufflekit's cache (the demo set, device files, board downloads): ``$SHUFFLEKIT_CACHE``, else
    ``$XDG_CACHE_HOME/shufflekit``, else ``~/.cache/shufflekit``."""
    explicit = os.environ.get("SHUFFLEKIT_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shufflekit"
