"""`shufflekit train`: train a ShuffleNet on an image folder, an .npz file or the demo set."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..metadata import InputSize
from .app import ProgressFn, console, main
from .numbers import INPUT_SIZE, INPUT_SIZE_HELP, Float, Int
from .output import Failed, Output, current
from .paths import NonEmptyPath
from .renamed import Renamed


@main.command("train")
@click.option("--model", required=True, help="Registry name, e.g. shufflenet_v2_x0_5 (see `shufflekit models`).")
@click.option(
    "--data",
    required=True,
    help="Image folder (one subfolder per class, or train/ and val/ of them), .npz file, or 'demo'.",
)
@click.option("--epochs", type=Int(1, 10_000), help="Default 30; 15 on the demo set.")
@click.option(
    "--batch",
    "--batch-size",
    "batch_size",
    cls=Renamed,
    type=Int(1, 65_536),
    help="Images per step and process. Default 64.",
)
@click.option("--input-size", type=INPUT_SIZE, help=f"{INPUT_SIZE_HELP}. Default 224; 32 on the demo set.")
@click.option("--lr", type=Float(0, 100, low_open=True), help="Peak learning rate. Default 0.2 x global batch / 256.")
@click.option(
    "--hflip/--no-hflip",
    default=None,
    help="Random horizontal flips (default on; off on the demo set: digits must not be mirrored).",
)
@click.option(
    "--seed", type=Int(0, 2**32 - 1), help="Seeds weights, shuffling, augmentation and the val split. Default 0."
)
@click.option(
    "--out", required=True, type=NonEmptyPath(path_type=Path), help="Checkpoint file, rewritten after every epoch."
)
@click.option("--resume", is_flag=True, help="Continue the run saved in --out on its own schedule.")
def train_command(
    model: str,
    data: str,
    epochs: int | None,
    batch_size: int | None,
    input_size: InputSize | None,
    lr: float | None,
    hflip: bool | None,
    seed: int | None,
    out: Path,
    resume: bool,
) -> None:
    """Train with SGD, a cosine schedule and label smoothing; a checkpoint after every epoch.

    Uses the GPU with mixed precision when there is one. For several GPUs start it with
    `torchrun --nproc-per-node N -m shufflekit train ...`.
    """
    from ..train import EpochStats, TrainConfig, train

    config = TrainConfig(
        model=model,
        data=data,
        epochs=epochs,
        batch_size=batch_size,
        input_size=input_size,
        lr=lr,
        hflip=hflip,
        seed=seed,
    )

    def report(stats: EpochStats, say: Callable[[str], Any]) -> None:
        val = f"{stats.val_top1:5.1f}%" if stats.val_top1 is not None else "  n/a"
        say(
            f"epoch {stats.epoch:>3}/{stats.epochs}  loss {stats.train_loss:.3f}  "
            f"train {stats.train_top1:5.1f}%  val {val}  lr {stats.lr:.4f}  {stats.seconds:5.1f}s"
        )

    output = current()
    try:
        with _epoch_display(output) as (progress, say):
            result = train(config, out, resume=resume, progress=progress, on_epoch=lambda s: report(s, say))
    except KeyboardInterrupt:
        message = f"interrupted; {out} keeps the last finished epoch (if any)"
        hint = "run the same command with --resume to continue"
        click.echo(f"error: {message}: {hint}", err=True)
        raise Failed(message, 130, hint=hint) from None
    if not result.is_main:
        output.emitted = True  # one envelope, from the main rank
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _print_summary(result, output)
        output.emit(None)
        # Under torchrun, gloo's worker threads can still hold work when the interpreter is torn down and
        # abort the rank ("terminate called without an active exception", seen under load about 1 run in
        # 6). The checkpoint is saved and every rank passed the final barrier: leave without finalizing.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    _print_summary(result, output)


def _print_summary(result: Any, output: Output) -> None:
    if not result.is_main:
        return
    summary = {
        "checkpoint": str(result.out),
        "model": result.meta.model,
        "classes": result.meta.num_classes,
        "labels": list(result.meta.label_names()),
        "input_size": result.meta.input_size.to_json(),
        "epochs": result.epochs_done,
        "val_top1": result.val_top1,
        "seconds": round(result.seconds, 1),
        "training": dict(result.meta.training),
    }
    if output.json:
        output.respond([summary], None)
        return
    val = f"{result.val_top1:.1f}%" if result.val_top1 is not None else "n/a (no validation images)"
    click.echo(
        f"{result.out}: {result.meta.model}, {result.meta.num_classes} classes at "
        f"{result.meta.input_size.describe()}, {result.epochs_done} epochs, "
        f"val top-1 {val} ({result.seconds:.0f} s)"
    )


@contextmanager
def _epoch_display(output: Output) -> Iterator[tuple[ProgressFn, Callable[[str], Any]]]:
    """One rich bar that follows the epochs, with each epoch's line printed above it (stderr). Without a
    terminal, or with --json, only the epoch lines; with -q, nothing."""
    err = console(stderr=True)
    if output.quiet:
        yield (lambda task, done, total: None), (lambda line: None)
        return
    if output.json or not sys.stderr.isatty():
        yield (lambda task, done, total: None), err.print
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task_id = progress.add_task("", total=None)

    def update(task: str, done: int, total: int | None) -> None:
        if not progress.live.is_started:  # from the first step on: the data scan's warnings print plainly
            progress.start()
        progress.update(task_id, description=task, completed=done, total=total)

    try:
        yield update, progress.console.print
    finally:
        progress.stop()
