"""`shufflekit release`: from a model (and checkpoint) to a verified, quantized, profiled release folder.

Stages, in order: train (``--demo`` only), export (ONNX + TFLite fp32), quantize (fp16, dynamic, int8 of
both formats by default; int8 needs calibration images from ``--data``; ONNX files by the recipes of
``export.recipes``, with the accuracy-aware fallback when ``--data`` has labels), evaluate (accuracy, with
``--data``), validate (parity against PyTorch, with the accuracy drop), profile (this computer and every
``--device`` at once: latency, and parity and accuracy with each device's own kernels), report
(labels.txt, README.md model card, report.html), each opening with the per-device verdict. manifest.json
is the single source of truth; the report is written from it alone. While the converter process makes the
TFLite files, this process evaluates and validates the files already made (``_check_made_files``).

Reruns: every stage is cut into units (``release.state``, run by ``release.driver``) whose fingerprint
is the sha256 of their inputs and options; a unit recorded with the same fingerprint, whose files are
intact, is skipped. An interrupted run resumes with the units that had not finished; leftover temporary
files are removed first, and every file reused is checked against its sha256.

Failures: bad input is refused before any work, a file in the folder that shufflekit did not make
(a user's README.md, labels.txt, reference.npz, a same-named model file) among them: nothing is
replaced. A parity or accuracy failure is recorded and fails the release at the end (exit 1) after the
report shows it; a device that cannot be reached fails only its own worker: everything else is kept and
the release ends with exit 2, naming the device.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from ..artifacts import Manifest
from ..errors import CheckFailed, DeviceError
from ..folder import ReleaseFolder
from .driver import Context, ProgressFn
from .evaluate import stage_evaluate
from .export import stage_export
from .options import MAX_RECIPE_ROUNDS, ReleaseOptions, check_options
from .profile import stage_profile
from .quantize import (
    recipe_fallback_notes,
    recipes_failed_on_devices,
    stage_quantize,
    with_recorded_recipe_skips,
)
from .report import record_release_facts, stage_report
from .state import StageLog, UnitOutcome
from .train import stage_train
from .validate import stage_validate

log = logging.getLogger(__name__)


@dataclass
class ReleaseReport:
    folder: Path
    log: StageLog
    notes: list[str]
    device_errors: dict[str, str]  # device -> why it could not be used at all
    artifact_errors: dict[str, dict[str, str]]  # device -> artifact -> why it did not run there
    parity_failures: list[str] = field(default_factory=list)
    accuracy_failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def html(self) -> Path:
        return self.folder / "report.html"

    @property
    def card(self) -> Path:
        return self.folder / "README.md"

    @property
    def ok(self) -> bool:
        return not (self.device_errors or self.artifact_errors or self.parity_failures or self.accuracy_failures)

    def stage_times(self) -> dict[str, float]:
        times: dict[str, float] = {}
        for outcome in self.log.outcomes:
            times[outcome.unit.stage] = times.get(outcome.unit.stage, 0.0) + outcome.seconds
        return times

    def raise_if_failed(self) -> None:
        """Device failures first (exit 2: the environment), then failed checks (exit 1)."""
        if self.device_errors or self.artifact_errors:
            parts = [f"{device} could not be used ({error})" for device, error in self.device_errors.items()]
            parts += [
                f"{name} did not run on {device} ({error})"
                for device, errors in self.artifact_errors.items()
                for name, error in errors.items()
            ]
            raise DeviceError(
                f"profiling failed: {'; '.join(parts)}; every other result was kept",
                hint="fix the device (or the artifact) and run the same command again: only what is missing runs",
            )
        failed = self.parity_failures + self.accuracy_failures
        if failed:
            raise CheckFailed(
                f"release checks failed: {'; '.join(failed)}", hint=f"see {self.html.name} and the table above"
            )


def release(
    options: ReleaseOptions,
    *,
    progress: ProgressFn | None = None,
    on_event: Callable[[UnitOutcome], None] | None = None,
) -> ReleaseReport:
    """Run every stage into ``options.out``; see the module docstring. Returns what ran and what failed;
    the caller prints it and calls ``raise_if_failed``."""
    from ..export.tflite_worker import conversions_in_worker
    from ..validate.run_cache import shared_within_run

    # the labelled images and each file's predictions on them are made once; TFLite conversions run in a
    # converter process of their own, beside the rest (export.tflite_worker)
    with shared_within_run(), conversions_in_worker():
        return _release(options, progress, on_event)


def _release(
    options: ReleaseOptions,
    progress: ProgressFn | None,
    on_event: Callable[[UnitOutcome], None] | None,
) -> ReleaseReport:
    started = time.perf_counter()
    options = check_options(options)
    folder = Path(options.out)
    if (folder / "manifest.json").exists():
        Manifest.load(folder)  # a damaged manifest is refused before any work (export says how to fix it)
    ReleaseFolder(folder).check_replaceable(_release_file_names(options), hint="move it away or choose another --out")
    ctx = Context(folder, options, progress or (lambda task, done, total: None), on_event or (lambda o: None))
    ReleaseFolder(folder).clean_leftovers()

    checkpoint = stage_train(ctx) if options.demo else options.checkpoint
    stage_export(ctx, Path(checkpoint) if checkpoint else None)
    ctx.options = options = with_recorded_recipe_skips(ctx)  # for the model exported now
    if options.data is None:
        ctx.notes.append("accuracy not measured: pass --data DIR|demo to evaluate every artifact")
    for _ in range(MAX_RECIPE_ROUNDS):
        stage_quantize(ctx, meanwhile=partial(_check_made_files, ctx))
        if options.data is not None:  # accuracy first, so the parity verdict includes the accuracy drop
            stage_evaluate(ctx)
        stage_validate(ctx)
        stage_profile(ctx)
        skips = recipes_failed_on_devices(ctx)  # a device's own kernels lost accuracy with a recipe
        if not skips:
            break
        ctx.options = options = replace(
            options,
            quantize=replace(
                options.quantize, skip_recipes=tuple(sorted(set(options.quantize.skip_recipes) | set(skips)))
            ),
        )
        for device in [d for d, errors in ctx.artifact_errors.items() if not errors]:
            del ctx.artifact_errors[device]
    ctx.notes.extend(recipe_fallback_notes(ctx))
    for device, error in ctx.device_errors.items():
        ctx.notes.append(f"device {device} could not be used, its latency figures are missing: {error}")
    for device, errors in ctx.artifact_errors.items():
        for name, error in errors.items():
            ctx.notes.append(f"{name} did not run on {device}: {error}")
    record_release_facts(ctx)
    stage_report(ctx)

    report = ReleaseReport(
        folder,
        ctx.log,
        list(dict.fromkeys(ctx.notes)),
        dict(ctx.device_errors),
        {d: dict(e) for d, e in ctx.artifact_errors.items()},
        seconds=time.perf_counter() - started,
    )
    _collect_failures(report)
    return report


def _check_made_files(ctx: Context) -> None:
    """While the converter process makes the TFLite files, this process (on the other core) evaluates and
    validates the files made so far: export's, and the ONNX ones. Each unit commits under the folder's
    lock; the stages after the quantize stage skip what ran here. Latency is never measured meanwhile."""
    before = len(ctx.log.outcomes)
    if ctx.options.data is not None:
        stage_evaluate(ctx, one_core=True)
    stage_validate(ctx)
    ctx.ran_ahead |= {
        o.unit for o in ctx.log.outcomes[before:] if o.status == "ran" and o.unit.stage in ("evaluate", "validate")
    }


def _release_file_names(options: ReleaseOptions) -> list[str]:
    """The names the stages rename into the folder, as far as the options tell (all of them when the
    model is named; the report's and the reference's always)."""
    from ..export.pipeline import ExportOptions, export_file_names
    from ..export.quantize import quantize_file_names
    from ..report import REPORT_FILES

    names = [*REPORT_FILES, *export_file_names(options.model, ExportOptions())]
    if options.model and options.quantize is not None:
        formats = options.quantize.formats or ("onnx", "tflite")
        names += quantize_file_names(options.model, options.quantize, formats)
    return names


def _collect_failures(report: ReleaseReport) -> None:
    """The verdict comes from the manifest, so a rerun that skipped everything still reports a failure."""
    from ..report.view import load_view

    view = load_view(report.folder)
    for row in view.rows:
        if row.parity_passed is False:
            assert row.parity is not None  # parity_passed is None without a parity record
            failures = row.parity.get("failures") or ["out of tolerance"]
            report.parity_failures.append(f"parity {row.name}: {failures[0]}")
        for device, entry in row.device_parity.items():  # news only where the host's check passed
            if row.parity_passed is not False and not entry.get("passed"):
                failures = entry.get("failures") or ["out of tolerance"]
                report.parity_failures.append(f"parity {row.name} on {device}: {failures[0]}")
        for device, measured in row.device_accuracy.items():  # the device's own kernels on labelled images
            if row.accuracy_passed is not False and not measured.get("passed"):
                report.accuracy_failures.append(f"accuracy {row.name} on {device}: {measured.get('failure')}")
        if row.accuracy_passed is False:
            report.accuracy_failures.append(
                f"accuracy {row.name}: top-1 {row.top1}% ({row.top1_delta:+.1f} points)"
                if row.top1 is not None and row.top1_delta is not None
                else f"accuracy {row.name}: failed the gate"
            )
