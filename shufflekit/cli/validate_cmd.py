"""`shufflekit validate`: parity of every artifact of a release folder against PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from .app import main, print_table, progress_bar, shorten_names
from .json_items import parity_item, without
from .numbers import Float
from .output import current
from .paths import NonEmptyPath
from .shared_options import GPU_CHECK_OPTION, parity_samples_option


@main.command("validate")
@click.argument("folder", type=NonEmptyPath(path_type=Path))
@click.argument("artifacts", nargs=-1)
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    help="Recompute PyTorch's outputs from this checkpoint (the one the folder was exported from).",
)
@parity_samples_option(
    "Reference inputs to use [default: all the folder stores; more are made, and PyTorch's outputs on them "
    "computed again].",
    old=("--samples",),
)
@click.option(
    "--per-layer",
    is_flag=True,
    help="Also compare every quantized layer of each int8 ONNX file with "
    "its float parent (ONNX Runtime's qdq_loss_debug): where the file departs from float, and by how much.",
)
@click.option(
    "--threshold-db",
    type=Float(-1000, 1000),
    default=20.0,
    show_default=True,
    help="With --per-layer: the SQNR below which a layer counts as departed from float.",
)
@GPU_CHECK_OPTION
def validate_command(
    folder: Path,
    artifacts: tuple[str, ...],
    checkpoint: Path | None,
    parity_samples: int | None,
    per_layer: bool,
    threshold_db: float,
    gpu_check: bool,
) -> None:
    """Run every artifact of FOLDER (or the ARTIFACTs named: file name, format, or format:precision) in its
    runtime and compare with PyTorch; exit 1 if one is out of tolerance."""
    from ..validate.gpu_compat import check_release
    from ..validate.parity import validate_release

    with progress_bar() as progress:
        report = validate_release(
            folder, checkpoint=checkpoint, samples=parity_samples, select=artifacts, progress=progress
        )
        gpu = check_release(folder, select=artifacts, progress=progress) if gpu_check else []
    layers = _per_layer(folder, artifacts, threshold_db) if per_layer else []
    out = current()
    if out.json:
        out.respond(_results(report, gpu if gpu_check else None, layers if per_layer else None), _report(report))
    else:
        _print(report, gpu, layers)
    report.raise_if_failed()


def _results(report, gpu: list | None, layers: list | None) -> list[dict]:  # noqa: ANN001
    """One item per artifact: its parity, and its GPU-delegate check and per-layer report where made."""
    checks = {c.artifact: c.to_dict() for c in gpu or []}
    per_layer = {r.artifact: r.to_dict() for r in layers or []}
    items = []
    for result in report.results:
        item = parity_item(result.to_dict())
        if gpu is not None:
            item["gpu_compatibility"] = checks.get(result.artifact)
        if layers is not None:
            item["per_layer"] = per_layer.get(result.artifact)
        items.append(item)
    return items


def _report(report) -> dict:  # noqa: ANN001 - validate.parity.ParityReport
    return without(report.to_dict(), "results")


def _print(report, gpu: list, layers: list) -> None:  # noqa: ANN001
    rows = []
    for r in report.results:
        m = r.metrics
        cells = (
            (f"{m.max_abs:.2e}", f"{m.max_rel:.2e}", f"{m.cosine:.6f}", f"{m.top1:.0%}", f"{m.top5:.0%}")
            if m
            else ("", "", "", "", "")
        )
        rows.append((r.artifact, r.key, r.runtime, *cells, "pass" if r.passed else "FAIL: " + "; ".join(r.failures)))
    print_table(
        f"parity vs PyTorch: {report.samples} samples, {report.reference}",
        ["artifact", "kind", "runtime", "max abs", "max rel", "cosine", "top-1", "top-5", "verdict"],
        rows,
        right_align=["max abs", "max rel", "cosine", "top-1", "top-5"],
        caption="limits per (format, precision): shufflekit/formats.py",
        keep_whole=["artifact"],
        drop=["runtime", "top-5", "max rel", "cosine", "kind"],
        shorten=shorten_names("artifact", [r.artifact for r in report.results]),
    )
    for check in gpu:
        click.echo(f"{check.artifact}: {check.record.summary()} ({check.record.analyzer} model analyzer)")
    for layer_report in layers:
        _print_per_layer(layer_report)


def _per_layer(folder: Path, artifacts: tuple[str, ...], threshold_db: float) -> list:
    from ..errors import UsageError
    from ..validate.per_layer import per_layer_for_folder

    if not threshold_db > 0 or threshold_db > 200:
        raise UsageError(f"--threshold-db must be between 0 and 200, got {threshold_db}")
    return per_layer_for_folder(folder, artifacts, threshold_db=threshold_db)


def _print_per_layer(report) -> None:  # noqa: ANN001 - validate.per_layer.PerLayerReport
    first = report.first_departure
    shown = sorted((layer for layer in report.layers if layer.sqnr_db is not None), key=lambda layer: layer.sqnr_db)[
        :10
    ]
    if first is not None and first not in shown:
        shown.insert(0, first)
    rows = [
        (
            layer.node,
            layer.op_type,
            f"{layer.sqnr_db:.1f}",
            "" if layer.own_sqnr_db is None else f"{layer.own_sqnr_db:.1f}",
            "first departure" if layer is first else "",
        )
        for layer in shown
    ]
    print_table(
        f"{report.artifact}: per-layer error against {report.parent} ({report.samples} reference inputs)",
        ["layer", "op", "SQNR vs float dB", "own QDQ SQNR dB", ""],
        rows,
        right_align=["SQNR vs float dB", "own QDQ SQNR dB"],
        caption=f"{report.summary()}; the {len(shown)} lowest of {len(report.layers)} layers; {report.tool}",
    )
