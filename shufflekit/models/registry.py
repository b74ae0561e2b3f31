"""Every model variant by name. A variant is data: a row of (family, width, groups) and a builder.

The rows come from ``tables`` and the builders import their module (and torch) when called: naming and
checking a model loads nothing heavy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UsageError
from .tables import V1_GROUPS, V1_WIDTHS, V2_ARCHS, V2_STAGE_CHANNELS

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # "v1" or "v2"
    width: float | None  # the width multiplier; None for the large models, whose widths are their own
    groups: int | None
    build: Callable[..., nn.Module]
    # What differs from the family's main table (v1's Table 1, v2's Table 5): "" nothing; "megvii" the
    # key layout; "se", "star", "large" the v2 paper's other networks (shufflenet_v2_variants.py).
    variant: str = ""

    def __call__(self, *, num_classes: int = 1000) -> nn.Module:
        if num_classes < 1:
            raise UsageError(f"num_classes must be at least 1, got {num_classes}")
        return self.build(num_classes=num_classes)


_REGISTRY: dict[str, ModelSpec] = {}


def _width_tag(width: float) -> str:
    return f"x{width:.2f}".rstrip("0").replace(".", "_") if width < 1 else f"x{width:.1f}".replace(".", "_")


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _v2_builder(width: float) -> Callable[..., nn.Module]:
    def build(*, num_classes: int) -> nn.Module:
        from .shufflenet_v2 import shufflenet_v2

        return shufflenet_v2(width=width, num_classes=num_classes)

    return build


def _v2_megvii_builder(width: float) -> Callable[..., nn.Module]:
    def build(*, num_classes: int) -> nn.Module:
        from .shufflenet_v2_megvii import shufflenet_v2_megvii

        return shufflenet_v2_megvii(width=width, num_classes=num_classes)

    return build


def _v2_variant_builder(name: str) -> Callable[..., nn.Module]:
    def build(*, num_classes: int) -> nn.Module:
        from .shufflenet_v2_variants import shufflenet_v2_variant

        return shufflenet_v2_variant(V2_ARCHS[name], num_classes=num_classes)

    return build


def _v1_builder(groups: int, width: float) -> Callable[..., nn.Module]:
    def build(*, num_classes: int) -> nn.Module:
        from .shufflenet_v1 import shufflenet_v1

        return shufflenet_v1(groups=groups, width=width, num_classes=num_classes)

    return build


for _width in V2_STAGE_CHANNELS:
    register(ModelSpec(f"shufflenet_v2_{_width_tag(_width)}", "v2", _width, None, _v2_builder(_width)))
# Megvii's official layout, for its published checkpoints: from 1.0x up it cannot be converted to the
# torchvision layout (see shufflenet_v2_megvii.py); its 0.5x converts exactly, so it has no entry here.
for _width in (1.0, 1.5, 2.0):
    register(
        ModelSpec(
            f"shufflenet_v2_{_width_tag(_width)}_megvii", "v2", _width, None, _v2_megvii_builder(_width), "megvii"
        )
    )
# The v2 paper's other networks: Appendix Table 2's large models, Table 8's 2x with SE, section 4's v2*.
for _width in V2_STAGE_CHANNELS:
    register(
        ModelSpec(
            f"shufflenet_v2_{_width_tag(_width)}_star",
            "v2",
            _width,
            None,
            _v2_variant_builder(f"shufflenet_v2_{_width_tag(_width)}_star"),
            "star",
        )
    )
register(ModelSpec("shufflenet_v2_x2_0_se", "v2", 2.0, None, _v2_variant_builder("shufflenet_v2_x2_0_se"), "se"))
for _name in ("shufflenet_v2_50", "shufflenet_v2_164_se"):
    register(ModelSpec(_name, "v2", None, None, _v2_variant_builder(_name), "large"))
for _groups in V1_GROUPS:
    for _width in V1_WIDTHS:
        register(
            ModelSpec(
                f"shufflenet_v1_g{_groups}_{_width_tag(_width)}", "v1", _width, _groups, _v1_builder(_groups, _width)
            )
        )


def list_models() -> list[ModelSpec]:
    return list(_REGISTRY.values())


def model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        near = [n for n in _REGISTRY if name and (name in n or n.startswith(name[:14]))][:4]
        hint = f"did you mean {', '.join(near)}?" if near else "run `shufflekit models` for the list"
        raise UsageError(f"unknown model {name!r}", hint=hint) from None


def get_model(name: str, *, num_classes: int = 1000) -> nn.Module:
    """Build a freshly initialised model by registry name, e.g. ``get_model("shufflenet_v2_x1_0")``."""
    return model_spec(name)(num_classes=num_classes)
