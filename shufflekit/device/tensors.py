"""Tensors as a model takes them: TensorInfo, NCHW <-> NHWC, int8/uint8 (de)quantization, and how a batch
of float NCHW images is fed (one call per batch, one per image for a batch-1 model, whole padded batches
for a model fixed at batch N). The one place batching and fixed-batch padding are decided."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import RunnerError, shape_hint, shape_text

Feeds = Dict[str, np.ndarray]


class TensorInfo:
    """One model input or output as the runtime sees it. ``shape`` entries are ints, or None for a
    dynamic dimension; ``quantization`` is (scale, zero_point) for int8/uint8 tensors, else None."""

    def __init__(
        self,
        name: str,
        shape: Sequence[Optional[int]],
        dtype: Any,
        quantization: Optional[Tuple[float, int]] = None,
        index: Optional[int] = None,
        symbolic: Optional[Sequence[Any]] = None,
    ) -> None:
        self.name = name
        self.shape = tuple(shape)
        self.dtype = str(dtype)
        self.quantization = quantization
        self.index = index
        self.symbolic = symbolic  # names of dynamic dimensions where the runtime gives them

    @property
    def batch(self) -> Optional[int]:
        """The batch the model is fixed at, or None when the batch dimension is dynamic."""
        return self.shape[0] if self.shape else None

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "name": self.name,
            "shape": [d if d is not None else "dynamic" for d in self.shape],
            "dtype": self.dtype,
        }
        if self.quantization is not None:
            data["quantization"] = {"scale": self.quantization[0], "zero_point": self.quantization[1]}
        return data

    def __repr__(self) -> str:
        return "TensorInfo(%r, %r, %s, q=%r)" % (self.name, self.shape, self.dtype, self.quantization)


def convert_layout(x: np.ndarray, src: Optional[str], dst: Optional[str]) -> np.ndarray:
    """Move the channel axis of a 4-D batch between NCHW and NHWC (a copy, C-contiguous)."""
    src, dst = (src or dst or "NCHW").upper(), (dst or src or "NCHW").upper()
    for layout in (src, dst):
        if layout not in ("NCHW", "NHWC"):
            raise RunnerError("bad_input", "unknown layout %r" % layout, hint="use NCHW or NHWC")
    if src == dst:
        return np.ascontiguousarray(x)
    if x.ndim != 4:
        raise RunnerError(
            "bad_input",
            "layout conversion needs a 4-D batch, got shape %s" % (x.shape,),
            hint="pass images as [N, C, H, W]",
        )
    axes = (0, 2, 3, 1) if src == "NCHW" else (0, 3, 1, 2)
    return np.ascontiguousarray(np.transpose(x, axes))


def quantize(x: Any, scale: float, zero_point: int, dtype: Any) -> np.ndarray:
    """Real values -> int8/uint8 with the tensor's own scale and zero point (round half to even, clipped)."""
    info = np.iinfo(np.dtype(dtype))
    q = np.round(np.asarray(x, dtype=np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: Any, scale: float, zero_point: int) -> np.ndarray:
    return (np.asarray(q).astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def to_model_input(images: Any, info: TensorInfo, layout: Optional[str] = None) -> np.ndarray:
    """Float NCHW images -> what the model takes: its layout, its dtype, quantized when it is int8/uint8."""
    x = convert_layout(np.asarray(images, dtype=np.float32), "NCHW", layout) if layout else np.asarray(images)
    dtype = np.dtype(info.dtype)
    if dtype.kind in "iu" and info.quantization is not None:
        return quantize(x, info.quantization[0], info.quantization[1], dtype)
    return np.ascontiguousarray(x.astype(dtype, copy=False))


def from_model_output(y: Any, info: TensorInfo) -> np.ndarray:
    """A raw output -> float32, dequantized with the tensor's scale/zero point when it is quantized."""
    y = np.asarray(y)
    if y.dtype.kind in "iu" and info.quantization is not None:
        return dequantize(y, info.quantization[0], info.quantization[1])
    return y.astype(np.float32, copy=False)


def image_input(session: Any) -> TensorInfo:
    """The one image input; shufflekit models have exactly one."""
    if len(session.inputs) != 1:
        raise RunnerError(
            "bad_input",
            "the model has %d inputs; shufflekit runs single-input image models" % len(session.inputs),
            hint="export the model with shufflekit",
        )
    return session.inputs[0]


def plan_batch(info: TensorInfo, batch: int) -> Tuple[str, int]:
    """How a batch of ``batch`` images is fed: ('direct', batch) when the model's batch is dynamic or equal,
    ('loop', 1) when the model is fixed at batch 1. Any other fixed batch cannot take it."""
    if batch < 1:
        raise RunnerError("bad_input", "batch must be at least 1, got %d" % batch, hint="pass --batch 1 or more")
    fixed = info.batch
    if fixed is None or fixed == batch:
        return "direct", batch
    if fixed == 1:
        return "loop", 1
    raise RunnerError(
        "bad_input",
        "the model is fixed at batch %d and cannot take a batch of %d" % (fixed, batch),
        hint="pass --batch %d (or 1, or export with a dynamic batch)" % fixed,
    )


def example_images(info: TensorInfo, batch: int, layout: Optional[str] = None, seed: int = 0) -> np.ndarray:
    """Deterministic float NCHW images of the model's size (standard-normal, like normalised pixels)."""
    shape: List[Any] = list(info.shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise RunnerError(
            "bad_input",
            "input %r has shape %s; an image model takes a fixed [N, C, H, W]" % (info.name, shape_text(info.shape)),
            hint="export with a fixed input size",
        )
    if (layout or "NCHW").upper() == "NHWC":
        shape = [shape[0], shape[3], shape[1], shape[2]]
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch,) + tuple(shape[1:])).astype(np.float32)


def prepare(session: Any, images: Any, layout: Optional[str] = None) -> Feeds:
    """Float NCHW images -> {input name: the whole batch in the model's layout and dtype}."""
    info = image_input(session)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise RunnerError(
            "bad_input",
            "images must be a 4-D [N, C, H, W] batch, got shape %s" % (images.shape,),
            hint=shape_hint(session.inputs),
        )
    x = to_model_input(images, info, layout)
    if len(info.shape) != 4 or any(want is not None and want != got for want, got in zip(info.shape[1:], x.shape[1:])):
        raise RunnerError(
            "bad_input",
            "the model takes %s images per batch row, got %s (layout %s)"
            % (shape_text(info.shape), list(x.shape), layout or "as given"),
            hint=shape_hint(session.inputs),
        )
    return {info.name: x}


def prepare_feeds(session: Any, images: Any, layout: Optional[str] = None) -> List[Feeds]:
    """Float NCHW images -> the list of feed dicts one batch takes (one dict, or one per image when the
    model is fixed at batch 1)."""
    info = image_input(session)
    x = prepare(session, images, layout)[info.name]
    how, _ = plan_batch(info, x.shape[0])
    if how == "loop":
        return [{info.name: x[i : i + 1]} for i in range(x.shape[0])]
    return [{info.name: x}]


def run_feeds(session: Any, feeds_list: Sequence[Feeds]) -> List[np.ndarray]:
    """Run every feed dict; outputs concatenated along the batch, dequantized to float32."""
    parts = [session.run(feeds) for feeds in feeds_list]
    outputs = []
    for k, info in enumerate(session.outputs):
        chunk = [p[k] for p in parts]
        y = chunk[0] if len(chunk) == 1 else np.concatenate(chunk, axis=0)
        outputs.append(from_model_output(y, info))
    return outputs


def predict(session: Any, images: Any, layout: Optional[str] = None) -> List[np.ndarray]:
    """Float NCHW images in, float32 outputs out: layout, quantization and batching done here."""
    return run_feeds(session, prepare_feeds(session, images, layout))


def predict_all(session: Any, images: Any, layout: Optional[str] = None) -> List[np.ndarray]:
    """``predict`` for any number of images: a model fixed at batch N > 1 takes them in whole batches, the
    last one filled up with repeats of the first images whose outputs are dropped."""
    images = np.asarray(images, dtype=np.float32)
    fixed = image_input(session).batch
    if fixed is None or fixed <= 1 or len(images) == fixed:
        return predict(session, images, layout)
    missing = (-len(images)) % fixed
    if missing:
        images = np.concatenate([images, np.resize(images, (missing,) + images.shape[1:])])
    parts = [predict(session, images[i : i + fixed], layout) for i in range(0, len(images), fixed)]
    keep = len(images) - missing
    return [np.concatenate([p[k] for p in parts])[:keep] for k in range(len(parts[0]))]


def save_outputs(array: Any, path: str) -> None:
    """Write one .npy atomically: a half-written file must never look like the device's answer."""
    tmp = path + ".partial.npy"
    np.save(tmp, np.asarray(array, dtype=np.float32))
    os.replace(tmp, path)
