"""ShuffleNet v1 (Zhang et al., CVPR 2018; Table 1 in seed 003).

Unit: 1x1 group conv -> channel shuffle -> 3x3 depthwise -> 1x1 group conv; the residual is added
(stride 1) or, at stride 2, a 3x3 average-pool shortcut is concatenated. The bottleneck is 1/4 of the
output channels, and the first pointwise layer of Stage 2 is not grouped (its input is only 24 wide).

Key names and the shuffle direction follow the official Megvii ShuffleNet-Series code (first_conv,
features.N.branch_main_1/2, classifier without bias), so its published checkpoints load and agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .layers import channel_shuffle, conv_bn, global_pool_flatten, make_divisible
from .tables import V1_CONV1_CHANNELS as CONV1_CHANNELS
from .tables import V1_GROUPS as GROUPS
from .tables import V1_STAGE2_CHANNELS as STAGE2_CHANNELS
from .tables import V1_STAGE_REPEATS as STAGE_REPEATS
from .tables import V1_WIDTHS as WIDTHS


def stage_channels(groups: int, width: float) -> tuple[int, int, int, int]:
    """(conv1, stage2, stage3, stage4) output channels for a group count and width multiplier."""
    if groups not in STAGE2_CHANNELS:
        raise ValueError(f"ShuffleNet v1 groups {groups} is not one of {list(GROUPS)}")
    if width not in CONV1_CHANNELS:
        raise ValueError(f"ShuffleNet v1 width {width} is not one of {list(WIDTHS)}")
    conv1 = -(-CONV1_CHANNELS[width] // groups) * groups
    # The bottleneck (out/4) must split into g groups: stage widths are multiples of 4g.
    stage2 = make_divisible(STAGE2_CHANNELS[groups] * width, 4 * groups)
    return conv1, stage2, 2 * stage2, 4 * stage2


class ShuffleV1Unit(nn.Module):
    def __init__(self, inp: int, out: int, *, groups: int, stride: int, group_first_pointwise: bool) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.stride = stride
        self.groups = groups
        mid = out // 4
        # At stride 2 the shortcut is concatenated, so the main branch only adds the missing channels.
        branch_out = out - inp if stride == 2 else out
        self.branch_main_1 = nn.Sequential(
            *conv_bn(inp, mid, 1, groups=groups if group_first_pointwise else 1),
            *conv_bn(mid, mid, 3, stride, groups=mid, relu=False),
        )
        self.branch_main_2 = nn.Sequential(*conv_bn(mid, branch_out, 1, groups=groups, relu=False))
        if stride == 2:
            self.branch_proj = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branch_main_1(x)
        if self.groups > 1:
            y = channel_shuffle(y, self.groups, channels_first_view=False)
        y = self.branch_main_2(y)
        if self.stride == 1:
            return F.relu(y + x)
        return torch.cat((self.branch_proj(x), F.relu(y)), dim=1)


class ShuffleNetV1(nn.Module):
    def __init__(
        self,
        channels: Sequence[int],
        *,
        groups: int,
        num_classes: int = 1000,
        stage_repeats: Sequence[int] = STAGE_REPEATS,
    ) -> None:
        super().__init__()
        conv1_out, *stage_outs = channels
        self.first_conv = nn.Sequential(*conv_bn(3, conv1_out, 3, 2))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        units: list[nn.Module] = []
        inp = conv1_out
        for stage, (repeats, out) in enumerate(zip(stage_repeats, stage_outs)):
            for index in range(repeats):
                units.append(
                    ShuffleV1Unit(
                        inp,
                        out,
                        groups=groups,
                        stride=2 if index == 0 else 1,
                        group_first_pointwise=not (stage == 0 and index == 0),
                    )
                )
                inp = out
        self.features = nn.Sequential(*units)
        self.classifier = nn.Sequential(nn.Linear(inp, num_classes, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.maxpool(self.first_conv(x)))
        return self.classifier(global_pool_flatten(x))


def shufflenet_v1(*, groups: int, width: float, num_classes: int = 1000) -> ShuffleNetV1:
    return ShuffleNetV1(stage_channels(groups, width), groups=groups, num_classes=num_classes)
