"""The variants as data: the papers' tables, without torch, so that naming and checking a model (the
CLI, a release's option checks and reruns) does not load torch."""

from __future__ import annotations

from dataclasses import dataclass

# ShuffleNet v1 (Table 1 of seed 003)
V1_STAGE_REPEATS = (4, 8, 4)
# Stage 2 output channels at 1x per group count (Table 1); stages 3 and 4 double it each time.
V1_STAGE2_CHANNELS = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}
# conv1 width per multiplier, as the official code builds it (1.5x keeps 24); rounded up to a multiple
# of g so the stride-2 unit's concat leaves a group-divisible residue for its last group conv.
V1_CONV1_CHANNELS = {0.25: 6, 0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}
V1_WIDTHS = tuple(V1_CONV1_CHANNELS)
V1_GROUPS = tuple(V1_STAGE2_CHANNELS)

# ShuffleNet v2 (Table 5 of seed 000)
V2_STAGE_REPEATS = (4, 8, 4)
# Output channels of conv1, stage2, stage3, stage4, conv5 per width (Table 5).
V2_STAGE_CHANNELS = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}


# The v2 paper's other networks (seed 000): its large models (Appendix Table 2), the SE variant of 2x
# (Table 8) and ShuffleNet v2* (section 4, detection). One shape, as data, for all of them.
@dataclass(frozen=True)
class V2Arch:
    stem: tuple[int, ...]  # output channels of the stem's 3x3 convolutions; the first has stride 2
    stage_channels: tuple[int, ...]  # output channels of each stage's units
    stage_repeats: tuple[int, ...]  # units per stage
    last_conv: int  # the 1x1 convolution before the pool (Table 5's conv5, Appendix Table 2's conv6)
    first_stage_stride: int = 2  # Table 5's stage2 downsamples; Appendix Table 2's conv2_x runs at 56x56
    se: bool = False  # squeeze-and-excitation on the transformed branch (Appendix Fig. 2b)
    residual: bool = False  # identity add around the transformed branch (Appendix Fig. 2a, 2c)
    extra_depthwise: bool = False  # ShuffleNet v2*: a 3x3 depthwise before the first 1x1 of each unit


def _table5(width: float, **structure: bool) -> V2Arch:
    conv1, *stages, conv5 = V2_STAGE_CHANNELS[width]
    return V2Arch((conv1,), tuple(stages), V2_STAGE_REPEATS, conv5, **structure)


V2_ARCHS: dict[str, V2Arch] = {
    # Appendix Table 2: 3/4/6/3 units of 244/488/976/1952 channels, conv1 3x3 64 stride 2, conv6 1x1 2048.
    "shufflenet_v2_50": V2Arch((64,), (244, 488, 976, 1952), (3, 4, 6, 3), 2048, first_stage_stride=1),
    # Appendix Table 2 and Fig. 2c: three 3x3 stem convolutions (64 stride 2, 64, 128), 10/10/23/10 units
    # of 340/680/1360/2720 channels with SE and residual, conv6 1x1 2048.
    "shufflenet_v2_164_se": V2Arch(
        (64, 64, 128), (340, 680, 1360, 2720), (10, 10, 23, 10), 2048, first_stage_stride=1, se=True, residual=True
    ),
    # Table 8's "ShuffleNet v2 2x (with SE)".
    "shufflenet_v2_x2_0_se": _table5(2.0, se=True),
    # Section 4's ShuffleNet v2*, at each Table 5 width (Table 7 lists it at all four complexity levels).
    **{f"shufflenet_v2_x{str(w).replace('.', '_')}_star": _table5(w, extra_depthwise=True) for w in V2_STAGE_CHANNELS},
}
