"""`shufflekit quantize DIR --precision ...`: fp16, dynamic and int8 artifacts from the folder's fp32
ONNX model (ONNX Runtime quantization; TFLite from one onnx2tf conversion), added to its manifest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from .app import main, print_table, progress_bar, shorten_names
from .json_items import artifact_item
from .numbers import CALIB_SAMPLES, LIMIT, MAX_DROP
from .output import current
from .paths import NonEmptyPath
from .recipe_options import recipe_options


@main.command("quantize")
@click.argument("folder", type=NonEmptyPath(path_type=Path))
@click.option(
    "--precision",
    "precisions",
    multiple=True,
    required=True,
    metavar="fp16|dynamic|int8",
    help="Precision to make; repeat it or give a comma list (e.g. --precision fp16,int8).",
)
@click.option("--formats", help="Comma-separated: onnx, tflite [default: the formats the folder holds].")
@click.option(
    "--calib",
    metavar="DATA",
    help="Calibration images for int8: an image folder (its train/ split "
    "when it has one), a .npy/.npz file, or 'demo'. Required for int8.",
)
@click.option(
    "--calib-samples", type=CALIB_SAMPLES, help="Calibration images to use [default: 256 for ONNX, 128 for TFLite]."
)
@click.option(
    "--accuracy-data",
    metavar="DATA",
    help="Labelled images (folder with class subfolders, .npz with "
    "labels, or demo): each ONNX int8/dynamic file is measured against PyTorch and, while it loses more "
    "than --max-drop, remade with the next recipe, then with its noisiest layers kept in float.",
)
@click.option(
    "--max-drop",
    type=MAX_DROP,
    default=1.0,
    show_default=True,
    help="With --accuracy-data: top-1 points a file may lose against PyTorch.",
)
@click.option("--limit", type=LIMIT, help="With --accuracy-data: classify this many images (a fixed subset).")
@recipe_options
def quantize_command(
    folder: Path,
    precisions: tuple[str, ...],
    formats: str | None,
    calib: str | None,
    calib_samples: int | None,
    per_channel: bool | None,
    calibration: str,
    io_dtype: str,
    reduce_range: bool | None,
    activation_type: str | None,
    weight_type: str | None,
    target: str,
    accuracy_data: str | None,
    max_drop: float,
    limit: int | None,
) -> None:
    """Add fp16, dynamic-range int8 and full int8 artifacts of FOLDER's fp32 ONNX model to FOLDER.

    ONNX files are made by recipes that hold on every CPU by default (x86 with and without VNNI, ARM64);
    each file records its recipe, the CPUs it holds on and why."""
    from ..export.quantize import QuantizeOptions, quantize_release
    from ..validate.gate import TOOLS

    options = QuantizeOptions(
        precisions=precisions,
        formats=tuple(formats.split(",")) if formats else None,
        calib=calib,
        calib_samples=calib_samples,
        per_channel=per_channel,
        calibration=calibration,
        io_dtype=io_dtype,
        reduce_range=reduce_range,
        activation_type=activation_type,
        weight_type=weight_type,
        target=target,
        gate_data=accuracy_data,
        max_drop=max_drop,
        gate_limit=limit,
    )
    with progress_bar() as progress:
        report = quantize_release(folder, options, progress=progress, gate=TOOLS)
    out = current()
    out.warnings.extend(report.warnings)  # logged as they happened
    if out.json:
        data = report.to_dict()
        report_part = {k: data[k] for k in ("folder", "parent", "parent_sha256", "calibration", "timings")}
        out.respond([artifact_item(a) for a in report.artifacts], report_part)
        return
    parent_size = report.parent.size_bytes
    rows = [
        (
            a.name,
            a.key,
            f"{a.size_bytes / 1e6:.2f} MB",
            f"{parent_size / a.size_bytes:.1f}x",
            f"{a.input.dtype} {a.input.layout}",
            _how(a.options),
            a.sha256[:12],
        )
        for a in report.artifacts
    ]
    notes = [f"from {report.parent.name} ({report.parent.sha256[:12]})"]
    if report.calibration:
        c = report.calibration
        skipped = f", {c['skipped_files']} unreadable files skipped" if c["skipped_files"] else ""
        notes.append(f"calibrated on {c['used']} of {c['requested']} images asked for from {c['source']}{skipped}")
    notes.append(f"{report.timings.get('total', 0):.1f} s")
    print_table(
        f"{report.folder}",
        ["artifact", "kind", "size", "smaller", "input", "how", "sha256"],
        rows,
        right_align=["size", "smaller"],
        caption="; ".join(notes),
        keep_whole=["artifact"],
        drop=["sha256", "input", "smaller", "how"],
        shorten=shorten_names("artifact", [a.name for a in report.artifacts]),
    )
    out.info(f"next: shufflekit validate {report.folder}; shufflekit evaluate {report.folder} --data DATA")


def _how(options: Mapping[str, Any]) -> str:
    parts = []
    if options.get("recipe"):
        parts.append(f"recipe {options['recipe']}")
        fallback = options.get("fallback")
        if fallback and len(fallback.get("attempts", [])) > 1:
            parts.append(f"after {len(fallback['attempts']) - 1} fallback(s)")
        if options.get("nodes_kept_in_float"):
            parts.append(f"{len(options['nodes_kept_in_float'])} layers in float")
    if "per_channel" in options:
        parts.append("per-channel" if options["per_channel"] else "per-tensor")
    if options.get("reduce_range"):
        parts.append("reduce-range")
    method = options.get("calibration_method")
    if method:
        parts.append(str(method).split(" ")[0])
    if options.get("io_dtype", "float32") != "float32":
        parts.append(f"{options['io_dtype']} I/O")
    return ", ".join(parts)
