"""`shufflekit export`: a model (and checkpoint) to ONNX and TFLite in a release folder with a manifest."""

from __future__ import annotations

from pathlib import Path

import click

from ..metadata import InputSize
from .app import RANDOM_WEIGHTS_WARNING, main, print_table, progress_bar, shorten_names
from .json_items import artifact_item
from .numbers import INPUT_SIZE, INPUT_SIZE_HELP, NUM_CLASSES
from .output import current
from .paths import NonEmptyPath
from .shared_options import LAYOUT_OPTION, OPTIMIZE_OPTION, parity_samples_option


@main.command("export")
@click.option(
    "--model",
    "model",
    metavar="NAME",
    help="Variant name (see `shufflekit models`) [default: the one the --checkpoint holds; required without one].",
)
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    help="Weights to export (shufflekit, torchvision "
    "or Megvii file). Without one, a seeded model with non-trivial BatchNorm is exported.",
)
@click.option("--num-classes", type=NUM_CLASSES, help="Classes [default: the checkpoint's, else 1000].")
@click.option("--input-size", type=INPUT_SIZE, help=f"{INPUT_SIZE_HELP} [default: the checkpoint's, else 224].")
@click.option("--batch", default="1", show_default=True, metavar="1|N|dynamic", help="Batch dimension of the files.")
@click.option("--formats", default="onnx,tflite", show_default=True, help="Comma-separated: onnx, tflite.")
@LAYOUT_OPTION
@OPTIMIZE_OPTION
@parity_samples_option("Reference inputs to store: parity is judged on them (validate, profile).", default=16)
@click.option("--out", "out", required=True, type=NonEmptyPath(path_type=Path), help="Release folder to write.")
def export_command(
    model: str | None,
    checkpoint: Path | None,
    num_classes: int | None,
    input_size: InputSize | None,
    batch: str,
    formats: str,
    layout: str,
    optimize: bool,
    parity_samples: int,
    out: Path,
) -> None:
    """Export to ONNX and TFLite, with a manifest and a parity reference, into a release folder."""
    from ..export import ExportOptions, export_model

    options = ExportOptions(
        formats=tuple(formats.split(",")),
        batch=batch,
        layout=layout,
        optimize=optimize,
        reference_samples=parity_samples,
    )
    with progress_bar() as progress:
        report = export_model(
            out,
            model=model,
            checkpoint=checkpoint,
            num_classes=num_classes,
            input_size=input_size,
            options=options,
            progress=progress,
        )
    output = current()
    if output.json:
        output.respond(
            [artifact_item(a) for a in report.artifacts],
            {
                "folder": str(report.folder),
                "kept": list(report.kept),
                "dropped": list(report.dropped),
                "timings": dict(report.timings),
                "random_weights": checkpoint is None,
            },
        )
    else:
        _print(report)
    if checkpoint is None:  # after the export: bad input stays one line
        output.warn(RANDOM_WEIGHTS_WARNING)
    output.info(f"next: shufflekit validate {report.folder}")


def _print(report) -> None:  # noqa: ANN001 - export.ExportReport
    rows = [
        (
            a.name,
            f"{a.format}:{a.precision}",
            f"{a.size_bytes / 1e6:.2f} MB",
            f"{a.input.name} {'x'.join(map(str, a.input.shape))} {a.input.layout}",
            a.sha256[:12],
        )
        for a in report.artifacts
    ]
    timing = ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in report.timings.items())
    notes = [timing]
    if report.kept:
        notes.append(f"kept from before: {', '.join(report.kept)}")
    if report.dropped:
        notes.append(f"removed (their parent changed): {', '.join(report.dropped)}")
    print_table(
        f"{report.folder}",
        ["artifact", "kind", "size", "input", "sha256"],
        rows,
        right_align=["size"],
        caption="; ".join(notes),
        keep_whole=["artifact"],
        drop=["sha256", "input"],
        shorten=shorten_names("artifact", [a.name for a in report.artifacts]),
    )
