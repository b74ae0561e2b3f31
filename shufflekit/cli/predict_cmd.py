"""`shufflekit predict DIR IMAGE...`: classify images with one artifact of a release, on this computer or a
device, through the manifest's own preprocessing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from .app import main, print_table
from .devices_cmd import connect_options
from .numbers import THREADS, Int
from .output import current
from .paths import NonEmptyPath

TOP_K = Int(1, 1000)


@main.command("predict")
@click.argument("folder", type=NonEmptyPath(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=NonEmptyPath(path_type=Path))
@click.option(
    "--artifact",
    help="The file to run: a file name, format or format:precision (tflite:int8) [default: onnx:fp32].",
)
@click.option(
    "--device",
    default="local",
    show_default=True,
    help="Where to run it: local, ssh://[user@]host[:port], a Host alias, adb://SERIAL[@HOST:PORT] "
    "(add ?python=PATH for the device's Python).",
)
@click.option("--top-k", "top_k", type=TOP_K, default=5, show_default=True, help="Classes per image.")
@click.option(
    "--provider",
    default="cpu",
    show_default=True,
    help="ONNX Runtime provider (cpu, cuda, ...) or TFLite delegate (cpu, xnnpack, builtin, gpu, nnapi).",
)
@click.option("--allow-fallback", is_flag=True, help="Run on what exists when the provider is missing (shown).")
@click.option("--threads", type=THREADS, help="Intra-op / interpreter threads (default: the runtime's).")
@connect_options
def predict_command(
    folder: Path,
    images: tuple[Path, ...],
    artifact: str | None,
    device: str,
    top_k: int,
    provider: str,
    allow_fallback: bool,
    threads: int | None,
    connect: Any,
) -> None:
    """Classify IMAGES (files, or folders of them) with one artifact of FOLDER: the top classes with
    their scores, what ran it and how long one image took there."""
    from ..predict import predict_images
    from ..runtimes import RuntimeOptions

    options = RuntimeOptions(provider=provider, threads=threads, allow_fallback=allow_fallback)
    report = predict_images(folder, images, artifact=artifact, device=device, k=top_k, options=options, connect=connect)
    out = current()
    # predict takes no --checkpoint: the fix is a release made from one
    warning = (
        "this release carries random weights (it was made without --checkpoint), good for checking the "
        "toolchain and measuring speed, not for predictions; release or export it again with --checkpoint FILE "
        "(`shufflekit train` makes one)"
    )
    if out.json:
        data = report.to_dict()
        out.respond(data.pop("predictions"), data)
        if report.random_weights:
            out.warn(warning)
        return
    # the images by their names under the folder they share (named once, in the title)
    common = Path(os.path.commonpath([p.image.parent.absolute() for p in report.predictions]))
    rows = []
    for prediction in report.predictions:
        best, *rest = prediction.top
        rows.append(
            [
                str(prediction.image.absolute().relative_to(common)),
                f"{best.label} {best.score:.1%}",
                ", ".join(f"{g.label} {g.score:.1%}" for g in rest),
            ]
        )
    ran = f"{report.runtime or '?'} ({', '.join(report.providers) or '?'})"
    latency = f"{report.latency_p50_ms:.2f} ms p50 per image" if report.latency_p50_ms is not None else "no latency"
    print_table(
        f"{report.artifact.name} on {report.device}: images in {common}",
        ["image", "top-1", f"next {top_k - 1}" if top_k > 1 else "next"],
        rows,
        keep_whole=["top-1"],
        drop=[f"next {top_k - 1}" if top_k > 1 else "next"],
        caption=f"{ran}; {latency}; scores are softmax probabilities",
    )
    if report.random_weights:
        out.warn(warning)
