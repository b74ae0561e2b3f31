"""The ShuffleNet v2 paper's Table 8 ARM speed (seed 000: images/s on a Qualcomm Snapdragon 810, one
thread, batch 1, 224x224), for the variants this tool builds: a reference column, labelled as the paper's
device, never a figure of ours. Only what the table prints; a variant it does not list has none."""

from __future__ import annotations

from ..metadata import InputSize
from ..report.sweep import PAPER_DEVICE

__all__ = ["PAPER_DEVICE", "PAPER_INPUT_SIZE", "TABLE8_ARM_IPS", "paper_ips"]

PAPER_INPUT_SIZE = 224

# registry name -> Table 8 "ARM Speed (Images/sec.)"
TABLE8_ARM_IPS: dict[str, float] = {
    "shufflenet_v2_x0_5": 57.0,
    "shufflenet_v2_x1_0": 24.4,
    "shufflenet_v2_x1_5": 11.8,
    "shufflenet_v2_x2_0": 6.7,
    "shufflenet_v1_g3_x0_5": 56.8,
    "shufflenet_v1_g3_x1_0": 21.8,
    "shufflenet_v1_g3_x1_5": 10.3,
    "shufflenet_v1_g3_x2_0": 6.4,
    "shufflenet_v2_x2_0_se": 5.6,  # "ShuffleNet v2 2x (ours, with SE [8])"
}


def paper_ips(name: str, input_size: InputSize | int) -> float | None:
    """The paper's ARM images/s for ``name``, only at the size it measured them (224x224)."""
    return TABLE8_ARM_IPS.get(name) if InputSize.of(input_size) == InputSize.square(PAPER_INPUT_SIZE) else None
