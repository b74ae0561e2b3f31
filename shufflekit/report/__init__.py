"""The human side of a release folder, written from its manifest alone: ``labels.txt``, the model card
``README.md`` and ``report.html`` (plots inline, readable offline). ``write_report(folder)`` is what
``shufflekit report DIR`` and the release's last stage call. The three files are recorded in the
manifest (``files``), so the folder knows them as the tool's: a user's own README.md or labels.txt in
the folder is never replaced (refused, naming it, before anything is written)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..artifacts import Manifest
from ..files import atomic_write_text, check_writable, sha256_file
from ..folder import ReleaseFolder

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
    """Write labels.txt, README.md and report.html into ``folder`` and record them in its manifest, in
    one commit (``ReleaseFolder.commit``). A same-named file the folder does not own is refused first.
    A sweep folder (``shufflekit sweep``) gets its own report.html and plot instead (``report.sweep``)."""
    from .sweep import is_sweep_folder, write_sweep_report

    if is_sweep_folder(folder):
        return ReportFiles(Path(folder), write_sweep_report(folder))
    from ..export.tensorspecs import check_present_files
    from .card import labels_text, write_card
    from .html import write_html
    from .view import load_view

    folder = Path(folder)
    release = ReleaseFolder(folder)
    view = load_view(folder, manifest)
    check_writable(folder, f"report writes {', '.join(REPORT_FILES)} into it")
    release.check_replaceable(REPORT_FILES)  # before the plots are drawn
    # the card describes each file's tensors: they must be the file's (a changed file is marked, not described)
    check_present_files(view.manifest, [r.artifact for r in view.rows if r.file_problem is None])
    html_text = write_html(view)  # plots first: a missing matplotlib fails before anything is written
    texts = {LABELS_NAME: labels_text(view), CARD_NAME: write_card(view), HTML_NAME: html_text}
    with release.staging("report") as staging:
        for name, text in texts.items():
            atomic_write_text(staging / name, text)  # on disk before the name is
        shas = {name: sha256_file(staging / name) for name in REPORT_FILES}

        def recorded() -> Manifest:
            current = Manifest.load(folder)  # under the lock: what the folder holds now
            current.set_files(shas)
            return current

        release.commit(staging, REPORT_FILES, recorded)
    return ReportFiles(folder, shas)


__all__ = ["CARD_NAME", "HTML_NAME", "LABELS_NAME", "REPORT_FILES", "ReportFiles", "write_report"]
