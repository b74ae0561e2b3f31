"""Emulated boards: a folder holding a launcher ``python`` that behaves like a board's Python, so the
ARM64 kernels and the x86 kernels without AVX-512/VNNI can be run and checked on any Linux host,
without the hardware. Reach one like any device: ``local?python=BOARD/python``, or
``ssh://HOST?python=BOARD/python`` when the folder lies on HOST.

Kinds:

- ``arm64``: Debian 12's arm64 Python 3.11 userland (its .deb files unpacked with ``dpkg-deb -x``: no
  maintainer scripts, no binfmt_misc) with aarch64 wheels of numpy, onnxruntime and ai-edge-litert in
  its site-packages, run by Debian's ``qemu-aarch64-static`` in user mode.
- ``x86-avx2``: a venv of this host's Python with the lean device pins (scripts/device-requirements.txt)
  run by ``qemu-x86_64-static -cpu Haswell``: an x86-64 CPU with AVX2 and FMA but neither AVX-512 nor
  VNNI, so ONNX Runtime, XNNPACK and numpy take their AVX2 kernels whatever the host has.

The launcher finds its folder from its own path, so the board keeps working over ssh with a plain PATH
(and after the folder is moved); qemu is called by the absolute path found at build time. It exports
``SHUFFLEKIT_EMULATOR`` (one line: the qemu build and CPU) so the device side can tell it is emulated,
``SHUFFLEKIT_EMULATED_CPU`` (the -cpu model, where one is set) and ``PYTHONNOUSERSITE=1``, drops the
caller's PYTHONPATH/PYTHONHOME (a board sees none of the host's packages), then ``exec``s qemu so
stdin/stdout/stderr, signals and the exit code pass through.
Emulation is slow (roughly 50-250x native): a board checks that code and kernels work, not how fast.
There is no binfmt_misc: a board's Python cannot start other aarch64 programs as subprocesses.

Only ``build_board`` downloads (apt-get download, pip download), into a cache
(``$SHUFFLEKIT_CACHE/boards``, else ``$XDG_CACHE_HOME/shufflekit/boards``, else
``~/.cache/shufflekit/boards``) so a rebuild runs offline. A build is made in a temporary sibling folder
and renamed into place when it has passed its check; a failure removes only that temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ...errors import BackendMissingError, DeviceError, UsageError
from ...files import cache_root

BOARD_KINDS = ("arm64", "x86-avx2")
MANIFEST = "board.json"
LAUNCHER = "python"
MADE_BY = "shufflekit"
FORMAT = 1  # bump when the folder's layout changes, so old boards count as stale

# The x86 board holds exactly the lean device environment the ssh tests use (keep in step with
# scripts/device-requirements.txt; a test checks they agree).
X86_REQUIREMENTS = ("numpy==1.26.4", "tflite-runtime==2.14.0", "onnxruntime==1.31.1")
# Measured under qemu 7.2: onnxruntime 1.32 and ai-edge-litert 2.3 for aarch64 segfault at load there;
# these load and run. numpy<2 like a board's (ai-edge-litert 1.4.0 works with it).
ARM64_REQUIREMENTS = ("numpy==1.26.4", "onnxruntime==1.22.1", "ai-edge-litert==1.4.0")
# Debian 12's arm64 packages for python3.11. The first line is what the interpreter and the runtimes
# need (onnxruntime and LiteRT: libstdc++/libgcc; ai-edge-litert imports ctypes: libffi); the rest
# makes the usual stdlib modules (lzma, bz2, sqlite3, readline, curses, crypt, uuid) importable.
# Debian 12's python3.11 carries its own libmpdec, so there is no libmpdec3.
ARM64_DEBS = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "libexpat1",
    "zlib1g",
    "libssl3",
    "libffi8",
    "libgcc-s1",
    "libstdc++6",
    "libbz2-1.0",
    "liblzma5",
    "libcrypt1",
    "libuuid1",
    "libsqlite3-0",
    "libncursesw6",
    "libtinfo6",
    "libreadline8",
)
# Haswell less the features qemu's TCG cannot emulate and would warn about on every thread (TSX hle/rtm,
# pcid, x2apic, tsc-deadline, invpcid): the CPU the guest sees either way, without the noise on stderr.
HASWELL = "Haswell,-hle,-rtm,-pcid,-x2apic,-tsc-deadline,-invpcid"
APT_HINT = "install Debian's qemu-user-static as root: apt-get install qemu-user-static"

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class _Kind:
    kind: str
    arch: str
    qemu: str  # the qemu-user binary's name
    cpu: str | None  # the -cpu model recorded in board.json (None: qemu's default)
    requirements: tuple[str, ...]


_KINDS = {
    "arm64": _Kind("arm64", "aarch64", "qemu-aarch64-static", None, ARM64_REQUIREMENTS),
    "x86-avx2": _Kind("x86-avx2", "x86_64", "qemu-x86_64-static", "Haswell", X86_REQUIREMENTS),
}


@dataclass(frozen=True)
class Board:
    """A built board: ``python`` is the launcher to give a device address (``?python=``)."""

    folder: Path
    kind: str
    arch: str
    emulator: str
    python: Path
    packages: Mapping[str, str] = field(hash=False)
    python_version: str = ""
    qemu: str = ""
    cpu: str | None = None
    built_at: str = ""

    @property
    def address(self) -> str:
        """Filed under its own name (the folder's), so it is told apart from this computer and other boards."""
        return f"local?python={self.python}&name={self.label}"

    @property
    def label(self) -> str:
        """A name the device address accepts: letters, digits and ._+-, at most 64, never 'local'."""
        name = "".join(c if c.isalnum() or c in "._+-" else "-" for c in self.folder.name.lstrip(".")) or self.kind
        if not (name[0].isalnum() or name[0] == "_") or name == "local":
            name = f"board-{name}"
        return name[:64]

    def to_dict(self) -> dict:
        return {
            "folder": str(self.folder),
            "kind": self.kind,
            "arch": self.arch,
            "emulator": self.emulator,
            "python": str(self.python),
            "python_version": self.python_version,
            "qemu": self.qemu,
            "cpu": self.cpu,
            "packages": dict(self.packages),
            "built_at": self.built_at,
            "address": self.address,
        }


def cache_dir() -> Path:
    """Where downloaded .deb files and wheels are kept between builds."""
    return cache_root() / "boards"


def load_board(folder: str | os.PathLike[str]) -> Board:
    """The board built in ``folder``, from its board.json."""
    folder = Path(folder).absolute()
    data = _read_manifest(folder)
    if data is None:
        raise UsageError(
            f"{folder} is not a board: it has no readable {MANIFEST}",
            hint="build one with `shufflekit board build --kind arm64|x86-avx2 DIR`",
        )
    if data.get("made_by") != MADE_BY or data.get("kind") not in _KINDS:
        raise UsageError(
            f"{folder / MANIFEST} is not a shufflekit board manifest",
            hint="build one with `shufflekit board build --kind arm64|x86-avx2 DIR`",
        )
    return _board_from(folder, data)


def build_board(
    kind: str, folder: str | os.PathLike[str], *, force: bool = False, progress: ProgressFn | None = None
) -> Board:
    """Build (or find up to date) a board of ``kind`` in ``folder`` and check that it runs.

    A folder that exists and is not empty is refused unless it holds a shufflekit board: one of the same
    kind and packages is kept as it is (up to date); another one is replaced only with ``force``.
    """
    if kind not in _KINDS:
        raise UsageError(f"unknown board kind {kind!r}", hint=f"use one of {', '.join(BOARD_KINDS)}")
    spec = _KINDS[kind]
    say = progress or (lambda line: None)
    target = Path(folder).absolute()
    if any(c in str(target) for c in "&?=#\n"):  # the launcher path goes into a device address
        raise UsageError(
            f"board folder {target} has a character a device address cannot carry (& ? = #)",
            hint="choose a folder path without them",
        )
    existing = _check_target(target, spec, force)
    if existing is not None:
        say(f"{target}: {kind} board is up to date ({_packages_text(existing.packages)})")
        return existing

    started = time.monotonic()
    qemu = _ensure_qemu(spec.qemu, say)
    emulator = _emulator_text(spec, qemu)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(target)
        tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.partial-", dir=target.parent))
    except OSError as exc:
        raise UsageError(
            f"cannot make the board folder {target}: {exc.strerror or exc}", hint="choose a folder you can write to"
        ) from None
    try:
        if kind == "arm64":
            _make_arm64(tmp, qemu, emulator, spec, say)
        else:
            _make_x86(tmp, qemu, emulator, spec, say)
        say(f"checking the board: numpy, onnxruntime and the TFLite interpreter under {spec.qemu}")
        facts = _verify(tmp / LAUNCHER, spec)
        if facts["machine"] != spec.arch:
            raise DeviceError(
                f"the {kind} board reports machine {facts['machine']!r}, not {spec.arch!r}",
                hint=f"check that {qemu} is a qemu-user build for {spec.arch}",
            )
        manifest = {
            "made_by": MADE_BY,
            "format": FORMAT,
            "kind": kind,
            "arch": spec.arch,
            "emulator": emulator,
            "qemu": qemu,
            "cpu": spec.cpu,
            "python": facts["python"],
            "packages": facts["packages"],
            "requirements": list(spec.requirements),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    board = load_board(target)
    say(
        f"built the {kind} board in {target} ({_size_mb(target):.0f} MB, {time.monotonic() - started:.0f} s): "
        f"Python {board.python_version}, {_packages_text(board.packages)}"
    )
    return board


# -- the target folder ------------------------------------------------------------------------------


def _remove_leftovers(target: Path) -> None:
    """A build killed by a signal leaves its own NAME.partial-* / NAME.old-* folders beside the board
    (hundreds of MB): they carry this tool's prefixes and no finished board.json, so they are removed."""
    for prefix in (f"{target.name}.partial-", f"{target.name}.old-"):
        for leftover in target.parent.glob(f"{prefix}*"):
            if (
                leftover.is_dir()
                and not leftover.is_symlink()
                and (prefix.endswith(".partial-") or not (leftover / MANIFEST).exists())
            ):
                shutil.rmtree(leftover, ignore_errors=True)


def _check_target(target: Path, spec: _Kind, force: bool) -> Board | None:
    """None when the board must be built; the board itself when it is up to date. Raises when the
    folder may not be touched."""
    if not target.exists() and not target.is_symlink():
        return None
    if not target.is_dir():
        raise UsageError(f"{target} exists and is not a folder", hint="give a new or empty folder for the board")
    if not any(target.iterdir()):
        return None
    data = _read_manifest(target)
    if data is None or data.get("made_by") != MADE_BY:
        raise UsageError(
            f"{target} is not empty and holds no shufflekit board; nothing was changed",
            hint="give a new or empty folder for the board",
        )
    stale = _stale_reason(target, data, spec)
    if stale is None:
        return _board_from(target, data)
    if not force:
        raise UsageError(
            f"{target} is not the {spec.kind} board with {', '.join(spec.requirements)}: {stale}",
            hint="add --force to rebuild it in place",
        )
    return None


def _stale_reason(target: Path, data: dict, spec: _Kind) -> str | None:
    """Why the board in ``target`` is not the one a build would make now; None when it is up to date.
    The launcher must be the one this qemu would get now, so a qemu upgrade makes a board stale."""
    if data.get("kind") != spec.kind:
        return f"it holds an {data.get('kind')} board"
    if tuple(data.get("requirements") or ()) != spec.requirements:
        return f"its board has {', '.join(data.get('requirements') or ()) or 'other packages'}"
    qemu = _find_qemu(spec.qemu)
    if qemu is None:
        return f"{spec.qemu} is no longer installed"
    try:
        launcher = (target / LAUNCHER).read_text()
    except (OSError, UnicodeDecodeError):
        launcher = None
    if (
        data.get("format") != FORMAT
        or qemu != data.get("qemu")
        or not os.access(target / LAUNCHER, os.X_OK)
        or launcher != _launcher_text(spec, qemu, _emulator_text(spec, qemu))
    ):
        return "its board was made for another qemu or by another shufflekit"
    return None


def _read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _board_from(folder: Path, data: dict) -> Board:
    try:
        return Board(
            folder=folder,
            kind=data["kind"],
            arch=data["arch"],
            emulator=data["emulator"],
            python=folder / LAUNCHER,
            packages=dict(data.get("packages") or {}),
            python_version=str(data.get("python") or ""),
            qemu=str(data.get("qemu") or ""),
            cpu=data.get("cpu"),
            built_at=str(data.get("built_at") or ""),
        )
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{folder / MANIFEST} lacks {exc}", hint="rebuild the board with --force") from None


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished board onto ``target``; an old board there is moved aside first and deleted
    after, or put back when the rename fails."""
    old = None
    if target.exists():
        if any(target.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f"{target.name}.old-", dir=target.parent))
            old.rmdir()
            target.rename(old)
        else:
            target.rmdir()
    try:
        tmp.rename(target)
    except OSError as exc:
        if old is not None:
            old.rename(target)
        raise DeviceError(f"cannot move the new board to {target}: {exc.strerror}") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _size_mb(folder: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total / 1e6


def _packages_text(packages: Mapping[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in packages.items())


# -- qemu ---------------------------------------------------------------------------------------------


def _find_qemu(name: str) -> str | None:
    """qemu's absolute path: on PATH, else where Debian puts it (PATH over ssh may be short)."""
    found = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/local/bin/{name}") if os.access(p, os.X_OK)), None
    )
    return str(Path(found).resolve()) if found else None


def _ensure_qemu(name: str, say: ProgressFn) -> str:
    found = _find_qemu(name)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BackendMissingError(f"{name} is not installed", hint=APT_HINT)
    say("installing qemu-user-static (apt-get)")
    _apt(["install", "-y", "--no-install-recommends", "qemu-user-static"], update_first_on_failure=True)
    found = _find_qemu(name)
    if not found:
        raise BackendMissingError(f"qemu-user-static was installed but {name} is not there", hint=APT_HINT)
    return found


def _emulator_text(spec: _Kind, qemu: str) -> str:
    out = _run([qemu, "--version"], f"{spec.qemu} --version", timeout=30).stdout
    match = re.search(r"version\s+(\S+)", out)
    version = match.group(1) if match else "(unknown version)"
    cpu = f" -cpu {spec.cpu}" if spec.cpu else ""
    return f"{spec.qemu} {version}{cpu} (user-mode), {spec.arch}"


# -- the arm64 board ------------------------------------------------------------------------------------


def _make_arm64(tmp: Path, qemu: str, emulator: str, spec: _Kind, say: ProgressFn) -> None:
    debs = _arm64_debs(say)
    root = tmp / "root"
    root.mkdir()
    say(f"unpacking {len(debs)} Debian arm64 packages (dpkg-deb -x, no maintainer scripts)")
    for deb in debs:
        _run(["dpkg-deb", "-x", str(deb), str(root)], f"dpkg-deb -x {deb.name}", timeout=300)
    python = root / "usr" / "bin" / "python3.11"
    if not python.exists():
        raise DeviceError(
            "python3.11-minimal:arm64 unpacked without usr/bin/python3.11",
            hint=f"delete {cache_dir() / 'debs-arm64'} and build again",
        )
    # Debian's site.py adds PREFIX/local/lib/python3.11/dist-packages where it exists: pip's place on a Pi.
    site = root / "usr" / "local" / "lib" / "python3.11" / "dist-packages"
    site.mkdir(parents=True)
    glibc = _glibc_version(debs)
    platforms = [f"manylinux_2_{minor}_aarch64" for minor in range(glibc[1], 16, -1)] + ["manylinux2014_aarch64"]
    pip_flags = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    for platform in platforms:
        pip_flags += ["--platform", platform]
    _pip_install(
        [sys.executable, "-m", "pip"],
        cache_dir() / "wheels-aarch64-cp311",
        spec.requirements,
        ["--target", str(site)] + pip_flags,
        pip_flags,
        f"{spec.arch}, glibc {glibc[0]}.{glibc[1]}",
        say,
    )
    _compile([root / "usr" / "lib" / "python3.11", site])
    _write_launcher(tmp, spec, qemu, emulator)


def _arm64_debs(say: ProgressFn) -> list[Path]:
    """The .deb files of ARM64_DEBS, from the cache or downloaded into it with apt-get download."""
    folder = cache_dir() / "debs-arm64"
    folder.mkdir(parents=True, exist_ok=True)
    missing = [name for name in ARM64_DEBS if not _cached_deb(folder, name)]
    if missing:
        for tool in ("apt-get", "dpkg", "dpkg-deb"):
            if shutil.which(tool) is None:
                raise BackendMissingError(
                    f"the arm64 board needs Debian's {tool}, which is not here",
                    hint="build it on Debian or Ubuntu (the .deb files come from Debian 12)",
                )
        foreign = _run(
            ["dpkg", "--print-foreign-architectures"], "dpkg --print-foreign-architectures", timeout=60
        ).stdout.split()
        if "arm64" not in foreign:
            if os.geteuid() != 0:
                raise BackendMissingError(
                    "dpkg does not know the arm64 architecture",
                    hint="as root: dpkg --add-architecture arm64 && apt-get update",
                )
            say("adding the arm64 architecture to dpkg (dpkg --add-architecture arm64; apt-get update)")
            _run(["dpkg", "--add-architecture", "arm64"], "dpkg --add-architecture arm64", timeout=60)
            _apt(["update"])
        say(f"downloading {len(missing)} Debian arm64 packages (apt-get download)")
        argv = ["download"] + [f"{name}:arm64" for name in missing]
        if os.geteuid() == 0:  # _apt cannot write into root's cache folder; download as root instead
            argv = ["-o", "APT::Sandbox::User=root"] + argv
        _apt(argv, cwd=folder, update_first_on_failure=os.geteuid() == 0)
    debs = []
    for name in ARM64_DEBS:
        deb = _cached_deb(folder, name)
        if deb is None:
            raise DeviceError(
                f"apt-get download gave no {name}:arm64 package",
                hint="check that Debian's bookworm sources for arm64 are reachable",
            )
        debs.append(deb)
    return debs


def _cached_deb(folder: Path, name: str) -> Path | None:
    found = sorted(folder.glob(f"{name}_*_arm64.deb"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _glibc_version(debs: Sequence[Path]) -> tuple[int, int]:
    """The board's glibc (from the libc6 file name, e.g. libc6_2.36-9+deb12u14_arm64.deb): the newest
    manylinux tag its wheels may carry."""
    for deb in debs:
        match = re.match(r"libc6_(\d+)\.(\d+)", deb.name)
        if match:
            return int(match.group(1)), int(match.group(2))
    return 2, 17


# -- the x86-avx2 board ---------------------------------------------------------------------------------


def _make_x86(tmp: Path, qemu: str, emulator: str, spec: _Kind, say: ProgressFn) -> None:
    say(f"making a venv of this host's Python {sys.version.split()[0]} (python -m venv)")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], "python -m venv", timeout=600)
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    _pip_install(
        [str(venv / "bin" / "python"), "-m", "pip"],
        cache_dir() / f"wheels-x86_64-{tag}",
        spec.requirements,
        [],
        ["--only-binary=:all:"],
        "x86_64",
        say,
    )
    _compile([venv / "lib"])
    _write_launcher(tmp, spec, qemu, emulator)


# -- shared steps -------------------------------------------------------------------------------------


def _pip_install(
    pip: list[str],
    wheels: Path,
    requirements: Sequence[str],
    install_flags: list[str],
    download_flags: list[str],
    platform: str,
    say: ProgressFn,
) -> None:
    """Install from the wheel cache alone; when it lacks something, download into it first."""
    wheels.mkdir(parents=True, exist_ok=True)
    quiet = ["--disable-pip-version-check", "--no-input", "--quiet"]
    offline = pip + [
        "install",
        *quiet,
        "--no-compile",
        "--no-index",
        "--find-links",
        str(wheels),
        *install_flags,
        *requirements,
    ]
    say(f"installing {', '.join(requirements)} ({platform} wheels)")
    try:
        cached = subprocess.run(offline, stdin=subprocess.DEVNULL, capture_output=True, timeout=1800).returncode == 0
    except subprocess.TimeoutExpired:
        cached = False  # the cache did not answer in time: download instead
    if cached:
        return
    say(f"downloading the wheels into {wheels} (pip download)")
    _run(
        pip + ["download", *quiet, "--dest", str(wheels), *download_flags, *requirements], "pip download", timeout=1800
    )
    _run(offline, "pip install", timeout=1800)


def _launcher_text(spec: _Kind, qemu: str, emulator: str) -> str:
    """The launcher script; a board whose launcher differs from this one (another qemu build or
    path, an older layout) is stale."""
    if spec.kind == "arm64":
        run = f'exec {shlex.quote(qemu)} -L "$here/root" "$here/root/usr/bin/python3.11" "$@"'
    else:
        run = f'exec {shlex.quote(qemu)} -cpu {HASWELL} "$here/venv/bin/python" "$@"'
    cpu = f"SHUFFLEKIT_EMULATED_CPU={shlex.quote(spec.cpu)}\nexport SHUFFLEKIT_EMULATED_CPU\n" if spec.cpu else ""
    return f"""#!/bin/sh
# A board's Python, emulated by `shufflekit board build`: {emulator}.
# The folder is found from this script's own path; qemu was found at build time.
self=$(readlink -f -- "$0" 2>/dev/null) || self=$0
here=$(CDPATH= cd -P -- "$(dirname -- "$self")" && pwd -P) || exit 127
if [ ! -x {shlex.quote(qemu)} ]; then
  echo "error: {qemu} is missing; {APT_HINT}" >&2
  exit 127
fi
SHUFFLEKIT_EMULATOR={shlex.quote(emulator)}
PYTHONNOUSERSITE=1
export SHUFFLEKIT_EMULATOR PYTHONNOUSERSITE
{cpu}unset PYTHONPATH PYTHONHOME
{run}
"""


def _compile(folders: Sequence[Path]) -> None:
    """Byte-compile natively what a board imports: an emulated Python would compile each module on its
    first import, about 250x slower. Every 3.11.x reads the same bytecode. Skipped: tests and sympy
    (onnxruntime's tools import it, loading a model does not). Failures only cost speed."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j0",
            "-x",
            r"/(sympy|mpmath|tests?|idlelib|lib2to3)/",
            *map(str, folders),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=900,
    )


def _write_launcher(tmp: Path, spec: _Kind, qemu: str, emulator: str) -> None:
    launcher = tmp / LAUNCHER
    launcher.write_text(_launcher_text(spec, qemu, emulator))
    launcher.chmod(0o755)


# Run on the board: each step is announced on stdout before it runs, so a crash (qemu dies with a
# signal, no traceback) still names the step it died in.
_VERIFY = r"""
import json, sys
def step(name):
    print("step:" + name, flush=True)
step("numpy"); import numpy
step("onnxruntime"); import onnxruntime
step("TFLite interpreter")
try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    from tflite_runtime.interpreter import Interpreter
step("package versions")
import platform
from importlib import metadata
print("facts:" + json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                             "packages": {n: metadata.version(n) for n in NAMES}}), flush=True)
"""


def _verify(launcher: Path, spec: _Kind) -> dict:
    names = [re.split(r"[=<>!~ ]", r, maxsplit=1)[0] for r in spec.requirements]
    code = f"NAMES = {names!r}\n" + _VERIFY
    try:
        proc = subprocess.run(
            [str(launcher), "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired:
        raise DeviceError(
            f"the {spec.kind} board's check ran past 600 s", hint="emulation is slow; try again on an idle machine"
        ) from None
    steps = [line[5:] for line in proc.stdout.splitlines() if line.startswith("step:")]
    facts = [line[6:] for line in proc.stdout.splitlines() if line.startswith("facts:")]
    if proc.returncode == 0 and facts:
        return json.loads(facts[-1])
    where = steps[-1] if steps else "starting Python"
    how = (
        f"killed by signal {-proc.returncode}"
        if proc.returncode < 0
        else f"signal {proc.returncode - 128}"
        if proc.returncode > 128
        else f"exit {proc.returncode}"
    )
    last = (proc.stderr.strip().splitlines() or [""])[-1][:300]
    raise DeviceError(
        f"the {spec.kind} board failed at {where} ({how}){': ' + last if last else ''}",
        hint="the packages may not load under this qemu; nothing was left behind",
    )


def _apt(argv: list[str], *, cwd: Path | None = None, update_first_on_failure: bool = False) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    full = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", *argv]
    proc = subprocess.run(
        full, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0 and update_first_on_failure:
        _run(["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", "update"], "apt-get update", env=env, timeout=1800)
        proc = subprocess.run(
            full, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1800
        )
    if proc.returncode != 0:
        words = [a for a in argv if not a.startswith("-") and "::" not in a]
        raise DeviceError(
            f"apt-get {' '.join(words)[:120]} failed: {_last_error(proc.stderr or proc.stdout)}",
            hint="check the Debian sources in /etc/apt and the network",
        )


def _run(
    argv: Sequence[str], what: str, *, cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float
) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        raise BackendMissingError(f"{argv[0]} is not installed", hint=f"it is needed for {what}") from None
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{what} ran past {timeout:g} s", hint="check the network and try again") from None
    if proc.returncode != 0:
        raise DeviceError(
            f"{what} failed: {_last_error(proc.stderr or proc.stdout)}",
            hint="see the message; the half-built board was removed",
        )
    return proc


def _last_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("E:", "ERROR", "error"))]
    return ((errors or lines or ["no output"])[-1])[:300]
