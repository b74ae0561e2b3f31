"""File helpers every stage uses: write under a temporary name and rename, so a crash or a bad input
never leaves a half-written file that looks whole; and content hashes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20
_FULL_OR_READ_ONLY = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
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
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}{PARTIAL_MARK}", suffix=(suffix or "") + ".partial", dir=target.parent
        )
    except OSError as exc:
        if exc.errno in _FULL_OR_READ_ONLY:  # name the file meant, not a temporary name
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # the bytes reach the disk before the name does
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a release file is as readable as any other
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in _FULL_OR_READ_ONLY and exc.filename in (None, str(tmp)):  # a full disk names no file
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        raise
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


def not_regular(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it is not a regular file ("a FIFO", "a folder", ...), None for a regular file
    (symlinks followed). A FIFO, device or socket is refused before it is opened: reading one blocks forever."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_writable(folder: str | os.PathLike[str], what: str) -> None:
    """Refuse a folder this process cannot write, before any work whose end is a write into it (the
    manifest's lock and its save): a real probe, a temporary file of ``atomic_path``'s naming made and
    removed, since root passes ``os.access`` on a read-only mount. ``what`` says why the command writes,
    e.g. 'validate records its results in DIR/manifest.json'."""
    from .errors import UsageError

    folder = Path(folder)
    try:
        fd, name = tempfile.mkstemp(prefix=f".write-probe{PARTIAL_MARK}", suffix=".partial", dir=folder)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise UsageError(f"{folder} is read-only: {what}", hint="copy the folder somewhere writable") from None
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UsageError(f"{folder} is on a full disk: {what}", hint="free some space and run it again") from None
        raise
    os.close(fd)
    os.unlink(name)
