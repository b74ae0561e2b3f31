"""Fidelity to the papers: multiply-adds and params at 224x224 (seed 000 Table 5, seed 003 Table 1; the v2
paper's other networks: Appendix Table 2, Table 8, section 4)."""

import pytest
import torch
from torch import nn

from shufflekit.models.complexity import measure, model_complexity

PAPER_MULT_ADDS = {
    "shufflenet_v2_x0_5": 41e6,
    "shufflenet_v2_x1_0": 146e6,
    "shufflenet_v2_x1_5": 299e6,
    "shufflenet_v2_x2_0": 591e6,
    "shufflenet_v1_g1_x1_0": 143e6,
    "shufflenet_v1_g2_x1_0": 140e6,
    "shufflenet_v1_g3_x1_0": 137e6,
    "shufflenet_v1_g4_x1_0": 133e6,
    "shufflenet_v1_g8_x1_0": 137e6,
    "shufflenet_v1_g3_x0_5": 38e6,
    "shufflenet_v1_g3_x2_0": 524e6,
}
# The v2 paper's other networks, within 3%. v2* has no figure of its own ("only a few additional FLOPs",
# section 4): it is held to v2's at each width from 1x up (at 0.5x its depthwise convolutions add 6%).
PAPER_MULT_ADDS_OTHERS = {
    "shufflenet_v2_50": 2.3e9,  # Appendix Table 2
    "shufflenet_v2_164_se": 12.7e9,  # Appendix Table 2
    "shufflenet_v2_x2_0_se": 597e6,  # Table 8
    "shufflenet_v2_x1_0_star": 146e6,
    "shufflenet_v2_x1_5_star": 299e6,
    "shufflenet_v2_x2_0_star": 591e6,
}
PAPER_PARAMS_V2 = {
    "shufflenet_v2_x0_5": 1.4e6,
    "shufflenet_v2_x1_0": 2.3e6,
    "shufflenet_v2_x1_5": 3.5e6,
    "shufflenet_v2_x2_0": 7.4e6,
}


@pytest.mark.parametrize("name,expected", sorted(PAPER_MULT_ADDS.items()))
def test_mult_adds_within_2_percent_of_paper(name, expected):
    assert model_complexity(name, 224).mult_adds == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("name,expected", sorted(PAPER_MULT_ADDS_OTHERS.items()))
def test_other_v2_networks_mult_adds_within_3_percent_of_paper(name, expected):
    assert model_complexity(name, 224).mult_adds == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("name,expected", sorted(PAPER_PARAMS_V2.items()))
def test_v2_params_within_5_percent_of_paper(name, expected):
    assert model_complexity(name, 224).params == pytest.approx(expected, rel=0.05)


def test_mult_adds_scale_with_input_area():
    small, large = model_complexity("shufflenet_v2_x1_0", 128), model_complexity("shufflenet_v2_x1_0", 256)
    # Everything but the classifier scales with the area; the ratio is just under 4.
    assert 3.8 < large.mult_adds / small.mult_adds < 4.0


def test_memory_access_of_a_1x1_conv_is_g1_formula():
    """G1: MAC = hw(c1 + c2) + c1*c2 for a 1x1 convolution (measure() feeds 3-channel images)."""
    conv = nn.Sequential(nn.Conv2d(3, 24, 1, bias=False))
    h = w = 32
    measured = measure(conv, 32)
    assert measured.memory_access == h * w * (3 + 24) + 3 * 24
    assert measured.mult_adds == h * w * 3 * 24


def test_memory_access_grows_with_groups_at_equal_flops():
    """G2: more groups at about the same multiply-adds cost more memory access."""
    g1, g8 = model_complexity("shufflenet_v1_g1_x1_0"), model_complexity("shufflenet_v1_g8_x1_0")
    assert g8.mult_adds == pytest.approx(g1.mult_adds, rel=0.05)
    assert g8.memory_access > 2 * g1.memory_access


def test_batchnorm_is_folded_before_counting():
    plain = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False))
    with_bn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
    # Folding adds a bias (8 reads) and removes the BN pass entirely.
    assert measure(with_bn, 32).memory_access == measure(plain, 32).memory_access + 8
    assert torch.equal(torch.tensor(measure(with_bn, 32).mult_adds), torch.tensor(measure(plain, 32).mult_adds))
