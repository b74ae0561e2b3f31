"""Which registered variants a sweep takes: every model of the chosen families, narrowed by width and (for
the families that have them) group counts. Read from the registry, so a variant added there is swept."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UsageError
from ..models.registry import ModelSpec, list_models

SWEPT_VARIANTS = ("", "megvii")


def _listed(values: Sequence[object]) -> str:
    return ", ".join(str(v) for v in values)


def _width(text: str) -> float:
    try:
        return float(text.strip().lower().removesuffix("x"))
    except ValueError:
        raise UsageError(f"--width takes multipliers like 0.5,1.0, not {text.strip()!r}") from None


def _group(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise UsageError(f"--groups takes group counts like 3,8, not {text.strip()!r}") from None


def parse_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def select_variants(families: Sequence[str], widths: Sequence[str] = (), groups: Sequence[str] = ()) -> list[ModelSpec]:
    """The registered variants of ``families`` (e.g. ["v1", "v2"]) whose width is one of ``widths`` and,
    where a variant has groups, whose group count is one of ``groups`` (empty: all). An unknown family,
    width or group count is refused naming the known ones."""
    every = list_models()
    known_families = sorted({s.family for s in every})
    chosen_families = list(dict.fromkeys(f.strip().lower() for f in families if f.strip()))
    unknown = [f for f in chosen_families if f not in known_families]
    if unknown or not chosen_families:
        raise UsageError(
            f"unknown family {_listed(unknown) or '(none)'}", hint=f"use --family with {_listed(known_families)}"
        )
    # The width series of each family (Figure 1's networks, Megvii's layout too); the paper's other networks
    # (v2*, SE, the large ones) are named by --model elsewhere, not swept.
    specs = [s for s in every if s.family in chosen_families and s.width is not None and s.variant in SWEPT_VARIANTS]
    wanted_widths = [_width(w) for w in widths]
    known_widths = sorted({s.width for s in specs if s.width is not None})
    bad = [w for w in wanted_widths if w not in known_widths]
    if bad:
        raise UsageError(
            f"no {'/'.join(chosen_families)} variant has width {_listed([f'{w:g}' for w in bad])}",
            hint=f"widths: {_listed([f'{w:g}' for w in known_widths])}",
        )
    if wanted_widths:
        specs = [s for s in specs if s.width in wanted_widths]
    wanted_groups = [_group(g) for g in groups]
    known_groups = sorted({s.groups for s in specs if s.groups is not None})
    bad_groups = [g for g in wanted_groups if g not in known_groups]
    if bad_groups:
        raise UsageError(
            f"no selected variant has {_listed(bad_groups)} groups",
            hint=f"group counts: {_listed(known_groups)}" if known_groups else "only ShuffleNet v1 has --groups",
        )
    if wanted_groups:
        specs = [s for s in specs if s.groups is None or s.groups in wanted_groups]
    return specs
