"""Parity metrics between an artifact's logits and PyTorch's, and the verdict against a Tolerance."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .tolerances import Tolerance

TOP_K = 5
# Where PyTorch's two best classes lie this close (a share of that input's logit range, max - min),
# an artifact choosing either agrees: on the synthetic reference images a trained model's top-1 often
# leads by a few hundredths of a logit, and which side of such a tie a quantized file lands on says
# nothing about its kernels (seen: an int8 file with cosine 0.993 "disagreeing" on exactly the three
# inputs whose margins were 0.04-0.06 of a range of 3). A wrong kernel picks far-off classes, and fails.
NEAR_TIE = 0.05


@dataclass(frozen=True)
class ParityMetrics:
    samples: int
    max_abs: float  # max |artifact - reference|
    max_rel: float  # max_abs / max |reference|: the error on the scale of the logits
    cosine: float  # worst sample's cosine similarity
    top1: float  # share of samples whose top-1 class is PyTorch's, or ties with it (NEAR_TIE)
    top5: float  # mean share of the reference's top-5 classes found in the artifact's top-5
    finite: bool

    def to_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def compare(reference: np.ndarray, outputs: np.ndarray) -> ParityMetrics:
    """Both (samples, classes). Relative error uses the reference's largest magnitude as the scale,
    since element-wise relative error is meaningless for logits near zero."""
    reference = np.asarray(reference, dtype=np.float64)
    outputs = np.asarray(outputs, dtype=np.float64)
    if reference.shape != outputs.shape:
        raise ValueError(f"output shape {outputs.shape} differs from the reference's {reference.shape}")
    finite = bool(np.isfinite(outputs).all())
    if not finite:
        return ParityMetrics(len(reference), float("inf"), float("inf"), -1.0, 0.0, 0.0, False)
    diff = np.abs(outputs - reference)
    scale = max(float(np.abs(reference).max()), 1e-12)
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(outputs, axis=1)
    cosines = np.where(norms > 0, (reference * outputs).sum(axis=1) / np.maximum(norms, 1e-300), 0.0)
    k = min(TOP_K, reference.shape[1])
    ref_top = np.argsort(-reference, axis=1)[:, :k]
    out_top = np.argsort(-outputs, axis=1)[:, :k]
    overlap = [len(set(a) & set(b)) / k for a, b in zip(ref_top, out_top)]
    rows = np.arange(len(reference))
    near = NEAR_TIE * (reference.max(axis=1) - reference.min(axis=1))
    agrees = reference[rows, out_top[:, 0]] >= reference.max(axis=1) - near
    return ParityMetrics(
        samples=len(reference),
        max_abs=float(diff.max()),
        max_rel=float(diff.max() / scale),
        cosine=float(cosines.min()),
        top1=float(agrees.mean()),
        top5=float(np.mean(overlap)),
        finite=True,
    )


def judge(metrics: ParityMetrics, tolerance: Tolerance) -> list[str]:
    """What failed, each with by how much; empty when the artifact passes."""
    if not metrics.finite:
        return ["outputs hold NaN or infinity"]
    failures = []
    if tolerance.max_rel is not None and metrics.max_rel > tolerance.max_rel:
        failures.append(
            f"max rel err {metrics.max_rel:.2e} > {tolerance.max_rel:.0e} ({metrics.max_rel / tolerance.max_rel:.0f}x)"
        )
    if tolerance.min_cosine is not None and metrics.cosine < tolerance.min_cosine:
        failures.append(f"cosine {metrics.cosine:.6f} < {tolerance.min_cosine}")
    if tolerance.min_top1 is not None and metrics.top1 < tolerance.min_top1:
        failures.append(f"top-1 agreement {metrics.top1:.1%} < {tolerance.min_top1:.0%}")
    if tolerance.min_top5 is not None and metrics.top5 < tolerance.min_top5:
        failures.append(f"top-5 agreement {metrics.top5:.1%} < {tolerance.min_top5:.0%}")
    return failures
