"""`shufflekit sweep`: every variant of the chosen families exported and measured on each device, with a
table per device (multiply-adds, MAC, p50, images/s, µs per million multiply-adds, the paper's ARM
figure) and a plot of latency against multiply-adds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .app import main, print_table, progress_bar
from .devices_cmd import connect_options, devices_option
from .numbers import INPUT_SIZE, INPUT_SIZE_HELP, ITERS, NUM_CLASSES, ROUNDS, THREADS, WARMUP
from .output import current
from .paths import NonEmptyPath


@main.command("sweep")
@click.option("--family", default="v1,v2", show_default=True, help="Comma-separated model families.")
@click.option("--width", help="Comma-separated width multipliers, e.g. 0.5,1.0 [default: every width].")
@click.option("--groups", help="Comma-separated group counts of the families that have them (v1) [default: all].")
@click.option("--input-size", type=INPUT_SIZE, default="224", show_default=True, help=INPUT_SIZE_HELP)
@click.option("--num-classes", type=NUM_CLASSES, default=1000, show_default=True)
@click.option("--formats", default="onnx,tflite", show_default=True, help="Comma-separated: onnx, tflite (fp32).")
@devices_option
@click.option(
    "--threads",
    type=THREADS,
    default=1,
    show_default=True,
    help="Inference threads (1, as the paper's ARM column).",
)
@click.option("--provider", default="cpu", show_default=True, help="ONNX Runtime provider or TFLite delegate.")
@click.option("--warmup", type=WARMUP, default=5, show_default=True, help="Untimed runs first.")
@click.option("--iters", type=ITERS, default=50, show_default=True, help="Timed runs per file.")
@click.option(
    "--rounds",
    type=ROUNDS,
    default=1,
    show_default=True,
    help="Measure every file this many times in turn (A, B, A, B...) and keep its median round: steadier "
    "figures on a busy computer.",
)
@click.option("--out", required=True, type=NonEmptyPath(path_type=Path), help="Sweep folder (one folder per variant).")
@connect_options
def sweep_command(
    family: str,
    width: str | None,
    groups: str | None,
    input_size: Any,
    num_classes: int,
    formats: str,
    devices: tuple[str, ...],
    threads: int,
    provider: str,
    warmup: int,
    iters: int,
    rounds: int,
    out: Path,
    connect: Any,
) -> None:
    """Export every variant of --family (random weights: they do not change the speed) into OUT, measure
    each file on each --device, and print a table per device: multiply-adds, MAC, p50 latency, images/s,
    µs per million multiply-adds, and the ShuffleNet v2 paper's Table 8 ARM figure as a reference. Writes
    OUT/sweep.png (latency against multiply-adds, Figure 1 c/d of the paper) and OUT/report.html."""
    from ..report.sweep import (
        MAC_NOTE,
        NUMERIC_COLUMNS,
        SWEEP_HTML,
        SWEEP_PLOT,
        TABLE_COLUMNS,
        device_caption,
        table_rows,
    )
    from ..sweep import SweepOptions, parse_list, run_sweep, select_variants

    specs = select_variants(parse_list(family), parse_list(width), parse_list(groups))
    options = SweepOptions(
        input_size=input_size,
        num_classes=num_classes,
        formats=tuple(parse_list(formats)),
        devices=devices,
        threads=threads,
        provider=provider,
        warmup=warmup,
        iters=iters,
        rounds=rounds,
    )
    with progress_bar() as progress:
        report = run_sweep(out, specs, options, connect=connect, progress=progress)
    view = report.view
    output = current()
    if output.json:
        output.respond(
            [_item(r) for r in view.rows],
            {
                "folder": str(report.folder),
                "index": view.index.to_dict(),
                "exported": list(report.exported),
                "kept": list(report.kept),
                "devices": list(report.devices),
                "files": report.files,
                "timings": report.timings,
            },
        )
        return
    right = [c for i, c in enumerate(TABLE_COLUMNS) if i in NUMERIC_COLUMNS]
    for device in view.devices:
        print_table(
            device,
            TABLE_COLUMNS,
            table_rows(view, device),
            right_align=right,
            caption=device_caption(view, device),
            keep_whole=["model"],
            drop=["MAC", TABLE_COLUMNS[6], TABLE_COLUMNS[-1], "images/s"],
        )
    click.echo(f"{MAC_NOTE}.")
    if report.kept:
        output.info(f"kept from an earlier run: {', '.join(report.kept)}")
    for name in (SWEEP_PLOT, SWEEP_HTML):
        if name in report.files:
            output.info(f"wrote {report.folder / name}")


def _item(row: Any) -> dict[str, Any]:
    """A variant's fp32 file measured on a device: ``artifact`` (its file, in the variant's folder) and
    ``key`` as every command's items, then the row."""
    from ..formats import get_format

    return {
        "artifact": get_format(row.format).filename(f"{row.model.name}_fp32"),
        "key": f"{row.format}:fp32",
        "folder": row.model.folder,
        **row.to_dict(),
    }
