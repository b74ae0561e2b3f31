"""`shufflekit evaluate DIR --data DATA`: top-1/top-5 of PyTorch and of every artifact, and the gate on
each artifact's top-1 drop."""

from __future__ import annotations

from pathlib import Path

import click

from ..validate.tolerances import DEFAULT_MAX_DROP
from .app import main, print_table, progress_bar, shorten_names
from .json_items import without
from .numbers import MAX_DROP
from .output import current
from .paths import NonEmptyPath
from .shared_options import DATA_METAVAR, eval_samples_option


@main.command("evaluate")
@click.argument("folder", type=NonEmptyPath(path_type=Path))
@click.argument("artifacts", nargs=-1)
@click.option(
    "--data",
    required=True,
    metavar=DATA_METAVAR,
    help="Labelled images: a folder with one subfolder per class (its val/ split when it has one), "
    "an .npz with images and labels, or 'demo'.",
)
@eval_samples_option("Evaluate a fixed random subset of this many images [default: all].", old=("--limit",))
@click.option(
    "--max-drop",
    type=MAX_DROP,
    default=DEFAULT_MAX_DROP,
    show_default=True,
    help="Top-1 percentage points an artifact may lose against PyTorch; more fails (exit 1).",
)
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    help="The checkpoint the folder was exported from, if it moved (checked by sha256).",
)
def evaluate_command(
    folder: Path,
    artifacts: tuple[str, ...],
    data: str,
    eval_samples: int | None,
    max_drop: float,
    checkpoint: Path | None,
) -> None:
    """Accuracy of the PyTorch model and of every artifact of FOLDER (or the ARTIFACTs named: file name,
    format, or format:precision), each artifact's delta against PyTorch, recorded in the manifest."""
    from ..validate.accuracy import evaluate_release

    with progress_bar() as progress:
        report = evaluate_release(
            folder,
            data,
            limit=eval_samples,
            max_drop=max_drop,
            select=artifacts,
            checkpoint=checkpoint,
            progress=progress,
        )
    out = current()
    if out.json:
        out.respond([_item(r) for r in report.results], without(report.to_dict(), "results"))
    else:
        torch_row = (
            report.pytorch.name,
            "pytorch",
            "torch",
            f"{report.pytorch.top1:.2f}",
            f"{report.pytorch.top5:.2f}",
            "",
            "",
            "",
            "reference",
        )
        rows = [torch_row] + [
            (
                r.name,
                r.key,
                r.runtime,
                f"{r.top1:.2f}",
                f"{r.top5:.2f}",
                f"{r.delta_top1:+.2f}",
                f"{r.delta_top5:+.2f}",
                f"{r.agreement:.1f}",
                "pass" if r.passed else f"FAIL: -{r.drop:.2f} points",
            )
            for r in report.results
        ]
        print_table(
            f"accuracy on {report.samples} images of {report.data}",
            ["model", "kind", "runtime", "top-1 %", "top-5 %", "Δ top-1", "Δ top-5", "agrees %", "verdict"],
            rows,
            right_align=["top-1 %", "top-5 %", "Δ top-1", "Δ top-5", "agrees %"],
            keep_whole=["model"],
            drop=["runtime", "Δ top-5", "top-5 %", "agrees %", "kind"],
            shorten=shorten_names("model", [r.name for r in report.results]),
            caption=f"Δ in points against PyTorch; an artifact losing more than {report.max_drop:g} "
            "points of top-1 fails; 'agrees': same top-1 class as PyTorch",
        )
    report.raise_if_failed()


def _item(result) -> dict:  # noqa: ANN001 - validate.accuracy.AccuracyResult
    """An artifact's accuracy, named by ``artifact`` and ``key`` as every command's items are."""
    data = result.to_dict()
    return {"artifact": data.pop("name"), **data}
