"""Metadata that rides with the weights and with every artifact, so later stages never guess:
which variant, how many classes, their labels, and how to preprocess an image for it."""

from __future__ import annotations

import numbers
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, cast

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_INPUT_SIZE = 224
# Upper bounds that keep a typo from becoming an out-of-memory crash: 2048 px is 84x the pixels of 224, and
# 100,000 classes already make a 400 MB classifier on a 1024-wide ShuffleNet.
MAX_INPUT_SIZE = 2048
MAX_NUM_CLASSES = 100_000


MIN_INPUT_SIDE = 32


@dataclass(frozen=True)
class InputSize:
    """The model input's height and width in pixels: the NCHW tensor is ``[1, 3, height, width]``.

    Written WIDTHxHEIGHT, as camera resolutions are: ``640x480`` is a 4:3 landscape frame, the tensor
    ``[1, 3, 480, 640]``; one number is a square. Every side from MIN_INPUT_SIDE to MAX_INPUT_SIZE is a size
    the networks take (ShuffleNet pools globally, so a side need not be a multiple of 32): see check_input_size.
    """

    height: int
    width: int

    def __post_init__(self) -> None:
        for name, side in (("height", self.height), ("width", self.width)):
            if isinstance(side, bool) or not isinstance(side, numbers.Integral):
                raise ValueError(f"input {name} must be an integer, not {side!r}")
            object.__setattr__(self, name, int(side))

    @classmethod
    def square(cls, side: int) -> InputSize:
        return cls(height=side, width=side)

    @classmethod
    def of(cls, value: InputSize | int) -> InputSize:
        """``value`` as an InputSize: an int is a square (what every size was before non-square inputs)."""
        if isinstance(value, InputSize):
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"input size must be WIDTHxHEIGHT or one integer, not {value!r}")
        return cls.square(int(value))

    @classmethod
    def parse(cls, text: str) -> InputSize:
        """``"224"`` (a square) or ``"640x480"`` (WIDTHxHEIGHT; ``X`` and ``*`` work too). Sizes are not
        checked here: check_input_size says which the networks take."""
        parts = re.fullmatch(r"\s*(\d{1,6})\s*(?:[xX*\u00d7]\s*(\d{1,6})\s*)?", str(text))
        if parts is None:
            raise ValueError(f"input size must be WIDTHxHEIGHT (e.g. 640x480) or one side (e.g. 224), not {text!r}")
        width = int(parts.group(1))
        return cls(height=int(parts.group(2)) if parts.group(2) else width, width=width)

    @property
    def is_square(self) -> bool:
        return self.height == self.width

    def nchw(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, 3, self.height, self.width)

    def nhwc(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.height, self.width, 3)

    def describe(self) -> str:
        """``640x480 (width x height; NCHW tensor [1, 3, 480, 640])``: no doubt which number is which."""
        return f"{self} (width x height; NCHW tensor {list(self.nchw())})"

    def to_json(self) -> dict[str, int]:
        return {"height": self.height, "width": self.width}

    @classmethod
    def from_json(cls, value: Any, *, where: str = "input_size") -> InputSize:
        """``{"height": H, "width": W}``, or the one integer of a manifest or checkpoint written before
        non-square inputs (a square). Strict about types, like every manifest field."""
        if type(value) is int:
            return cls.square(value)
        if (
            isinstance(value, Mapping)
            and set(value) == {"height", "width"}
            and all(type(value[k]) is int for k in ("height", "width"))
        ):
            return cls(height=value["height"], width=value["width"])
        raise TypeError(f'{where} must be {{"height": H, "width": W}} or one integer, not {value!r}')

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


DEFAULT_SIZE = InputSize.square(DEFAULT_INPUT_SIZE)
DEFAULT_RESIZE = InputSize.square(256)


def _valid_side(side: int) -> int:
    return min(max(side, MIN_INPUT_SIDE), MAX_INPUT_SIZE)


def check_input_size(size: InputSize | int) -> InputSize:
    """A size the networks take: each side from MIN_INPUT_SIDE to MAX_INPUT_SIZE px, multiple of 32 or not
    (global pooling: no fixed feature-map size). Tried: every such size exports to ONNX, and v2 to TFLite,
    passing parity; onnx2tf fails on v1 at some sizes, loudly (README, Input sizes). Below 32 px the last
    stage sees one position per image. A ValueError names the nearest size taken."""
    try:
        size = InputSize.of(size)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    nearest = InputSize(height=_valid_side(size.height), width=_valid_side(size.width))
    if nearest != size:
        low = min(size.height, size.width) < MIN_INPUT_SIDE
        why = (
            f"below {MIN_INPUT_SIDE} px"
            if low
            else f"above {MAX_INPUT_SIZE} px (a larger input needs more memory than a mobile model is meant for)"
        )
        raise ValueError(f"input size {size} has a side {why}: the nearest size the networks take is {nearest}")
    return size


def check_num_classes(count: int) -> int:
    """At least one class, at most MAX_NUM_CLASSES (checked before a model of that size is built)."""
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or not 1 <= count <= MAX_NUM_CLASSES:
        raise ValueError(f"num_classes must be an integer from 1 to {MAX_NUM_CLASSES:,}, got {count!r}")
    return count


_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def bad_label(label: str) -> str | None:
    """Why ``label`` cannot be a class name (labels.txt holds one per line), or None when it can."""
    if not label.strip():
        return "is empty"
    for char in label:
        # Cc: newline, tab, ESC, NUL...; Zl/Zp: line and paragraph separators; bidi overrides reorder the text
        # shown around them. Other format characters (the zero-width joiners of Persian or emoji) are text.
        if unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            return f"holds the control character {char!r}"
    if len(label) > 256:
        return f"is {len(label)} characters long (at most 256)"
    return None


def check_labels(labels: Sequence[str], *, where: str) -> None:
    """A ValueError naming the first label of ``where`` that would corrupt labels.txt or a card."""
    for index, label in enumerate(labels):
        reason = bad_label(label)
        if reason is not None:
            raise ValueError(f"{where} label {index} {label!r} {reason}")


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image becomes the model's input: resize it, keeping its aspect ratio, to the smallest size
    that covers ``resize_size`` (for a square: the shorter side to that side, as torchvision's Resize), center-crop
    ``input_size``, scale to [0, 1], subtract ``mean``, divide by ``std``. An int for a size is a square."""

    input_size: InputSize = DEFAULT_SIZE
    resize_size: InputSize = DEFAULT_RESIZE
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", check_input_size(self.input_size))
        object.__setattr__(self, "resize_size", InputSize.of(self.resize_size))
        if self.resize_size.height < self.input_size.height or self.resize_size.width < self.input_size.width:
            raise ValueError(f"resize size {self.resize_size} is smaller than the crop {self.input_size}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ValueError("mean and std need three values each, std positive")

    @classmethod
    def for_size(cls, input_size: InputSize | int, **kwargs: Any) -> Preprocessing:
        """The ImageNet convention: crop 224 from 256, i.e. resize to input_size / 0.875 (each side)."""
        size = check_input_size(input_size)
        resize = InputSize(height=round(size.height / 0.875), width=round(size.width / 0.875))
        return cls(input_size=size, resize_size=resize, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size.to_json(),
            "resize_size": self.resize_size.to_json(),
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        """Reads ``{"height": H, "width": W}`` sizes, and the one integer (a square) of older files."""
        sizes = {
            key: InputSize.from_json(data[key], where=f"preprocessing.{key}") for key in ("input_size", "resize_size")
        }
        for key in ("mean", "std"):
            if not isinstance(data[key], (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in data[key]
            ):
                raise TypeError(f"preprocessing.{key} must be a list of numbers, not {data[key]!r}")
        return cls(
            input_size=sizes["input_size"],
            resize_size=sizes["resize_size"],
            # the length is checked in __post_init__ (three values each)
            mean=cast("tuple[float, float, float]", tuple(float(v) for v in data["mean"])),
            std=cast("tuple[float, float, float]", tuple(float(v) for v in data["std"])),
        )


@dataclass(frozen=True)
class ModelMeta:
    """Everything about a trained model except its weights."""

    model: str
    num_classes: int
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    labels: tuple[str, ...] | None = None
    training: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_num_classes(self.num_classes)
        if self.labels is not None and len(self.labels) != self.num_classes:
            raise ValueError(f"{len(self.labels)} labels for {self.num_classes} classes")
        if self.labels is not None:
            check_labels(self.labels, where="the model's")

    @property
    def input_size(self) -> InputSize:
        return self.preprocessing.input_size

    def label_names(self) -> tuple[str, ...]:
        return self.labels if self.labels is not None else tuple(str(i) for i in range(self.num_classes))

    def with_(self, **changes: Any) -> ModelMeta:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["preprocessing"] = self.preprocessing.to_dict()
        data["labels"] = list(self.labels) if self.labels is not None else None
        data["training"] = dict(self.training)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMeta:
        """Strict about types (a manifest edited by hand must not be coerced into something it is not)."""
        if not isinstance(data["model"], str) or type(data["num_classes"]) is not int:
            raise TypeError(
                f"model must be a name and num_classes an integer, not {data['model']!r}, {data['num_classes']!r}"
            )
        labels = data.get("labels")
        if labels is not None and (
            not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels)
        ):
            raise TypeError("labels must be a list of strings")
        if not isinstance(data.get("training") or {}, dict):
            raise TypeError("training must be an object")
        return cls(
            model=str(data["model"]),
            num_classes=int(data["num_classes"]),
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            labels=tuple(str(x) for x in labels) if labels is not None else None,
            training=dict(data.get("training") or {}),
        )
