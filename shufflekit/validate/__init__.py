"""Parity of artifacts against PyTorch: reference inputs, metrics, the tolerance table, the report."""

from .tolerances import TOLERANCES, Tolerance, tolerance_for

__all__ = ["TOLERANCES", "Tolerance", "tolerance_for"]
