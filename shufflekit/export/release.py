"""`shufflekit release`: from a model (and checkpoint) to a verified, quantized, profiled release folder.

Stages, in order: train (``--demo`` only), export (ONNX + TFLite fp32), quantize (fp16, dynamic, int8 of
both formats by default; int8 needs calibration images from ``--data``; ONNX files by the recipes of
``export.recipes``, with the accuracy-aware fallback when ``--data`` has labels), evaluate (accuracy, with
``--data``), validate (parity against PyTorch, with the accuracy drop), profile (this computer and every
``--device`` at once: latency, and parity and accuracy with each device's own kernels), report
(labels.txt, README.md model card, report.html), each opening with the per-device verdict. manifest.json is the single source of truth; the report
is written from it alone.

Reruns: every stage is cut into units (``release_state``) whose fingerprint is the sha256 of their
inputs and options; a unit recorded with the same fingerprint, whose files are intact, is skipped. An
interrupted run resumes with the units that had not finished; leftover temporary files are removed
first, and every file reused is checked against its sha256.

Failures: bad input is refused before any work. A parity or accuracy failure is recorded and fails the
release at the end (exit 1) after the report shows it; a device that cannot be reached fails only its
own worker: everything else is kept and the release ends with exit 2, naming the device.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ..artifacts import Manifest
from ..errors import CheckFailed, CheckpointError, DataError, DeviceError, UsageError
from ..metadata import check_input_size
from ..runtimes.profile import ProfileSettings
from .release_state import StageLog, UnitOutcome, clean_leftovers

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, "int | None"], None]
DEFAULT_PROFILE = ProfileSettings(warmup=10, iters=100, op_profile=True, keep_times=True)
DEMO_MODEL = "shufflenet_v2_x0_5"
DEVICE_ACCURACY_SAMPLES = 100  # per device: enough to see a kernel that loses points, quick when emulated
MAX_RECIPE_ROUNDS = 4  # quantize..profile again while a device's kernels fail a recipe (the ladder is short)
DEMO_EPOCHS = 8  # about 94 % validation top-1 on the digits; the release's other stages need the rest of 5 minutes


@dataclass(frozen=True)
class ReleaseOptions:
    out: Path
    model: str | None = None
    checkpoint: Path | None = None
    data: str | None = None  # an image folder, a .npy/.npz file, or "demo"
    devices: tuple[str, ...] = ()
    input_size: int | None = None
    num_classes: int | None = None
    connect: Any = None  # remote.ConnectOptions
    demo: bool = False
    demo_epochs: int = DEMO_EPOCHS
    calib_samples: int = 256
    eval_limit: int | None = None
    max_drop: float = 1.0
    profile: ProfileSettings = DEFAULT_PROFILE
    native: Any = None  # runtimes.native.NativeTools: --benchmark-binary, used on the remote devices
    quantize: Any = None  # export.quantize.QuantizeOptions: precisions, formats and recipe settings
    device_accuracy_samples: int = DEVICE_ACCURACY_SAMPLES  # labelled images each device classifies (--data)


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
            parts += [f"{name} did not run on {device} ({error})"
                      for device, errors in self.artifact_errors.items() for name, error in errors.items()]
            raise DeviceError(f"profiling failed: {'; '.join(parts)}; every other result was kept",
                              hint="fix the device (or the artifact) and run the same command again: only what "
                                   "is missing runs")
        failed = self.parity_failures + self.accuracy_failures
        if failed:
            raise CheckFailed(f"release checks failed: {'; '.join(failed)}",
                              hint=f"see {self.html.name} and the table above")


def check_options(options: ReleaseOptions) -> ReleaseOptions:
    """Refuse bad input before any work, one line each."""
    from ..models import model_spec

    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is a file", hint="pass a folder path for --out (it is created)")
    if options.demo and options.checkpoint is not None:
        raise UsageError("--demo trains its own checkpoint; --checkpoint cannot go with it",
                         hint="drop one of them")
    if not options.demo and options.model is None and options.checkpoint is None:
        raise UsageError("no model to release", hint="pass --model NAME (see `shufflekit models`), or --demo")
    if options.model is not None:
        model_spec(options.model)
    if options.checkpoint is not None and not Path(options.checkpoint).is_file():
        raise CheckpointError(f"checkpoint {options.checkpoint} does not exist", hint="check the path")
    if options.input_size is not None:
        try:
            check_input_size(options.input_size)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if options.num_classes is not None and options.num_classes < 1:
        raise UsageError(f"--num-classes must be at least 1, got {options.num_classes}")
    if options.data is not None and options.data != "demo" and not Path(options.data).exists():
        raise DataError(f"data {options.data} does not exist",
                        hint="pass an image folder (one subfolder per class), a .npy/.npz file, or demo")
    if options.eval_limit is not None and options.eval_limit < 1:
        raise UsageError(f"--limit must be at least 1, got {options.eval_limit}")
    if options.max_drop < 0:
        raise UsageError(f"--max-drop must be 0 or more points, got {options.max_drop}")
    if options.calib_samples < 1:
        raise UsageError(f"calibration needs at least one image, got {options.calib_samples}")
    if options.device_accuracy_samples < 1:
        raise UsageError(f"--device-accuracy-samples must be at least 1, got {options.device_accuracy_samples}")
    from .quantize import QuantizeOptions

    quantize = (options.quantize or QuantizeOptions(precisions=("fp16", "dynamic", "int8"))).checked()
    if quantize.io_dtype != "float32" and ("int8" not in quantize.precisions
                                           or "tflite" not in (quantize.formats or ("onnx", "tflite"))):
        raise UsageError(f"--io-dtype {quantize.io_dtype} applies to TFLite int8 only",
                         hint="keep int8 and tflite in --precisions/--formats, or leave --io-dtype out")
    options = replace(options, quantize=quantize)
    from .release_profile import device_keys

    device_keys(options.devices, options.connect)  # a malformed address fails here, before any work
    if options.demo:
        options = replace(options, model=options.model or DEMO_MODEL, data=options.data or "demo")
    return options


def release(options: ReleaseOptions, *, progress: ProgressFn | None = None,
            on_event: Callable[[UnitOutcome], None] | None = None) -> ReleaseReport:
    """Run every stage into ``options.out``; see the module docstring. Returns what ran and what failed;
    the caller prints it and calls ``raise_if_failed``."""
    from . import release_profile, release_stages as stages

    started = time.perf_counter()
    options = check_options(options)
    folder = Path(options.out)
    if (folder / "manifest.json").exists():
        Manifest.load(folder)  # a damaged manifest is refused before any work (export says how to fix it)
    ctx = stages.Context(folder, options, progress or (lambda task, done, total: None), on_event or (lambda o: None))
    clean_leftovers(folder)

    checkpoint = stages.stage_train(ctx) if options.demo else options.checkpoint
    stages.stage_export(ctx, Path(checkpoint) if checkpoint else None)
    ctx.options = options = stages.with_recorded_recipe_skips(ctx)  # for the model exported now
    if options.data is None:
        ctx.notes.append("accuracy not measured: pass --data DIR|demo to evaluate every artifact")
    for _ in range(MAX_RECIPE_ROUNDS):
        stages.stage_quantize(ctx)
        if options.data is not None:  # accuracy first, so the parity verdict includes the accuracy drop
            stages.stage_evaluate(ctx)
        stages.stage_validate(ctx)
        release_profile.stage_profile(ctx)
        skips = stages.recipes_failed_on_devices(ctx)  # a device's own kernels lost accuracy with a recipe
        if not skips:
            break
        ctx.options = options = replace(options, quantize=replace(
            options.quantize, skip_recipes=tuple(sorted(set(options.quantize.skip_recipes) | set(skips)))))
        for device in [d for d, errors in ctx.artifact_errors.items() if not errors]:
            del ctx.artifact_errors[device]
    ctx.notes.extend(stages.recipe_fallback_notes(ctx))
    for device, error in ctx.device_errors.items():
        ctx.notes.append(f"device {device} could not be used, its latency figures are missing: {error}")
    for device, errors in ctx.artifact_errors.items():
        for name, error in errors.items():
            ctx.notes.append(f"{name} did not run on {device}: {error}")
    stages.record_release_facts(ctx)
    stages.stage_report(ctx)

    report = ReleaseReport(folder, ctx.log, list(dict.fromkeys(ctx.notes)), dict(ctx.device_errors),
                           {d: dict(e) for d, e in ctx.artifact_errors.items()}, seconds=time.perf_counter() - started)
    _collect_failures(report)
    return report


def _collect_failures(report: ReleaseReport) -> None:
    """The verdict comes from the manifest, so a rerun that skipped everything still reports a failure."""
    from ..report.view import load_view

    view = load_view(report.folder)
    for row in view.rows:
        if row.parity_passed is False:
            failures = (row.parity or {}).get("failures") or ["out of tolerance"]
            report.parity_failures.append(f"parity {row.name}: {failures[0]}")
        for device, entry in row.device_parity.items():  # news only where the host's check passed
            if row.parity_passed is not False and not entry.get("passed"):
                failures = entry.get("failures") or ["out of tolerance"]
                report.parity_failures.append(f"parity {row.name} on {device}: {failures[0]}")
        for device, entry in row.device_accuracy.items():  # the device's own kernels on labelled images
            if row.accuracy_passed is not False and not entry.get("passed"):
                report.accuracy_failures.append(f"accuracy {row.name} on {device}: {entry.get('failure')}")
        if row.accuracy_passed is False:
            report.accuracy_failures.append(f"accuracy {row.name}: top-1 {row.top1}% ({row.top1_delta:+.1f} points)"
                                            if row.top1 is not None and row.top1_delta is not None
                                            else f"accuracy {row.name}: failed the gate")
