"""`shufflekit report DIR`: rebuild labels.txt, the README.md model card and report.html of a release
folder from its manifest alone."""

from __future__ import annotations

from pathlib import Path

import click

from .app import main
from .output import current
from .paths import NonEmptyPath


@main.command("report")
@click.argument("folder", type=NonEmptyPath(path_type=Path))
def report_command(folder: Path) -> None:
    """Rebuild FOLDER's report.html (plots inline, readable offline), README.md and labels.txt from its
    manifest.json, e.g. after `shufflekit profile` added a device."""
    from ..report import write_report

    files = write_report(folder)
    out = current()
    if out.json:
        out.respond([{"file": name, "path": str(folder / name)} for name in files.files], {"folder": str(folder)})
        return
    for name in files.files:
        click.echo(f"wrote {folder / name}")
