"""Reach an Android device with the user's ``adb`` (platform-tools): ``adb -s SERIAL push/pull/shell``.

``adb shell`` hands its command line to the device's sh, so every line is built from quoted words
(``quote_argv``), as over ssh. Exit statuses come back through adb's shell protocol (Android 7+).
The work folder lives under /data/local/tmp, the one place an adb shell may write and execute.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import DeviceError
from ...files import atomic_path
from .address import DeviceAddress
from .transport import (
    ConnectOptions,
    DeviceTimeoutError,
    PosixShellTransport,
    RunResult,
    copy_error,
    quote_argv,
    shown_command,
)

log = logging.getLogger(__name__)

# adb's own complaints (not the device command's), as the first words of its stderr.
_ADB_ERRORS = (
    (re.compile(r"^(adb: |error: )(error: )?device '[^']*' not found", re.M), "is not attached (see `adb devices`)"),
    (re.compile(r"^(adb: |error: )no devices/emulators found", re.M), "is not attached: no adb device found"),
    (
        re.compile(r"^(adb: |error: )device unauthorized", re.M),
        "has not authorized this computer: accept the USB debugging prompt on the device",
    ),
    (re.compile(r"^(adb: |error: )device offline", re.M), "is offline: reconnect it, or run `adb reconnect`"),
    (
        re.compile(r"^(adb: |error: )more than one device", re.M),
        "is ambiguous: more than one device is attached, name one with adb://SERIAL",
    ),
)


@dataclass(frozen=True)
class AdbDevice:
    serial: str
    state: str  # device, unauthorized, offline, ...
    details: dict[str, str]

    def to_dict(self) -> dict[str, object]:
        return {"address": f"adb://{self.serial}", "serial": self.serial, "state": self.state, **self.details}


def adb_binary() -> str | None:
    return shutil.which("adb")


def _require_adb() -> str:
    found = adb_binary()
    if not found:
        raise DeviceError(
            "`adb` is not installed on this computer",
            hint="install Android platform-tools (Debian/Ubuntu: apt-get install adb) and put adb on PATH",
        )
    return found


def server_args(host: str | None, port: int | None) -> list[str]:
    """adb's own options for the server a device is attached to: another computer's (``-H HOST -P PORT``,
    its server started there with ``adb -a nodaemon server``), else this computer's."""
    return [*(["-H", host] if host else []), *(["-P", str(port)] if port else [])]


def list_adb_devices(timeout: float = 15.0, *, host: str | None = None, port: int | None = None) -> list[AdbDevice]:
    """Devices `adb devices -l` reports, in every state, on this computer's adb server or HOST:PORT's."""
    argv = [_require_adb(), *server_args(host, port), "devices", "-l"]
    where = f" on the adb server at {host}:{port or 5037}" if host else ""
    log.debug("run: %s", shown_command(argv))
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeviceError(
            f"`adb devices`{where} did not answer within {timeout:g} s",
            hint="check that the server runs there (adb -a nodaemon server)" if host else "restart it: adb kill-server",
        ) from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DeviceError(
            f"`adb devices`{where} failed ({detail[-1] if detail else done.returncode})",
            hint="start the server there with `adb -a nodaemon server` and check the port and firewall"
            if host
            else "check `adb devices`",
        )
    devices = []
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        words = line.split()
        if len(words) < 2 or line.startswith(("List of devices", "*")):
            continue
        details = dict(w.split(":", 1) for w in words[2:] if ":" in w)
        devices.append(AdbDevice(words[0], words[1], details))
    return devices


def _adb_failure(address: DeviceAddress, stderr: str) -> DeviceError | None:
    for pattern, meaning in _ADB_ERRORS:
        if pattern.search(stderr):
            return DeviceError(f"{address}: the device {meaning}")
    return None


class AdbTransport(PosixShellTransport):
    default_tmp = "/data/local/tmp"

    def __init__(self, address: DeviceAddress, options: ConnectOptions | None = None) -> None:
        if address.scheme != "adb":
            raise ValueError(f"not an adb address: {address}")
        self.address = address
        self.options = options or ConnectOptions()
        self.serial = address.serial

    def __enter__(self) -> AdbTransport:
        devices = list_adb_devices(
            timeout=self.options.connect_timeout + 5, host=self.address.host, port=self.address.port
        )
        if self.serial is None:
            ready = [d for d in devices if d.state == "device"]
            if not ready:
                states = ", ".join(f"{d.serial} ({d.state})" for d in devices)
                raise DeviceError(
                    "adb://: no Android device is ready" + (f" ({states})" if states else ""),
                    hint="connect one with USB debugging on and check `adb devices`",
                )
            if len(ready) > 1:
                names = ", ".join(d.serial for d in ready)
                raise DeviceError(
                    f"adb://: {len(ready)} devices are attached ({names})",
                    hint=f"name one, e.g. {dataclasses.replace(self.address, serial=ready[0].serial)}",
                )
            self.serial = ready[0].serial
        else:
            match = next((d for d in devices if d.serial == self.serial), None)
            if match is None:
                raise DeviceError(f"{self.address}: the device is not attached (see `adb devices`)")
            if match.state != "device":
                raise _adb_failure(self.address, f"adb: device {match.state}") or DeviceError(
                    f"{self.address}: the device is {match.state}", hint="check `adb devices`"
                )
        return self

    def _adb(self, *args: str, timeout: float, stdout=None) -> RunResult:  # noqa: ANN001
        argv = [_require_adb(), *server_args(self.address.host, self.address.port), "-s", self.serial or "", *args]
        log.debug("run: %s", shown_command(argv))
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise DeviceTimeoutError(f"{self.address}: no answer within {timeout:g} s") from None
        out = done.stdout.decode("utf-8", "replace") if isinstance(done.stdout, bytes) else ""
        err = done.stderr.decode("utf-8", "replace")
        if done.returncode != 0:
            failure = _adb_failure(self.address, err)
            if failure is not None:
                raise failure
        return RunResult(done.returncode, out, err)

    def _exec(self, line: str, *, timeout: float, stdin: Path | None = None) -> RunResult:
        if stdin is not None:
            raise ValueError("adb transport copies files with push, not through stdin")
        return self._adb("shell", line, timeout=timeout)

    def push(self, sources: Sequence[Path], remote_dir: str, *, executable: bool = False) -> None:
        if not sources:
            return
        result = self._adb(
            "push", *map(str, sources), remote_dir.rstrip("/") + "/", timeout=self.options.command_timeout
        )
        if result.rc != 0:
            raise copy_error(self.address, "cannot copy files to the device", result.last_error_line())
        if executable:
            targets = [f"{remote_dir.rstrip('/')}/{Path(s).name}" for s in sources]
            result = self._exec(quote_argv(["chmod", "755", *targets]), timeout=self.options.command_timeout)
            if result.rc != 0:
                raise DeviceError(
                    f"{self.address}: cannot make the pushed tools executable ({result.last_error_line()})"
                )

    def pull(self, remote_path: str, local_path: Path) -> None:
        with atomic_path(local_path) as tmp:
            result = self._adb("pull", remote_path, str(tmp), timeout=self.options.command_timeout)
            if result.rc != 0:
                raise copy_error(self.address, f"cannot copy {remote_path} from the device", result.last_error_line())
