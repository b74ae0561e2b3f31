"""`shufflekit release`: from a model (and checkpoint) to a verified, quantized, profiled release folder.

``options`` (what to make, checked before any work), ``state`` (units, fingerprints, done-marks),
``driver`` (plan, skip, time, mark, report), and one module per stage: ``train``, ``export``,
``quantize``, ``evaluate``, ``validate``, ``profile``, ``report``; ``run`` runs them in order."""

from __future__ import annotations

from .options import ReleaseOptions, check_options
from .run import ReleaseReport, release

__all__ = ["ReleaseOptions", "ReleaseReport", "check_options", "release"]
