"""Shared fixtures. Tests use small models (0.5x, 64x64 inputs) so the suite stays fast on 2 cores."""

from __future__ import annotations

import os

import pytest

# Keep TensorFlow's C++ logging quiet and make runs repeatable on a small CI machine.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

SMALL_V2 = "shufflenet_v2_x0_5"
SMALL_V1 = "shufflenet_v1_g3_x0_5"
SMALL_SIZE = 64


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
