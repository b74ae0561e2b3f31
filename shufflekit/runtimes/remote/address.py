"""Device addresses: ``local``, ``ssh://[user@]host[:port]``, a Host alias from the ssh config,
``adb://SERIAL`` and ``adb://`` (the only device attached).

An address may carry ``?python=PATH`` (the interpreter to use on the device, e.g. a venv on a
Raspberry Pi, where the system Python is externally managed, or an emulated board's launcher),
``?tmp=DIR`` (where the work folder is made) and ``?name=LABEL`` (the key its results are filed under,
so several Pythons on one host, such as emulated boards, are told apart). Every part is checked here, before any of it reaches a command line: a host or user that
starts with '-' would be read by ssh as an option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, cast
from urllib.parse import parse_qsl

from ...errors import UsageError

SCHEMES = ("local", "ssh", "adb")
_HINT = "use local, ssh://[user@]host[:port], a Host from your ssh config, adb://SERIAL or adb://"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")  # host names, aliases, users, adb serials
_SERIAL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:+-]*$")  # adb serials may be host:port
_PARAMS = ("python", "tmp", "name")


class _Params(TypedDict, total=False):
    """The options an address may carry (``?python=...&tmp=...&name=...``)."""

    python: str
    tmp: str
    name: str


@dataclass(frozen=True)
class DeviceAddress:
    """A parsed address. ``host`` is an ssh host name, IP or Host alias; ``serial`` an adb serial
    (None for 'the only device attached')."""

    scheme: str
    host: str | None = None
    user: str | None = None
    port: int | None = None
    serial: str | None = None
    python: str | None = None
    tmp: str | None = None
    name: str | None = None  # the key results are filed under, instead of the address

    def __str__(self) -> str:
        if self.scheme == "local":
            base = "local"
        elif self.scheme == "adb":
            base = f"adb://{self.serial or ''}"
        else:
            host = f"[{self.host}]" if self.host and ":" in self.host else self.host
            base = f"ssh://{self.user + '@' if self.user else ''}{host}{f':{self.port}' if self.port else ''}"
        params = "&".join(f"{k}={v}" for k, v in (("python", self.python), ("tmp", self.tmp), ("name", self.name)) if v)
        return f"{base}?{params}" if params else base

    @property
    def key(self) -> str:
        """The name results are filed under: ``name=`` when given, else the address without its options."""
        return self.name or str(DeviceAddress(self.scheme, self.host, self.user, self.port, self.serial))


def parse_address(text: str, *, ssh_config: str | Path | None = None) -> DeviceAddress:
    """Parse one address; a bare word is accepted when it is a Host alias in the ssh config."""
    raw = text.strip()
    if not raw:
        raise UsageError("empty device address", hint=_HINT)
    base, _, query = raw.partition("?")
    params = _parse_params(query, raw)
    if base == "local":
        return DeviceAddress("local", **params)
    if "://" not in base:
        if _NAME.match(base) and base in ssh_host_aliases(ssh_config):
            return DeviceAddress("ssh", host=base, **params)
        raise UsageError(f"unknown device address {raw!r}", hint=_HINT)
    scheme = base.split("://", 1)[0].lower()
    if scheme == "adb":
        return _parse_adb(base, raw, params)
    if scheme == "ssh":
        return _parse_ssh(base, raw, params)
    raise UsageError(f"unknown device address scheme {scheme!r} in {raw!r}", hint=_HINT)


def _parse_params(query: str, raw: str) -> _Params:
    params: dict[str, str] = {}
    if not query:
        return {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise UsageError(
            f"cannot read the options in device address {raw!r}",
            hint="write e.g. ssh://pi@board?python=/home/pi/venv/bin/python",
        ) from None
    for name, value in pairs:
        if name not in _PARAMS:
            raise UsageError(
                f"unknown option {name!r} in device address {raw!r}",
                hint="the options are python=PATH, tmp=DIR and name=LABEL",
            )
        if not value or value.startswith("-") or "\x00" in value or "\n" in value:
            raise UsageError(
                f"bad value {value!r} for {name} in device address {raw!r}", hint="give a path on the device"
            )
        if name == "name" and (not _NAME.match(value) or value in ("local",) or len(value) > 64):
            raise UsageError(
                f"bad name {value!r} in device address {raw!r}",
                hint="a label of letters, digits, '.', '_', '+' or '-' (not 'local'), e.g. name=arm64-board",
            )
        if name == "tmp" and not value.startswith("/"):
            raise UsageError(
                f"tmp={value} in device address {raw!r} is not an absolute path",
                hint="give a folder on the device such as /home/pi/tmp",
            )
        params[name] = value
    return cast(_Params, params)  # every key was checked against _PARAMS above


def _parse_adb(base: str, raw: str, params: _Params) -> DeviceAddress:
    serial = base.split("://", 1)[1].rstrip("/")
    if serial and not _SERIAL.match(serial):
        raise UsageError(f"bad adb serial {serial!r} in {raw!r}", hint="copy the serial from `adb devices`")
    return DeviceAddress("adb", serial=serial or None, **params)


_SSH = re.compile(r"^(?:(?P<user>[^@/]*)@)?(?:\[(?P<v6>[^\]/]*)\]|(?P<host>[^:@/\[\]]*))(?::(?P<port>[^/]*))?/?$")


def _parse_ssh(base: str, raw: str, params: _Params) -> DeviceAddress:
    match = _SSH.match(base.split("://", 1)[1])
    if not match:
        raise UsageError(
            f"bad ssh address {raw!r}", hint="write ssh://[user@]host[:port]; passwords are never taken, use keys"
        )
    user, port_text = match["user"], match["port"]
    host = match["v6"] if match["v6"] is not None else match["host"]
    if not host:
        raise UsageError(f"no host in ssh address {raw!r}", hint=_HINT)
    if not (_NAME.match(host) or (match["v6"] is not None and _is_ipv6(host))):
        raise UsageError(f"bad host {host!r} in ssh address {raw!r}", hint=_HINT)
    if user is not None and not _NAME.match(user):
        raise UsageError(
            f"bad user {user!r} in ssh address {raw!r}",
            hint="write ssh://user@host; passwords are never taken, use keys",
        )
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"bad port {port_text!r} in ssh address {raw!r}", hint="give a port between 1 and 65535")
        port = int(port_text)
    return DeviceAddress("ssh", host=host, user=user, port=port, **params)


def _is_ipv6(host: str) -> bool:
    return ":" in host and re.fullmatch(r"[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?", host) is not None


def ssh_host_aliases(ssh_config: str | Path | None = None) -> set[str]:
    """Literal names on ``Host`` lines of the ssh config (and files it Includes). Patterns with
    wildcards or negation are not aliases one can name, so they are left out."""
    path = Path(ssh_config) if ssh_config else Path.home() / ".ssh" / "config"
    names: set[str] = set()
    _collect_hosts(path, names, depth=0)
    return names


def _collect_hosts(path: Path, names: set[str], depth: int) -> None:
    if depth > 8:
        return
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        words = line.strip().replace("=", " ", 1).split()
        if len(words) < 2 or words[0].startswith("#"):
            continue
        keyword = words[0].lower()
        if keyword == "host":
            names.update(w for w in words[1:] if not any(c in w for c in "*?!"))
        elif keyword == "include":
            for pattern in words[1:]:
                pattern = str(Path(pattern).expanduser())
                base = Path(pattern) if Path(pattern).is_absolute() else Path.home() / ".ssh" / pattern
                for included in sorted(base.parent.glob(base.name)):
                    _collect_hosts(included, names, depth + 1)
