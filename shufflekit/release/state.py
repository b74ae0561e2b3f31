"""What makes a release rerunnable: a fingerprint per stage unit (sha256 of its inputs and options),
recorded in the manifest when the unit finishes, with the sha256 of every file it made.

A unit is skipped when its recorded fingerprint equals the one computed now AND every output it
recorded is still there byte for byte; otherwise it runs again. A unit is recorded only after it
finished, so an interrupted run redoes exactly the units that had not finished, and a changed file is
re-made rather than trusted. Temporary files an interruption left (``.*.partial``, ``.staging-*``)
are removed before anything runs (``folder.ReleaseFolder.clean_leftovers``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..artifacts import MANIFEST_NAME, Manifest, update_manifest, utc_now
from ..files import sha256_file
from ..records import StageRecord

log = logging.getLogger(__name__)


def options_inputs(options: Any, *, exclude: Collection[str] = (), data: Collection[str] = ()) -> dict[str, Any]:
    """The fingerprint inputs of an options dataclass: every field, so a new option re-runs the units it
    feeds without anyone listing it here, except those in ``exclude`` (fields that do not change the
    outputs, or that the unit's name already says). Fields in ``data`` name a data set: they enter as
    ``data_fingerprint`` (what the data is), not as the path. Nested options dataclasses are expanded."""
    inputs: dict[str, Any] = {}
    for item in fields(options):
        if item.name in exclude:
            continue
        value = getattr(options, item.name)
        if item.name in data and value is not None:
            value = data_fingerprint(str(value))
        elif is_dataclass(value) and not isinstance(value, type):
            value = options_inputs(value)
        elif isinstance(value, tuple):
            value = list(value)
        inputs[item.name] = value
    return inputs


def fingerprint(unit: str, inputs: Mapping[str, Any]) -> str:
    """sha256 of the unit's name, its inputs (sha256s of files, options) and shufflekit's version."""
    canonical = json.dumps(
        {"unit": unit, "inputs": inputs, "shufflekit": __version__}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Unit:
    """One piece of a stage: e.g. ``quantize onnx:int8`` or ``profile local shufflenet_..._int8.tflite``."""

    stage: str
    name: str
    fingerprint: str

    @property
    def key(self) -> str:
        return f"{self.stage} {self.name}" if self.name else self.stage


@dataclass
class UnitOutcome:
    unit: Unit
    status: str  # "ran", "skipped", "failed", "not run"
    seconds: float = 0.0
    note: str = ""


@dataclass
class StageLog:
    """What happened to every unit in this run, in order."""

    outcomes: list[UnitOutcome] = field(default_factory=list)

    def add(self, outcome: UnitOutcome) -> UnitOutcome:
        self.outcomes.append(outcome)
        return outcome

    def by_stage(self) -> dict[str, list[UnitOutcome]]:
        stages: dict[str, list[UnitOutcome]] = {}
        for outcome in self.outcomes:
            stages.setdefault(outcome.unit.stage, []).append(outcome)
        return stages

    def ran(self) -> list[UnitOutcome]:
        return [o for o in self.outcomes if o.status == "ran"]

    def skipped(self) -> list[UnitOutcome]:
        return [o for o in self.outcomes if o.status == "skipped"]


def recorded(manifest: Manifest | None, unit: Unit) -> dict[str, Any] | None:
    if manifest is None:
        return None
    entry = manifest.results(StageRecord.kind).get(unit.key)
    return entry if isinstance(entry, dict) else None


def is_done(folder: Path, manifest: Manifest | None, unit: Unit) -> bool:
    """Finished earlier with the same inputs, and everything it made is still what it made."""
    entry = recorded(manifest, unit)
    if entry is None or entry.get("fingerprint") != unit.fingerprint:
        return False
    for name, sha in (entry.get("outputs") or {}).items():
        path = folder / name
        if not path.is_file() or sha256_file(path) != sha:
            log.info("%s: %s changed or is missing since it was made; redoing the unit", unit.key, name)
            return False
    return True


def mark_done(
    folder: Path,
    unit: Unit,
    outputs: Mapping[str, str] | None = None,
    seconds: float = 0.0,
    **extra: Any,
) -> None:
    """Record a finished unit: its fingerprint and the sha256 of each file it made."""
    with update_manifest(folder) as manifest:
        manifest.record(
            StageRecord.from_dict(
                {
                    "fingerprint": unit.fingerprint,
                    "outputs": dict(outputs or {}),
                    "seconds": round(seconds, 3),
                    "finished_at": utc_now(),
                    **extra,
                }
            ),
            unit.key,
        )


def _result_digest(manifest: Manifest, kind: str, name: str, group: str | None) -> str | None:
    entry = manifest.results(kind, group=group).get(name)
    if entry is None:
        return None
    return hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()


def seal_result(folder: Path, unit: Unit, kind: str, name: str, group: str | None = None) -> None:
    """Keep, in ``unit``'s record, a digest of the ``kind`` result it recorded for ``name``: a result a
    hand-run command recorded since (``evaluate`` on other data, ``profile`` with other timing) then
    makes the unit run again instead of shipping those figures as the release's."""
    seal_results(folder, [(unit, name)], kind, group)


def seal_results(folder: Path, sealed: Sequence[tuple[Unit, str]], kind: str, group: str | None = None) -> None:
    """seal_result for several units (unit, name) at once: one manifest update."""
    with update_manifest(folder) as manifest:
        for unit, name in sealed:
            entry = recorded(manifest, unit)
            digest = _result_digest(manifest, kind, name, group)
            if entry is not None and entry.get("fingerprint") == unit.fingerprint and digest is not None:
                manifest.record(StageRecord.from_dict({**entry, "result": digest}), unit.key)


def result_as_sealed(folder: Path, unit: Unit, kind: str, name: str, group: str | None = None) -> bool:
    """The ``kind`` result for ``name`` is still the one ``unit`` recorded (see seal_result)."""
    manifest = load_or_none(folder)
    entry = recorded(manifest, unit)
    if manifest is None or entry is None:
        return False
    return entry.get("result") == _result_digest(manifest, kind, name, group)


def outputs_of(folder: Path, names: list[str]) -> dict[str, str]:
    return {name: sha256_file(folder / name) for name in names}


def load_or_none(folder: Path) -> Manifest | None:
    return Manifest.load(folder) if (folder / MANIFEST_NAME).is_file() else None


def data_fingerprint(source: str) -> dict[str, Any]:
    """What identifies a data set without reading every pixel: a file's sha256; for a folder, the sha256
    of its listing (relative path, size and modification time of every file). The demo set is fixed."""
    if source == "demo":
        from ..data_demo import DEMO_NAME

        return {"kind": "demo", "version": DEMO_NAME}  # rendered the same on every machine
    path = Path(source)
    if path.is_file():
        return {"kind": "file", "sha256": sha256_file(path)}
    listing = hashlib.sha256()
    count = 0
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = item.stat()
        listing.update(f"{item.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        count += 1
    return {"kind": "folder", "files": count, "listing_sha256": listing.hexdigest()}
