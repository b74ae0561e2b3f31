"""What a converter is asked (ConversionRequest) and what it answers (Converted)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import TensorSpec

ProgressFn = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class ConversionRequest:
    onnx: Path  # the float32 ONNX file to convert (never modified)
    onnx_inputs: tuple[TensorSpec, ...]  # what that file takes and gives
    onnx_outputs: tuple[TensorSpec, ...]
    out: Path  # where to write the converted file
    layout: str  # image-input layout asked for, one of the format's layouts
    batch: int | str  # of the ONNX file: 1, N or "dynamic"
    progress: ProgressFn
    optimize: bool = True  # apply the format's exact graph rewrites (export.rewrites); False: the plain graph


@dataclass(frozen=True)
class Converted:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    tools: tuple[str, ...] = ()  # distributions whose versions the artifact records
    options: Mapping[str, Any] = field(default_factory=dict)  # how it was converted, recorded in the artifact
