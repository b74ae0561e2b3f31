"""The report stage (labels.txt, README.md model card, report.html, from the manifest alone) and the
release's own record of the facts only it knows (the model's complexity, the notes, the device failures)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from ..artifacts import Manifest, update_manifest
from ..metadata import InputSize
from ..records import RELEASE_KIND, record_class
from .driver import Context
from .state import Unit, fingerprint

log = logging.getLogger(__name__)


def record_release_facts(ctx: Context) -> None:
    """Facts the report needs that no other command records: the model's complexity, and the notes of
    this run (what was left out, which device failed). Written only when they changed."""
    manifest = Manifest.load(ctx.folder)
    meta = manifest.meta
    current = manifest.results(RELEASE_KIND)
    updates: dict[str, dict[str, Any]] = {}
    model = current.get("model", {})
    if (
        model.get("model") != meta.model
        or not _same_size(model.get("input_size"), meta.input_size)
        or model.get("num_classes") != meta.num_classes
    ):
        facts: dict[str, Any] = {"model": meta.model, "input_size": meta.input_size, "num_classes": meta.num_classes}
        try:
            from ..models.complexity import model_complexity

            facts.update(model_complexity(meta.model, meta.input_size, meta.num_classes).to_dict())
        except Exception as exc:  # noqa: BLE001 - no torch: the card leaves complexity out
            log.info("no complexity for %s: %s", meta.model, exc)
        updates["model"] = facts
    notes = {"lines": list(dict.fromkeys(ctx.notes))}
    if {k: v for k, v in current.get("notes", {}).items() if k in ("lines",)} != notes:
        updates["notes"] = notes
    failures = {"devices": dict(ctx.device_errors), "artifacts": {d: dict(e) for d, e in ctx.artifact_errors.items()}}
    if {k: v for k, v in current.get("profile_failures", {}).items() if k in failures} != failures:
        updates["profile_failures"] = failures
    if updates:
        with update_manifest(ctx.folder) as writable:
            for name, entry in updates.items():
                writable.record(record_class(RELEASE_KIND, name).from_dict({**entry, "measured_at": ""}), name)


def _manifest_digest(manifest: Manifest) -> str:
    data = manifest.to_dict()
    data.pop("updated_at", None)
    data.pop("files", None)  # written by the report itself
    data.get("results", {}).pop("release_stages", None)
    return fingerprint("manifest", data)


def stage_report(ctx: Context) -> Path:
    from ..report import REPORT_FILES, write_report

    manifest = Manifest.load(ctx.folder)
    unit = Unit("report", "", fingerprint("report", {"manifest": _manifest_digest(manifest)}))
    html = ctx.folder / REPORT_FILES[2]
    if ctx.skip_if_done(unit, manifest):
        return html
    started = time.perf_counter()
    files = write_report(ctx.folder, manifest)
    ctx.finish(unit, time.perf_counter() - started, files.files)
    return html


def _same_size(recorded: Any, size: InputSize) -> bool:
    """Whether the recorded facts are of this input size (as the manifest stores it, or the int of a square
    written before): a rerun must not count the model's multiply-adds again (that loads torch)."""
    try:
        return InputSize.from_json(recorded) == size
    except (TypeError, ValueError):
        return False
