"""ShuffleNet v2 as Megvii's official ShuffleNet-Series builds it (ShuffleNetV2/network.py, blocks.py), in
its own key layout (first_conv, features.N.branch_main / branch_proj, conv_last, classifier), so its
published checkpoints load as they are.

Why a second v2: from 1.0x up, Megvii's first stage-2 unit gives its projection branch all 24 input
channels and its main branch the rest (24 + 92 at 1.0x), where torchvision's layout splits the output in
halves (58 + 58). Both follow Table 5's widths, but no permutation of weights turns one into the other
(megvii.py converts the 0.5x, where the two agree). Megvii's unit does not shuffle after the concat;
its stride-1 unit keeps the even channels and transforms the odd ones, which is the same mixing.

The even/odd split is two constant, stride-2 channel slices of the 4-D map: static, at most 4-D, like
the layers of the torchvision-layout model.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import conv_bn, global_pool_flatten
from .shufflenet_v2 import STAGE_CHANNELS, STAGE_REPEATS


class MegviiV2Unit(nn.Module):
    """Megvii's ShuffleV2Block: stride 1 reads ``inp`` = half the map's channels (the odd ones), stride 2
    reads the whole map in both branches; the main branch makes ``out - inp`` channels, the projection
    (stride 2) keeps ``inp``."""

    def __init__(self, inp: int, out: int, mid: int, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.stride = stride
        self.branch_main = nn.Sequential(
            *conv_bn(inp, mid, 1),
            *conv_bn(mid, mid, 3, stride, groups=mid, relu=False),
            *conv_bn(mid, out - inp, 1),
        )
        if stride == 2:
            self.branch_proj = nn.Sequential(
                *conv_bn(inp, inp, 3, stride, groups=inp, relu=False),
                *conv_bn(inp, inp, 1),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            kept, transformed = x[:, 0::2], x[:, 1::2]
            return torch.cat((kept, self.branch_main(transformed)), dim=1)
        return torch.cat((self.branch_proj(x), self.branch_main(x)), dim=1)


class MegviiShuffleNetV2(nn.Module):
    def __init__(self, width: float, *, num_classes: int = 1000) -> None:
        super().__init__()
        if width not in STAGE_CHANNELS:
            raise ValueError(f"ShuffleNet v2 width {width} is not one of {sorted(STAGE_CHANNELS)}")
        first, *stage_outs, last = STAGE_CHANNELS[width]
        self.first_conv = nn.Sequential(*conv_bn(3, first, 3, 2))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        units, inp = [], first
        for repeats, out in zip(STAGE_REPEATS, stage_outs):
            units.append(MegviiV2Unit(inp, out, out // 2, 2))
            units += [MegviiV2Unit(out // 2, out, out // 2, 1) for _ in range(repeats - 1)]
            inp = out
        self.features = nn.Sequential(*units)
        self.conv_last = nn.Sequential(*conv_bn(inp, last, 1))
        # Megvii's 2.0x drops out before the classifier in training; in eval that is the identity.
        self.dropout = nn.Dropout(0.2) if width == 2.0 else nn.Identity()
        self.classifier = nn.Sequential(nn.Linear(last, num_classes, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.maxpool(self.first_conv(x)))
        # Megvii pools with AvgPool2d(7), i.e. globally at 224x224; global pooling keeps any input size.
        return self.classifier(self.dropout(global_pool_flatten(self.conv_last(x))))


def shufflenet_v2_megvii(*, width: float, num_classes: int = 1000) -> MegviiShuffleNetV2:
    return MegviiShuffleNetV2(width, num_classes=num_classes)
