"""`shufflekit quantize DIR --precisions ...`: fp16, dynamic and int8 artifacts from the folder's fp32
ONNX model (ONNX Runtime quantization; TFLite from one onnx2tf conversion), added to its manifest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from .app import main, print_table, progress_bar, shorten_names
from .json_items import artifact_item
from .numbers import CALIB_SAMPLES, MAX_DROP
from .output import current
from .paths import NonEmptyPath
from .recipe_options import recipe_options
from .shared_options import DATA_METAVAR, eval_samples_option, precisions_option


@main.command("quantize")
@click.argument("folder", type=NonEmptyPath(path_type=Path))
@precisions_option(
    default=None, help="Precisions to make: fp16, dynamic, int8; comma-separated or repeated.", old=("--precision",)
)
@click.option("--formats", help="Comma-separated: onnx, tflite [default: the formats the folder holds].")
@click.option(
    "--data",
    metavar=DATA_METAVAR,
    help="Images, as release takes them: int8 is calibrated on them (an image folder's train/ split when it "
    "has one, a .npy/.npz file, or demo; required for int8), and when they are labelled each ONNX "
    "int8/dynamic file is classified on their val/ split against PyTorch and, while it loses more than "
    "--max-drop, remade with the next recipe, then with its noisiest layers kept in float.",
)
# the two uses of --data apart (calibration images without labels, a labelled set for the gate): hidden, kept
@click.option("--calib", metavar="DATA", hidden=True, help="Calibration images only.")
@click.option("--accuracy-data", metavar="DATA", hidden=True, help="The accuracy gate's labelled images only.")
@click.option(
    "--calib-samples", type=CALIB_SAMPLES, help="Calibration images to use [default: 256 for ONNX, 128 for TFLite]."
)
@click.option(
    "--max-drop",
    type=MAX_DROP,
    default=1.0,
    show_default=True,
    help="With labelled --data: top-1 points a file may lose against PyTorch.",
)
@eval_samples_option(
    "With labelled --data: classify this many images (a fixed subset) [default: all].", old=("--limit",)
)
@recipe_options
def quantize_command(
    folder: Path,
    precisions: tuple[str, ...],
    formats: str | None,
    data: str | None,
    calib: str | None,
    accuracy_data: str | None,
    calib_samples: int | None,
    per_channel: bool | None,
    calibration: str,
    io_dtype: str,
    reduce_range: bool | None,
    activation_type: str | None,
    weight_type: str | None,
    target: str,
    max_drop: float,
    eval_samples: int | None,
) -> None:
    """Add fp16, dynamic-range int8 and full int8 artifacts of FOLDER's fp32 ONNX model to FOLDER.

    ONNX files are made by recipes that hold on every CPU by default (x86 with and without VNNI, ARM64);
    each file records its recipe, the CPUs it holds on and why."""
    from ..export.quantize import quantize_release
    from ..validate.gate import TOOLS

    options = quantize_options(
        precisions=precisions,
        formats=formats,
        data=data,
        calib=calib,
        accuracy_data=accuracy_data,
        calib_samples=calib_samples,
        per_channel=per_channel,
        calibration=calibration,
        io_dtype=io_dtype,
        reduce_range=reduce_range,
        activation_type=activation_type,
        weight_type=weight_type,
        target=target,
        max_drop=max_drop,
        eval_samples=eval_samples,
    )
    with progress_bar() as progress:
        report = quantize_release(folder, options, progress=progress, gate=TOOLS)
    out = current()
    out.warnings.extend(report.warnings)  # logged as they happened
    if out.json:
        fields = report.to_dict()
        report_part = {k: fields[k] for k in ("folder", "parent", "parent_sha256", "calibration", "timings")}
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


def quantize_options(
    *,
    precisions: tuple[str, ...],
    formats: str | None,
    data: str | None,
    calib: str | None,
    accuracy_data: str | None,
    eval_samples: int | None,
    **recipe: Any,
) -> Any:
    """The QuantizeOptions of the parsed command line. ``--data`` is what release's is: the calibration
    images of int8 and, when labelled, the accuracy gate's images of the ONNX int8/dynamic files; the
    hidden ``--calib`` and ``--accuracy-data`` set one use each and win over ``--data`` for it."""
    from ..errors import UsageError
    from ..export.quantize import QUANT_FORMATS, QUANT_PRECISIONS, QuantizeOptions, parse_list

    asked = parse_list(precisions, QUANT_PRECISIONS, "precision")
    format_list = parse_list(formats, QUANT_FORMATS, "format") if formats else None
    if data is not None:
        calibrates = "int8" in asked
        # the folder's formats (formats None) always include onnx: every quantized file is made from it
        gated = bool({"int8", "dynamic"} & set(asked)) and (format_list is None or "onnx" in format_list)
        if not calibrates and not gated:
            raise UsageError(
                "--data calibrates int8 and gates ONNX int8/dynamic files, and neither is made here",
                hint="leave --data out, or add int8 (or an ONNX dynamic file) to --precisions",
            )
        calib = calib if calib is not None else data if calibrates else None
        if accuracy_data is None and gated and _labelled(data):
            accuracy_data = data
    return QuantizeOptions(
        precisions=asked,
        formats=format_list,
        calib=calib,
        gate_data=accuracy_data,
        gate_limit=eval_samples,
        **recipe,
    )


def _labelled(data: str) -> bool:
    from ..data import open_images

    return open_images(data, split="val").labels is not None


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
