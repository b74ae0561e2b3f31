"""The items of the JSON envelope's ``results``, built the same way by every command: an artifact is named
by ``artifact`` (its file name) and ``key`` (``format:precision``), and accuracy is in percent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def artifact_item(artifact: Any, **more: Any) -> dict[str, Any]:
    """An ``artifacts.Artifact`` as a result item: ``artifact`` and ``key`` first, then its record."""
    data = artifact.to_dict()
    data.pop("name", None)
    return {"artifact": artifact.name, "key": artifact.key, **data, **more}


def percent(share: float | None) -> float | None:
    """A share (0-1) in percent, without float noise (0.9375 -> 93.75)."""
    return None if share is None else round(float(share) * 100.0, 6)


def parity_item(result: Mapping[str, Any]) -> dict[str, Any]:
    """A ``ParityResult.to_dict()`` with its top-1/top-5 agreement (shares in the manifest) and their
    limits in percent."""
    data = dict(result)
    metrics = data.get("metrics")
    if isinstance(metrics, Mapping):
        data["metrics"] = {**metrics, **{k: percent(metrics[k]) for k in ("top1", "top5") if k in metrics}}
    tolerance = data.get("tolerance")
    if isinstance(tolerance, Mapping):
        data["tolerance"] = {
            **tolerance,
            **{k: percent(tolerance[k]) for k in ("min_top1", "min_top5") if tolerance.get(k) is not None},
        }
    return data


def without(data: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """``data`` less ``keys`` (the list that became ``results``)."""
    return {k: v for k, v in data.items() if k not in keys}
