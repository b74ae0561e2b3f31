"""The quantization-recipe options `quantize` and `release` share: one definition, the same names and help."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

_OPTIONS = [
    click.option(
        "--target",
        default="any",
        show_default=True,
        metavar="any|x86-avx2|x86-vnni|arm64",
        help="CPUs the ONNX int8/dynamic files must hold on: any (x86 with and without VNNI, ARM64) or one "
        "kernel family, which may unlock a faster recipe valid only there (recorded as such).",
    ),
    click.option(
        "--per-channel/--per-tensor",
        default=None,
        help="Weight scales per output channel or one per tensor [default: the ONNX recipe's; TFLite per-channel].",
    ),
    click.option(
        "--reduce-range/--full-range",
        default=None,
        help="7-bit or 8-bit ONNX weights [default: the recipe's; 7-bit holds on x86 without VNNI].",
    ),
    click.option(
        "--calibration",
        type=click.Choice(["minmax", "entropy", "percentile"], case_sensitive=False),
        default="minmax",
        show_default=True,
        help="How ONNX Runtime picks activation ranges (ONNX int8; TFLite's converter uses min/max).",
    ),
    click.option(
        "--activation-type",
        type=click.Choice(["uint8", "int8"]),
        help="ONNX int8 activations [default: the recipe's, uint8].",
    ),
    click.option("--weight-type", type=click.Choice(["uint8", "int8"]), help="ONNX weights [default: the recipe's]."),
    click.option(
        "--io-dtype",
        type=click.Choice(["float32", "int8", "uint8"], case_sensitive=False),
        default="float32",
        show_default=True,
        help="Input/output type of the TFLite int8 file (int8/uint8: the app quantizes the input). "
        "ONNX int8 keeps float32 input/output.",
    ),
]


def recipe_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the recipe options to a click command (listed in --help in the order above)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command
