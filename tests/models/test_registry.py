import pytest
import torch

from shufflekit.errors import UsageError
from shufflekit.models import get_model, list_models, model_spec
from shufflekit.models.registry import ModelSpec, register

ALL = [spec.name for spec in list_models()]


def test_registry_has_every_paper_variant():
    names = set(ALL)
    for width in ("x0_5", "x1_0", "x1_5", "x2_0"):
        assert f"shufflenet_v2_{width}" in names
    for groups in (1, 2, 3, 4, 8):
        for width in ("x0_25", "x0_5", "x1_0", "x1_5", "x2_0"):
            assert f"shufflenet_v1_g{groups}_{width}" in names
    for width in ("x1_0", "x1_5", "x2_0"):  # Megvii's official layout, for its published checkpoints
        assert f"shufflenet_v2_{width}_megvii" in names
    for width in ("x0_5", "x1_0", "x1_5", "x2_0"):  # v2*, section 4 of seed 000
        assert f"shufflenet_v2_{width}_star" in names
    assert {"shufflenet_v2_x2_0_se", "shufflenet_v2_50", "shufflenet_v2_164_se"} <= names  # Tables 8 and 6
    assert len(names) == 4 + 25 + 3 + 4 + 3


def test_megvii_layout_variants_export_as_static_at_most_4d_operations():
    """The even/odd split of Megvii's unit is two constant stride-2 slices: no Shape-dependent op, no 5-D."""
    import io

    import onnx

    model = get_model("shufflenet_v2_x1_0_megvii", num_classes=5).eval()
    buffer = io.BytesIO()
    torch.onnx.export(model, (torch.randn(1, 3, 64, 64),), buffer, opset_version=17, dynamo=False)
    graph = onnx.shape_inference.infer_shapes(onnx.load_from_string(buffer.getvalue())).graph
    assert not {"Shape", "Gather", "Split"} & {node.op_type for node in graph.node}
    ranks = [len(v.type.tensor_type.shape.dim) for v in graph.value_info]
    assert ranks and max(ranks) <= 4


@pytest.mark.parametrize("name", ALL)
def test_every_variant_builds_and_runs(name):
    model = get_model(name, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("size", [96, 128, 160, 320])
def test_any_multiple_of_32_input(size):
    model = get_model("shufflenet_v2_x0_5", num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, 3)


def test_unknown_model_is_a_usage_error_with_a_suggestion():
    with pytest.raises(UsageError, match="unknown model 'shufflenet_v2_x3'.*did you mean"):
        model_spec("shufflenet_v2_x3")


def test_duplicate_registration_is_refused():
    spec = list_models()[0]
    with pytest.raises(ValueError, match="registered twice"):
        register(ModelSpec(spec.name, spec.family, spec.width, spec.groups, spec.build))


def test_num_classes_must_be_positive():
    with pytest.raises(UsageError):
        get_model("shufflenet_v2_x0_5", num_classes=0)
