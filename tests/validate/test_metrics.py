"""Parity metrics and the tolerance table."""

from __future__ import annotations

import numpy as np
import pytest

from shufflekit.errors import UsageError
from shufflekit.formats import formats
from shufflekit.validate.metrics import compare, judge
from shufflekit.validate.tolerances import tolerance_for, tolerance_table


def _logits(seed: int = 0, n: int = 12, classes: int = 10) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 3, (n, classes)).astype(np.float32)


def test_identical_outputs_are_perfect():
    ref = _logits()
    m = compare(ref, ref.copy())
    assert m.max_abs == 0 and m.max_rel == 0 and m.cosine == pytest.approx(1) and m.top1 == 1 and m.top5 == 1


def test_errors_are_measured_on_the_logits_scale():
    ref = _logits()
    out = ref.copy()
    out[3, 2] += 0.06
    m = compare(ref, out)
    assert m.max_abs == pytest.approx(0.06, rel=1e-3)
    assert m.max_rel == pytest.approx(0.06 / np.abs(ref).max(), rel=1e-3)


def test_top1_and_top5_agreement():
    ref = np.tile(np.arange(10, dtype=np.float32), (4, 1))  # top-1 is class 9, top-5 are 5..9
    out = ref.copy()
    out[0, 0] = 100  # sample 0: top-1 becomes 0, top-5 loses class 5
    m = compare(ref, out)
    assert m.top1 == pytest.approx(0.75) and m.top5 == pytest.approx((0.8 + 3) / 4)


def test_fewer_than_five_classes():
    ref = np.array([[1.0, 2.0, 3.0]])
    assert compare(ref, ref[:, ::-1].copy()).top5 == 1.0  # k = 3: the same set


def test_nan_fails_every_tolerance():
    ref = _logits()
    out = ref.copy()
    out[0, 0] = np.nan
    m = compare(ref, out)
    assert not m.finite
    assert judge(m, tolerance_for("tflite", "int8")) == ["outputs hold NaN or infinity"]


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differs"):
        compare(_logits(classes=10), _logits(classes=11))


def test_judge_says_which_limit_and_by_how_much():
    ref = _logits()
    failures = judge(compare(ref, ref * 1.01), tolerance_for("onnx", "fp32"))
    assert len(failures) == 1 and failures[0].startswith("max rel err 1.00e-02 > 2e-04 (50x)")


def test_int8_is_judged_by_class_agreement_not_by_logit_error():
    ref = _logits(n=20)
    out = ref * 1.3 + 0.2  # far off in value, same ranking: a plausible int8 result
    tolerance = tolerance_for("tflite", "int8")
    assert tolerance.max_rel is None and tolerance.min_top1 is not None
    assert judge(compare(ref, out), tolerance) == []
    shuffled = ref[:, ::-1].copy()
    assert judge(compare(ref, shuffled), tolerance)


@pytest.mark.parametrize("fmt, precision", [(f.name, p) for f in formats() for p in f.precisions])
def test_every_format_and_precision_has_a_tolerance(fmt, precision):
    assert tolerance_for(fmt, precision) is tolerance_table()[(fmt, precision)]


def test_unknown_key_is_a_usage_error():
    with pytest.raises(UsageError, match="no parity tolerance"):
        tolerance_for("coreml", "fp32")


def test_a_failure_on_seeded_weights_says_so():
    from pathlib import Path

    from shufflekit.errors import CheckFailed
    from shufflekit.validate.parity import ParityReport, ParityResult

    def report(key: str, source: str) -> ParityReport:
        failed = ParityResult(
            "m.tflite", key, "litert", ("xnnpack",), None, tolerance_for(*key.split(":")), ("cosine 0.998 < 0.999",)
        )
        return ParityReport(Path("r"), 16, "stored", (failed,), source)

    with pytest.raises(CheckFailed, match="seeded random weights"):
        report("tflite:fp16", "seed").raise_if_failed()
    for key, source in [("tflite:fp32", "seed"), ("tflite:fp16", "checkpoint")]:
        with pytest.raises(CheckFailed) as caught:
            report(key, source).raise_if_failed()
        assert "seeded" not in caught.value.one_line()


def test_top1_agreement_forgives_a_near_tie_but_not_a_far_off_class():
    """Synthetic reference images leave a trained model's top two classes a few hundredths of a logit
    apart: an int8 file landing on the runner-up there agrees; one picking a class PyTorch scores far
    below (a saturating kernel) does not."""
    reference = np.array([[3.00, 2.96, 0.0, 0.5], [3.0, 1.0, 0.0, 0.5]])
    runner_up = np.array([[2.95, 2.99, 0.0, 0.5], [3.0, 1.0, 0.0, 0.5]])
    far_off = np.array([[3.00, 2.96, 0.0, 0.5], [0.0, 1.0, 3.1, 0.5]])
    assert compare(reference, runner_up).top1 == 1.0
    assert compare(reference, far_off).top1 == 0.5
