"""The guideline networks are the paper's: ten blocks of the structure each table names, the channel
sets of Tables 1-4, equal FLOPs within a table (counted by torch's flop counter, on the meta device), and
the memory access cost ordering that G1 and G2 derive (Eq. 1 and 2)."""

from __future__ import annotations

import math

import pytest

from shufflekit.errors import UsageError
from shufflekit.guidelines import TABLES, BenchNet, complexity, network, networks, paper_table
from shufflekit.guidelines.paper import COLUMNS

HW = 56 * 56


def _expected_mult_adds(net: BenchNet) -> int:
    """The paper's FLOPs formulas (B = hw c1 c2 / g per 1x1 convolution), ten blocks."""
    if net.guideline == "G1":
        per_block = 2 * HW * net.in_channels * net.width
    elif net.guideline == "G2":
        per_block = HW * net.width * net.width // net.groups
    elif net.guideline == "G3":
        per_block = net.fragments * HW * net.width * net.width
    else:  # 1x1, 3x3, 1x1 convolutions of c channels
        per_block = HW * (1 + 9 + 1) * net.width * net.width
    return 10 * per_block


@pytest.mark.parametrize("guideline", list(TABLES))
def test_torch_counts_the_papers_flops_for_every_network(guideline):
    nets = networks(guideline, scales=(1,))
    assert [n.row for n in nets] == [r.label for r in paper_table(guideline).rows]  # rows as in the paper
    assert [complexity(n).mult_adds for n in nets] == [_expected_mult_adds(n) for n in nets]


def test_flops_are_equal_within_each_table_at_every_scale_in_both_channel_columns():
    for guideline, column in [(g, c) for g in TABLES for c in COLUMNS]:
        for scale in (1, 2, 4):
            flops = [_expected_mult_adds(n) for n in networks(guideline, scales=(scale,), column=column)]
            assert all(abs(f - flops[0]) / flops[0] < 0.06 for f in flops), (guideline, column, scale, flops)


def test_channel_sets_are_the_papers():
    g1 = [(n.in_channels, n.width) for n in networks("G1", scales=(1,))]
    assert g1 == [(32, 32), (22, 44), (13, 78), (9, 108)]  # Table 1, ARM x1
    assert [(n.in_channels, n.width) for n in networks("G1", scales=(1,), column="gpu")][1] == (90, 180)
    assert [(n.in_channels, n.width) for n in networks("G1", scales=(4,))][3] == (36, 432)  # x4
    g2 = [(n.width, n.groups) for n in networks("G2", scales=(1, 2))]
    # Table 2's c = 180 at g = 8 is no multiple of 8: the nearest one with FLOPs nearest g = 1's
    assert g2 == [(64, 1), (90, 2), (128, 4), (184, 8), (128, 1), (180, 2), (256, 4), (360, 8)]
    g3 = {n.row: (n.fragments, n.width, n.parallel) for n in networks("G3", scales=(1,))}
    assert g3["1-fragment"] == (1, 64, False) and g3["4-fragment-series"] == (4, 32, False)
    assert g3["2-fragment-parallel"] == (2, round(64 / math.sqrt(2)), True)
    g4 = [(n.width, n.relu, n.shortcut) for n in networks("G4", scales=(2,))]
    assert g4 == [(64, True, True), (64, True, False), (64, False, True), (64, False, False)]


def test_structure_of_each_block():
    import torch
    from torch import nn

    def convs(net):
        with torch.device("meta"):
            return [m for m in net.build().modules() if isinstance(m, nn.Conv2d)]

    g1 = convs(network(TABLES["G1"], TABLES["G1"].rows[1]))
    assert len(g1) == 20 and [(c.in_channels, c.out_channels) for c in g1[:2]] == [(22, 44), (44, 22)]
    g2 = convs(network(TABLES["G2"], TABLES["G2"].rows[2]))
    assert len(g2) == 10 and {(c.groups, c.kernel_size) for c in g2} == {(4, (1, 1))}
    g3 = convs(network(TABLES["G3"], TABLES["G3"].rows[4]))
    assert len(g3) == 40 and {c.kernel_size for c in g3} == {(1, 1)}
    g4 = convs(network(TABLES["G4"], TABLES["G4"].rows[0]))
    assert len(g4) == 30 and [c.kernel_size for c in g4[:3]] == [(1, 1), (3, 3), (1, 1)]


def test_shortcut_and_relu_change_what_the_unit_computes():
    import torch

    table = TABLES["G4"]
    x = torch.randn(1, 4, 5, 5)
    outputs = {}
    for row in table.rows:
        net = network(table, row, size=5)
        torch.manual_seed(0)
        module = BenchNet(**{**net.to_dict(), "in_channels": 4, "width": 4}).build()
        with torch.no_grad():
            outputs[row.label] = module(x)
    assert outputs["ReLU yes, shortcut yes"].min() >= 0  # ends with a ReLU
    assert outputs["ReLU no, shortcut no"].min() < 0
    labels = list(outputs)
    assert all(not torch.allclose(outputs[a], outputs[b]) for a in labels for b in labels if a < b)


def test_memory_access_follows_g1_and_g2():
    """Balanced widths need the least memory access (G1, Eq. 1); more groups need more (G2, Eq. 2)."""
    g1 = [complexity(n).memory_access for n in networks("G1", scales=(1,))]
    assert g1[0] == min(g1) and g1[1:] == sorted(g1[1:])
    g2 = [complexity(n).memory_access for n in networks("G2", scales=(1,))]
    assert g2 == sorted(g2) and len(set(g2)) == 4


def test_a_network_description_round_trips_and_a_bad_one_is_refused():
    net = network(TABLES["G3"], TABLES["G3"].rows[3], scale=2, size=28, column="gpu")
    assert BenchNet.from_dict(net.to_dict()) == net
    assert net.name == "g3_2-fragment-parallel_gpu_x2_s28"
    with pytest.raises(ValueError):
        BenchNet.from_dict({**net.to_dict(), "width": "90"})
    with pytest.raises(ValueError):
        BenchNet.from_dict({**net.to_dict(), "extra": 1})
    with pytest.raises(UsageError, match="unknown guideline"):
        paper_table("G5")
    with pytest.raises(UsageError, match="scale"):
        network(TABLES["G1"], TABLES["G1"].rows[0], scale=0)
