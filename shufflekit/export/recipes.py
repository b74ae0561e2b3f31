"""ONNX quantization recipes: which integer types, weight scales and ranges a file is made with, on which
CPU kernel families it holds, and the order an accuracy-aware fallback tries them in.

Why a recipe is not one size fits all (measured on the demo model, 359 validation images, ONNX Runtime
1.31 on x86 and 1.22 on ARM64; README "Quantize"):

- ONNX Runtime's x86 int8 kernels without VNNI (AVX2 ``vpmaddubsw``) add pairs of uint8 x int8
  products into int16 and saturate: full-range per-channel int8 weights lost 30 points of top-1 there
  (63.2% against 93.9%) while the same file scored 93.9% on ARM64 and on x86 with VNNI, whose dot
  products accumulate in 32 bits.
- 7-bit weights (``reduce_range``) keep every pair sum below 2^15 (2 x 255 x 64 < 32768), so the
  file computes the same on every kernel family: 94.2% on x86 without VNNI and on ARM64.
- ``ConvInteger`` (dynamic quantization of convolutions) has no kernel for int8 weights, nor for
  per-channel weights, on ARM64 builds of ONNX Runtime ("Could not find an implementation for
  ConvInteger(10)"); per-tensor uint8 weights load and run everywhere (94.4% on both).

So the default target, ``any``, takes the recipes that hold on x86 with and without VNNI and on ARM64;
``--target x86-vnni`` or ``--target arm64`` unlocks full-range 8-bit weights, recorded as valid only
there. Every file records its recipe's name, its settings, the kernel families it holds on and why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import UsageError

# Kernel families a quantized ONNX file may run on: ONNX Runtime picks its int8 kernels by these.
KERNEL_FAMILIES = ("x86-avx2", "x86-vnni", "arm64")
TARGETS = ("any",) + KERNEL_FAMILIES
DEFAULT_TARGET = "any"
_FAMILY_HELP = {
    "x86-avx2": "x86 without VNNI (AVX2: 16-bit pair sums saturate)",
    "x86-vnni": "x86 with AVX512-VNNI or AVX-VNNI (32-bit accumulation)",
    "arm64": "ARM64 (NEON / dot-product kernels, 32-bit accumulation)",
}


@dataclass(frozen=True)
class Recipe:
    """How one ONNX file is quantized. ``holds_on``: the kernel families whose int8 arithmetic does not
    change its results (no saturation, a kernel exists). ``exclude_nodes``: nodes kept in float (the
    fallback's last rung, chosen from a per-layer error report)."""

    name: str
    precision: str  # "int8" (static, QDQ) or "dynamic"
    activation_type: str  # uint8 | int8 (static only; dynamic activations are always uint8)
    weight_type: str  # int8 | uint8
    per_channel: bool
    reduce_range: bool
    holds_on: tuple[str, ...]
    why: str
    exclude_nodes: tuple[str, ...] = ()

    def valid_for(self, target: str) -> bool:
        return set(KERNEL_FAMILIES if target == "any" else (target,)) <= set(self.holds_on)

    def with_settings(
        self,
        *,
        per_channel: bool | None = None,
        reduce_range: bool | None = None,
        activation_type: str | None = None,
        weight_type: str | None = None,
    ) -> Recipe:
        """The recipe with the user's explicit settings; a changed recipe is named ``custom``, and it holds
        only where its arithmetic says it does."""
        changed: dict[str, Any] = {  # bool or str, each for the field of its name
            k: v
            for k, v in {
                "per_channel": per_channel,
                "reduce_range": reduce_range,
                "activation_type": activation_type,
                "weight_type": weight_type,
            }.items()
            if v is not None and getattr(self, k) != v
        }
        if not changed:
            return self
        custom = replace(self, name="custom", **changed)
        return replace(
            custom,
            holds_on=_families_for(custom),
            why="settings given by the user: " + ", ".join(f"{k}={v}" for k, v in changed.items()),
        )

    def with_float_nodes(self, nodes: tuple[str, ...], why: str) -> Recipe:
        return replace(self, name=f"{self.name}+float-layers", exclude_nodes=tuple(nodes), why=why)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.name,
            "activation_type": self.activation_type,
            "weight_type": self.weight_type,
            "per_channel": self.per_channel,
            "reduce_range": self.reduce_range,
            "holds_on": list(self.holds_on),
            "recipe_why": self.why,
            "nodes_kept_in_float": list(self.exclude_nodes),
        }


def _families_for(recipe: Recipe) -> tuple[str, ...]:
    """Where a set of settings holds, from the arithmetic of ONNX Runtime's CPU kernels."""
    families = ["x86-vnni"]
    # u8 x s8 pair sums saturate int16 without VNNI unless the weights are 7-bit; u8 x u8 goes
    # through a widening kernel that does not saturate.
    if recipe.weight_type == "uint8" or recipe.reduce_range:
        families.insert(0, "x86-avx2")
    # ONNX Runtime's ARM64 ConvInteger takes uint8 weights with one zero point per tensor only
    if not (recipe.precision == "dynamic" and (recipe.weight_type == "int8" or recipe.per_channel)):
        families.append("arm64")
    return tuple(f for f in KERNEL_FAMILIES if f in families)


_ALL = KERNEL_FAMILIES
STATIC_RECIPES = (
    Recipe(
        "portable",
        "int8",
        "uint8",
        "int8",
        per_channel=True,
        reduce_range=True,
        holds_on=_ALL,
        why="7-bit per-channel weights: no int16 saturation on x86 without VNNI, the same results on "
        "VNNI and ARM64 (demo: 94.2% on x86 AVX2 and ARM64)",
    ),
    Recipe(
        "per-tensor",
        "int8",
        "uint8",
        "int8",
        per_channel=False,
        reduce_range=True,
        holds_on=_ALL,
        why="one 7-bit scale per weight tensor: coarser, but cannot saturate anywhere",
    ),
    Recipe(
        "u8u8",
        "int8",
        "uint8",
        "uint8",
        per_channel=True,
        reduce_range=False,
        holds_on=_ALL,
        why="uint8 weights: ONNX Runtime's u8u8 kernels widen before adding, on every CPU "
        "(demo: 93.6% on x86 AVX2 and ARM64)",
    ),
    Recipe(
        "full-range",
        "int8",
        "uint8",
        "int8",
        per_channel=True,
        reduce_range=False,
        holds_on=("x86-vnni", "arm64"),
        why="8-bit per-channel weights: the most accurate where int8 dot products accumulate in 32 bits "
        "(VNNI, ARM64); saturates on x86 without VNNI (demo: 63.2%)",
    ),
)
DYNAMIC_RECIPES = (
    Recipe(
        "portable",
        "dynamic",
        "uint8",
        "uint8",
        per_channel=False,
        reduce_range=False,
        holds_on=_ALL,
        why="per-tensor uint8 weights: the one ConvInteger kernel every CPU has, ARM64 included (demo: 94.4% "
        "on x86 AVX2 and ARM64)",
    ),
    Recipe(
        "portable-7bit",
        "dynamic",
        "uint8",
        "uint8",
        per_channel=False,
        reduce_range=True,
        holds_on=_ALL,
        why="7-bit uint8 weights: a smaller range, for a model whose activations are wide",
    ),
    Recipe(
        "full-range",
        "dynamic",
        "uint8",
        "int8",
        per_channel=False,
        reduce_range=False,
        holds_on=("x86-vnni",),
        why="8-bit int8 weights: x86 with VNNI only; ONNX Runtime on ARM64 has no ConvInteger kernel for int8 "
        "weights, and 8-bit pair sums may saturate without VNNI",
    ),
)


def check_target(target: str) -> str:
    value = (target or DEFAULT_TARGET).strip().lower()
    if value not in TARGETS:
        raise UsageError(
            f"unknown --target {target!r}", hint=f"use any (every CPU) or one of {', '.join(KERNEL_FAMILIES)}"
        )
    return value


def ladder(precision: str, target: str = DEFAULT_TARGET) -> tuple[Recipe, ...]:
    """The recipes to try for ``precision`` on ``target``, in order: for one kernel family the fastest
    recipe valid there first (full-range where it holds), then the portable ones."""
    target = check_target(target)
    recipes = STATIC_RECIPES if precision == "int8" else DYNAMIC_RECIPES
    valid = [r for r in recipes if r.valid_for(target)]
    if target != "any":
        valid.sort(key=lambda r: (r.name != "full-range",))
    return tuple(valid)


def default_recipe(precision: str, target: str = DEFAULT_TARGET) -> Recipe:
    return ladder(precision, target)[0]


def family_description(family: str) -> str:
    return _FAMILY_HELP.get(family, family)


def kernel_family(facts: dict[str, Any]) -> str | None:
    """The kernel family of a device from its facts (machine, CPU flags); None where unknown."""
    machine = str(facts.get("machine") or "").lower()
    flags = {str(f).lower() for f in facts.get("cpu_flags") or ()}
    if machine in ("aarch64", "arm64") or machine.startswith("armv8"):
        return "arm64"
    if machine in ("x86_64", "amd64"):
        if facts.get("vnni") is not None:
            return "x86-vnni" if facts["vnni"] else "x86-avx2"
        if flags:
            return "x86-vnni" if flags & {"avx512_vnni", "avx_vnni", "amx_int8"} else "x86-avx2"
    return None
