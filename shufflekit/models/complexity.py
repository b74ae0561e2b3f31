"""Params, multiply-adds (the papers' "FLOPs") and memory access cost (MAC, seed 000 G1/G2).

Multiply-adds come from torch's own flop counter (it counts 2 FLOPs per multiply-add of conv and
linear layers, the only layers the papers count). MAC is measured, not derived: every aten operator
of one inference is intercepted and the elements it reads (activations and weights) and writes are
summed. Views (reshape without copy, transpose) move no memory and are free; the copy a shuffle
needs is not. BatchNorm is folded into the convolutions first, as every deployment runtime does, so
for a 1x1 convolution this is exactly G1's hw(c1 + c2) + c1*c2.
"""

from __future__ import annotations

import copy
import functools
import itertools
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ..metadata import DEFAULT_SIZE, InputSize, check_input_size
from .registry import model_spec


@dataclass(frozen=True)
class Complexity:
    input_size: InputSize
    params: int
    mult_adds: int
    memory_access: int  # elements read + written by one inference of batch 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "input_size": self.input_size.to_json()}


class _MemoryAccessCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None) -> Any:  # noqa: ANN001 - torch's protocol
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            tensors = [t for t in torch.utils._pytree.tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
            self.elements += sum(t.numel() for t in tensors)
        return out


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with each Conv2d -> BatchNorm2d pair inside a Sequential fused."""
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in itertools.pairwise(names):
            conv, bn = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module._modules[first] = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
                module._modules[second] = nn.Identity()
    return folded


def measure(model: nn.Module, input_size: InputSize | int) -> Complexity:
    """Count params, multiply-adds and memory access of one batch-1 inference at ``input_size`` (an int is
    a square)."""
    input_size = check_input_size(input_size)
    model = fold_batchnorm(model)
    x = torch.zeros(input_size.nchw(), device=next(model.parameters()).device)
    with torch.no_grad():
        with FlopCounterMode(display=False) as flops:
            model(x)
        with _MemoryAccessCounter() as mac:
            model(x)
    params = sum(p.numel() for p in model.parameters())
    return Complexity(
        input_size=input_size, params=params, mult_adds=flops.get_total_flops() // 2, memory_access=mac.elements
    )


def model_complexity(name: str, input_size: InputSize | int = DEFAULT_SIZE, num_classes: int = 1000) -> Complexity:
    """Complexity of a registered variant at ``input_size`` (an int is a square); params are those of the
    unfolded model (what a checkpoint stores, and what the papers report)."""
    return _model_complexity(name, check_input_size(input_size), num_classes)


@functools.cache
def _model_complexity(name: str, input_size: InputSize, num_classes: int) -> Complexity:
    with torch.device("meta"):  # shapes are all that is counted: skip weight initialisation
        model = model_spec(name)(num_classes=num_classes)
        folded = measure(model, input_size)
    return Complexity(
        input_size=input_size,
        params=sum(p.numel() for p in model.parameters()),
        mult_adds=folded.mult_adds,
        memory_access=folded.memory_access,
    )
