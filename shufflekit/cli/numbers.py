"""Numeric option types: every number a command takes is parsed here, finite and within a stated range,
or refused in one line that names the option and the range (a ``UsageError``, exit 2) before any work.

click's own ``IntRange``/``FloatRange`` accept ``nan`` and ``inf`` and answer with a usage block; these
do neither.
"""

from __future__ import annotations

import math
from typing import Any

import click

from ..errors import UsageError
from ..metadata import MAX_NUM_CLASSES, InputSize, check_input_size
from .renamed import option_name


def _show(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:g}"


class Number(click.ParamType):
    """An int or a finite float in ``[low, high]`` (``low`` itself excluded when ``low_open``). ``why``
    says where the upper bound comes from, shown when a value is above it."""

    def __init__(
        self, kind: type[int] | type[float], low: float, high: float, *, low_open: bool = False, why: str = ""
    ) -> None:
        self.kind = kind
        self.low = low
        self.high = high
        self.low_open = low_open
        self.why = why
        self.name = "integer" if kind is int else "number"

    def range_text(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        low = f"above {_show(self.low)} and up" if self.low_open else f"from {_show(self.low)}"
        return f"{what} {low} to {_show(self.high)}"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "INTEGER" if self.kind is int else "NUMBER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        option = option_name(param, ctx)
        text = str(value).strip()
        number: float
        try:
            if isinstance(value, bool):
                raise ValueError(text)
            if self.kind is int:
                number = value if isinstance(value, int) else int(text, 10)
            else:
                number = float(value) if isinstance(value, (int, float)) else float(text)
        except (TypeError, ValueError):
            raise UsageError(f"{option} must be {self.range_text()}, not {text!r}") from None
        too_low = number <= self.low if self.low_open else number < self.low
        if not math.isfinite(number) or too_low or number > self.high:
            why = f" ({self.why})" if self.why and number > self.high else ""
            raise UsageError(f"{option} must be {self.range_text()}{why}, not {text}")
        return self.kind(number)

    def __repr__(self) -> str:
        return f"Number({self.kind.__name__}, {self.low}, {self.high})"


class Size(click.ParamType):
    """An input size: ``WIDTHxHEIGHT`` as a camera resolution is written (``640x480`` is the NCHW tensor
    ``[1, 3, 480, 640]``) or one number for a square, each side within what the networks take."""

    name = "size"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "WxH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> InputSize:
        option = option_name(param, ctx, "the size")
        try:
            return check_input_size(value if isinstance(value, (InputSize, int)) else InputSize.parse(str(value)))
        except ValueError as exc:
            raise UsageError(f"{option}: {exc}") from None

    def __repr__(self) -> str:
        return "Size()"


def Int(low: int, high: int, *, why: str = "") -> Number:
    return Number(int, low, high, why=why)


def Float(low: float, high: float, *, low_open: bool = False, why: str = "") -> Number:
    return Number(float, low, high, low_open=low_open, why=why)


# The ranges the commands share: one definition, the same words everywhere.
NUM_CLASSES = Int(1, MAX_NUM_CLASSES, why="the classifier of more classes would not fit a mobile release")
INPUT_SIZE = Size()
INPUT_SIZE_HELP = (
    "Input WIDTHxHEIGHT as a camera resolution is written (640x480 = NCHW tensor [1, 3, 480, 640]), "
    "or one side for a square; each side 32 to 2048 px"
)
ITERS = Int(1, 1_000_000)
WARMUP = Int(0, 100_000)
THREADS = Int(1, 1024)
ROUNDS = Int(1, 100)  # interleaved rounds of measurement (guidelines, sweep)
SAMPLES = Int(1, 1_000_000)
CALIB_SAMPLES = Int(1, 100_000)
LIMIT = Int(1, 100_000_000)
BATCH = Int(1, 4096)
MAX_DROP = Float(0, 100)  # top-1 percentage points
SECONDS = Float(0, 86_400, low_open=True, why="one day")
