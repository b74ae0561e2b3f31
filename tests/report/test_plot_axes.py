"""The report's axes stay readable whatever the figures: latency tick labels that never run into each other
on a short or a long range, and a y window that stays on the files that hold when one fails far below."""

from __future__ import annotations

from itertools import pairwise

import pytest

from shufflekit.report.plotlayout import latency_axis, value_window
from shufflekit.report.plots import DPI, _pyplot


def _tick_boxes(ax):
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.get_xticklabels(which="both") if t.get_text() and t.get_visible()]  # minor ones too
    lo, hi = sorted(ax.get_xlim())
    shown = sorted((t for t in labels if lo <= t.get_position()[0] <= hi), key=lambda t: t.get_position()[0])
    return [t.get_text() for t in shown], [t.get_window_extent(renderer) for t in shown]


@pytest.mark.parametrize(
    "values",
    [
        [0.053, 0.058, 0.063, 0.071, 0.205, 0.206, 0.237, 0.694],  # the demo's local figures: 13x apart
        [0.78, 0.92, 2.9, 3.1, 370.0],  # a board with one very slow file
        [0.04, 0.2, 2.0, 60.0, 4000.0],  # five decades of box-plot whiskers
        [0.21, 0.25, 0.3, 0.8, 1.02],  # close together: a linear axis
    ],
)
def test_latency_tick_labels_are_plain_numbers_that_do_not_collide(values):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.6), dpi=DPI)  # one panel of the accuracy figure
    try:
        ax.scatter(values, range(len(values)))
        latency_axis(ax, values, log_above=8, pad=1.35)
        texts, boxes = _tick_boxes(ax)
        assert len(texts) >= 3, texts  # a scale one can read values off
        assert all("10^" not in t and "times" not in t and "$" not in t for t in texts), texts  # 0.2, not 2×10⁻¹
        for left, right in pairwise(boxes):
            assert left.x1 < right.x0, texts  # each label ends before the next begins
        low, high = ax.get_xlim()
        assert low <= min(values) and max(values) <= high  # nothing falls off the axis
    finally:
        plt.close(fig)


def test_a_file_that_failed_far_below_is_drawn_in_a_band_not_on_the_scale():
    holding = [92.76, 92.76, 93.04, 93.31, 93.59]
    window = value_window([*holding, 92.76], [11.4], min_span=1.0)
    assert 91.5 < window.low < 92.76 and 93.59 < window.high < 94.5  # the scale is the holding files'
    assert window.below is not None and window.limits[0] < window.below < window.low
    assert window.outside(11.4) and window.shown_at(11.4) == window.below
    assert all(window.shown_at(v) == v for v in holding)


def test_a_file_that_failed_close_to_the_others_stays_in_place():
    window = value_window([92.8, 93.0, 93.3], [91.9], min_span=1.0)
    assert not window.outside(91.9) and window.shown_at(91.9) == 91.9 and window.below is None
    assert window.limits == (window.low, window.high)


def test_one_file_alone_still_gets_a_readable_window():
    window = value_window([92.8], [], min_span=1.0)
    assert window.high - window.low >= 1.0 and window.low < 92.8 < window.high
