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
    assert len(names) == 4 + 25


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
