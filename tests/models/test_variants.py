"""The v2 paper's other networks (seed 000): Appendix Table 2's large models, Table 8's 2x with SE and
section 4's ShuffleNet v2*: their layout, where SE, the residual add and the extra depthwise sit, and that
every kind of unit they are made of exports static, at most 4-D and at parity to ONNX (and, for SE with
residual, to TFLite).

The SE and large models take from seconds to a minute each to export (533 MB of weights for v2-164), so
the export tests run narrow stand-ins with the same stem, stage layout and units (``TOY_ARCHS``), and
``test_every_registered_unit_kind_is_exported_here`` checks that no registered network holds a unit kind
these exports did not cover."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shufflekit.metadata import ModelMeta, Preprocessing
from shufflekit.models import get_model
from shufflekit.models.complexity import model_complexity
from shufflekit.models.shufflenet_v2_variants import (
    ShuffleNetV2Variant,
    SqueezeExcite,
    VariantV2Unit,
    shufflenet_v2_variant,
)
from shufflekit.models.tables import V2_ARCHS, V2Arch

SIZE, CLASSES = 64, 10
# Narrow stand-ins for Appendix Table 2's networks: same stem, stride-1 first stage, four stages, switches.
TOY_ARCHS = {
    "v2-50 shape": V2Arch((16,), (32, 64, 128, 256), (2, 2, 2, 2), 256, first_stage_stride=1),
    "SE v2-164 shape": V2Arch(
        (16, 16, 32), (32, 64, 128, 256), (2, 2, 2, 2), 256, first_stage_stride=1, se=True, residual=True
    ),
    "SE v2 2x shape": V2Arch((16,), (32, 64, 128), (2, 2, 2), 256, se=True),  # Table 5's layout with SE
}
EXPORTED_REGISTERED = ("shufflenet_v2_x0_5_star",)


def _units(model: torch.nn.Module) -> list[VariantV2Unit]:
    return [m for m in model.modules() if isinstance(m, VariantV2Unit)]


def _stage_outputs(model: ShuffleNetV2Variant, size: int = 224) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for child in ("conv1", *model.stage_names, model.last_name):
        getattr(model, child).register_forward_hook(lambda m, a, out, child=child: shapes.update({child: out.shape}))
    with torch.device("meta"):
        model(torch.zeros(1, 3, size, size))
    return {k: tuple(v[1:]) for k, v in shapes.items()}


def test_large_models_follow_appendix_table_2():
    with torch.device("meta"):
        v2_50, v2_164 = get_model("shufflenet_v2_50").eval(), get_model("shufflenet_v2_164_se").eval()
    assert _stage_outputs(v2_50) == {
        "conv1": (64, 112, 112),
        "stage2": (244, 56, 56),  # conv2_x runs at 56x56: downsampling is done by conv3_1, conv4_1, conv5_1
        "stage3": (488, 28, 28),
        "stage4": (976, 14, 14),
        "stage5": (1952, 7, 7),
        "conv6": (2048, 7, 7),
    }
    # v2-164 has v2-50's layout (its forward on the meta device alone takes seconds): strides and widths.
    assert [m.stride for m in v2_164.conv1 if isinstance(m, torch.nn.Conv2d)] == [(2, 2), (1, 1), (1, 1)]
    assert [m.out_channels for m in v2_164.conv1 if isinstance(m, torch.nn.Conv2d)] == [64, 64, 128]
    assert [getattr(v2_164, s)[0].stride for s in v2_164.stage_names] == [1, 2, 2, 2]
    last_convs = [
        [m for m in getattr(v2_164, s)[-1].branch2 if isinstance(m, torch.nn.Conv2d)][-1] for s in v2_164.stage_names
    ]
    assert [conv.out_channels * 2 for conv in last_convs] == [340, 680, 1360, 2720]
    assert v2_164.conv6[0].out_channels == 2048
    assert [len(getattr(v2_50, s)) for s in v2_50.stage_names] == [3, 4, 6, 3]
    assert [len(getattr(v2_164, s)) for s in v2_164.stage_names] == [10, 10, 23, 10]
    assert [m.kernel_size for m in v2_164.conv1 if isinstance(m, torch.nn.Conv2d)] == [(3, 3)] * 3
    for stage, width in zip(v2_164.stage_names, (340, 680, 1360, 2720)):  # SE: 1/2 of the block's channels
        assert {u.se.reduce.out_channels for u in getattr(v2_164, stage) if u.se is not None} == {width // 2}
    assert all(u.se is not None for u in _units(v2_164))
    assert sum(u.residual for u in _units(v2_164)) == 53 - 4  # every unit but the first of each stage
    assert not any(u.se is not None or u.residual for u in _units(v2_50))


def test_se_sits_before_the_residual_add_relu():
    """Fig. 2c: out = relu(x + SE(branch(x))). With SE's gate shut (sigmoid -> 0) a residual unit passes
    its transformed half through unchanged; were SE after the add, that half would be zeroed."""
    torch.manual_seed(0)
    unit = VariantV2Unit(16, 16, 1, project=False, se=True, residual=True).eval()
    assert isinstance(unit.se, SqueezeExcite) and unit.se.reduce.out_channels == 8  # 1/2 of the block's 16
    with torch.no_grad():
        unit.se.expand.weight.zero_()
        unit.se.expand.bias.fill_(-100.0)
        x = torch.rand(1, 16, 8, 8)  # non-negative, as every unit's input is (it follows a ReLU)
        out = unit(x)
        plain = VariantV2Unit(16, 16, 1, project=False).eval()
        shuffled_identity = torch.cat((x[:, :8], x[:, 8:]), 1).reshape(1, 2, 8, 64).transpose(1, 2).reshape(x.shape)
    assert torch.allclose(out, shuffled_identity)
    assert not torch.allclose(plain(x), shuffled_identity)


def _receptive_field(unit: torch.nn.Module) -> int:
    x = torch.rand(1, 16, 15, 15, requires_grad=True)
    unit.eval()(x)[0, 1::2, 7, 7].sum().backward()  # the transformed channels (odd after the shuffle), centre
    assert x.grad is not None
    rows = x.grad.abs().sum((0, 1, 3)).nonzero()
    return int(rows.max() - rows.min() + 1)


def test_star_unit_sees_5x5_where_the_plain_unit_sees_3x3():
    """Section 4: v2* enlarges the receptive field with a 3x3 depthwise before the first 1x1."""
    torch.manual_seed(0)
    assert _receptive_field(VariantV2Unit(16, 16, 1, project=False)) == 3
    assert _receptive_field(VariantV2Unit(16, 16, 1, project=False, extra_depthwise=True)) == 5


@pytest.mark.parametrize("width", ["x0_5", "x1_0", "x1_5", "x2_0"])
def test_star_adds_exactly_its_depthwise_convolutions(width):
    """v2* costs "only a few additional FLOPs": exactly 9*c*h*w per added depthwise convolution."""
    name = f"shufflenet_v2_{width}_star"
    with torch.device("meta"):
        model = get_model(name)
        added = []
        for unit in _units(model):
            unit.branch2[0].register_forward_hook(lambda m, a, out: added.append(9 * out[0].numel()))
        model(torch.zeros(1, 3, 224, 224))
    extra = model_complexity(name).mult_adds - model_complexity(f"shufflenet_v2_{width}").mult_adds
    assert extra == sum(added) and 0 < extra < 0.07 * model_complexity(name).mult_adds


def _seeded(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """BatchNorm far from identity, so a dropped or misplaced layer shows in the logits."""
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.empty(n).uniform_(0.5, 1.5, generator=generator)
            m.bias.data = torch.empty(n).normal_(0.0, 0.25, generator=generator)
            m.running_mean = torch.empty(n).normal_(0.0, 0.2, generator=generator)
            m.running_var = torch.empty(n).uniform_(0.5, 2.0, generator=generator)
    return model.eval()


EXPORTED = [*EXPORTED_REGISTERED, *TOY_ARCHS]


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = (
        shufflenet_v2_variant(TOY_ARCHS[name], num_classes=CLASSES)
        if name in TOY_ARCHS
        else get_model(name, num_classes=CLASSES)
    )
    return _seeded(model)


@pytest.fixture(scope="module")
def images():
    from shufflekit.export.reference import reference_inputs

    return reference_inputs(4, Preprocessing.for_size(SIZE), seed=5)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, images):
    """Each exported model: (its torch logits on ``images``, its ONNX file)."""
    from shufflekit.export.onnx import export_onnx

    folder = tmp_path_factory.mktemp("variants")
    made = {}
    for index, name in enumerate(EXPORTED):
        model = _model(name)
        meta = ModelMeta(model=name, num_classes=CLASSES, preprocessing=Preprocessing.for_size(SIZE))
        with torch.no_grad():
            logits = model(torch.from_numpy(images)).numpy()
        made[name] = (logits, export_onnx(model, meta, folder / f"m{index}.onnx").path)
    return made


def _judged(fmt: str, reference: np.ndarray, outputs: np.ndarray) -> list[str]:
    from shufflekit.validate.metrics import compare, judge
    from shufflekit.validate.tolerances import tolerance_for

    return judge(compare(reference, outputs), tolerance_for(fmt, "fp32"))


@pytest.mark.parametrize("name", EXPORTED)
def test_onnx_export_is_static_at_most_4d_and_at_parity(exported, images, name):
    import onnx

    from shufflekit.runtimes import load_session

    logits, path = exported[name]
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True).graph
    ops = {node.op_type for node in graph.node}
    assert not {"Shape", "Gather"} & ops
    ranks = [len(v.type.tensor_type.shape.dim) for v in graph.value_info]
    assert ranks and max(ranks) <= 4
    if name.endswith("_se") or name.startswith("SE"):
        assert {"GlobalAveragePool", "Sigmoid", "Mul"} <= ops
    assert ("Add" in ops) == ("164" in name)  # only the residual adds (BatchNorm is folded into the convs)
    session = load_session(path)
    try:
        outputs = np.asarray(session.predict_all(images))
    finally:
        session.close()
    assert _judged("onnx", logits, outputs) == []


@pytest.mark.slow
def test_se_with_residual_converts_to_tflite_at_parity(exported, images, tmp_path):
    """The structure the big models add: SE (pool, two 1x1 convolutions, sigmoid, multiply) and the
    residual add-ReLU, through onnx2tf to a 4-D TFLite graph run by LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    from shufflekit.export.tflite import TFLiteTarget, convert_to_tflite
    from shufflekit.runtimes import load_session

    logits, onnx_path = exported["SE v2-164 shape"]
    path = convert_to_tflite(onnx_path, [TFLiteTarget("fp32", tmp_path / "se.tflite")]).results[0].path
    assert max(len(t["shape"]) for t in Interpreter(model_path=str(path)).get_tensor_details()) <= 4
    session = load_session(path, layout="NHWC")
    try:
        outputs = np.asarray(session.predict_all(images))
    finally:
        session.close()
    assert _judged("tflite", logits, outputs) == []


def test_every_registered_unit_kind_is_exported_here():
    """No registered network holds a kind of unit (or stem) the export tests above did not cover."""
    covered: set[tuple[str, ...]] = set()
    stems: set[int] = set()
    with torch.device("meta"):
        for name in EXPORTED:
            model = get_model(name) if name in V2_ARCHS else ShuffleNetV2Variant(TOY_ARCHS[name])
            covered |= {u.kind for u in _units(model)}
            stems.add(len(model.conv1))
        for name in V2_ARCHS:
            model = get_model(name)
            assert {u.kind for u in _units(model)} <= covered, name
            assert len(model.conv1) in stems, name
