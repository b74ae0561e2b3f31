"""Official Megvii ShuffleNet-Series v2 checkpoints load into shufflekit's torchvision-layout v2 and give
the same outputs. The reference below is Megvii's v2 written functionally from its published structure
(ShuffleNetV2/network.py and blocks.py), over a bare Megvii-layout state dict; it shares no code with
shufflekit."""

import pytest
import torch
import torch.nn.functional as F

from shufflekit.errors import CheckpointError
from shufflekit.models.checkpoints import load_checkpoint
from shufflekit.models.megvii import convert_megvii_v2
from shufflekit.models.shufflenet_v2 import ShuffleNetV2

# Megvii's stage_out_channels (first conv, stages 2-4, conv_last) per model size; repeats 4, 8, 4.
MEGVII_SIZES = {
    "0.5x": (24, 48, 96, 192, 1024),
    "1.0x": (24, 116, 232, 464, 1024),
    "1.5x": (24, 176, 352, 704, 1024),
    "2.0x": (24, 244, 488, 976, 2048),
}
REPEATS = (4, 8, 4)


def megvii_units(channels):
    """(index, inp, oup, mid, stride) for every features.N, as Megvii's network.py builds them."""
    first, *stages, _ = channels
    units, inp = [], first
    for repeats, oup in zip(REPEATS, stages):
        for i in range(repeats):
            units.append((len(units), inp if i == 0 else inp // 2, oup, oup // 2, 2 if i == 0 else 1))
            inp = oup
    return units


def megvii_state_dict(size, *, num_classes=1000, counters=True, seed=0):
    """Random weights in Megvii's key layout, with BatchNorm statistics far from identity. ``size`` is
    one of Megvii's model sizes or a tuple of channels (first conv, stages 2-4, conv_last)."""
    channels = MEGVII_SIZES[size] if isinstance(size, str) else size
    gen = torch.Generator().manual_seed(seed)
    state = {}

    def conv(key, out, inp, k):
        state[f"{key}.weight"] = torch.randn(out, inp, k, k, generator=gen) * (1.0 / (inp * k * k)) ** 0.5

    def bn(key, c):
        state[f"{key}.weight"] = torch.rand(c, generator=gen) + 0.5
        state[f"{key}.bias"] = torch.randn(c, generator=gen) * 0.1
        state[f"{key}.running_mean"] = torch.randn(c, generator=gen) * 0.1
        state[f"{key}.running_var"] = torch.rand(c, generator=gen) + 0.5
        if counters:
            state[f"{key}.num_batches_tracked"] = torch.tensor(1000)

    first, *_, last = channels
    conv("first_conv.0", first, 3, 3), bn("first_conv.1", first)
    for n, inp, oup, mid, stride in megvii_units(channels):
        p = f"features.{n}"
        conv(f"{p}.branch_main.0", mid, inp, 1), bn(f"{p}.branch_main.1", mid)
        conv(f"{p}.branch_main.3", mid, 1, 3), bn(f"{p}.branch_main.4", mid)
        conv(f"{p}.branch_main.5", oup - inp, mid, 1), bn(f"{p}.branch_main.6", oup - inp)
        if stride == 2:
            conv(f"{p}.branch_proj.0", inp, 1, 3), bn(f"{p}.branch_proj.1", inp)
            conv(f"{p}.branch_proj.2", inp, inp, 1), bn(f"{p}.branch_proj.3", inp)
    conv("conv_last.0", last, channels[3], 1), bn("conv_last.1", last)
    state["classifier.0.weight"] = torch.randn(num_classes, last, generator=gen) * last**-0.5  # no bias
    return state


def megvii_reference_forward(state, x):
    """Megvii's v2 forward: no shuffle after the concat; a stride-1 unit keeps the even channels and
    transforms the odd ones; global average pool (its AvgPool2d(7) at 224x224); classifier without bias."""

    def cbr(key, x, stride=1, relu=True):
        w = state[f"{key[0]}.{key[1]}.weight"]
        groups = x.shape[1] if w.shape[1] == 1 else 1
        x = F.conv2d(x, w, None, stride, w.shape[-1] // 2, 1, groups)
        b = f"{key[0]}.{key[1] + 1}"
        x = F.batch_norm(
            x,
            state[f"{b}.running_mean"],
            state[f"{b}.running_var"],
            state[f"{b}.weight"],
            state[f"{b}.bias"],
            False,
            0.0,
            1e-5,
        )
        return F.relu(x) if relu else x

    def even_odd(x):
        return x[:, 0::2], x[:, 1::2]

    x = F.max_pool2d(cbr(("first_conv", 0), x, 2), 3, 2, 1)
    n = 0
    while f"features.{n}.branch_main.0.weight" in state:
        p = f"features.{n}"
        stride = 2 if f"{p}.branch_proj.0.weight" in state else 1
        if stride == 2:
            proj = cbr((f"{p}.branch_proj", 2), cbr((f"{p}.branch_proj", 0), x, 2, relu=False))
            main_in = x
        else:
            proj, main_in = even_odd(x)
        y = cbr((f"{p}.branch_main", 0), main_in)
        y = cbr((f"{p}.branch_main", 3), y, stride, relu=False)
        x = torch.cat((proj, cbr((f"{p}.branch_main", 5), y)), 1)
        n += 1
    x = cbr(("conv_last", 0), x).mean([2, 3])
    return F.linear(x, state["classifier.0.weight"])


def save_megvii(path, state):
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)  # as Megvii's train.py saves
    return path


def test_reference_even_odd_split_matches_megvii_published_shuffle():
    """The reference's split is Megvii's channel_shuffle (reshape to pairs, permute, take [0] and [1])."""
    x = torch.randn(2, 8, 3, 3)
    b, c, h, w = x.shape
    pairs = x.reshape(b * c // 2, 2, h * w).permute(1, 0, 2).reshape(2, -1, c // 2, h, w)
    assert torch.equal(pairs[0], x[:, 0::2]) and torch.equal(pairs[1], x[:, 1::2])


@pytest.mark.parametrize("counters", [True, False], ids=["with-counters", "without-counters"])
def test_megvii_v2_0_5x_loads_and_gives_megvii_outputs(tmp_path, counters):
    state = megvii_state_dict("0.5x", counters=counters)
    loaded = load_checkpoint(save_megvii(tmp_path / "ShuffleNetV2.0.5x.pth.tar", state))
    assert (loaded.meta.model, loaded.meta.num_classes, loaded.layout) == ("shufflenet_v2_x0_5", 1000, "megvii")
    assert torch.equal(loaded.model.fc.bias, torch.zeros(1000))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = megvii_reference_forward(state, x)
        got = loaded.model(x)
    assert expected.abs().max() > 0.1  # a real signal, not everything near zero
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4), (got - expected).abs().max()


def test_megvii_v2_0_5x_with_other_class_count_at_224(tmp_path):
    """At 224x224 Megvii's AvgPool2d(7) is exactly the global average the reference takes."""
    state = megvii_state_dict("0.5x", num_classes=10, seed=3)
    loaded = load_checkpoint(save_megvii(tmp_path / "ten.pth.tar", state), num_classes=10)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = megvii_reference_forward(state, x)
        assert torch.allclose(loaded.model(x), expected, atol=1e-4, rtol=1e-4)


def test_permutation_matters(tmp_path):
    """Loading Megvii's weights by renaming alone (no permutation) gives other outputs: the test can fail."""
    state = megvii_state_dict("0.5x")
    loaded = load_checkpoint(save_megvii(tmp_path / "m.pth.tar", state))
    renamed = {}
    for key, value in loaded.model.state_dict().items():
        megvii_key = (
            key.replace("conv1.", "first_conv.")
            .replace("conv5.", "conv_last.")
            .replace("fc.weight", "classifier.0.weight")
            .replace("branch1", "branch_proj")
            .replace("branch2", "branch_main")
        )
        for stage, first in (("stage2.", 0), ("stage3.", 4), ("stage4.", 12)):
            if megvii_key.startswith(stage):
                unit, rest = megvii_key[len(stage) :].split(".", 1)
                megvii_key = f"features.{first + int(unit)}.{rest}"
        renamed[key] = state.get(megvii_key, value)
    loaded.model.load_state_dict(renamed)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(loaded.model(x), megvii_reference_forward(state, x), atol=1e-2)


@pytest.mark.parametrize(
    "channels",
    [(58, 116, 232, 464, 64), (88, 176, 352, 704, 64), (122, 244, 488, 976, 64)],
    ids=["1.0x-stages", "1.5x-stages", "2.0x-stages"],
)
def test_channel_bookkeeping_holds_at_the_wider_stage_widths(channels):
    """Megvii's code built with a first conv half as wide as stage 2 has torchvision's split at every
    unit; then widths like 116 (a quarter of 29) convert exactly too, so the permutation is general."""
    state = megvii_state_dict(channels, num_classes=7, seed=5)
    model = ShuffleNetV2(channels, num_classes=7)
    model.load_state_dict(convert_megvii_v2(state))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), megvii_reference_forward(state, x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "size,name",
    [
        ("1.0x", "shufflenet_v2_x1_0_megvii"),
        ("1.5x", "shufflenet_v2_x1_5_megvii"),
        ("2.0x", "shufflenet_v2_x2_0_megvii"),
    ],
)
def test_wider_megvii_v2_loads_in_its_own_layout_and_gives_megvii_outputs(tmp_path, size, name):
    """From 1.0x up Megvii's first stage-2 unit is 24 (projection) + the rest (main), torchvision's is
    half + half: no permutation bridges that, so the file loads as it is into the *_megvii variant."""
    state = megvii_state_dict(size, num_classes=10, counters=False, seed=3)
    loaded = load_checkpoint(save_megvii(tmp_path / f"ShuffleNetV2.{size}.pth.tar", state))
    assert (loaded.meta.model, loaded.meta.num_classes, loaded.layout) == (name, 10, "megvii")
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), megvii_reference_forward(state, x), atol=1e-4, rtol=1e-4)


def test_wider_megvii_v2_asked_as_the_torchvision_variant_names_the_megvii_one(tmp_path):
    path = save_megvii(tmp_path / "ShuffleNetV2.1.0x.pth.tar", megvii_state_dict("1.0x", counters=False))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, model="shufflenet_v2_x1_0")
    message = info.value.one_line()
    assert "holds shufflenet_v2_x1_0_megvii, not shufflenet_v2_x1_0" in message and "\n" not in message


def test_megvii_checkpoint_asked_as_another_width_names_what_it_holds(tmp_path):
    path = save_megvii(tmp_path / "ShuffleNetV2.0.5x.pth.tar", megvii_state_dict("0.5x", counters=False))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, model="shufflenet_v2_x1_0")
    message = info.value.one_line()
    assert "holds shufflenet_v2_x0_5, not shufflenet_v2_x1_0" in message
    assert "\n" not in message and "size mismatch" not in message


def test_other_megvii_families_are_refused_in_one_line(tmp_path):
    """ShuffleNetV2+ / OneShot use the same key names with 5x5 and 7x7 kernels and extra layers."""
    state = megvii_state_dict("0.5x", counters=False)
    state["features.5.branch_main.3.weight"] = torch.randn(48, 1, 5, 5)
    state["LastSE.SE_opr.1.weight"] = torch.randn(256, 1024, 1, 1)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(save_megvii(tmp_path / "plus.pth.tar", state))
    message = info.value.one_line()
    assert "features.5.branch_main.3" in message and "not v2+" in message and "\n" not in message
