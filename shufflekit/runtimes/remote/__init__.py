"""Run shufflekit's jobs on the device that matters: this computer (``local``), a board over ssh, or
an Android device over adb, all through one Transport protocol (push, pull, run, a work folder)."""

from __future__ import annotations

from .address import DeviceAddress, parse_address
from .transport import ConnectOptions, DeviceTimeoutError, RunResult, Transport


def open_transport(address: DeviceAddress | str, options: ConnectOptions | None = None) -> Transport:
    """The transport for ``address``, not yet connected: use it as a context manager."""
    if isinstance(address, str):
        address = parse_address(address, ssh_config=options.ssh_config if options else None)
    if address.scheme == "ssh":
        from .ssh import SshTransport

        return SshTransport(address, options)
    if address.scheme == "adb":
        from .adb import AdbTransport

        return AdbTransport(address, options)
    from .local import LocalTransport

    return LocalTransport(address, options)


__all__ = [
    "ConnectOptions",
    "DeviceAddress",
    "DeviceTimeoutError",
    "RunResult",
    "Transport",
    "open_transport",
    "parse_address",
]
