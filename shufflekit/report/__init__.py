"""The human side of a release folder, written from its manifest alone: ``labels.txt``, the model card
``README.md`` and ``report.html`` (plots inline, readable offline). ``write_report(folder)`` is what
``shufflekit report DIR`` and the release's last stage call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..artifacts import Manifest
from ..files import atomic_write_text, sha256_file

LABELS_NAME = "labels.txt"
CARD_NAME = "README.md"
HTML_NAME = "report.html"
REPORT_FILES = (LABELS_NAME, CARD_NAME, HTML_NAME)


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    files: dict[str, str]  # name -> sha256

    @property
    def html(self) -> Path:
        return self.folder / HTML_NAME

    @property
    def card(self) -> Path:
        return self.folder / CARD_NAME


def write_report(folder: str | Path, manifest: Manifest | None = None) -> ReportFiles:
    """Write labels.txt, README.md and report.html into ``folder`` (each atomically)."""
    from ..tensorspecs import check_present_files
    from .card import labels_text, write_card
    from .html import write_html
    from .view import load_view

    folder = Path(folder)
    view = load_view(folder, manifest)
    check_present_files(view.manifest)  # the card describes each file's tensors: they must be the file's
    html_text = write_html(view)  # plots first: a missing matplotlib fails before anything is written
    atomic_write_text(folder / LABELS_NAME, labels_text(view))
    atomic_write_text(folder / CARD_NAME, write_card(view))
    atomic_write_text(folder / HTML_NAME, html_text)
    return ReportFiles(folder, {name: sha256_file(folder / name) for name in REPORT_FILES})


__all__ = ["CARD_NAME", "HTML_NAME", "LABELS_NAME", "REPORT_FILES", "ReportFiles", "write_report"]
