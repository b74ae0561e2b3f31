"""`shufflekit guidelines`: the paper's G1-G4 micro-benchmarks (seed 000, Tables 1-4) on this computer
or any device, each table with the paper's ARM and GPU figures beside ours and a verdict per row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .app import main, print_table, progress_bar
from .devices_cmd import connect_options, devices_option
from .numbers import ITERS, ROUNDS, THREADS, WARMUP, Int
from .output import current
from .paths import NonEmptyPath


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _scales(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        scales = tuple(int(part) for part in _csv(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers, e.g. 1,2,4") from None
    if not scales or any(not 1 <= s <= 16 for s in scales):
        raise click.BadParameter(f"{value!r}: each scale is an integer from 1 to 16, e.g. 1,2,4")
    return scales


@main.command("guidelines")
@click.option(
    "--guideline",
    "guidelines",
    default="G1,G2,G3,G4",
    show_default=True,
    help="Which of the paper's tables (comma-separated): G1 channel ratios, G2 groups, G3 fragments, G4 element-wise.",
)
@devices_option
@click.option(
    "--scale",
    "scales",
    default="1,2,4",
    show_default=True,
    callback=_scales,
    help="Channel multipliers of the x1 channel sets (the paper's x1, x2, x4 columns).",
)
@click.option(
    "--channels",
    "column",
    type=click.Choice(["arm", "gpu"]),
    default="arm",
    show_default=True,
    help="Whose x1 channel sets: the paper's ARM column or its (wider) GPU column.",
)
@click.option(
    "--size",
    type=Int(1, 1024),
    default=56,
    show_default=True,
    help="Feature-map height and width (the paper's 56; smaller for a quick look).",
)
@click.option("--threads", type=THREADS, default=1, show_default=True, help="Runtime threads (the paper's ARM: 1).")
@click.option("--formats", default="onnx,tflite", show_default=True, help="Formats to measure: onnx, tflite.")
@click.option("--provider", default="cpu", show_default=True, help="ONNX Runtime provider / TFLite delegate.")
@click.option("--warmup", type=WARMUP, default=5, show_default=True, help="Untimed runs per file.")
@click.option("--iters", type=ITERS, default=50, show_default=True, help="Timed runs per file (median taken).")
@click.option(
    "--rounds",
    type=ROUNDS,
    default=1,
    show_default=True,
    help="Measure every file this many times in turn and take the median of the rounds (a busy machine).",
)
@click.option(
    "--out",
    type=NonEmptyPath(path_type=Path),
    default=Path("guidelines"),
    show_default=True,
    help="The folder of the networks' files and manifest.json (kept: a rerun re-measures, it does not re-export).",
)
@connect_options
def guidelines_command(
    guidelines: str,
    devices: tuple[str, ...],
    scales: tuple[int, ...],
    column: str,
    size: int,
    threads: int,
    formats: str,
    provider: str,
    warmup: int,
    iters: int,
    rounds: int,
    out: Path,
    connect: Any,  # runtimes.remote.ConnectOptions, from the shared options
) -> None:
    """Build the paper's guideline benchmark networks (ten stacked blocks each, at equal FLOPs per
    table), export them to ONNX and TFLite into --out, measure each on every --device (one thread by
    default, as the paper's ARM column) and print Tables 1-4 in the paper's shape: our images/s beside
    the measured multiply-adds, the paper's ARM and GPU figures beside, and per row whether the
    guideline's direction reproduces here."""
    from ..guidelines import GuidelineOptions, run_guidelines

    options = GuidelineOptions(
        guidelines=_csv(guidelines),
        scales=scales,
        size=size,
        column=column,
        formats=_csv(formats),
        threads=threads,
        warmup=warmup,
        iters=iters,
        provider=provider,
        rounds=rounds,
    )
    with progress_bar() as progress:
        run = run_guidelines(out, options, devices=devices, connect=connect, progress=progress)
    output = current()
    if output.json:
        data = run.to_dict()
        output.respond(data.pop("tables"), data)  # one item per table (guideline, device, format)
        return
    made = sum(not b.reused for b in run.built)
    output.info(f"{len(run.built)} networks in {out} ({made} exported now, {len(run.built) - made} reused)")
    for table in run.tables:
        _print(table)
    for table in run.tables:
        click.echo(_summary_line(table))


def _figures(values: tuple[float | None, ...], digits: int) -> str:
    return "/".join("-" if v is None else f"{v:.{digits}f}" for v in values)


def _print(table: Any) -> None:
    from ..guidelines.tables import NOT_REPRODUCED

    scales = table.scales
    ours = [f"{table.device} x{s}" for s in scales]
    columns = ["row", "channels x" + "/x".join(map(str, scales)), "M mult-adds", *ours, "verdict"]
    columns += [f"paper ARM x{'/x'.join(map(str, scales))}", f"paper GPU x{'/x'.join(map(str, scales))}", "paper holds"]
    rows = []
    for row in table.rows:
        speeds = table.speeds(row)
        verdict = row.verdict
        if verdict == NOT_REPRODUCED:
            verdict += " (" + ", ".join(f"x{s}" for s in row.failing_scales) + ")"
        holds = [
            f"{name} {'yes' if value else 'no'}"
            for name, value in (("ARM", row.paper_arm_holds), ("GPU", row.paper_gpu_holds))
            if value is not None
        ]
        rows.append(
            [
                row.label,
                "/".join(c.channels for c in row.cells),
                "/".join(f"{c.mult_adds / 1e6:.1f}" for c in row.cells),
                *speeds,
                verdict,
                _figures(row.paper_arm, 1),
                _figures(row.paper_gpu, 0),
                ", ".join(holds),
            ]
        )
    runtime = table.runtime or table.format
    threads = f", {table.threads} thread{'s' if table.threads != 1 else ''}" if table.threads else ""
    title = (
        f"{table.guideline} ({table.source}) on {table.device}, {table.format} ({runtime}{threads}), "
        f"{table.size}x{table.size}, {table.column.upper()} channel sets"
    )
    rounds = f", the median of {table.rounds} rounds" if table.rounds > 1 else ""
    caption = (
        f"{table.claim}. Ours: images/s (1000 / median ms, batch 1{rounds}). Paper: ARM = Snapdragon 810, 1 thread, "
        "images/s; GPU = GTX 1080Ti, batches/s. paper holds: the guideline's direction in the paper's own figures."
    )
    if table.emulated:
        caption += " Emulated device: its speed is not the device's, so no verdict (structure and FLOPs only)."
    for note in table.notes:
        caption += f" {note}."
    right = ["M mult-adds", *ours]
    paper = [c for c in columns if c.startswith("paper")]
    print_table(
        title,
        columns,
        rows,
        right_align=right,
        caption=caption,
        keep_whole=["row"],
        drop=[*paper[::-1], "M mult-adds", columns[1]],
    )


def _summary_line(table: Any) -> str:
    where = f"{table.guideline} on {table.device} ({table.format})"
    if table.emulated:
        return f"{where}: emulated, no verdict"
    return f"{where}: {table.reproduced} of {table.judged} rows reproduced"
