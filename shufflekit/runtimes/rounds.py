"""Interleaved rounds (A, B, C, A, B, C...): a change of machine load hits every file alike. Each file
keeps the figures of its median round, in the manifest too, so a later ``report`` shows what the run
printed. Used by ``sweep`` and ``guidelines``."""

from __future__ import annotations

from pathlib import Path

from ..artifacts import update_manifest
from ..records import Latency
from .profile import ProfileReport


def keep_median_round(folder: Path, rounds: list[ProfileReport]) -> ProfileReport:
    """The last of one device's round reports, with each file's figures replaced (in it and in the
    manifest) by those of its median round by per-image p50; every round's p50 is kept beside them as
    ``round_p50_ms``, their count as ``rounds``."""
    last = rounds[-1]
    if len(rounds) == 1:
        return last
    with update_manifest(folder) as manifest:
        current = {a.name: a for a in manifest.artifacts}
        for position, profile in enumerate(last.profiles):
            same = [r.profiles[position] for r in rounds if len(r.profiles) > position]
            same = [p for p in same if p.artifact == profile.artifact and p.per_image_p50_ms is not None]
            if len(same) < 2 or current.get(profile.artifact.name) != profile.artifact:
                continue
            p50s = [p.per_image_p50_ms or 0.0 for p in same]
            median = sorted(same, key=lambda p: p.per_image_p50_ms or 0.0)[(len(same) - 1) // 2]
            record = Latency.from_dict({**median.summary(), "rounds": len(same), "round_p50_ms": p50s})
            manifest.record(record, profile.artifact, group=last.device)
            last.profiles[position] = median
    return last
