"""Metadata that rides with the weights and with every artifact, so later stages never guess:
which variant, how many classes, their labels, and how to preprocess an image for it."""

from __future__ import annotations

import numbers
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


def check_input_size(size: int) -> int:
    """ShuffleNet downsamples by 32; other sizes change the graph's pooling and break exports."""
    if not isinstance(size, int) or size < 32 or size % 32:
        raise ValueError(f"input size {size} is not a positive multiple of 32: use e.g. 96, 128, 160, 224, 320")
    if size > MAX_INPUT_SIZE:
        raise ValueError(f"input size {size} is above {MAX_INPUT_SIZE}: use e.g. 96, 128, 160, 224, 320")
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
    """How an RGB image becomes the model's input: resize the shorter side to ``resize_size``,
    center-crop ``input_size``, scale to [0, 1], subtract ``mean``, divide by ``std``."""

    input_size: int = DEFAULT_INPUT_SIZE
    resize_size: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        check_input_size(self.input_size)
        if self.resize_size < self.input_size:
            raise ValueError(f"resize size {self.resize_size} is smaller than the crop {self.input_size}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ValueError("mean and std need three values each, std positive")

    @classmethod
    def for_size(cls, input_size: int, **kwargs: Any) -> Preprocessing:
        """The ImageNet convention: crop 224 from 256, i.e. resize to input_size / 0.875."""
        check_input_size(input_size)
        return cls(input_size=input_size, resize_size=round(input_size / 0.875), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "resize_size": self.resize_size,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        for key in ("input_size", "resize_size"):
            if type(data[key]) is not int:
                raise TypeError(f"preprocessing.{key} must be an integer, not {data[key]!r}")
        for key in ("mean", "std"):
            if not isinstance(data[key], (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in data[key]
            ):
                raise TypeError(f"preprocessing.{key} must be a list of numbers, not {data[key]!r}")
        return cls(
            input_size=int(data["input_size"]),
            resize_size=int(data["resize_size"]),
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
    def input_size(self) -> int:
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
