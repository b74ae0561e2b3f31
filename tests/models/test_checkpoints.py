import os

import pytest
import torch
import torch.nn.functional as F

from shufflekit.errors import CheckpointError, UsageError
from shufflekit.metadata import InputSize, ModelMeta, Preprocessing
from shufflekit.models import get_model, list_models
from shufflekit.models.checkpoints import _signature, identify_variant, load_checkpoint, save_checkpoint

# Published torchvision parameter counts (torchvision.models.ShuffleNet_V2_*_Weights meta["num_params"]).
TORCHVISION_NUM_PARAMS = {
    "shufflenet_v2_x0_5": 1366792,
    "shufflenet_v2_x1_0": 2278604,
    "shufflenet_v2_x1_5": 3503624,
    "shufflenet_v2_x2_0": 7393996,
}


def _trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """Give BatchNorm non-trivial statistics so a wrong layout cannot hide behind identity BN."""
    gen = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
    return model.eval()


def torchvision_reference_forward(state, x):
    """torchvision's ShuffleNetV2 forward written from its source, over a bare state dict: 5-D
    view/transpose shuffle, chunk split, mean pooling. Independent of shufflekit's modules."""

    def cbr(prefix, idx, x, stride=1, groups=1, relu=True):
        w = state[f"{prefix}.{idx}.weight"]
        x = F.conv2d(x, w, None, stride, w.shape[-1] // 2, 1, groups)
        bn = f"{prefix}.{idx + 1}"
        x = F.batch_norm(
            x,
            state[f"{bn}.running_mean"],
            state[f"{bn}.running_var"],
            state[f"{bn}.weight"],
            state[f"{bn}.bias"],
            False,
            0.0,
            1e-5,
        )
        return F.relu(x) if relu else x

    def shuffle(x, groups):
        b, c, h, w = x.shape
        return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)

    x = F.max_pool2d(cbr("conv1", 0, x, 2), 3, 2, 1)
    for stage in (2, 3, 4):
        unit = 0
        while f"stage{stage}.{unit}.branch2.0.weight" in state:
            p = f"stage{stage}.{unit}"
            if unit == 0:
                c = x.shape[1]
                b1 = cbr(f"{p}.branch1", 2, cbr(f"{p}.branch1", 0, x, 2, groups=c, relu=False))
                b2_in = x
            else:
                b1, b2_in = x.chunk(2, dim=1)
            mid = state[f"{p}.branch2.0.weight"].shape[0]
            y = cbr(f"{p}.branch2", 0, b2_in)
            y = cbr(f"{p}.branch2", 3, y, 2 if unit == 0 else 1, groups=mid, relu=False)
            y = cbr(f"{p}.branch2", 5, y)
            x = shuffle(torch.cat((b1, y), 1), 2)
            unit += 1
    x = cbr("conv5", 0, x).mean([2, 3])
    return F.linear(x, state["fc.weight"], state["fc.bias"])


@pytest.mark.parametrize("name", sorted(TORCHVISION_NUM_PARAMS))
def test_v2_has_torchvision_key_layout(name):
    model = get_model(name)
    state = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_NUM_PARAMS[name]
    for key in (
        "conv1.0.weight",
        "conv1.1.running_var",
        "stage2.0.branch1.0.weight",
        "stage2.0.branch1.2.weight",
        "stage2.0.branch2.0.weight",
        "stage2.0.branch2.3.weight",
        "stage2.0.branch2.5.weight",
        "stage2.1.branch2.0.weight",
        "stage4.3.branch2.6.running_mean",
        "conv5.0.weight",
        "fc.weight",
        "fc.bias",
    ):
        assert key in state, key
    assert not any(k.startswith("stage2.1.branch1") for k in state)  # stride-1 units have an empty branch1


def test_torchvision_checkpoint_loads_unchanged_and_gives_same_outputs(tmp_path):
    source = _trained_like(get_model("shufflenet_v2_x0_5", num_classes=1000))
    path = tmp_path / "shufflenetv2_x0.5.pth"
    torch.save(source.state_dict(), path)  # what torchvision's weights file holds: a bare state dict
    loaded = load_checkpoint(path)
    assert (loaded.meta.model, loaded.meta.num_classes, loaded.layout) == ("shufflenet_v2_x0_5", 1000, "torchvision")
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = torchvision_reference_forward(torch.load(path, weights_only=True), x)
        assert torch.allclose(loaded.model(x), expected, atol=1e-4, rtol=1e-4)


def test_shufflekit_checkpoint_round_trip_keeps_weights_and_metadata(tmp_path):
    model = _trained_like(get_model("shufflenet_v1_g3_x0_5", num_classes=5))
    meta = ModelMeta(
        "shufflenet_v1_g3_x0_5",
        5,
        Preprocessing.for_size(96, mean=(0.5, 0.5, 0.5)),
        labels=("a", "b", "c", "d", "e"),
        training={"epochs": 3},
    )
    path = tmp_path / "ck.pt"
    save_checkpoint(path, model, meta, epoch=3)
    loaded = load_checkpoint(path)
    assert loaded.meta == meta and loaded.layout == "shufflekit" and loaded.extra == {"epoch": 3}
    assert not loaded.model.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it


def test_megvii_container_layout_is_accepted(tmp_path):
    model = _trained_like(get_model("shufflenet_v1_g8_x0_5", num_classes=1000))
    path = tmp_path / "megvii.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    loaded = load_checkpoint(path, model="shufflenet_v1_g8_x0_5")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    assert loaded.layout == "megvii"


def test_every_variant_has_a_distinct_signature():
    signatures = [_signature(spec.name) for spec in list_models()]
    assert len(set(signatures)) == len(signatures)


def test_variant_is_identified_from_weights_alone():
    state = get_model("shufflenet_v1_g2_x1_5", num_classes=12).state_dict()
    assert identify_variant(state) == ("shufflenet_v1_g2_x1_5", 12)


def test_pickled_code_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "hook": Payload()}, path)
    with pytest.raises(CheckpointError, match="carries pickled code.*refused and not executed"):
        load_checkpoint(path)
    assert not marker.exists()


def test_other_variant_names_the_variant_it_matches(tmp_path):
    path = tmp_path / "x1.pt"
    torch.save(get_model("shufflenet_v2_x1_0").state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, model="shufflenet_v2_x0_5")
    message = info.value.one_line()
    assert "holds shufflenet_v2_x1_0, not shufflenet_v2_x0_5" in message
    assert "\n" not in message and "size mismatch" not in message


def test_other_class_count_is_one_line(tmp_path):
    path = tmp_path / "ten.pt"
    torch.save(get_model("shufflenet_v2_x0_5", num_classes=10).state_dict(), path)
    with pytest.raises(CheckpointError, match="has 10 classes, not 1000"):
        load_checkpoint(path, num_classes=1000)


@pytest.mark.parametrize("damage", ["missing", "truncated", "empty", "folder", "garbage", "unknown-layout"])
def test_bad_checkpoint_files_are_one_line_errors(tmp_path, damage):
    good = tmp_path / "good.pt"
    torch.save(get_model("shufflenet_v2_x0_5").state_dict(), good)
    path = tmp_path / "bad.pt"
    if damage == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "folder":
        path.mkdir()
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all" * 10)
    elif damage == "unknown-layout":
        torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "\n" not in info.value.one_line()
    assert str(path) in info.value.one_line()


def test_an_input_size_below_32_is_refused_and_any_other_side_is_taken(tmp_path):
    path = tmp_path / "m.pt"
    torch.save(get_model("shufflenet_v2_x0_5").state_dict(), path)
    with pytest.raises(UsageError, match="100x20 has a side below 32 px: the nearest size the networks take is 100x32"):
        load_checkpoint(path, input_size=InputSize(height=20, width=100))
    assert load_checkpoint(path, input_size=InputSize(height=100, width=75)).meta.input_size == InputSize(100, 75)


# ------------------------------------------------------------------ issue 12: every bad file is one line


@pytest.fixture(scope="module")
def small_state():
    return get_model("shufflenet_v2_x0_5", num_classes=10).state_dict()


def _one_line_error(path, **kwargs) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, **kwargs)
    message = info.value.one_line()
    assert "\n" not in message and str(path) in message
    return message


def test_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello, this is a text file\n")  # torch.load raised KeyError(101) on it
    assert "is not a PyTorch checkpoint" in _one_line_error(path)


@pytest.mark.parametrize("head", [b"", b"\x80\x02", b"PK\x03\x04"], ids=["bare", "pickle-head", "zip-head"])
def test_random_bytes_are_damaged_not_pickled_code(tmp_path, head):
    import random

    path = tmp_path / "noise.pt"
    path.write_bytes(head + random.Random(0).randbytes(4096))
    message = _one_line_error(path)
    assert "pickled code" not in message
    assert "not a PyTorch checkpoint" in message or "damaged" in message


def test_fifo_is_refused_without_opening_it(tmp_path):
    path = tmp_path / "pipe.pt"
    os.mkfifo(path)  # opening it would block forever: nobody writes
    assert "is a FIFO, not a regular file" in _one_line_error(path)


def test_missing_key_is_named(tmp_path, small_state):
    path = tmp_path / "nobias.pt"
    torch.save({k: v for k, v in small_state.items() if k != "fc.bias"}, path)
    message = _one_line_error(path)
    assert "1 missing (fc.bias)" in message


def test_missing_and_unexpected_keys_are_named_with_counts(tmp_path, small_state):
    state = {k: v for k, v in small_state.items() if not k.startswith("conv5.")}
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    message = _one_line_error(path, model="shufflenet_v2_x0_5")
    assert "missing (conv5.0.weight" in message and "more)" in message
    assert "1 unexpected (extra.weight)" in message


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_infinite_weights_are_refused_naming_the_tensor(tmp_path, small_state, bad):
    state = {k: v.clone() for k, v in small_state.items()}
    state["stage3.1.branch2.0.weight"].view(-1)[5] = bad
    path = tmp_path / "diverged.pt"
    torch.save(state, path)
    message = _one_line_error(path)
    assert "NaN or infinite weights in stage3.1.branch2.0.weight" in message


@pytest.mark.parametrize("label", ["cat\nTrojan", "tab\there", "esc\x1b[31m", "   "])
def test_labels_with_control_characters_are_refused(tmp_path, small_state, label):
    meta = ModelMeta(model="shufflenet_v2_x0_5", num_classes=10, preprocessing=Preprocessing.for_size(64))
    data = meta.to_dict()
    data["labels"] = [f"c{i}" for i in range(9)] + [label]
    path = tmp_path / "labels.pt"
    torch.save({"format": "shufflekit.checkpoint/1", "meta": data, "state_dict": small_state}, path)
    message = _one_line_error(path)
    assert "label 9" in message and ("control character" in message or "empty" in message)


def test_absurd_class_count_in_metadata_is_refused(tmp_path, small_state):
    meta = ModelMeta(model="shufflenet_v2_x0_5", num_classes=10).to_dict()
    meta["num_classes"] = 10_000_000_000
    path = tmp_path / "huge.pt"
    torch.save({"format": "shufflekit.checkpoint/1", "meta": meta, "state_dict": small_state}, path)
    assert "num_classes must be an integer from 1 to 100,000" in _one_line_error(path)


def test_huge_num_classes_is_refused_before_a_model_is_built():
    from shufflekit.export.source import load_source

    with pytest.raises(UsageError, match="num_classes must be an integer from 1 to 100,000"):
        load_source(model="shufflenet_v2_x0_5", num_classes=10_000_000_000)


def test_folder_commands_never_hint_at_options_they_lack(tmp_path):
    """validate/evaluate/profile rebuild the model of a folder; they have no --model or --num-classes."""
    from shufflekit.export.source import rebuild_source

    other = tmp_path / "x1.pt"
    torch.save(get_model("shufflenet_v2_x1_0", num_classes=10).state_dict(), other)
    meta = ModelMeta(model="shufflenet_v2_x0_5", num_classes=10, preprocessing=Preprocessing.for_size(64))
    record = {"kind": "checkpoint", "checkpoint": "elsewhere.pt", "checkpoint_sha256": "0" * 64}
    with pytest.raises(UsageError) as info:
        rebuild_source(record, meta, checkpoint=other)
    message = info.value.one_line()
    assert "holds shufflenet_v2_x1_0 with 10 classes" in message and "exported from shufflenet_v2_x0_5" in message
    assert "--model" not in message and "--num-classes" not in message
