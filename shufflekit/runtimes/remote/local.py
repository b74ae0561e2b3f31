"""``local``: this computer as a device, through the same push/run/pull path as a remote one, so a
local profile and a remote one differ only in the channel."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ...errors import DeviceError
from ...files import atomic_path
from .address import DeviceAddress
from .transport import (
    TIMEOUT_HINT,
    WORKDIR_PREFIX,
    ConnectOptions,
    DeviceTimeoutError,
    RunResult,
    check_workdir,
    copy_error,
    shown_command,
)

log = logging.getLogger(__name__)


class LocalTransport:
    def __init__(self, address: DeviceAddress | None = None, options: ConnectOptions | None = None) -> None:
        self.address = address or DeviceAddress("local")
        self.options = options or ConnectOptions()

    def __enter__(self) -> LocalTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def push(self, sources: Sequence[Path], remote_dir: str, *, executable: bool = False) -> None:
        for source in sources:
            target = Path(remote_dir) / Path(source).name
            try:
                shutil.copyfile(source, target)
                if executable:
                    target.chmod(0o755)
            except OSError as exc:
                raise _os_error(self.address, f"cannot copy {Path(source).name}", exc) from None

    def pull(self, remote_path: str, local_path: Path) -> None:
        try:
            with atomic_path(local_path) as tmp:
                shutil.copyfile(remote_path, tmp)
        except OSError as exc:
            raise _os_error(self.address, f"cannot copy {remote_path}", exc) from None

    def run(self, argv: Sequence[str], *, timeout: float, cwd: str | None = None) -> RunResult:
        log.debug("run: %s%s", shown_command(argv), f" (in {cwd})" if cwd else "")
        try:
            # A session of its own, so a timeout kills the job and everything it started.
            proc = subprocess.Popen(
                [str(a) for a in argv],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            return RunResult(127, "", f"{argv[0]}: {exc.strerror}")
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException as exc:  # a timeout or Ctrl-C: the job's own session does not get the signal
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
            raise DeviceTimeoutError(
                f"{self.address}: `{' '.join(map(str, argv))[:120]}` ran past its {timeout:g} s limit and was stopped",
                hint=TIMEOUT_HINT,
            ) from None
        return RunResult(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def make_workdir(self) -> str:
        try:
            return tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=self.address.tmp)
        except OSError as exc:
            raise _os_error(self.address, "cannot make a work folder", exc) from None

    def remove_workdir(self, path: str) -> None:
        shutil.rmtree(check_workdir(path), ignore_errors=True)

    def free_bytes(self, path: str) -> int | None:
        return shutil.disk_usage(path).free


def _os_error(address: DeviceAddress, what: str, exc: OSError) -> DeviceError:
    return copy_error(address, what, exc.strerror or str(exc))
