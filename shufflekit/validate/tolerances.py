"""The one tolerance table: how close an artifact must come to PyTorch, keyed by (format, precision).

The limits themselves are declared with each precision (and, where a format differs, with the format) in
``shufflekit.formats``; this module is how validate reads them.

Float artifacts are judged by error relative to the logits' scale and by cosine similarity: a float32
file that differs by more than rounding is wrong (a layout, BatchNorm or op-conversion bug), not
imprecise. Quantised artifacts (dynamic-range and int8) are judged by whether they still rank the
classes the same way, top-1 and top-5 agreement, never by a tiny absolute tolerance: int8 logits
differ from float ones by design. Accuracy against labels is measured by ``shufflekit evaluate``; once
it has been measured on an artifact (recorded in the manifest, for the same file), validate also
judges the artifact's top-1 drop against PyTorch by ``max_accuracy_drop``.
"""

from __future__ import annotations

from ..errors import UsageError
from ..formats import DEFAULT_MAX_DROP, Tolerance, formats

__all__ = ["DEFAULT_MAX_DROP", "Tolerance", "tolerance_for", "tolerance_table"]


def tolerance_table() -> dict[tuple[str, str], Tolerance]:
    """(format, precision) -> Tolerance for every registered format and the precisions it holds."""
    return {(f.name, p): f.tolerance(p) for f in formats() for p in f.precisions}


def tolerance_for(fmt: str, precision: str) -> Tolerance:
    table = tolerance_table()
    try:
        return table[(fmt, precision)]
    except KeyError:
        known = ", ".join(f"{f}:{p}" for f, p in table)
        raise UsageError(f"no parity tolerance for {fmt}:{precision}", hint=f"known: {known}") from None
