"""ShuffleNet v2 (Ma et al., ECCV 2018; Table 5 of seed 000).

State-dict keys and shapes match torchvision's ``shufflenet_v2_x*`` (conv1, stage2..4 with branch1 /
branch2 indices, conv5, fc) so a torchvision checkpoint loads unchanged and gives the same outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .layers import channel_shuffle, conv_bn, global_pool_flatten, split_channels
from .tables import V2_STAGE_CHANNELS as STAGE_CHANNELS
from .tables import V2_STAGE_REPEATS as STAGE_REPEATS


class ShuffleV2Unit(nn.Module):
    """Stride 1: split channels, transform one half, concat, shuffle.
    Stride 2: both branches see all channels and downsample; concat doubles the width."""

    def __init__(self, inp: int, out: int, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.stride = stride
        branch = out // 2
        if stride == 1 and inp != out:
            raise ValueError(f"a stride-1 unit keeps its width ({inp} != {out})")
        if stride == 2:
            self.branch1 = nn.Sequential(
                *conv_bn(inp, inp, 3, stride, groups=inp, relu=False),
                *conv_bn(inp, branch, 1),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            *conv_bn(inp if stride == 2 else branch, branch, 1),
            *conv_bn(branch, branch, 3, stride, groups=branch, relu=False),
            *conv_bn(branch, branch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            kept, transformed = split_channels(x)
            out = torch.cat((kept, self.branch2(transformed)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(
        self, stage_channels: Sequence[int], *, num_classes: int = 1000, stage_repeats: Sequence[int] = STAGE_REPEATS
    ) -> None:
        super().__init__()
        if len(stage_channels) != 5 or len(stage_repeats) != 3:
            raise ValueError("need 5 channel counts (conv1, stage2-4, conv5) and 3 repeat counts")
        conv1_out, *stage_outs, conv5_out = stage_channels
        self.conv1 = nn.Sequential(*conv_bn(3, conv1_out, 3, 2))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages = []
        inp = conv1_out
        for repeats, out in zip(stage_repeats, stage_outs):
            units = [ShuffleV2Unit(inp, out, 2)] + [ShuffleV2Unit(out, out, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            inp = out
        self.stage2, self.stage3, self.stage4 = stages  # torchvision's attribute names, so its weights load
        self.conv5 = nn.Sequential(*conv_bn(inp, conv5_out, 1))
        self.fc = nn.Linear(conv5_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(global_pool_flatten(self.conv5(x)))


def shufflenet_v2(*, width: float, num_classes: int = 1000) -> ShuffleNetV2:
    if width not in STAGE_CHANNELS:
        raise ValueError(f"ShuffleNet v2 width {width} is not one of {sorted(STAGE_CHANNELS)}")
    return ShuffleNetV2(STAGE_CHANNELS[width], num_classes=num_classes)
