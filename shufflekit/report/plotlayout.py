"""Layout for the report's plots, so they read as a device engineer wants: tick labels as plain
numbers that never run into each other, a y window that stays on the files that hold when one fails far
below (that one drawn in a band under the axis, its value written), and markers that would cover each
other set side by side under one label, each label on the first side of its marker where it covers
nothing else. matplotlib is imported inside the functions, as in plots.py."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FAIL_COLOR = "#b00020"
LABEL_SIZE = 7  # points, for the labels beside the markers


# -- axes that stay readable ----------------------------------------------------------------------------
def plain_number(value: float, _position: object = None) -> str:
    """A tick label as people write it: 0.05, 0.2, 3, 150 (not 5×10⁻², which crowd each other)."""
    return f"{value:g}"


def plain_ticks() -> Any:
    """A tick formatter writing ``plain_number``."""
    from matplotlib import ticker

    return ticker.FuncFormatter(plain_number)


def latency_axis(ax: Any, values: Sequence[float], *, log_above: float, pad: float = 1.0) -> bool:
    """Put latencies on the x axis: linear from 0 where the largest is at most ``log_above`` times the
    smallest, else logarithmic (one slow file must not squash the others into a line), with plain-number
    labels at 1-2-5 steps over a short range and at decades over a long one, so no two labels meet.
    ``pad`` widens the limits by that factor on a log axis (room for the labels beside the points).
    Returns whether the axis is logarithmic."""
    from matplotlib import ticker

    positive = [v for v in values if v > 0]
    if not positive:
        return False
    low, high = min(positive), max(positive)
    if high / low <= log_above:
        ax.set_xlim(0, high * (1 + 0.12 * pad))
        ax.xaxis.set_major_locator(ticker.MaxNLocator(6))
        ax.xaxis.set_major_formatter(plain_ticks())
        return False
    ax.set_xscale("log")
    low, high = low / (1.15 * pad), high * 1.15 * pad
    ax.set_xlim(low, high)
    decades = math.log10(high / low)
    subs = (1.0, 2.0, 5.0) if decades <= 2.6 else (1.0,)
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(plain_ticks())
    ax.xaxis.set_minor_locator(ticker.LogLocator(base=10, subs=tuple(float(s) for s in range(2, 10))))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    return True


@dataclass(frozen=True)
class ValueWindow:
    """The y range a panel shows, and where the points outside it are drawn instead."""

    low: float
    high: float
    below: float | None = None  # y of the band under the axis for points below ``low`` (None: no band)
    above: float | None = None  # y of the band over the axis for points above ``high``

    @property
    def limits(self) -> tuple[float, float]:
        band = (self.high - self.low) * 0.16
        return (
            self.low - band if self.below is not None else self.low,
            self.high + band if self.above is not None else self.high,
        )

    def shown_at(self, value: float) -> float:
        """Where a point of ``value`` is drawn: itself inside the window, the band's middle outside it."""
        if value < self.low and self.below is not None:
            return self.below
        if value > self.high and self.above is not None:
            return self.above
        return value

    def outside(self, value: float) -> bool:
        return value < self.low or value > self.high


def value_window(values: Sequence[float], outliers: Sequence[float], *, min_span: float) -> ValueWindow:
    """The y window around ``values`` (the files that hold, and the reference line), at least ``min_span``
    tall. ``outliers`` (files that failed) near it widen it to take them in, as long as that leaves the
    window at most three times as tall; those further off are drawn in a band under (or over) the axis
    with their value written beside them, so one broken file does not flatten the rest into a line."""
    kept = list(values) or list(outliers)
    low, high = min(kept), max(kept)
    if high - low < min_span:
        middle = (low + high) / 2
        low, high = middle - min_span / 2, middle + min_span / 2
    limit = 3 * (high - low)
    for value in sorted(outliers, key=lambda v: min(abs(v - low), abs(v - high))):
        if max(high, value) - min(low, value) <= limit:
            low, high = min(low, value), max(high, value)
    span = high - low
    low, high = low - 0.12 * span, high + 0.2 * span  # the top margin leaves room for labels
    band = (high - low) * 0.16
    below = low - band / 2 if any(v < low for v in outliers) else None
    above = high + band / 2 if any(v > high for v in outliers) else None
    return ValueWindow(low, high, below, above)


# -- labels beside markers, never on top of each other ---------------------------------------------------
_SIDES = (  # (dx, dy) in points, horizontal and vertical alignment: right first, then left, above, below
    (7, 0, "left", "center"),
    (-7, 0, "right", "center"),
    (0, 7, "center", "bottom"),
    (0, -7, "center", "top"),
    (7, 7, "left", "bottom"),
    (-7, 7, "right", "bottom"),
    (7, -7, "left", "top"),
    (-7, -7, "right", "top"),
)


@dataclass(frozen=True)
class Marker:
    key: str  # the file's kind, format:precision
    x: float
    y: float  # where it is drawn (an outlier: in its band)
    color: str
    marker: str
    failing: bool = False
    note: str = ""  # written after the key in its label (an outlier's value)


def _overlap(a: Any, b: Any) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0


def _outside(box: Any, frame: Any) -> float:
    inside = _overlap(box, frame)
    return box.width * box.height - inside


def side_by_side(ax: Any, points: list[Marker], distance_px: float) -> list[list[Marker]]:
    """Points whose markers would cover each other on screen, grouped: two points closer than
    ``distance_px`` (display pixels, either way) are in one group, and so, link by link, are their
    neighbours'; and so are two whose markers would meet once each group's are set side by side
    (``distance_px`` apart, centred on the group). Each group is ordered by x, its markers' order."""
    where = [ax.transData.transform((p.x, p.y)) for p in points]
    parent = list(range(len(points)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    def close(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return abs(a[0] - b[0]) < distance_px and abs(a[1] - b[1]) < distance_px

    def groups() -> list[list[int]]:
        found: dict[int, list[int]] = {}
        for i in range(len(points)):
            found.setdefault(root(i), []).append(i)
        ordered = [sorted(g, key=lambda i: (where[i][0], where[i][1])) for g in found.values()]
        return sorted(ordered, key=lambda g: where[g[0]][0])

    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            if close(where[i], where[j]):
                parent[root(j)] = root(i)
    while True:  # set side by side, a group can reach its neighbour: join them and set them again
        drawn = {}
        for members in groups():
            for index, i in enumerate(members):
                drawn[i] = (where[i][0] + (index - (len(members) - 1) / 2) * distance_px, where[i][1])
        joined = False
        for i in range(len(points)):
            for j in range(i + 1, len(points)):
                if root(i) != root(j) and close(drawn[i], drawn[j]):
                    parent[root(j)] = root(i)
                    joined = True
        if not joined:
            return [[points[i] for i in members] for members in groups()]


def draw_markers(fig: Any, ax: Any, points: list[Marker], marker_size: float = 46) -> None:
    """Markers, side by side where they would hide each other, and one label per group of them, on the
    first side of the group where it covers no other label or marker and stays inside the panel."""
    from matplotlib.transforms import Bbox, offset_copy

    fig.canvas.draw()  # the layout is final: display positions are the ones saved
    renderer = fig.canvas.get_renderer()
    step = math.sqrt(marker_size) + 2  # points: one marker's width and a gap
    scale = fig.dpi / 72.0
    taken = []
    groups = side_by_side(ax, points, distance_px=step * scale)
    for members in groups:
        for index, point in enumerate(members):
            dx = (index - (len(members) - 1) / 2) * step
            ax.scatter(
                [point.x],
                [point.y],
                s=marker_size,
                color=point.color,
                marker="v" if point.note else point.marker,
                edgecolors=FAIL_COLOR if point.failing else "white",
                linewidths=1.6 if point.failing else 0.8,
                zorder=4,
                clip_on=False,
                transform=offset_copy(ax.transData, fig=fig, x=dx, y=0, units="points"),
            )
            px, py = ax.transData.transform((point.x, point.y))
            half = step * scale / 2
            taken.append(Bbox.from_extents(px + dx * scale - half, py - half, px + dx * scale + half, py + half))
    frame = ax.get_window_extent(renderer)
    for members in groups:
        text = "\n".join(f"{p.key}{' ' + p.note if p.note else ''}{' FAIL' if p.failing else ''}" for p in members)
        first, last = members[0], members[-1]
        # in points from the first member: where its marker and the last member's marker are drawn
        spread = (ax.transData.transform((last.x, last.y))[0] - ax.transData.transform((first.x, first.y))[0]) / scale
        first_at = -(len(members) - 1) / 2 * step
        last_at = spread + (len(members) - 1) / 2 * step
        best, best_cost = None, math.inf
        for dx, dy, ha, va in _SIDES:
            offset = last_at + dx if dx > 0 else first_at + dx if dx < 0 else (first_at + last_at) / 2
            label = ax.annotate(
                text,
                (first.x, first.y),
                xytext=(offset, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=LABEL_SIZE,
                color=FAIL_COLOR if any(p.failing for p in members) else "#222222",
                zorder=5,
                annotation_clip=False,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
            )
            box = label.get_window_extent(renderer)
            cost = sum(_overlap(box, other) for other in taken) + 2 * _outside(box, frame)
            if cost < best_cost:
                if best is not None:
                    best[0].remove()
                best, best_cost = (label, box), cost
            else:
                label.remove()
            if cost == 0:
                break
        if best is not None:
            taken.append(best[1])
