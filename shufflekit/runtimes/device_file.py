"""The device package as the one file pushed to a device: a zipapp of ``shufflekit/device/`` (stdlib
``zipapp``), run there as ``python3 shufflekit-device.pyz job.json``.

It is built on the host and cached by the sha256 of the package's sources, under
``$SHUFFLEKIT_CACHE/device/`` (default ``~/.cache/shufflekit/device/``): a changed source makes a new
file, an unchanged tree reuses the cached one. The file is written under a temporary name and renamed,
so a reader never sees half of one and two builders racing both end with a complete file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipapp
from pathlib import Path

from ..errors import UsageError
from ..files import cache_root

FILE_NAME = "shufflekit-device.pyz"
# Inside the zipapp the package is a top-level package of its own name, so it never shadows (or is
# shadowed by) a shufflekit installed for the device's Python.
PACKAGE = "shufflekit_device"
SOURCE = Path(__file__).resolve().parents[1] / "device"
_MAIN = "import sys\n\nfrom shufflekit_device.job import main\n\nsys.exit(main())\n"


def sources(source: Path = SOURCE) -> list[Path]:
    """The package's Python sources (what goes into the file), in a fixed order."""
    return sorted(p for p in source.rglob("*.py") if "__pycache__" not in p.parts)


def sources_sha256(source: Path = SOURCE) -> str:
    digest = hashlib.sha256((PACKAGE + "\0" + _MAIN + "\0").encode())  # the layout of the file too
    for path in sources(source):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def device_file(source: Path = SOURCE, cache: Path | None = None) -> Path:
    """The zipapp of ``source`` (built now unless the cache holds one of these very sources)."""
    files = sources(source)
    if not files:
        raise UsageError(f"the device package {source} is missing", hint="reinstall shufflekit")
    sha = sources_sha256(source)[:32]
    folder = (cache or cache_root() / "device") / sha
    target = folder / FILE_NAME
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        if cache is not None:
            raise
        # an unwritable home (a CI sandbox): this user's temporary folder instead
        folder = Path(tempfile.gettempdir()) / f"shufflekit-{os.getuid()}" / "device" / sha
        target = folder / FILE_NAME
        if target.is_file():
            return target
        folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as tmp:
        stage = Path(tmp) / "stage"
        for path in files:
            dest = stage / PACKAGE / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        (stage / "__main__.py").write_text(_MAIN, encoding="utf-8")
        built = Path(tmp) / FILE_NAME
        zipapp.create_archive(stage, built, compressed=True)
        os.replace(built, target)
    return target
