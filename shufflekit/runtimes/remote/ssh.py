"""Reach a device over ssh with the user's own OpenSSH client, so ~/.ssh/config (Host aliases,
ProxyJump, keys), the agent and known_hosts work as they do on the command line.

Security rules, enforced by options given on the command line (they win over the user's config):
- BatchMode: never a password prompt; a login either works with keys/agent or fails with one line.
- StrictHostKeyChecking=yes: an unknown host key is refused; with ``trust_new_host_key`` it is
  accept-new (recorded in known_hosts on first use). A CHANGED key is refused either way.
- No agent or X11 forwarding, no port forwardings from the config: the device gets nothing back.
- Every command line is built from quoted words (``quote_argv``); files go through ``cat`` with a
  quoted path, so no name is ever read by the remote shell.

One master connection per transport (ControlMaster) carries every command and copy; it is closed
on exit and, should this process die, exits by itself after ``ControlPersist`` idle seconds.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
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

_PERSIST_S = 120
# ssh's own failure texts (exit status 255), each mapped to one line a user can act on.
_TRANSIENT = (
    "timed out",
    "Connection reset",
    "Connection closed",
    "kex_exchange_identification",
    "Broken pipe",
    "No route to host",
    "Network is unreachable",
    "Temporary failure in name resolution",
)


def ssh_binary() -> str:
    found = shutil.which("ssh")
    if not found:
        raise DeviceError(
            "the OpenSSH client `ssh` is not installed on this computer",
            hint="install it (Debian/Ubuntu: apt-get install openssh-client)",
        )
    return found


def describe_ssh_failure(address: DeviceAddress, stderr: str, connect_timeout: float) -> DeviceError:
    """Turn ssh's stderr into one DeviceError line that says what happened and what to do."""
    text = stderr.strip()
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "no message")
    host = address.host
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "has changed and you have requested" in text:
        return DeviceError(
            f"{address}: the host key of {host} has CHANGED since it was recorded in "
            "known_hosts; refusing to connect (this is what an attack looks like)",
            hint=f"if the device was reinstalled, check its new key, remove the old one with "
            f"`ssh-keygen -R {host}` and connect again; --trust-new-host-key never "
            "accepts a changed key",
        )
    if "Host key verification failed" in text or "host key is known" in text:
        return DeviceError(
            f"{address}: the host key of {host} is not in known_hosts; refusing to connect",
            hint="check the key and add it (connect once with ssh), or pass "
            "--trust-new-host-key to record it on first use",
        )
    if "Permission denied" in text or "Too many authentication failures" in text:
        return DeviceError(
            f"{address}: login refused ({last})",
            hint="check the user name and that your key (or agent) is in the device's "
            "authorized_keys; passwords are never asked for",
        )
    if "Connection refused" in text:
        return DeviceError(
            f"{address}: connection refused ({last})",
            hint="check the address and port, and that sshd runs on the device",
        )
    if "Could not resolve hostname" in text:
        return DeviceError(
            f"{address}: unknown host ({last})", hint="check the name, or add a Host entry to your ssh config"
        )
    if "timed out" in text:
        return DeviceError(
            f"{address}: the device did not answer within {connect_timeout:g} s ({last})",
            hint="check that it is on and on the network",
        )
    return DeviceError(f"{address}: ssh failed ({last})", hint="try `ssh -v` to the same address")


class SshTransport(PosixShellTransport):
    def __init__(self, address: DeviceAddress, options: ConnectOptions | None = None) -> None:
        if address.scheme != "ssh":
            raise ValueError(f"not an ssh address: {address}")
        self.address = address
        self.options = options or ConnectOptions()
        self._control_dir: str | None = None

    # -- connection ------------------------------------------------------------------------------
    def _ssh_argv(self, *extra: str, master: bool = False) -> list[str]:
        o = self.options
        argv = [ssh_binary()]
        if o.ssh_config:
            argv += ["-F", str(o.ssh_config)]
        for option in (
            "BatchMode=yes",
            f"StrictHostKeyChecking={'accept-new' if o.trust_new_host_key else 'yes'}",
            f"ConnectTimeout={max(1, round(o.connect_timeout))}",
            "ServerAliveInterval=15",
            "ServerAliveCountMax=4",
            "ForwardAgent=no",
            "ForwardX11=no",
            "ClearAllForwardings=yes",
            "PermitLocalCommand=no",
            "LogLevel=ERROR",
        ):
            argv += ["-o", option]
        if self._control_dir:
            argv += ["-o", f"ControlPath={self._control_dir}/m"]
            argv += ["-o", f"ControlMaster={'yes' if master else 'no'}"]
            if master:
                argv += ["-o", f"ControlPersist={_PERSIST_S}"]
        if self.address.jump:
            argv += ["-J", self.address.jump]
        if self.address.port:
            argv += ["-p", str(self.address.port)]
        if self.address.user:
            argv += ["-l", self.address.user]
        return [*argv, "-T", *extra, "--", self.address.host or ""]

    def __enter__(self) -> SshTransport:
        # A short private folder for the control socket (sockets have a ~100-byte path limit).
        self._control_dir = tempfile.mkdtemp(prefix="sk-ssh-", dir="/tmp" if Path("/tmp").is_dir() else None)
        try:
            self._connect_master()
        except BaseException:
            self._remove_control_dir()
            raise
        return self

    def _connect_master(self) -> None:
        attempts = 1 + max(0, self.options.retries)
        for attempt in range(1, attempts + 1):
            argv = self._ssh_argv("-N", master=True)
            log.debug("run: %s", shown_command(argv))
            try:
                done = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=self.options.connect_timeout + 15,
                )
            except subprocess.TimeoutExpired:
                stderr = "connection timed out"
            else:
                if done.returncode == 0:
                    return
                stderr = done.stderr.decode("utf-8", "replace")
            error = describe_ssh_failure(self.address, stderr, self.options.connect_timeout)
            if attempt == attempts or not any(t in stderr for t in _TRANSIENT):
                raise error
            log.info("%s; retrying (%d of %d)", error.one_line(), attempt, attempts - 1)
            time.sleep(self.options.retry_backoff * attempt)

    def __exit__(self, *exc: object) -> None:
        if self._control_dir:
            argv = self._ssh_argv("-O", "exit")
            log.debug("run: %s", shown_command(argv))
            try:
                subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                log.warning("the ssh master connection to %s did not close; it exits by itself when idle", self.address)
            self._remove_control_dir()

    def _remove_control_dir(self) -> None:
        if self._control_dir:
            shutil.rmtree(self._control_dir, ignore_errors=True)
            self._control_dir = None

    # -- commands --------------------------------------------------------------------------------
    def _exec(self, line: str, *, timeout: float, stdin: Path | None = None, stdout=None) -> RunResult:  # noqa: ANN001
        argv = self._ssh_argv() + [line]
        log.debug("run: %s%s", shown_command(argv), f" < {stdin}" if stdin is not None else "")
        handle = open(stdin, "rb") if stdin is not None else None  # noqa: SIM115 - closed in the finally below
        try:
            done = subprocess.run(
                argv,
                stdin=handle if handle else subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise DeviceTimeoutError(f"{self.address}: no answer within {timeout:g} s") from None
        finally:
            if handle:
                handle.close()
        out = done.stdout.decode("utf-8", "replace") if isinstance(done.stdout, bytes) else ""
        err = done.stderr.decode("utf-8", "replace")
        if done.returncode == 255 and not out:
            # 255 is ssh's own failure (the session never ran); remote programs do not use it.
            raise describe_ssh_failure(self.address, err, self.options.connect_timeout)
        return RunResult(done.returncode, out, err)

    def push(self, sources: Sequence[Path], remote_dir: str, *, executable: bool = False) -> None:
        for source in sources:
            target = f"{remote_dir.rstrip('/')}/{Path(source).name}"
            line = f"cat > {shlex.quote(target)}"
            if executable:
                line += f" && chmod 755 {shlex.quote(target)}"
            result = self._exec(line, timeout=self.options.command_timeout, stdin=Path(source))
            if result.rc != 0:
                raise copy_error(
                    self.address, f"cannot copy {Path(source).name} to the device", result.last_error_line()
                )

    def pull(self, remote_path: str, local_path: Path) -> None:
        with atomic_path(local_path) as tmp, open(tmp, "wb") as handle:
            result = self._exec(quote_argv(["cat", remote_path]), timeout=self.options.command_timeout, stdout=handle)
            if result.rc != 0:
                raise copy_error(self.address, f"cannot copy {remote_path} from the device", result.last_error_line())
