"""`shufflekit validate`: parity of every artifact of a release folder against PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from .app import echo_json, main, print_table, progress_bar


@main.command("validate")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--checkpoint", type=click.Path(path_type=Path),
              help="Recompute PyTorch's outputs from this checkpoint (the one the folder was exported from).")
@click.option("--samples", type=int, help="Reference inputs to use [default: all the folder stores].")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def validate_command(folder: Path, checkpoint: Path | None, samples: int | None, as_json: bool) -> None:
    """Run every artifact in its runtime and compare with PyTorch; exit 1 if one is out of tolerance."""
    from ..validate.parity import validate_release

    with progress_bar(enabled=not as_json) as progress:
        report = validate_release(folder, checkpoint=checkpoint, samples=samples, progress=progress)
    if as_json:
        echo_json(report.to_dict())
    else:
        rows = []
        for r in report.results:
            m = r.metrics
            cells = (f"{m.max_abs:.2e}", f"{m.max_rel:.2e}", f"{m.cosine:.6f}", f"{m.top1:.0%}", f"{m.top5:.0%}") \
                if m else ("", "", "", "", "")
            rows.append((r.artifact, r.key, r.runtime, *cells, "pass" if r.passed else "FAIL: " + "; ".join(r.failures)))
        print_table(f"parity vs PyTorch: {report.samples} samples, {report.reference}",
                    ["artifact", "kind", "runtime", "max abs", "max rel", "cosine", "top-1", "top-5", "verdict"], rows,
                    right_align=["max abs", "max rel", "cosine", "top-1", "top-5"],
                    caption="limits per (format, precision): shufflekit/validate/tolerances.py")
    report.raise_if_failed()
