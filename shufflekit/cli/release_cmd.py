"""`shufflekit release`: export, quantize, validate, evaluate and profile every format and precision into
one release folder with a manifest, a model card and an offline HTML report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..metadata import InputSize
from .app import RANDOM_WEIGHTS_WARNING, console, main, print_table, progress_bar, shorten_names
from .config_file import config_option
from .devices_cmd import connect_options
from .numbers import CALIB_SAMPLES, INPUT_SIZE, INPUT_SIZE_HELP, MAX_DROP, NUM_CLASSES
from .output import current
from .paths import NonEmptyPath
from .recipe_options import recipe_options
from .shared_options import (
    DATA_METAVAR,
    GPU_CHECK_OPTION,
    LAYOUT_OPTION,
    OPTIMIZE_OPTION,
    PROVIDER_OPTIONS,
    device_accuracy_samples_option,
    eval_samples_option,
    parity_option,
    parity_samples_option,
    precisions_option,
    timing_options,
)

if TYPE_CHECKING:
    from ..release import ReleaseOptions
    from ..runtimes.profile import ProfileSettings

DEMO_OUT = "demo-release"
_STATUS_STYLE = {"ran": "green", "skipped": "cyan", "not run": "yellow", "failed": "bold red"}

# The options a release.toml may write under [stage]: those that feed that stage (any may go at the top).
RELEASE_SECTIONS: dict[str, tuple[str, ...]] = {
    "export": ("model", "checkpoint", "input-size", "num-classes", "data", "layout", "optimize", "parity-samples"),
    "quantize": (
        "data",
        "precisions",
        "formats",
        "target",
        "per-channel",
        "reduce-range",
        "calibration",
        "activation-type",
        "weight-type",
        "io-dtype",
        "calib-samples",
        "eval-samples",
        "max-drop",
    ),
    "evaluate": ("data", "eval-samples", "max-drop"),
    "validate": ("parity-samples", "gpu-check"),
    "profile": (
        "device",
        "benchmark-binary",
        "provider",
        "allow-fallback",
        "threads",
        "warmup",
        "iters",
        "seconds",
        "min-iters",
        "batch",
        "op-profile",
        "parity",
        "data",
        "device-accuracy-samples",
        "max-drop",
        "ssh-config",
        "trust-new-host-key",
        "connect-timeout",
    ),
}


@main.command("release")
@config_option(
    sections=RELEASE_SECTIONS,
    path_options=("data",),
    help="Options from a TOML file: the option names as keys (threads = 2, op-profile = false), at the top or "
    "under [export], [quantize], [evaluate], [validate], [profile]; options given here win; relative paths "
    "are relative to the file's folder.",
)
@click.option("--model", metavar="NAME", help="Variant name (see `shufflekit models`).")
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    help="Weights to release (shufflekit, torchvision "
    "or Megvii file). Without one, a seeded model is released (for checking the toolchain).",
)
@click.option(
    "--data",
    metavar=DATA_METAVAR,
    help="Images for int8 calibration and accuracy: an image folder "
    "(one subfolder per class; train/ and val/ used when present), a .npy/.npz file, or demo. "
    "Without it, int8 and accuracy are skipped (and said so).",
)
@click.option("--input-size", type=INPUT_SIZE, help=f"{INPUT_SIZE_HELP} [default: the checkpoint's, else 224].")
@click.option("--num-classes", type=NUM_CLASSES, help="Classes [default: the checkpoint's, else 1000].")
@click.option("--out", type=NonEmptyPath(path_type=Path), help=f"Release folder [required; {DEMO_OUT} with --demo].")
@click.option(
    "--demo",
    is_flag=True,
    help="Train the demo model (v2 0.5x on the built-in digits) briefly, then "
    "release it with every format and precision.",
)
# export
@LAYOUT_OPTION
@OPTIMIZE_OPTION
@parity_samples_option(
    "Reference inputs the export stores (from --data's validation images when given): parity is judged on "
    "them here and on every device.",
    default=16,
)
# quantize
@precisions_option(
    default="fp16,dynamic,int8",
    help="Quantized precisions to make (fp32 is always made): fp16, dynamic, int8; comma-separated or repeated.",
)
@click.option(
    "--formats",
    default="onnx,tflite",
    show_default=True,
    help="Formats to quantize: onnx, tflite (the fp32 file of each is always made).",
)
@recipe_options
@click.option(
    "--calib-samples", type=CALIB_SAMPLES, help="Calibration images for int8 [default: 256 for ONNX, 128 for TFLite]."
)
# evaluate
@eval_samples_option(
    "Evaluate accuracy on this many validation images (a fixed subset) [default: all].", old=("--limit",)
)
@click.option(
    "--max-drop",
    type=MAX_DROP,
    default=1.0,
    show_default=True,
    help="Fail an artifact that loses more top-1 points than this against PyTorch (here and on each device).",
)
# validate
@GPU_CHECK_OPTION
# profile
@click.option(
    "--device",
    "devices",
    multiple=True,
    metavar="URI",
    help="Also profile on this device "
    "(ssh://[user@]host[:port], a Host alias, adb://SERIAL); repeat for several, measured at once. "
    "This computer is always profiled.",
)
@click.option(
    "--benchmark-binary",
    "benchmark_binaries",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Measure on the --device devices with this native tool (TFLite's benchmark_model, "
    "onnxruntime_perf_test) instead of the Python runner: the way on an Android phone. Artifacts "
    "of a format with no tool given use the runner. This computer always uses the runner.",
)
@PROVIDER_OPTIONS
@timing_options(
    iters_help="Timed runs per artifact and device, instead of a time budget.",
    seconds_help="Time budget per artifact and device [default: 0.3 (release.options.DEFAULT_PROFILE)].",
    min_iters_help="Timed runs at least, within the time budget [default: 30].",
    op_profile=True,
)
@parity_option(
    "On every device, also judge its outputs on the reference inputs against PyTorch and, with --data, "
    "its accuracy with its own kernels."
)
@device_accuracy_samples_option(
    "With --data: labelled images every device classifies with its own kernels (the accuracy gate "
    "per device and per file)."
)
@connect_options
def release_command(**params: Any) -> None:
    """Export, quantize, check parity and accuracy, profile on every device, and write a release folder:
    artifacts, manifest.json, labels.txt, README.md (model card) and report.html.

    A rerun skips every stage whose inputs are unchanged and resumes an interrupted run.
    """
    from ..gc_tuning import for_batch_work
    from ..release import release

    options = release_options(**params)
    out, demo = options.out, options.demo
    output = current()
    output.info(f"release into {out}/" + (" (demo: training v2 0.5x on the built-in digits first)" if demo else ""))
    printer = _OutcomePrinter(shown=output.progress)
    for_batch_work()
    with progress_bar() as progress:
        try:
            report = release(options, progress=progress, on_event=printer)
        finally:
            printer.flush()
    if output.json:
        respond(report)
    else:
        print_summary(report)
    report.raise_if_failed()


def release_options(
    *,
    model: str | None,
    checkpoint: Path | None,
    data: str | None,
    input_size: InputSize | None,
    num_classes: int | None,
    out: Path | None,
    demo: bool,
    layout: str,
    optimize: bool,
    parity_samples: int,
    precisions: tuple[str, ...],
    formats: str,
    target: str,
    per_channel: bool | None,
    reduce_range: bool | None,
    calibration: str,
    activation_type: str | None,
    weight_type: str | None,
    io_dtype: str,
    calib_samples: int | None,
    eval_samples: int | None,
    max_drop: float,
    gpu_check: bool,
    devices: tuple[str, ...],
    benchmark_binaries: tuple[Path, ...],
    provider: str,
    allow_fallback: bool,
    threads: int | None,
    warmup: int,
    iters: int | None,
    seconds: float | None,
    min_iters: int | None,
    batch: int,
    op_profile: bool,
    parity: bool,
    device_accuracy_samples: int,
    connect: Any,
) -> ReleaseOptions:
    """The ReleaseOptions of the parsed command line (and --config file): every option into the settings
    of the stage it feeds."""
    from ..errors import UsageError
    from ..export.quantize import QuantizeOptions
    from ..release import ReleaseOptions
    from ..runtimes import RuntimeOptions

    if out is None:
        if not demo:
            raise UsageError("--out is required", hint="pass the release folder to write, e.g. --out release/")
        out = Path(DEMO_OUT)
    native = None
    if benchmark_binaries:
        from ..runtimes.native import NativeTools

        if not devices:
            raise UsageError(
                "--benchmark-binary measures on --device devices, and none is given",
                hint="add --device adb://SERIAL (or ssh://...), or leave out --benchmark-binary",
            )

        native = NativeTools.from_paths(benchmark_binaries)
    return ReleaseOptions(
        out=out,
        model=model,
        checkpoint=checkpoint,
        data=data,
        devices=devices,
        input_size=input_size,
        num_classes=num_classes,
        connect=connect,
        demo=demo,
        calib_samples=calib_samples,
        eval_limit=eval_samples,
        max_drop=max_drop,
        profile=profile_settings(
            warmup=warmup,
            iters=iters,
            seconds=seconds,
            min_iters=min_iters,
            batch=batch,
            op_profile=op_profile,
            parity=parity,
        ),
        runtime=RuntimeOptions(provider=provider, threads=threads, allow_fallback=allow_fallback),
        native=native,
        device_accuracy_samples=device_accuracy_samples,
        optimize=optimize,
        layout=layout,
        reference_samples=parity_samples,
        gpu_check=gpu_check,
        quantize=QuantizeOptions(
            precisions=precisions,
            formats=(formats,),
            per_channel=per_channel,
            reduce_range=reduce_range,
            calibration=calibration,
            activation_type=activation_type,
            weight_type=weight_type,
            io_dtype=io_dtype,
            target=target,
        ),
    )


def profile_settings(
    *,
    warmup: int,
    iters: int | None,
    seconds: float | None,
    min_iters: int | None,
    batch: int,
    op_profile: bool,
    parity: bool,
) -> ProfileSettings:
    """The release's profile settings: a time budget per file with a floor of runs (DEFAULT_PROFILE, each
    part of it replaceable), or with --iters a count of runs (and the op profile as many)."""
    from ..release.options import DEFAULT_PROFILE
    from ..runtimes.profile import ProfileSettings

    if iters is not None:  # --seconds or --min-iters beside it are refused by ProfileSettings, in one line
        return ProfileSettings(
            warmup=warmup,
            iters=iters,
            seconds=seconds,
            min_iters=min_iters,
            batch=batch,
            op_profile=op_profile,
            keep_times=True,
            parity=parity,
        )
    return replace(
        DEFAULT_PROFILE,
        warmup=warmup,
        seconds=DEFAULT_PROFILE.seconds if seconds is None else seconds,
        min_iters=DEFAULT_PROFILE.min_iters if min_iters is None else min_iters,
        batch=batch,
        op_profile=op_profile,
        parity=parity,
    )


class _OutcomePrinter:
    """One line per unit that ran or failed; units skipped as unchanged are counted and said once per
    stage, so a rerun that skips everything stays short."""

    def __init__(self, shown: bool = True) -> None:
        self.stage: str | None = None
        self.unchanged = 0
        self.shown = shown  # not with --json (stdout is the envelope's) or -q

    def __call__(self, outcome: Any) -> None:
        if not self.shown:
            return
        if outcome.unit.stage != self.stage:
            self.flush()
            self.stage = outcome.unit.stage
        if outcome.status == "skipped" and outcome.note == "unchanged":
            self.unchanged += 1
            return
        self._line(outcome.status, outcome.seconds, outcome.unit.key, outcome.note)

    def flush(self) -> None:
        if self.unchanged:
            units = "" if self.unchanged == 1 else f" ({self.unchanged} units)"
            self._line("skipped", None, f"{self.stage}{units}", "unchanged")
        self.unchanged = 0

    @staticmethod
    def _line(status: str, seconds: float | None, what: str, note: str) -> None:
        style = _STATUS_STYLE.get(status, "")
        timing = f"{seconds:6.1f} s" if seconds is not None and status in ("ran", "failed") else " " * 8
        note = f"  {note}" if note else ""
        from rich.markup import escape

        console().print(
            f"  [{style}]{status:>7}[/{style}] {timing}  {escape(what)}{escape(note)}", highlight=False, markup=True
        )


def print_summary(report: Any) -> None:
    """Stages that ran and were skipped, the table of artifacts, and where everything is."""
    from rich.markup import escape

    from ..report.tables import accuracy_cell, latency_cell, parity_cell
    from ..report.view import human_size, load_view

    stages: dict[str, dict[str, int]] = {}
    for outcome in report.log.outcomes:
        counts = stages.setdefault(outcome.unit.stage, {})
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    times = report.stage_times()
    line = "; ".join(
        f"{stage} "
        + ", ".join(f"{n} {status}" for status, n in counts.items())
        + (f" ({times[stage]:.0f} s)" if times.get(stage, 0) >= 0.5 else "")
        for stage, counts in stages.items()
    )
    click.echo(f"\nstages: {line}")
    view = load_view(report.folder)
    click.echo("\nverdict:")
    for verdict in view.verdicts():
        style = "green" if verdict.ship else "bold red"
        console().print(
            f"  [{style}]{verdict.word}[/{style}] {escape(verdict.headline())}", highlight=False, markup=True
        )
        for reason in verdict.reasons():
            console().print(f"    [red]{escape(reason)}[/red]", highlight=False, markup=True)
    columns = (
        ["artifact", "kind", "parity", "top-1 (Δ)"]
        + [f"p50 ms {d}" if d not in view.emulated else f"{d} (emulated)" for d in view.devices]
        + ["size"]
    )
    rows = []
    for row in view.rows:
        rows.append(
            [row.name, row.key, parity_cell(row).split(" (")[0], accuracy_cell(row)]
            + [latency_cell(view, row, d).replace(" (see notes)", "") for d in view.devices]
            + [human_size(row.artifact.size_bytes)]
        )
    if view.pytorch_accuracy and isinstance(view.pytorch_accuracy.get("top1"), (int, float)):
        rows.append(
            ["PyTorch", "reference", "", f"{view.pytorch_accuracy['top1']:.1f}%"] + [""] * len(view.devices) + [""]
        )
    print_table(
        f"Release {report.folder}",
        columns,
        rows,
        right_align=[c for c in columns if c.startswith("p50") or c in ("size",)],
        keep_whole=["artifact"],
        drop=["size", *columns[4:-1][:0:-1], "kind"],  # the devices after the first, the last first
        shorten=shorten_names("artifact", [row.name for row in view.rows]),
        caption="parity vs PyTorch on the stored reference inputs; top-1 on the data's validation images, "
        "Δ in points vs PyTorch; p50 = median latency per image; an emulated device shows its checks "
        "(its own kernels), never its speed",
    )
    for note in report.notes:
        click.echo(f"note: {note}")
    if view.manifest.source.get("kind") != "checkpoint":
        current().warn(RANDOM_WEIGHTS_WARNING)
    click.echo(f"release folder: {report.folder.resolve()}")
    click.echo(f"manifest:       {(report.folder / 'manifest.json').resolve()}")
    click.echo(f"model card:     {report.card.resolve()}")
    click.echo(f"report:         {report.html.resolve()}")
    outcome = (
        "ok"
        if report.ok
        else "FAILED: "
        + "; ".join(
            [f"device {d} could not be used" for d in report.device_errors]
            + [f"{name} did not run on {d}" for d, errors in report.artifact_errors.items() for name in errors]
            + report.parity_failures
            + report.accuracy_failures
        )
    )
    click.echo(f"done in {report.seconds:.0f} s: {outcome}")


def respond(report: Any) -> None:
    """The release as the JSON envelope: one item per artifact (its checks and, per device, its p50 and
    the device's own checks), the verdict per device and where everything is in ``report``."""
    from ..report.view import load_view
    from .json_items import artifact_item, parity_item

    view = load_view(report.folder)
    verdicts = view.verdicts()
    results = []
    for row in view.rows:
        devices = {}
        for device in view.devices:
            parity = row.device_parity.get(device)
            accuracy = row.device_accuracy.get(device)
            devices[device] = {
                "p50_ms": None if device in view.emulated else row.p50_ms(device),
                "emulated": device in view.emulated,
                "parity": None if parity is None else parity_item(parity.to_dict()),
                "accuracy": None if accuracy is None else accuracy.to_dict(),
                "problems": row.problems(view, device),
            }
        item = artifact_item(row.artifact)
        results.append(
            {
                "artifact": item["artifact"],
                "key": item["key"],
                "size_bytes": row.artifact.size_bytes,
                "sha256": row.artifact.sha256,
                "parity": None if row.parity is None else parity_item(row.parity.to_dict()),
                "accuracy": None if row.accuracy is None else row.accuracy.to_dict(),
                "devices": devices,
                "ships_to": [v.device for v in verdicts if row.name in v.holds],
            }
        )
    stages: dict[str, dict[str, int]] = {}
    for outcome in report.log.outcomes:
        counts = stages.setdefault(outcome.unit.stage, {})
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    random_weights = view.manifest.source.get("kind") != "checkpoint"
    if random_weights:
        current().warn(RANDOM_WEIGHTS_WARNING)
    current().respond(
        results,
        {
            "folder": str(report.folder.resolve()),
            "manifest": str((report.folder / "manifest.json").resolve()),
            "card": str(report.card.resolve()),
            "report": str(report.html.resolve()),
            "stages": stages,
            "stage_seconds": {k: round(v, 3) for k, v in report.stage_times().items()},
            "verdicts": [
                {
                    "device": v.device,
                    "ship": v.ship,
                    "emulated": v.emulator is not None,
                    "holds": v.holds,
                    "fails": v.fails,
                }
                for v in verdicts
            ],
            "pytorch_accuracy": None if view.pytorch_accuracy is None else view.pytorch_accuracy.to_dict(),
            "notes": list(report.notes),
            "device_errors": dict(report.device_errors),
            "artifact_errors": {d: dict(e) for d, e in report.artifact_errors.items()},
            "parity_failures": list(report.parity_failures),
            "accuracy_failures": list(report.accuracy_failures),
            "random_weights": random_weights,
            "seconds": round(report.seconds, 3),
        },
    )
