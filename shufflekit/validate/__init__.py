"""Parity of artifacts against PyTorch: reference inputs, metrics, the tolerance table, the report."""

from .tolerances import Tolerance, tolerance_for, tolerance_table

__all__ = ["Tolerance", "tolerance_for", "tolerance_table"]
