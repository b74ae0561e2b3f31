"""The benchmark networks of the paper's guideline experiments (seed 000, section 2), in torch.

Every network is ten stacked building blocks on a feature map of ``size`` x ``size`` (56 in the paper),
batch 1, no stem and no classifier: what is timed is exactly the blocks.

- G1: a block is two 1x1 convolutions, c1 -> c2 -> c1 (Table 1's channel pairs).
- G2: a block is one 1x1 group convolution c -> c with g groups (Table 2's c).
- G3: a block is 1, 2 or 4 1x1 convolutions in series, or 2 or 4 side by side on the same input and
  summed (Appendix Fig. 1); the fragments' width is c / sqrt(fragments), so every structure has the
  FLOPs of the 1-fragment block of width c (Table 3: "the channel number in other fragmented structures
  is adjusted so that the FLOPs is the same").
- G4: the ResNet bottleneck unit, 1x1 -> 3x3 -> 1x1 convolutions of c channels with a ReLU after each of
  the first two and after the shortcut's add, with the ReLUs and/or the shortcut removed (Table 4).

In G1-G3 each convolution is followed by a ReLU (in a parallel block: after the sum), as in any real
network: every runtime fuses it into the convolution, and no converter can merge two linear
convolutions into one. Convolutions have no bias and there is no BatchNorm (a deployed network has it
folded into the convolution). Widths of a group convolution are rounded to a multiple of g (the paper's
c = 180 for g = 8 on ARM is not one: 184 is used, FLOPs within 4 %).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import UsageError
from .paper import COLUMNS, PaperRow, PaperTable, paper_table

BLOCKS = 10  # "stacking 10 building blocks repeatedly" (every table)


@dataclass(frozen=True)
class BenchNet:
    """One benchmark network: a row of a guideline's table at one scale, column and feature-map size."""

    guideline: str
    row: str  # the paper's row label
    scale: int  # the paper's x1 / x2 / x4: the x1 channel numbers times this
    size: int  # feature-map height and width
    column: str  # "arm" or "gpu": whose x1 channel set
    in_channels: int  # the network's input (and output) channels
    width: int  # G1: c2; G2: c; G3: each fragment's width; G4: c
    groups: int = 1
    fragments: int = 1
    parallel: bool = False
    relu: bool = True
    shortcut: bool = False

    @property
    def name(self) -> str:
        """File-name stem, e.g. g1_1to2_arm_x2_s56."""
        row = self.row.lower().replace(":", "to").replace("=", "").replace(", ", "_").replace(" ", "-")
        return f"{self.guideline.lower()}_{row}_{self.column}_x{self.scale}_s{self.size}"

    @property
    def channels_text(self) -> str:
        if self.guideline == "G1":
            return f"({self.in_channels},{self.width})"
        if self.guideline == "G3" and self.fragments > 1:
            return f"{self.fragments}x{self.width}"
        return f"c={self.width}"

    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.in_channels, self.size, self.size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> BenchNet:
        """Strict: the fields of a BenchNet with their types (a hand-edited manifest is refused)."""
        if not isinstance(data, dict) or set(data) != set(cls.__dataclass_fields__):
            raise ValueError(f"not a guideline network: {data!r:.80}")
        types = {"guideline": str, "row": str, "column": str, "parallel": bool, "relu": bool, "shortcut": bool}
        for key, value in data.items():
            want = types.get(key, int)
            if type(value) is not want:
                raise ValueError(f"guideline network field {key}: {value!r:.40} is not a {want.__name__}")
        return cls(**data)

    def build(self) -> Any:
        """The torch module (float32, eval mode, weights from torch's default initialisation)."""
        return build_module(self)


def network(table: PaperTable, row: PaperRow, *, scale: int = 1, size: int = 56, column: str = "arm") -> BenchNet:
    """The network of ``row`` of ``table`` at ``scale`` (x1, x2, x4...), built with ``column``'s channels."""
    if column not in COLUMNS:
        raise UsageError(f"unknown channel column {column!r}", hint=f"use one of {', '.join(COLUMNS)}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise UsageError(f"scale {scale!r} is not a positive integer", hint="use e.g. --scale 1,2,4")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1024:
        raise UsageError(f"feature-map size {size!r} is not from 1 to 1024", hint="use e.g. --size 56 (the paper's)")
    channels = tuple(c * scale for c in row.channels(column))
    base = BenchNet(table.guideline, row.label, scale, size, column, in_channels=channels[0], width=channels[0])
    if table.guideline == "G1":
        return replace(base, width=channels[1])
    if table.guideline == "G2":
        width = _multiple_of(channels[0], row.groups, target=table.reference.channels(column)[0] * scale)
        return replace(base, in_channels=width, width=width, groups=row.groups)
    if table.guideline == "G3":
        width = max(1, round(channels[0] / math.sqrt(row.fragments)))
        return replace(base, in_channels=width, width=width, fragments=row.fragments, parallel=row.parallel)
    return replace(base, relu=row.relu, shortcut=row.shortcut)


def networks(
    guideline: str, *, scales: tuple[int, ...] = (1, 2, 4), size: int = 56, column: str = "arm"
) -> list[BenchNet]:
    """Every network of one guideline's table: its rows at each scale."""
    table = paper_table(guideline)
    return [network(table, row, scale=s, size=size, column=column) for s in scales for row in table.rows]


def _multiple_of(channels: int, groups: int, *, target: int) -> int:
    """The multiple of ``groups`` nearest ``channels``; on a tie, the one whose FLOPs (c^2 / g) are
    nearest the dense reference's (``target``^2)."""
    if channels % groups == 0:
        return channels
    low = channels // groups * groups
    candidates = [c for c in (low, low + groups) if c > 0]
    return min(candidates, key=lambda c: (abs(c - channels), abs(c * c / groups - target * target)))


# -- the torch modules ----------------------------------------------------------------------------------
def build_module(net: BenchNet) -> Any:
    import torch
    from torch import nn

    class Parallel(nn.Module):
        """Fragments side by side on one input, summed, then ReLU (Appendix Fig. 1 d/e)."""

        def __init__(self, width: int, fragments: int) -> None:
            super().__init__()
            self.branches = nn.ModuleList(nn.Conv2d(width, width, 1, bias=False) for _ in range(fragments))
            self.relu = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            total = self.branches[0](x)
            for branch in self.branches[1:]:
                total = total + branch(x)
            return self.relu(total)

    class Bottleneck(nn.Module):
        """ResNet's bottleneck unit of ``width`` channels, its ReLUs and shortcut optional (Table 4)."""

        def __init__(self, width: int, relu: bool, shortcut: bool) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(width, width, 1, bias=False)
            self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
            self.conv3 = nn.Conv2d(width, width, 1, bias=False)
            self.use_relu, self.shortcut = relu, shortcut

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            act = torch.relu if self.use_relu else (lambda t: t)
            out = self.conv3(act(self.conv2(act(self.conv1(x)))))
            if self.shortcut:
                out = out + x
            return act(out)

    def conv_relu(cin: int, cout: int, groups: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 1, groups=groups, bias=False), nn.ReLU()]

    blocks: list[nn.Module] = []
    for _ in range(BLOCKS):
        if net.guideline == "G1":
            blocks.append(nn.Sequential(*conv_relu(net.in_channels, net.width), *conv_relu(net.width, net.in_channels)))
        elif net.guideline == "G2":
            blocks.append(nn.Sequential(*conv_relu(net.width, net.width, net.groups)))
        elif net.guideline == "G3" and net.parallel:
            blocks.append(Parallel(net.width, net.fragments))
        elif net.guideline == "G3":
            blocks.append(nn.Sequential(*[m for _ in range(net.fragments) for m in conv_relu(net.width, net.width)]))
        else:
            blocks.append(Bottleneck(net.width, net.relu, net.shortcut))
    return nn.Sequential(*blocks).eval()


@dataclass(frozen=True)
class NetComplexity:
    mult_adds: int  # torch's flop counter / 2: the paper's FLOPs
    memory_access: int  # elements read + written by one inference (models.complexity's counter)
    params: int


@functools.cache
def complexity(net: BenchNet) -> NetComplexity:
    """Multiply-adds and memory access of one batch-1 inference, counted on the meta device (shapes only,
    no weights made), with the counters of ``models.complexity``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..models.complexity import _MemoryAccessCounter

    with torch.device("meta"):
        module = build_module(net)
        x = torch.zeros(net.input_shape())
        with torch.no_grad():
            with FlopCounterMode(display=False) as flops:
                module(x)
            with _MemoryAccessCounter() as mac:
                module(x)
    params = sum(p.numel() for p in module.parameters())
    return NetComplexity(mult_adds=flops.get_total_flops() // 2, memory_access=mac.elements, params=params)
