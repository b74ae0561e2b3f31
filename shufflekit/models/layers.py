"""Building blocks shared by ShuffleNet v1 and v2, written to export as static, at most 4-D operations.

Why not the usual 5-D view/transpose for the shuffle and ``chunk`` for the split: 5-D tensors are
refused by TFLite GPU delegates and several converters, and ``chunk`` can become shape-dependent
slicing in ONNX. Here the shuffle is reshape -> transpose -> reshape on 4-D tensors with constant
shapes (only the batch is -1), and the split is two slices with constant bounds.
"""

from __future__ import annotations

import torch
from torch import nn


def channel_shuffle(x: torch.Tensor, groups: int, *, channels_first_view: bool = True) -> torch.Tensor:
    """Permute channels so that every group of the next grouped layer sees every group of this one.

    ``channels_first_view=True`` is the paper's description (reshape channels to (g, n), transpose,
    flatten), as torchvision does for v2. ``False`` reshapes to (n, g) first: the inverse permutation,
    which the official Megvii v1 code uses; both mix groups, but checkpoints depend on which one.
    """
    _, channels, height, width = x.shape
    per_group = channels // groups
    rows, cols = (groups, per_group) if channels_first_view else (per_group, groups)
    x = x.reshape(-1, rows, cols, height * width)
    x = x.transpose(1, 2)
    return x.reshape(-1, channels, height, width)


def split_channels(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel split of the v2 unit: first half, second half, with constant slice bounds."""
    half = x.shape[1] // 2
    return x[:, :half], x[:, half:]


def conv_bn(inp: int, out: int, kernel: int, stride: int = 1, *, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    """Conv (no bias) + BatchNorm (+ ReLU) as a list, so callers keep torchvision's flat indices."""
    layers: list[nn.Module] = [
        nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


def make_divisible(value: float, divisor: int) -> int:
    """Round to the nearest multiple of ``divisor`` without losing more than 10% (MobileNet's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def global_pool_flatten(x: torch.Tensor) -> torch.Tensor:
    """Global average pool to (N, C): exports as GlobalAveragePool + Flatten, works at any input size."""
    return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
