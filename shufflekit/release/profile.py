"""The release's profile stage: every artifact on this computer and on each --device, one worker per
device, all at once. Each artifact's figures go into the manifest (under its lock) as soon as they are
measured, with the per-iteration times for the report's distribution plot, so an interruption or a
device that drops out keeps everything measured before. A device that fails stops only its own worker."""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from ..artifacts import Artifact, Manifest, update_manifest
from ..errors import ShufflekitError, UsageError
from ..records import Latency, LatencyTimes
from ..runtimes.fanout import per_device
from .driver import Context, Planned
from .options import LOCAL, ReleaseOptions, device_keys
from .state import Unit, data_fingerprint, fingerprint, result_as_sealed, seal_result

log = logging.getLogger(__name__)


def native_tool(ctx: Context, key: str, artifact: Artifact) -> Any:
    """The --benchmark-binary that measures ``artifact`` on device ``key``, or None (the Python runner).
    Native tools are for the target devices: this computer is always measured by the runner."""
    native = ctx.options.native
    if native is None or key == LOCAL:
        return None
    try:
        return native.for_artifact(artifact)
    except UsageError:  # no tool given for this format: the runner measures it
        return None


def _still_measured(ctx: Context, key: str, artifact: Artifact, unit: Unit) -> bool:
    """Its latency on ``key`` is the one this unit recorded, not one a hand-run ``profile`` (other
    iterations, batch or threads) recorded since."""
    return _fresh_latency(Manifest.load(ctx.folder), key, artifact) and result_as_sealed(
        ctx.folder, unit, Latency.kind, artifact.name, group=key
    )


def _device_progress(ctx: Context, key: str, index: int, count: int, task: str, done: int, total: int | None) -> None:
    """A device's progress is counted in artifacts, not in the runner's steps."""
    ctx.progress(f"profile on {key}", index, count)


def _fresh_latency(manifest: Manifest, device: str, artifact: Artifact) -> bool:
    entry = manifest.results(Latency, group=device).get(artifact.name)
    return entry is not None and entry.sha256 == artifact.sha256


def settings_inputs(options: ReleaseOptions) -> dict[str, Any]:
    """What a profile unit's figures depend on besides the file and the device: how it is timed, how it
    is run (a changed --provider or --threads measures again) and, with --data, the device accuracy check."""
    settings = {**options.profile.to_dict(), **options.runtime.to_dict()}
    if options.data is not None and options.profile.parity:
        settings["device_accuracy"] = {
            "data": data_fingerprint(str(options.data)),
            "max_drop": options.max_drop,
            "samples": options.device_accuracy_samples,
        }
    return settings


def stage_profile(ctx: Context) -> None:
    """Profile every artifact on every device; units already measured with the same settings are skipped."""
    options = ctx.options
    keys = device_keys(options.devices, options.connect)
    manifest = Manifest.load(ctx.folder)
    artifacts = manifest.artifacts
    settings = settings_inputs(options)
    plans: dict[str, list[Planned[Artifact]]] = {}
    for address, key in keys.items():
        planned = []
        for artifact in artifacts:
            tool = native_tool(ctx, key, artifact)
            unit = Unit(
                "profile",
                f"{key} {artifact.name}",
                fingerprint(
                    "profile",
                    {
                        "artifact": artifact.sha256,
                        "device": key,
                        "settings": settings,
                        "tool": tool.sha256 if tool is not None else None,
                    },
                ),
            )
            planned.append(Planned(unit, artifact, partial(_still_measured, ctx, key, artifact, unit)))
        plan = ctx.pending(planned, manifest)
        if plan:
            plans[address] = plan
    if not plans:
        return
    ctx.device_accuracy = _device_accuracy_images(ctx, manifest)
    # a worker records its own device's failures; anything else (a bug) is raised after the others finish
    per_device({address: partial(_device_worker, ctx, address, keys[address], plan) for address, plan in plans.items()})


def _device_worker(ctx: Context, address: str, key: str, plan: list[Planned[Artifact]], stop: threading.Event) -> None:
    """Measure ``plan`` on one device. A device that cannot be used (unreachable, refused login, no
    Python, numpy or runtime) fails as a whole, checked once before the first artifact; after that, an
    artifact the device cannot run (a runtime too old for an operator, a missing delegate) fails alone
    and the worker goes on with the next."""
    from ..runtimes.profile import profile_folder
    from ..validate import device_parity

    options = ctx.options
    natively = any(native_tool(ctx, key, p.item) is not None for p in plan)
    ctx.device_errors.pop(key, None)  # an earlier round's failure (the recipe loop) is judged anew
    problem = _unusable(address, key, options.connect, natively)
    if problem is not None:
        ctx.device_errors[key] = problem
        ctx.outcome(plan[0].unit, "failed", note=problem)
        for rest in plan[1:]:
            ctx.outcome(rest.unit, "not run", note=f"device {key} cannot be used")
        return
    probed: dict[str, Any] = {}  # the device is asked what it has once, not once per artifact
    for index, planned in enumerate(plan):
        unit, artifact = planned.unit, planned.item
        if stop.is_set():
            return
        started = time.perf_counter()
        try:
            native = options.native if native_tool(ctx, key, artifact) is not None else None
            report = profile_folder(
                ctx.folder,
                [artifact.name],
                options=options.runtime,
                settings=options.profile,
                device=address,
                connect=options.connect,
                native=native,
                accuracy=ctx.device_accuracy,
                max_drop=options.max_drop,
                judge=device_parity,
                progress=partial(_device_progress, ctx, key, index, len(plan)),
                probed=probed,
            )
        except ShufflekitError as exc:
            if stop.is_set():  # interrupted: the runner was stopped, not refused by the device
                return
            ctx.artifact_errors.setdefault(key, {})[artifact.name] = exc.one_line()
            ctx.outcome(unit, "failed", time.perf_counter() - started, exc.one_line())
            continue
        seconds = time.perf_counter() - started
        ctx.artifact_errors.get(key, {}).pop(artifact.name, None)  # it ran now: an earlier round's error is void
        _record_times(ctx.folder, key, artifact, report)
        ctx.finish(unit, seconds, note=_outcome_note(report))
        seal_result(ctx.folder, unit, Latency.kind, artifact.name, group=key)
    ctx.progress(f"profile on {key}", len(plan), len(plan))


def _device_accuracy_images(ctx: Context, manifest: Manifest) -> Any:
    """The fixed labelled subset every device classifies with its own kernels (None without --data)."""
    options = ctx.options
    if options.data is None or not options.profile.parity:
        return None
    from ..validate.accuracy import labelled_arrays

    return labelled_arrays(options.data, manifest, limit=options.device_accuracy_samples)


def _outcome_note(report: Any) -> str:
    if not report.profiles:
        return ""
    profile = report.profiles[0]
    parts = []
    if report.host.get("emulated"):
        parts.append("emulated: latency not shown")
    elif profile.per_image_p50_ms is not None:
        parts.append(f"p50 {profile.per_image_p50_ms:.3f} ms")
    if profile.parity is not None and not profile.parity.passed:
        parts.append(f"parity FAIL: {profile.parity.failures[0]}")
    if profile.accuracy is not None:
        parts.append(f"top-1 {profile.accuracy.top1:.1f}%" + ("" if profile.accuracy.passed else " FAIL"))
    return ", ".join(parts)


def _unusable(address: str, key: str, connect: Any, natively: bool = False) -> str | None:
    """One line saying why a remote device cannot be used at all, or None (this computer: None). A device
    some artifacts are measured on by native tools needs no Python: reaching its shell is enough (an
    artifact the runner must measure there then fails alone)."""
    if key == LOCAL and "python=" not in address:
        return None
    from ..runtimes.remote import open_transport, parse_address
    from ..runtimes.remote.probe import check_device

    parsed = parse_address(address, ssh_config=getattr(connect, "ssh_config", None))
    if natively:
        from ..runtimes import native_facts

        try:
            with open_transport(parsed, connect) as transport:
                native_facts.collect(transport)
        except ShufflekitError as exc:
            return exc.one_line()
        return None
    check = check_device(parsed, connect)
    return None if check.ok else (check.error or f"{key} cannot be used")


def _record_times(folder: Path, key: str, artifact: Artifact, report: Any) -> None:
    times = [p.result.get("times_ms") for p in report.profiles if p.artifact.name == artifact.name]
    if not times or not times[0]:
        return
    with update_manifest(folder) as manifest:
        current = {a.name: a for a in manifest.artifacts}.get(artifact.name)
        if current is not None and current.sha256 == artifact.sha256:
            manifest.record(LatencyTimes(times_ms=tuple(round(t, 5) for t in times[0])), current, group=key)
