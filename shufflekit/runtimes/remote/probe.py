"""What a device can do: reachable, which Python, numpy, which runtimes. Asked by running
``device_probe.py``'s source (after the device package's ``procfs`` parser, so the probe reads /proc the
way the runner does) with the device's Python; used by `shufflekit devices` and before every job, so a
missing runtime is one line before anything is copied."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...device import backends, procfs
from ...device.errors import RunnerError
from ...errors import DeviceError, ShufflekitError
from .address import DeviceAddress
from .transport import ConnectOptions, Transport

PROBE_SOURCE = Path(__file__).with_name("device_probe.py")
# Which installed module can run which artifact format, in the order the runner prefers them.
RUNTIME_MODULES = {fmt: b.modules for b in backends.all_backends() for fmt in b.formats}
_INSTALL_HINT = {fmt: b.install_hint for b in backends.all_backends() for fmt in b.formats}


def probe_source() -> str:
    """What the device runs: the shared /proc parser, then the probe (both stdlib-only, any Python 3)."""
    return Path(procfs.__file__).read_text(encoding="utf-8") + "\n\n" + PROBE_SOURCE.read_text(encoding="utf-8")


def device_python(address: DeviceAddress) -> str:
    """The interpreter a job runs with: ``?python=`` if given, else python3 (this one for local)."""
    if address.python:
        return address.python
    return sys.executable if address.scheme == "local" else "python3"


def probe(transport: Transport, *, timeout: float = 60.0) -> dict[str, Any]:
    """Device facts (see device_probe.py); DeviceError when there is no usable Python or numpy."""
    address = transport.address
    python = device_python(address)
    result = transport.run([python, "-c", probe_source()], timeout=timeout)
    if result.rc in (126, 127):  # the shell's "not found" / "not executable"
        hint = "install Python 3.8+ there, or give its path with ?python=PATH"
        if address.scheme == "adb":  # the usual case: Android ships no Python
            hint = (
                "an Android phone has no Python: measure it with the runtimes' native tools "
                "(shufflekit profile/release --benchmark-binary), or give a Python with ?python=PATH"
            )
        raise DeviceError(f"{address}: no Python at {python!r} on the device", hint=hint)
    try:
        facts = json.loads(result.stdout.strip().splitlines()[-1]) if result.rc == 0 else None
    except (ValueError, IndexError):
        facts = None
    if not isinstance(facts, dict):
        raise DeviceError(
            f"{address}: {python} on the device could not report itself ({result.last_error_line()})",
            hint="check that it is a working Python 3.8+",
        )
    if not facts.get("python_ok"):
        raise DeviceError(
            f"{address}: Python {facts.get('python')} on the device is too old",
            hint="shufflekit's runner needs Python 3.8+; point ?python=PATH at a newer one",
        )
    if not facts.get("numpy"):
        raise DeviceError(
            f"{address}: numpy is not usable on the device ({facts.get('numpy_error')})",
            hint=f"install it for {python} there (pip install numpy)",
        )
    return facts


def usable_runtimes(facts: dict[str, Any], artifact_format: str) -> list[str]:
    runtimes = facts.get("runtimes") or {}
    return [m for m in RUNTIME_MODULES.get(artifact_format, ()) if m in runtimes and "error" not in runtimes[m]]


def require_runtime(facts: dict[str, Any], artifact_format: str, address: DeviceAddress) -> str:
    """The runtime module that will run ``artifact_format`` on the device, or one DeviceError line."""
    found = usable_runtimes(facts, artifact_format)
    if found:
        return found[0]
    broken = [
        f"{m}: {info['error']}"
        for m, info in (facts.get("runtimes") or {}).items()
        if m in RUNTIME_MODULES.get(artifact_format, ()) and "error" in info
    ]
    detail = f" ({'; '.join(broken)})" if broken else ""
    backend = backends.for_format(artifact_format)
    if backend is not None and address.scheme == "local" and address.python is None:
        # shufflekit's own Python: the runtime comes with shufflekit's extra, as the runner would say
        from ..base import translate

        missing = RunnerError(
            "backend_missing",
            f"{backend.modules[0]} is not installed{detail}",
            package=backend.modules[0],
            extra=backend.extra,
        )
        raise translate(missing, device=str(address), own_python=True)
    raise DeviceError(
        f"{address}: no runtime for {artifact_format} artifacts on the device{detail}",
        hint=_INSTALL_HINT.get(artifact_format, "install one there"),
    )


@dataclass
class DeviceCheck:
    """One device in `shufflekit devices`: its facts when it answered, and the error line when it cannot
    be used (unreachable, no Python or numpy, or no runtime at all)."""

    address: str
    ok: bool
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def runtimes(self) -> dict[str, Any]:
        return self.facts.get("runtimes") or {}

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "ok": self.ok, "error": self.error, **self.facts}


def check_device(address: DeviceAddress, options: ConnectOptions | None = None) -> DeviceCheck:
    """Connect, probe and disconnect; never raises for a device problem (the check says it)."""
    from . import open_transport

    try:
        with open_transport(address, options) as transport:
            facts = probe(transport)
    except ShufflekitError as exc:
        return DeviceCheck(str(address), False, error=exc.one_line())
    if not any(usable_runtimes(facts, fmt) for fmt in RUNTIME_MODULES):
        return DeviceCheck(
            str(address),
            False,
            facts,
            error=f"{address}: no inference runtime works on the device; {_INSTALL_HINT['onnx']}, "
            f"or {_INSTALL_HINT['tflite'].replace('install ', '', 1)}",
        )
    return DeviceCheck(str(address), True, facts)


@dataclass
class DevicesReport:
    adb: list[Any]  # AdbDevice
    adb_note: str | None
    checks: list[DeviceCheck]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "adb": [d.to_dict() for d in self.adb],
            "adb_note": self.adb_note,
            "devices": [c.to_dict() for c in self.checks],
        }


def check_devices(addresses: Sequence[DeviceAddress], options: ConnectOptions | None = None) -> DevicesReport:
    """The adb devices attached (when adb is installed) and a check of every address, concurrently."""
    from .adb import adb_binary, list_adb_devices

    adb, note = [], None
    if adb_binary() is None:
        note = "adb is not installed: Android devices are not listed"
    else:
        try:
            adb = list_adb_devices()
        except DeviceError as exc:
            note = exc.one_line()
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(addresses)))) as pool:
        checks = list(pool.map(lambda a: check_device(a, options), addresses))
    return DevicesReport(adb, note, checks)
