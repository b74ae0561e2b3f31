"""Within one release run, work that several stages repeat is done once.

The labelled images through the model's preprocessing, with PyTorch's logits on them, are classified by
the quantizer's accuracy gate, by evaluate, and by each device's accuracy check; the gate's predictions
of a quantized file on this computer are what evaluate would measure again on the same bytes. Both are
kept here, by content: the data, its preprocessing and the model source for the images; the file's
sha256 and the runtime options for the predictions.

Active only inside ``shared_within_run()`` (the release opens it around its stages): a command run on its
own reads its inputs afresh, and a long-lived process (a test session) never sees another run's data.
Images are kept only up to ``MAX_KEPT_BYTES``; a larger data set is read again by each stage, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

MAX_KEPT_BYTES = 1 << 30  # preprocessed images held for the run: 1 GiB (about 1,700 images at 224x224)
T = TypeVar("T")


@dataclass
class _RunCache:
    kept: dict[Hashable, Any] = field(default_factory=dict)
    predictions: dict[Hashable, tuple[np.ndarray, str]] = field(default_factory=dict)


_active: _RunCache | None = None


@contextlib.contextmanager
def shared_within_run() -> Iterator[None]:
    """Share labelled images and predictions between the stages run inside (nested: the outer run's)."""
    global _active
    outer = _active
    _active = outer if outer is not None else _RunCache()
    try:
        yield
    finally:
        _active = outer


def active() -> bool:
    return _active is not None


def once(key: Hashable, compute: Callable[[], T], *, nbytes: Callable[[T], int] = lambda value: 0) -> T:
    """``compute()``, once per run for ``key`` (kept when ``nbytes`` of it is at most MAX_KEPT_BYTES)."""
    if _active is None:
        return compute()
    if key in _active.kept:
        return _active.kept[key]
    value = compute()
    if nbytes(value) <= MAX_KEPT_BYTES:
        _active.kept[key] = value
    return value


def peek(key: Hashable) -> Any:
    """What ``once`` kept under ``key`` in this run, or None."""
    return None if _active is None else _active.kept.get(key)


def key_of(images: np.ndarray) -> Hashable | None:
    """The key of the kept labelled set whose images array ``images`` is (identity), or None."""
    if _active is None:
        return None
    for key, value in _active.kept.items():
        if getattr(value, "images", None) is images:
            return key
    return None


def predictions(key: Hashable | None) -> tuple[np.ndarray, str] | None:
    """Logits and runtime name recorded under ``key`` in this run, or None."""
    if _active is None or key is None:
        return None
    return _active.predictions.get(key)


def keep_predictions(key: Hashable | None, logits: np.ndarray, runtime: str) -> None:
    if _active is not None and key is not None:
        _active.predictions[key] = (logits, runtime)
