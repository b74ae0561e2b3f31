"""The v2 paper's other networks (seed 000), built from one unit with three switches:

- squeeze-and-excitation on the transformed branch (Appendix Fig. 2b; Table 8's "2x with SE"),
- a residual add around the transformed branch (Appendix Fig. 2a; with SE, Fig. 2c: SE-ShuffleNet v2-164),
- an extra 3x3 depthwise convolution before the first 1x1 convolution (section 4's ShuffleNet v2*),

and one network whose stem, stages and last convolution are data (``tables.V2Arch``): Table 5's
three-stage v2 and Appendix Table 2's four-stage large models (ShuffleNet v2-50, SE-ShuffleNet v2-164).

Everything stays static and at most 4-D, like the base v2: SE pools with a global average pool that
keeps (N, C, 1, 1) and its two fully connected layers are 1x1 convolutions on that map, so the scale
multiplies the branch by broadcasting, never through a 2-D tensor.

Where the paper is silent (the README's Models section lists these choices): the ReLU of a residual
unit follows the add (the paper's "residual add-ReLUs"), so the branch's last 1x1 has none; SE's hidden
width is half the unit's output channels (the paper's "1/2 of the channel numbers in the building
block"), with ReLU between the two layers and a sigmoid gate (SENet's); the first unit of a stage, whose
input and output widths differ, has no identity to add and keeps the plain unit's ReLU; v2* puts its
extra depthwise convolution (stride 1, BatchNorm, no ReLU, like the unit's own) in the branch that
starts with a 1x1, since the downsampling unit's other branch already starts with a depthwise one.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import channel_shuffle, conv_bn, global_pool_flatten, split_channels
from .tables import V2Arch


class SqueezeExcite(nn.Module):
    """x * sigmoid(expand(relu(reduce(pool(x))))), with pool a 4-D global average and the two fully
    connected layers 1x1 convolutions (with bias), so the graph never leaves 4-D."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        scale = torch.sigmoid(self.expand(torch.relu(self.reduce(scale))))
        return x * scale


class VariantV2Unit(nn.Module):
    """The v2 unit with the paper's switches. A projecting unit (the first of each stage) feeds the whole
    input to both branches, downsampling when ``stride`` is 2; the others split the channels in halves
    and transform one."""

    def __init__(
        self,
        inp: int,
        out: int,
        stride: int,
        *,
        project: bool,
        se: bool = False,
        residual: bool = False,
        extra_depthwise: bool = False,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if not project and (stride != 1 or inp != out):
            raise ValueError(f"a unit that splits its input keeps size and width ({inp} -> {out}, stride {stride})")
        if out % 2:
            raise ValueError(f"a unit's output width must be even, got {out}")
        self.project, self.stride, self.extra_depthwise = project, stride, extra_depthwise
        branch = out // 2
        branch_in = inp if project else branch
        # The add-ReLU of a residual unit replaces the ReLU after the branch's last 1x1.
        self.residual = residual and not project
        if project:
            self.branch1 = nn.Sequential(
                *conv_bn(inp, inp, 3, stride, groups=inp, relu=False),
                *conv_bn(inp, branch, 1),
            )
        else:
            self.branch1 = nn.Sequential()
        extra = conv_bn(branch_in, branch_in, 3, 1, groups=branch_in, relu=False) if extra_depthwise else []
        self.branch2 = nn.Sequential(
            *extra,
            *conv_bn(branch_in, branch, 1),
            *conv_bn(branch, branch, 3, stride, groups=branch, relu=False),
            *conv_bn(branch, branch, 1, relu=not self.residual),
        )
        self.se = SqueezeExcite(branch, out // 2) if se else None

    @property
    def kind(self) -> tuple[str, ...]:
        """What makes this unit's graph: projecting or splitting, stride, and the switches it has on."""
        switches = [
            name
            for name, on in (("se", self.se is not None), ("residual", self.residual), ("star", self.extra_depthwise))
            if on
        ]
        return ("project" if self.project else "split", f"stride {self.stride}", *switches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.project:
            left, right = self.branch1(x), x
        else:
            left, right = split_channels(x)
        y = self.branch2(right)
        if self.se is not None:
            y = self.se(y)
        if self.residual:
            y = torch.relu(right + y)
        return channel_shuffle(torch.cat((left, y), dim=1), 2)


class ShuffleNetV2Variant(nn.Module):
    """Stem of 3x3 convolutions, max pool, stages of ``VariantV2Unit``, a last 1x1, global pool, fc.
    Attributes are named as the papers' tables: conv1, stage2.. (Table 5), conv5 or conv6, fc."""

    def __init__(self, arch: V2Arch, *, num_classes: int = 1000) -> None:
        super().__init__()
        if len(arch.stage_channels) != len(arch.stage_repeats) or not arch.stem:
            raise ValueError("need a stem and one repeat count per stage")
        stem: list[nn.Module] = []
        inp = 3
        for index, width in enumerate(arch.stem):
            stem += conv_bn(inp, width, 3, 2 if index == 0 else 1)
            inp = width
        self.conv1 = nn.Sequential(*stem)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        switches = {"se": arch.se, "residual": arch.residual, "extra_depthwise": arch.extra_depthwise}
        self.stage_names: list[str] = []
        for index, (repeats, out) in enumerate(zip(arch.stage_repeats, arch.stage_channels)):
            stride = arch.first_stage_stride if index == 0 else 2
            units = [VariantV2Unit(inp, out, stride, project=True, **switches)]
            units += [VariantV2Unit(out, out, 1, project=False, **switches) for _ in range(repeats - 1)]
            name = f"stage{index + 2}"
            self.add_module(name, nn.Sequential(*units))
            self.stage_names.append(name)
            inp = out
        self.last_name = f"conv{len(arch.stage_channels) + 2}"
        self.add_module(self.last_name, nn.Sequential(*conv_bn(inp, arch.last_conv, 1)))
        self.fc = nn.Linear(arch.last_conv, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.fc(global_pool_flatten(getattr(self, self.last_name)(x)))


def shufflenet_v2_variant(arch: V2Arch, *, num_classes: int = 1000) -> ShuffleNetV2Variant:
    return ShuffleNetV2Variant(arch, num_classes=num_classes)
