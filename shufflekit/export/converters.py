"""How a file of each format is made from the exported float32 ONNX file: one converter per format,
registered under the format's name (``shufflekit.formats``). ONNX itself is the hub every other format is
converted from, so it has no converter; export makes it from PyTorch.

A converter writes ``request.out`` (a path in the export's staging folder) and says what the file takes
and gives; export turns that into the Artifact record, with lineage, tool versions and options.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import UsageError
from ..formats import get_format
from .conversion import ConversionRequest, Converted

Converter = Callable[[ConversionRequest], Converted]
_CONVERTERS: dict[str, Converter] = {}


def register_converter(fmt: str, converter: Converter) -> Converter:
    get_format(fmt)  # a converter for a format nobody registered is a bug
    _load_builtin()
    if fmt in _CONVERTERS:
        raise ValueError(f"a converter for {fmt!r} is registered twice")
    _CONVERTERS[fmt] = converter
    return converter


@contextmanager
def registered_converter(fmt: str, converter: Converter) -> Iterator[Converter]:
    """A converter registered for the duration of a block (tests, a format being tried out)."""
    register_converter(fmt, converter)
    try:
        yield converter
    finally:
        _CONVERTERS.pop(fmt, None)


def convertible_formats() -> tuple[str, ...]:
    """The formats export can make: ONNX and every format with a converter."""
    _load_builtin()
    return ("onnx", *(f for f in _CONVERTERS if f != "onnx"))


def get_converter(fmt: str) -> Converter:
    _load_builtin()
    if fmt not in _CONVERTERS:
        raise UsageError(f"no converter makes {fmt} files", hint=f"export makes: {', '.join(convertible_formats())}")
    return _CONVERTERS[fmt]


def _tflite(request: ConversionRequest) -> Converted:
    from .tflite import convert_fp32  # onnx2tf and TensorFlow load only when a TFLite file is made

    return convert_fp32(request)


_BUILTIN: dict[str, Converter] = {"tflite": _tflite}


def _load_builtin() -> None:
    for fmt, converter in _BUILTIN.items():
        _CONVERTERS.setdefault(fmt, converter)
