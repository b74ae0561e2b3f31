"""Device addresses: ``local``, ``ssh://[user@]host[:port]``, a Host alias from the ssh config,
``adb://SERIAL`` and ``adb://`` (the only device attached), ``adb://SERIAL@HOST[:PORT]`` (a device on
another computer's adb server).

An address may carry ``?python=PATH`` (the interpreter to use on the device, e.g. a venv on a
Raspberry Pi, where the system Python is externally managed, or an emulated board's launcher),
``?tmp=DIR`` (where the work folder is made), ``?name=LABEL`` (the key its results are filed under,
so several Pythons on one host, such as emulated boards, are told apart) and, over ssh, ``?jump=HOST``
(ssh's ProxyJump: a board reached through a gateway). Every part is checked here, before any of it reaches a command line: a host or user that
starts with '-' would be read by ssh as an option.
"""

from __future__ import annotations

import functools
import logging
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, cast
from urllib.parse import parse_qsl

from ...errors import UsageError

log = logging.getLogger(__name__)

SCHEMES = ("local", "ssh", "adb")
_HINT = "use local, ssh://[user@]host[:port], a Host from your ssh config, adb://SERIAL[@HOST[:PORT]] or adb://"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")  # host names, aliases, users, adb serials
_SERIAL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:+-]*$")  # adb serials may be host:port
_JUMP = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9._+-]*@)?[A-Za-z0-9_][A-Za-z0-9._+-]*(?::[0-9]{1,5})?$")
_PARAMS = ("python", "tmp", "name", "jump")


class _Params(TypedDict, total=False):
    """The options an address may carry (``?python=...&tmp=...&name=...``)."""

    python: str
    tmp: str
    name: str
    jump: str


@dataclass(frozen=True)
class DeviceAddress:
    """A parsed address. ``host`` is an ssh host name, IP or Host alias, or over adb the computer whose
    adb server the device is attached to (None: this one); ``serial`` an adb serial (None for 'the only
    device attached')."""

    scheme: str
    host: str | None = None
    user: str | None = None
    port: int | None = None
    serial: str | None = None
    python: str | None = None
    tmp: str | None = None
    name: str | None = None  # the key results are filed under, instead of the address
    jump: str | None = None  # ssh only: the jump host(s) to go through, as ssh's -J takes them

    def __str__(self) -> str:
        if self.scheme == "local":
            base = "local"
        elif self.scheme == "adb":
            server = f"@{self.host}{f':{self.port}' if self.port else ''}" if self.host else ""
            base = f"adb://{self.serial or ''}{server}"
        else:
            host = f"[{self.host}]" if self.host and ":" in self.host else self.host
            base = f"ssh://{self.user + '@' if self.user else ''}{host}{f':{self.port}' if self.port else ''}"
        options = (("python", self.python), ("tmp", self.tmp), ("name", self.name), ("jump", self.jump))
        params = "&".join(f"{k}={v}" for k, v in options if v)
        return f"{base}?{params}" if params else base

    @property
    def key(self) -> str:
        """The name results are filed under: ``name=`` when given, else the address with the interpreter it
        names (``local?python=PATH`` is not the host's own ``local``) and without ``tmp=``."""
        return self.name or str(DeviceAddress(self.scheme, self.host, self.user, self.port, self.serial, self.python))


def parse_address(text: str, *, ssh_config: str | Path | None = None) -> DeviceAddress:
    """Parse one address; a bare word is accepted when it is a Host alias in the ssh config."""
    raw = text.strip()
    if not raw:
        raise UsageError("empty device address", hint=_HINT)
    base, _, query = raw.partition("?")
    params = _parse_params(query, raw)
    if base == "local":
        if "jump" in params:
            raise UsageError(f"jump= in {raw!r} is for ssh devices", hint="write ssh://user@board?jump=user@gateway")
        return DeviceAddress("local", **params)
    if "://" not in base:
        if _NAME.match(base) and is_ssh_host(base, ssh_config):
            return DeviceAddress("ssh", host=base, **params)
        raise UsageError(f"unknown device address {raw!r}", hint=_HINT)
    scheme = base.split("://", 1)[0].lower()
    if scheme == "adb":
        if "jump" in params:
            raise UsageError(
                f"jump= in {raw!r} is for ssh devices",
                hint="a device on another computer's adb server is adb://SERIAL@HOST:PORT",
            )
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
                hint="the options are python=PATH, tmp=DIR, name=LABEL and jump=[user@]host[:port]",
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
        if name == "jump" and not all(_JUMP.match(hop) for hop in value.split(",")):
            raise UsageError(
                f"bad jump host {value!r} in device address {raw!r}",
                hint="write jump=[user@]host[:port], several separated by commas, as ssh -J takes them",
            )
        if name == "tmp" and not value.startswith("/"):
            raise UsageError(
                f"tmp={value} in device address {raw!r} is not an absolute path",
                hint="give a folder on the device such as /home/pi/tmp",
            )
        params[name] = value
    return cast(_Params, params)  # every key was checked against _PARAMS above


def _parse_adb(base: str, raw: str, params: _Params) -> DeviceAddress:
    """``adb://SERIAL``, or ``adb://SERIAL@HOST[:PORT]`` for a device attached to another computer's adb
    server (``adb -H HOST -P PORT``; the port defaults to adb's 5037)."""
    rest = base.split("://", 1)[1].rstrip("/")
    serial, at, server = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if serial and not _SERIAL.match(serial):
        raise UsageError(f"bad adb serial {serial!r} in {raw!r}", hint="copy the serial from `adb devices`")
    host, port = None, None
    if at:
        host, _, port_text = server.partition(":")
        if not host or not _NAME.match(host):
            raise UsageError(
                f"bad adb server host {host!r} in {raw!r}",
                hint="write adb://SERIAL@HOST:PORT, the computer whose adb server the device is attached to",
            )
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise UsageError(
                    f"bad adb server port {port_text!r} in {raw!r}", hint="give a port between 1 and 65535"
                )
            port = int(port_text)
    return DeviceAddress("adb", host=host, port=port, serial=serial or None, **params)


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


def is_ssh_host(name: str, ssh_config: str | Path | None = None) -> bool:
    """Whether the ssh config says anything about NAME, as OpenSSH itself reads it (``ssh -G``): Host and
    Match blocks, quoted names, Include, and /etc/ssh/ssh_config when no ``-F`` file is given. NAME is
    configured when ssh resolves it to other settings than a name no config mentions."""
    named = _ssh_settings(name, str(ssh_config) if ssh_config else None)
    if named is None:
        return False
    if named.get("hostname", name) != name:
        return True
    unnamed = _ssh_settings(_UNNAMED, str(ssh_config) if ssh_config else None) or {}
    ignored = ("host", "hostname")
    return {k: v for k, v in named.items() if k not in ignored} != {
        k: v.replace(_UNNAMED, name) for k, v in unnamed.items() if k not in ignored
    }


_UNNAMED = "shufflekit-unnamed-host-probe"


@functools.lru_cache(maxsize=64)
def _ssh_settings(name: str, ssh_config: str | None) -> dict[str, str] | None:
    """``ssh -G NAME``: the settings ssh would connect to NAME with (one line per keyword), or None
    when there is no ssh client or the config cannot be read (then no bare name is an ssh host)."""
    ssh = shutil.which("ssh")
    if ssh is None:
        return None
    argv = [ssh, "-G", *(["-F", ssh_config] if ssh_config else []), "--", name]
    log.debug("run: %s", " ".join(shlex.quote(a) for a in argv))
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    settings: dict[str, str] = {}
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        keyword, _, value = line.partition(" ")
        settings[keyword] = f"{settings[keyword]}\n{value}" if keyword in settings else value
    return settings
