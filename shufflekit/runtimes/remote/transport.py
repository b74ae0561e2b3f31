"""The Transport protocol every device speaks (push, pull, run, a work folder), and the part that
ssh and adb share: both reach a POSIX shell on the device, so the work folder, free-space check and
killing a job that ran out of time are the same few shell commands, with every argument quoted.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ...errors import DeviceError
from .address import DeviceAddress

log = logging.getLogger(__name__)

WORKDIR_PREFIX = "shufflekit."
PID_FILE = ".shufflekit.pid"
# What mktemp makes from WORKDIR_PREFIX + XXXXXXXX; anything else is never removed by remove_workdir.
_WORKDIR = re.compile(r"^/.+/" + re.escape(WORKDIR_PREFIX) + r"[A-Za-z0-9_]{6,}$")


TIMEOUT_HINT = "measure for less time (fewer --iters, a shorter --seconds), or check that the device is not stuck"


class DeviceTimeoutError(DeviceError):
    """A command on the device ran past its time limit; it was killed there."""


@dataclass(frozen=True)
class RunResult:
    rc: int
    stdout: str
    stderr: str

    def last_error_line(self) -> str:
        lines = [line.strip() for line in (self.stderr or self.stdout).splitlines() if line.strip()]
        return lines[-1] if lines else f"exit status {self.rc}"


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach a device. ``retries`` bounds extra connection attempts after a transient failure
    (a timeout, a reset); a refused host key or login is never retried."""

    trust_new_host_key: bool = False
    ssh_config: Path | None = None
    connect_timeout: float = 10.0
    retries: int = 2
    command_timeout: float = 60.0  # housekeeping commands: mkdir, rm, df, copies
    retry_backoff: float = 1.0


@runtime_checkable
class Transport(Protocol):
    """A device reached through some channel. Use as a context manager: entering connects (and fails
    with one DeviceError line when the device cannot be reached or logged into), leaving disconnects."""

    address: DeviceAddress

    def __enter__(self) -> Transport: ...

    def __exit__(self, *exc: object) -> None: ...

    def push(self, sources: Sequence[Path], remote_dir: str, *, executable: bool = False) -> None:
        """Copy local files into ``remote_dir`` on the device, keeping their names."""

    def pull(self, remote_path: str, local_path: Path) -> None:
        """Copy one file from the device; ``local_path`` appears only when complete."""

    def run(self, argv: Sequence[str], *, timeout: float, cwd: str | None = None) -> RunResult:
        """Run ``argv`` on the device (never through an unquoted shell string). Past ``timeout`` the
        command is killed on the device and DeviceTimeoutError is raised."""

    def make_workdir(self) -> str:
        """Make a private, empty folder on the device and return its absolute path."""

    def remove_workdir(self, path: str) -> None:
        """Remove a folder made by make_workdir (and only such a folder)."""

    def free_bytes(self, path: str) -> int | None:
        """Bytes free on the file system holding ``path``, or None when the device cannot tell."""


def quote_argv(argv: Sequence[str]) -> str:
    """One shell command line in which every element is a single literal word."""
    if not argv:
        raise ValueError("empty command")
    return " ".join(shlex.quote(str(arg)) for arg in argv)


def shown_command(argv: Sequence[object], limit: int = 240) -> str:
    """A command line for the debug log (-vv) on one line, quoted as a shell takes it; an argument of
    several lines or longer than ``limit`` (a script passed with -c) is shown by its start and length."""
    words = []
    for text in map(str, argv):
        if len(text) <= limit and "\n" not in text:
            words.append(shlex.quote(text))
        else:
            words.append(f"{shlex.quote(text.splitlines()[0][: limit // 2])}...[{len(text)} characters]")
    return " ".join(words)


def check_workdir(path: str) -> str:
    if not _WORKDIR.match(path) or "/../" in path:
        raise DeviceError(f"refusing to remove {path!r} on the device: it is not a shufflekit work folder")
    return path


_SPACE_MARGIN = 1.2  # a job writes its outputs beside its inputs
_SPACE_SLACK = 4 << 20


def check_space(transport: Transport, workdir: str, files: Sequence[Path], needs: str) -> None:
    """The one free-space check before copying: ``files`` (with a margin for what the job writes) must fit
    where the work folder is. ``needs`` names who needs it in the message ("the job needs")."""
    needed = int(sum(Path(p).stat().st_size for p in files) * _SPACE_MARGIN) + _SPACE_SLACK
    free = transport.free_bytes(workdir)
    if free is not None and free < needed:
        raise DeviceError(
            f"{transport.address}: not enough space on the device: {free / 1e6:.1f} MB free where "
            f"the work folder is, {needs} {needed / 1e6:.1f} MB",
            hint="free some space there, or pick another folder with ?tmp=DIR",
        )


def parse_df_available(text: str) -> int | None:
    """Available bytes from `df -Pk PATH` (POSIX format: the 4th field of the last line, in KiB)."""
    lines = [line.split() for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    fields = lines[-1]
    # A long device name can wrap onto its own line in some df builds; the numbers are then alone.
    numbers = [f for f in fields if f.isdigit()]
    if len(numbers) < 3:
        return None
    return int(numbers[2]) * 1024


def is_disk_full(text: str) -> bool:
    return "No space left on device" in text or "ENOSPC" in text or "Disk quota exceeded" in text


def copy_error(address: DeviceAddress, what: str, detail: str) -> DeviceError:
    """A failed copy to or from the device; a full disk gets its own line, it is the usual cause."""
    if is_disk_full(detail):
        return DeviceError(
            f"{address}: the device's disk is full ({what}: {detail})",
            hint="free some space there, or pick another folder with ?tmp=DIR",
        )
    return DeviceError(f"{address}: {what} ({detail})")


class PosixShellTransport:
    """Shared behaviour of transports that hand one command line to a POSIX shell on the device.
    Subclasses implement ``_exec`` (send one line, return its result) and the copies."""

    address: DeviceAddress
    options: ConnectOptions
    default_tmp = "${TMPDIR:-/tmp}"

    def _exec(self, line: str, *, timeout: float, stdin: Path | None = None) -> RunResult:
        raise NotImplementedError

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, argv: Sequence[str], *, timeout: float, cwd: str | None = None) -> RunResult:
        line = "exec " + quote_argv(argv)
        if cwd is not None:
            # $$ is the shell that exec turns into argv[0]: its pid (and process group) is what a
            # timeout kills on the device.
            line = f"cd {shlex.quote(cwd)} && echo $$ > {PID_FILE} && {line}"
        try:
            return self._exec(line, timeout=timeout)
        except (KeyboardInterrupt, DeviceTimeoutError) as exc:
            # The local client is gone (killed at the time limit, or by Ctrl-C); the job on the device
            # is not: stop it and everything it started.
            if cwd is not None:
                self._kill_job(cwd)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise DeviceTimeoutError(
                f"{self.address}: `{' '.join(map(str, argv))[:120]}` ran past its "
                f"{timeout:g} s limit and was stopped on the device",
                hint=TIMEOUT_HINT,
            ) from None

    def _kill_job(self, cwd: str) -> None:
        script = (
            'p=$(cat "$1" 2>/dev/null) || exit 0; kill -KILL "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; exit 0'
        )
        try:
            self._exec(
                quote_argv(["sh", "-c", script, "sh", f"{cwd}/{PID_FILE}"]), timeout=self.options.command_timeout
            )
        except DeviceError as exc:  # the folder is still removed by the caller
            log.warning("could not stop the job on %s: %s", self.address, exc.one_line())

    def make_workdir(self) -> str:
        base = self.address.tmp
        if base:
            result = self._exec(
                quote_argv(["mktemp", "-d", f"{base.rstrip('/')}/{WORKDIR_PREFIX}XXXXXXXX"]),
                timeout=self.options.command_timeout,
            )
        else:  # the default base may name a variable; this constant script is ours, not user text
            script = f'exec mktemp -d "{self.default_tmp}/{WORKDIR_PREFIX}XXXXXXXX"'
            result = self._exec(quote_argv(["sh", "-c", script]), timeout=self.options.command_timeout)
        path = result.stdout.strip()
        if result.rc != 0 or not path.startswith("/"):
            detail = result.last_error_line()
            if is_disk_full(detail):
                raise copy_error(self.address, "cannot make a work folder", detail)
            raise DeviceError(
                f"{self.address}: cannot make a work folder on the device ({detail})",
                hint="check that the device's temporary folder is writable, or set ?tmp=DIR",
            )
        return path

    def remove_workdir(self, path: str) -> None:
        result = self._exec(quote_argv(["rm", "-rf", "--", check_workdir(path)]), timeout=self.options.command_timeout)
        if result.rc != 0:
            raise DeviceError(
                f"{self.address}: could not remove the work folder {path} ({result.last_error_line()})",
                hint="remove it by hand",
            )

    def free_bytes(self, path: str) -> int | None:
        result = self._exec(quote_argv(["df", "-Pk", path]), timeout=self.options.command_timeout)
        return parse_df_available(result.stdout) if result.rc == 0 else None
