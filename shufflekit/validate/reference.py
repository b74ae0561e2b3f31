"""The parity reference lives in ``export.reference`` (export writes it; validate, which imports export,
reads it). Re-exported here for the readers that name it by its old place."""

from __future__ import annotations

from ..export.reference import (
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    REFERENCE_NAME,
    Reference,
    normalize,
    reference_inputs,
    synthetic_images,
)

__all__ = [
    "DEFAULT_SAMPLES",
    "DEFAULT_SEED",
    "REFERENCE_NAME",
    "Reference",
    "normalize",
    "reference_inputs",
    "synthetic_images",
]
