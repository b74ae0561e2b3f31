"""Converting the official Megvii ShuffleNet-Series v2 checkpoints to torchvision's layout."""

from __future__ import annotations

from typing import Mapping

import torch

from ..errors import CheckpointError


def convert_megvii_v2(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    raise CheckpointError("Megvii ShuffleNet v2 key names are not supported yet",
                          hint="convert the checkpoint to torchvision's layout first")
