"""Run one job on a device: probe it, make a private work folder, push the device package (one zipapp
file, ``runtimes.device_file``), the job description and its files, run ``python3 shufflekit-device.pyz
job.json``, read the one JSON object it prints, pull the files it wrote, and remove the work folder
whatever happened (failure, timeout, Ctrl-C). Every measurement takes this path, ``local`` included.

The job is the device package's business: this module only knows that a job is a JSON object whose file
references are names inside the work folder (the runner's current directory). Its failures are mapped
by ``runtimes.base.translate``, the one mapping.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import DeviceError, UsageError
from ..base import translate
from ..device_file import device_file
from .address import DeviceAddress
from .probe import device_python, probe, require_runtime
from .transport import ConnectOptions, Transport, check_space

log = logging.getLogger(__name__)

JOB_NAME = "job.json"

Progress = Callable[[str, int, "int | None"], None]


@dataclass
class RemoteResult:
    """What came back: the runner's JSON object, the device facts it ran with, files pulled."""

    address: str
    result: dict[str, Any]
    device: dict[str, Any]
    pulled: dict[str, Path] = field(default_factory=dict)


def run_job(
    address: DeviceAddress,
    job: Mapping[str, Any],
    files: Sequence[Path],
    *,
    artifact_format: str | None = None,
    pull: Sequence[str] = (),
    pull_into: Path | None = None,
    timeout: float = 600.0,
    options: ConnectOptions | None = None,
    runner: Path | None = None,
    progress: Progress | None = None,
    probed: dict[str, Any] | None = None,
) -> RemoteResult:
    """Run ``job`` (JSON-able; names files by their base names) on the device at ``address``.

    ``files`` are pushed beside the device file and job.json; their base names must be unique. With
    ``artifact_format`` the device must have a runtime for it (checked before anything is copied).
    ``pull`` names files the runner writes into its folder; they are copied into ``pull_into``.
    ``runner``: the file run there (default: the device package's zipapp). ``probed``: a cache of the
    device's probe for a run of jobs on one device (empty: probe and fill it; filled: its facts are
    reused, so several files measured in a row ask the device once).
    """
    from . import open_transport

    files = [Path(f) for f in files]
    runner = runner or device_file()
    _check_inputs(files, runner, pull, pull_into)
    report = progress or (lambda task, done, total: None)
    steps = 5
    with open_transport(address, options) as transport:
        report(f"{address}: checking the device", 0, steps)
        if probed is not None and probed.get("key") == address.key and "facts" in probed:
            facts = dict(probed["facts"])
        else:
            facts = probe(transport)
            if probed is not None:
                probed.update(key=address.key, facts=dict(facts))
        if artifact_format:
            facts["runtime"] = require_runtime(facts, artifact_format, address)
        workdir = transport.make_workdir()
        try:
            return _run_in(transport, workdir, job, files, runner, pull, pull_into, timeout, facts, report, steps)
        finally:
            _remove(transport, workdir)


def _check_inputs(files: Sequence[Path], runner: Path, pull: Sequence[str], pull_into: Path | None) -> None:
    if not runner.is_file():
        raise UsageError(f"the device runner {runner} is missing", hint="reinstall shufflekit")
    names = [f.name for f in files]
    duplicates = sorted({n for n in names if names.count(n) > 1} | ({runner.name, JOB_NAME} & set(names)))
    if duplicates:
        raise UsageError(
            f"two files for the device share the name {duplicates[0]!r}",
            hint="give every file pushed with a job its own name",
        )
    for f in files:
        if not f.is_file():
            raise UsageError(f"{f} does not exist", hint="check the path")
    if pull and pull_into is None:
        raise ValueError("pull_into is needed to pull files")
    for name in pull:
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"pull names a file in the work folder, not a path: {name!r}")


def _run_in(
    transport: Transport,
    workdir: str,
    job: Mapping[str, Any],
    files: list[Path],
    runner: Path,
    pull: Sequence[str],
    pull_into: Path | None,
    timeout: float,
    facts: dict[str, Any],
    report: Progress,
    steps: int,
) -> RemoteResult:
    address = transport.address
    with tempfile.TemporaryDirectory(prefix="shufflekit-job-") as tmp:
        job_path = Path(tmp) / JOB_NAME
        job_path.write_text(json.dumps(job), encoding="utf-8")
        sources = [runner, job_path, *files]
        check_space(transport, workdir, sources, "the job needs")
        report(f"{address}: copying {len(sources)} files", 1, steps)
        transport.push(sources, workdir)
    report(f"{address}: running", 2, steps)
    result = transport.run([device_python(address), runner.name, JOB_NAME], timeout=timeout, cwd=workdir)
    log.debug("%s: runner exit %s, stderr:\n%s", address, result.rc, result.stderr[-4000:])
    reply = _parse_output(address, result.stdout)
    if reply is None:
        raise DeviceError(
            f"{address}: the job failed on the device ({result.last_error_line()})",
            hint="run with -vv to see the device's output",
        )
    if not reply.get("ok") or result.rc != 0:
        raise translate(reply.get("error") or {}, device=str(address), own_python=_own_python(address))
    report(f"{address}: copying results back", 3, steps)
    pulled = {}
    for name in pull:
        target = Path(pull_into or ".") / name
        transport.pull(f"{workdir}/{name}", target)
        pulled[name] = target
    report(f"{address}: done", steps, steps)
    return RemoteResult(address.key, reply.get("result") or {}, facts, pulled)


def _parse_output(address: DeviceAddress, stdout: str) -> dict[str, Any] | None:
    """The runner prints one JSON object ({"ok": ..., "result"|"error": ...}) as its last line."""
    lines = stdout.strip().splitlines()
    try:
        value = json.loads(lines[-1]) if lines else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        log.debug("%s printed no JSON object:\n%s", address, stdout[-2000:])
        return None
    return value


def _own_python(address: DeviceAddress) -> bool:
    """Whether the job runs with the very Python shufflekit runs in (plain ``local``)."""
    return address.scheme == "local" and address.python is None


def _remove(transport: Transport, workdir: str) -> None:
    try:
        transport.remove_workdir(workdir)
    except DeviceError as exc:  # never hide the error that got us here
        log.warning("%s", exc.one_line())
