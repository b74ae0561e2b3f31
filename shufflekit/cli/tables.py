"""Tables that stay readable at any width (80 columns included): the identifying column (an artifact's
file name) is never cut, other columns wrap at spaces, and when even that does not fit, the table first
shortens the file names to what follows their shared model prefix, then leaves out secondary columns in
the order the command gives, saying so in the caption. No cell is ever cut to an ellipsis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDER = "--json or a wider terminal shows them"


@dataclass(frozen=True)
class Shorten:
    """Where the table is too wide, the cells of ``column`` (and the column headers) that start with
    ``prefix`` (the model's file prefix, ``shufflenet_v2_x0_5_``) are shown without it; the title names
    it. ``column`` None: only headers."""

    column: str | None
    prefix: str

    def cut(self, text: str) -> str:
        return text[len(self.prefix) :] if text.startswith(self.prefix) and text != self.prefix else text


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    right_align: Sequence[str] = (),
    caption: str | None = None,
    keep_whole: Sequence[str] = (),
    drop: Sequence[str] = (),
    shorten: Shorten | None = None,
    width: int | None = None,
) -> None:
    """A rich table on stdout that fits the terminal's width (``width``: the console's). ``keep_whole``
    columns are never wrapped or cut; ``drop`` lists columns that may be left out, the first first, when
    the rest would not fit otherwise; ``shorten`` may drop a shared prefix from file names. Columns are
    named by their full header in every argument."""
    from .output import console

    out = console()
    width = width or out.width
    body = [["" if cell is None else str(cell) for cell in row] for row in rows]
    spec = _Spec(list(columns), body, set(right_align), set(keep_whole))
    plan, shortened, left_out = _fit(spec, width, drop, shorten)
    if shortened and shorten is not None:
        names = f"{shorten.column}s {shorten.prefix}*" if shorten.column else f"{shorten.prefix}*"
        title = f"{title} ({names})" if title else names
    if left_out:
        note = f"left out at {width} columns: {', '.join(left_out)} ({WIDER})"
        caption = f"{caption}\n{note}" if caption else note
    # Where even the narrowest layout is wider (a file name longer than the terminal), the table is drawn
    # wider than the terminal rather than cut: the terminal wraps its lines, the name stays whole.
    width = max(width, plan.minimum())
    out.width = width
    out.print(plan.table(title, caption, width), crop=False)


@dataclass(frozen=True)
class _Spec:
    columns: list[str]  # the full names
    rows: list[list[str]]
    right: set[str]
    whole: set[str]
    headers: list[str] | None = None  # as shown (shortened), else the full names

    def only(self, keep: list[str]) -> _Spec:
        index = [self.columns.index(c) for c in keep]
        headers = self.headers or self.columns
        return _Spec(
            keep,
            [[row[i] for i in index if i < len(row)] for row in self.rows],
            self.right,
            self.whole,
            [headers[i] for i in index],
        )

    def shortened(self, shorten: Shorten) -> _Spec | None:
        headers = [shorten.cut(c) for c in self.columns]
        rows = self.rows
        if shorten.column in self.columns:
            i = self.columns.index(shorten.column)
            rows = [[*row[:i], shorten.cut(row[i]), *row[i + 1 :]] if i < len(row) else row for row in rows]
        if rows == self.rows and headers == self.columns:
            return None  # nothing to shorten
        return _Spec(self.columns, rows, self.right, self.whole, headers)

    def bounds(self) -> list[tuple[int, int]]:
        """Per column, its narrowest width without breaking a word and its natural width (header
        included); a ``keep_whole`` column is its natural width."""
        found = []
        for index, (column, header) in enumerate(zip(self.columns, self.headers or self.columns)):
            texts = [header, *(row[index] for row in self.rows if index < len(row))]
            widest = max(_cells(text) for text in texts)
            word = max((_cells(w) for text in texts for w in text.split()), default=0)
            found.append((widest, widest) if column in self.whole else (max(word, 1), max(widest, 1)))
        return found

    def minimum(self) -> int:
        """The narrowest the table renders without breaking a word: columns, padding and rules."""
        return sum(low for low, _ in self.bounds()) + _OVERHEAD_PER_COLUMN * len(self.columns) + 1

    def widths(self, width: int) -> list[int] | None:
        """Column widths that fit ``width`` without breaking a word (None: the natural ones fit). rich's
        own shrinking takes from the widest columns whatever their words, so the split is ours: every
        column gets its narrowest, the rest of the room goes to the columns in proportion to what they
        lack."""
        bounds = self.bounds()
        room = width - _OVERHEAD_PER_COLUMN * len(bounds) - 1
        if sum(high for _, high in bounds) <= room:
            return None
        widths = [low for low, _ in bounds]
        spare = room - sum(widths)
        lacking = [high - low for low, high in bounds]
        total = sum(lacking)
        if spare > 0 and total:
            widths = [w + spare * lack // total for w, lack in zip(widths, lacking)]
            left = room - sum(widths)
            for i in sorted(range(len(widths)), key=lambda i: lacking[i] - (widths[i] - bounds[i][0]), reverse=True):
                if left <= 0:
                    break
                if widths[i] < bounds[i][1]:
                    widths[i] += 1
                    left -= 1
        return widths

    def table(self, title: str | None = None, caption: str | None = None, width: int | None = None) -> Any:
        from rich.table import Table
        from rich.text import Text

        widths = self.widths(width) if width is not None else None
        table = Table(title=title, caption=caption, header_style="bold")
        for index, (column, header) in enumerate(zip(self.columns, self.headers or self.columns)):
            table.add_column(
                header,
                justify="right" if column in self.right else "left",
                width=None if widths is None else widths[index],
                no_wrap=column in self.whole,
                overflow="fold",  # never "…": a word too long for its column breaks instead
            )
        for row in self.rows:
            table.add_row(*(Text(cell) for cell in row))
        return table


_OVERHEAD_PER_COLUMN = 3  # a rule and a space either side (rich's default box and padding)


def _fit(spec: _Spec, width: int, drop: Sequence[str], shorten: Shorten | None) -> tuple[_Spec, bool, list[str]]:
    """The table to print, whether its names were shortened, and the columns left out."""
    if spec.minimum() <= width:
        return spec, False, []
    short = spec.shortened(shorten) if shorten is not None else None
    if short is not None and short.minimum() <= width:
        return short, True, []
    current = short or spec
    visible = list(spec.columns)
    left_out: list[str] = []
    for name in drop:
        if name not in visible:
            continue
        visible.remove(name)
        left_out.append(name)
        if current.only(visible).minimum() <= width:
            break
    return current.only(visible), short is not None, left_out


def _cells(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines()), default=0)
