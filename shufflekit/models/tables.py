"""The variants as data: the papers' tables, without torch, so that naming and checking a model (the
CLI, a release's option checks and reruns) does not load torch."""

from __future__ import annotations

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
