"""``shufflekit sweep``: every selected variant exported (random weights: they do not change the speed) and
measured on every device, then one table per device and a plot of latency against multiply-adds.

The folder: one export folder per variant (``OUT/<model>/``, written by the export pipeline, so
``profile``, ``validate`` and ``report`` read each as they read any export), and the sweep's index
``OUT/sweep.json`` with ``report.html`` and ``sweep.png`` beside it (``report.sweep``). One manifest per
variant, not one manifest for all: a manifest describes one model (its preprocessing, its parity
reference, the multiply-adds ``profile`` files with each figure), so every command keeps working unchanged.

A rerun into the same folder exports only what is missing (a variant folder whose fp32 files of each
format are intact at the same input size is kept), measures again on the devices given, and keeps the
variants of earlier runs at the same size in the index (add v1 to a v2 sweep, or a device, later).
Exports run first, then the measurements, so no conversion competes with a timed run for the CPU; the
devices are measured concurrently (one worker per device, as ``profile``), each variant after the other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..artifacts import MANIFEST_NAME, Manifest, utc_now
from ..errors import ShufflekitError, UsageError
from ..export.pipeline import ExportOptions, export_model
from ..folder import ReleaseFolder
from ..metadata import DEFAULT_SIZE, InputSize
from ..models.complexity import model_complexity
from ..models.registry import ModelSpec
from ..report.sweep import (
    SWEEP_NAME,
    SweepIndex,
    SweepModel,
    SweepView,
    check_sweep_files,
    is_sweep_folder,
    load_index,
    load_sweep,
    save_index,
    write_sweep_report,
)
from ..runtimes.base import RuntimeOptions
from ..runtimes.fanout import device_keys, per_device
from ..runtimes.profile import LOCAL, ProfileReport, ProfileSettings, profile_folder
from ..runtimes.rounds import keep_median_round
from .paper import paper_ips

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, "int | None"], None]
SWEEP_FORMATS = ("onnx", "tflite")
DEFAULT_THREADS = 1  # the paper's ARM column: "A single thread is used for evaluation"


@dataclass(frozen=True)
class SweepOptions:
    input_size: InputSize = DEFAULT_SIZE  # an int is taken as a square, as every size argument
    num_classes: int = 1000
    formats: tuple[str, ...] = SWEEP_FORMATS
    devices: tuple[str, ...] = (LOCAL,)
    threads: int | None = DEFAULT_THREADS
    provider: str = "cpu"
    warmup: int = 5
    iters: int = 50
    rounds: int = 1  # measure every file this many times in turn, keep its median round
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", InputSize.of(self.input_size))


@dataclass(frozen=True)
class SweepReport:
    folder: Path
    view: SweepView
    exported: tuple[str, ...]  # variants exported by this run
    kept: tuple[str, ...]  # variant folders of an earlier run used as they were
    devices: tuple[str, ...]  # device keys measured by this run
    files: dict[str, str]  # report files written: name -> sha256
    timings: dict[str, float] = field(default_factory=dict)


def _check_out(out: Path) -> SweepIndex | None:
    """The folder is new, empty of ours, or an earlier sweep (whose index is returned)."""
    if not str(out).strip():
        raise UsageError("the output folder is an empty path (an unset shell variable?)", hint="pass --out DIR")
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is a file", hint="pass a folder path (it is created if missing)")
    if (out / MANIFEST_NAME).exists():
        raise UsageError(
            f"{out} is a release folder (it has a {MANIFEST_NAME})",
            hint="a sweep writes one folder per variant: choose a new --out",
        )
    previous = load_index(out) if is_sweep_folder(out) else None
    if out.exists() and previous is None and (out / SWEEP_NAME).exists():
        raise UsageError(f"{out / SWEEP_NAME} is not a file", hint="move it away or choose another --out")
    check_sweep_files(out, previous)
    return previous


def _earlier_formats(folder: Path, spec: ModelSpec, options: SweepOptions) -> dict[str, bool]:
    """The fp32 formats of an earlier export of this variant at this size and class count (format -> its
    file is intact); empty when the folder holds no such export."""
    if not (folder / MANIFEST_NAME).is_file():
        return {}
    try:
        manifest = Manifest.load(folder)
    except ShufflekitError:
        return {}
    meta = manifest.meta
    if (meta.model, meta.input_size, meta.num_classes) != (spec.name, options.input_size, options.num_classes):
        return {}
    found: dict[str, bool] = {}
    for artifact in manifest.artifacts:
        if artifact.precision != "fp32":
            continue
        try:
            artifact.verify(folder)
            found[artifact.format] = True
        except ShufflekitError:
            found[artifact.format] = False
    return found


def _entry(spec: ModelSpec, options: SweepOptions) -> SweepModel:
    assert spec.width is not None  # select_variants takes the width series only
    c = model_complexity(spec.name, options.input_size, options.num_classes)
    return SweepModel(
        name=spec.name,
        family=spec.family,
        width=spec.width,
        groups=spec.groups,
        folder=spec.name,
        params=c.params,
        mult_adds=c.mult_adds,
        memory_access=c.memory_access,
        paper_ips=paper_ips(spec.name, options.input_size),
    )


def run_sweep(
    out: str | Path,
    specs: Sequence[ModelSpec],
    options: SweepOptions | None = None,
    *,
    connect: Any = None,
    progress: ProgressFn | None = None,
) -> SweepReport:
    """Export ``specs`` into ``out`` (one folder each), measure every fp32 file on every device, and write
    the sweep's index, table and plot. ``connect``: the remote layer's ConnectOptions."""
    options = options or SweepOptions()
    progress = progress or (lambda task, done, total: None)
    if not specs:
        raise UsageError("no variant selected", hint="pass --family v1,v2 (see `shufflekit models`)")
    out = Path(out)
    keys = device_keys(list(options.devices) or [LOCAL], getattr(connect, "ssh_config", None))  # before any work
    runtime = RuntimeOptions(provider=options.provider, threads=options.threads)
    settings = ProfileSettings(warmup=options.warmup, iters=options.iters, parity=False)
    export_options = ExportOptions(formats=options.formats, seed=options.seed, reference_samples=8).checked()
    options = replace(options, formats=export_options.formats)
    previous = _check_out(out)
    for spec in specs:
        if (out / spec.name).exists() and not (out / spec.name).is_dir():
            raise UsageError(f"{out / spec.name} is a file", hint="move it away or choose another --out")
    timings: dict[str, float] = {}

    started = time.perf_counter()
    exported, kept = _export_all(out, specs, options, export_options, progress)
    timings["export"] = time.perf_counter() - started
    entries = [_entry(spec, options) for spec in specs]
    with ReleaseFolder(out).lock():
        index = _merged_index(out, previous, entries, options, devices=())
        save_index(out, index)  # the folders are in the index before anything is measured

    started = time.perf_counter()
    reports = _measure(out, entries, list(keys), runtime, settings, connect, progress, options.rounds)
    timings["measure"] = time.perf_counter() - started
    measured = tuple(dict.fromkeys(r.device for r in reports))
    with ReleaseFolder(out).lock():
        save_index(out, _merged_index(out, load_index(out), entries, options, devices=measured))
    files = write_sweep_report(out)  # under the folder's lock too
    return SweepReport(out, load_sweep(out), tuple(exported), tuple(kept), measured, files, timings)


def _export_all(
    out: Path, specs: Sequence[ModelSpec], options: SweepOptions, export_options: ExportOptions, progress: ProgressFn
) -> tuple[list[str], list[str]]:
    from ..export.tflite_worker import conversions_in_worker

    exported: list[str] = []
    kept: list[str] = []
    with conversions_in_worker():  # TensorFlow loads once, in its own process, for every conversion
        for number, spec in enumerate(specs):
            progress("export", number, len(specs))
            folder = out / spec.name
            earlier = _earlier_formats(folder, spec, options)
            if all(earlier.get(fmt) for fmt in options.formats):
                kept.append(spec.name)
                continue
            # the formats an earlier run made stay (an export replaces the folder's files by its own)
            formats = tuple(f for f in SWEEP_FORMATS if f in earlier or f in options.formats)
            formats += tuple(f for f in [*earlier, *options.formats] if f not in formats)
            export_model(
                folder,
                model=spec.name,
                num_classes=options.num_classes,
                input_size=options.input_size,
                options=replace(export_options, formats=formats).checked(),
            )
            exported.append(spec.name)
        progress("export", len(specs), len(specs))
    return exported, kept


def _measure(
    out: Path,
    entries: Sequence[SweepModel],
    devices: Sequence[str],
    runtime: RuntimeOptions,
    settings: ProfileSettings,
    connect: Any,
    progress: ProgressFn,
    rounds: int = 1,
) -> list[ProfileReport]:
    """Every variant on every device: the devices at once, the variants of one device one after another,
    ``rounds`` times in turn (A, B, C, A, B, C...); each file keeps the figures of its median round."""

    def work(device: str) -> Callable[[threading.Event], list[ProfileReport]]:
        def run(stop: threading.Event) -> list[ProfileReport]:
            probed: dict[str, Any] = {}  # the device is probed once for the whole sweep
            task = f"measure on {device}" if len(devices) > 1 else "measure"
            measured: dict[str, list[ProfileReport]] = {}
            total = len(entries) * rounds
            for number in range(total):
                entry = entries[number % len(entries)]
                if stop.is_set():
                    break
                progress(task, number, total)
                measured.setdefault(entry.folder, []).append(
                    profile_folder(
                        out / entry.folder,
                        options=runtime,
                        settings=settings,
                        device=device,
                        connect=connect,
                        probed=probed,
                    )
                )
            progress(task, total, total)
            return [keep_median_round(out / folder, found) for folder, found in measured.items()]

        return run

    found = per_device({device: work(device) for device in devices})
    return [report for reports in found.values() for report in reports]


def _merged_index(
    out: Path, previous: SweepIndex | None, entries: Sequence[SweepModel], options: SweepOptions, devices: Sequence[str]
) -> SweepIndex:
    """This run's variants, after those of an earlier run at the same size and classes whose folders remain."""
    same = previous is not None and (previous.input_size, previous.num_classes) == (
        options.input_size,
        options.num_classes,
    )
    names = {e.folder for e in entries}
    earlier = (
        [m for m in previous.models if m.folder not in names and (out / m.folder / MANIFEST_NAME).is_file()]
        if previous is not None and same
        else []
    )
    now = utc_now()
    return SweepIndex(
        input_size=options.input_size,
        num_classes=options.num_classes,
        formats=tuple(dict.fromkeys([*(previous.formats if previous and same else ()), *options.formats])),
        threads=options.threads,
        models=(*earlier, *entries),
        devices=tuple(dict.fromkeys([*(previous.devices if previous and same else ()), *devices])),
        files=dict(previous.files) if previous is not None else {},
        created_at=previous.created_at if previous is not None and previous.created_at else now,
        updated_at=now,
    )
