"""`shufflekit models`: every variant with params, multiply-adds and memory access cost."""

from __future__ import annotations

from typing import Any

import click

from ..metadata import InputSize
from .app import fmt_millions, main, print_table
from .numbers import INPUT_SIZE, INPUT_SIZE_HELP, NUM_CLASSES
from .output import current


@main.command("models")
@click.option("--input-size", type=INPUT_SIZE, default="224", show_default=True, help=f"{INPUT_SIZE_HELP}.")
@click.option("--num-classes", type=NUM_CLASSES, default=1000, show_default=True)
@click.option("--family", type=click.Choice(["v1", "v2"]), help="Only this family.")
def models_command(input_size: InputSize, num_classes: int, family: str | None) -> None:
    """List every model variant with params, multiply-adds ("FLOPs" in the papers) and MAC."""
    from ..models import list_models
    from ..models.complexity import model_complexity

    specs = [s for s in list_models() if family is None or s.family == family]
    rows: list[dict[str, Any]] = []
    for spec in specs:
        c = model_complexity(spec.name, input_size, num_classes)
        rows.append(
            {"model": spec.name, "family": spec.family, "width": spec.width, "groups": spec.groups, **c.to_dict()}
        )
    out = current()
    if out.json:
        out.respond(rows, {"input_size": input_size.to_json(), "num_classes": num_classes, "family": family})
        return
    print_table(
        f"ShuffleNet variants at {input_size.describe()}, {num_classes} classes",
        ["model", "family", "width", "groups", "params", "mult-adds", "MAC (elements)"],
        [
            (
                r["model"],
                r["family"],
                f"{r['width']}x" if r["width"] is not None else "",
                r["groups"] or "",
                fmt_millions(r["params"], 2),
                fmt_millions(r["mult_adds"]),
                fmt_millions(r["memory_access"]),
            )
            for r in rows
        ],
        right_align=["params", "mult-adds", "MAC (elements)"],
        keep_whole=["model"],
        drop=["groups", "width", "family"],
        caption="mult-adds are the papers' FLOPs; MAC counts elements read+written with BatchNorm folded",
    )
