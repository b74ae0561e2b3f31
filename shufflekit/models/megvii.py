"""Converting the official Megvii ShuffleNet-Series v2 checkpoints to torchvision's layout.

Megvii's v2 unit and torchvision's compute the same function up to a permutation of channels:

- torchvision: split first half (kept) / second half (transformed), concat (kept, branch), then shuffle,
  which interleaves: kept channel i lands at 2i, branch output i at 2i + 1.
- Megvii: no shuffle after the concat; instead a stride-1 unit starts with its own split that keeps the
  even channels and transforms the odd ones, and concatenates (kept, branch) as they are.

So a kept channel moves from Megvii position m to m/2 and from torchvision position t to 2t. We track,
for every torchvision position, which Megvii channel sits there, and permute the weights that touch a
feature map: the output channels of each branch's last conv + BN (free to choose) and the input
channels of every layer that reads a whole feature map (free, given the map's order).

The freedom in the output orders is spent so that, at every stride-1 unit, torchvision's kept half holds
exactly Megvii's even channels. A channel survives r more units in Megvii iff 2^r divides its position,
and in torchvision iff t * 2^(r-1) < half; both counts are ceil(C / 2^r), so sorting new channels by how
long they will survive on each side and pairing them in that order always succeeds.

Only Megvii's 0.5x has torchvision's widths: from 1.0x up Megvii's first stage-2 unit puts 24 channels
in its projection branch and the rest in the main one, where torchvision splits the output in halves.
No permutation bridges that: those checkpoints load, unconverted, into the ``*_megvii`` variants
(shufflenet_v2_megvii.py), which are Megvii's network in its own key layout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

import torch

from ..errors import CheckpointError

# Megvii's stage_out_channels per model size (first conv, stage 2-4, conv_last), from its network.py.
MEGVII_V2_SIZES = {
    "0.5x": (24, 48, 96, 192, 1024),
    "1.0x": (24, 116, 232, 464, 1024),
    "1.5x": (24, 176, 352, 704, 1024),
    "2.0x": (24, 244, 488, 976, 2048),
}
_BN_PARAMS = ("weight", "bias", "running_mean", "running_var")
_COUNTER = "num_batches_tracked"
_UNSUPPORTED_HINT = "only Megvii's plain ShuffleNet v2 (ShuffleNetV2/network.py) converts; not v2+, Large or OneShot"


class _Reader:
    """Takes tensors out of the Megvii state dict by name, checking shapes, so leftovers can be reported."""

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        self.left = dict(state)

    def take(self, key: str, ndim: int) -> torch.Tensor:
        if key not in self.left:
            raise CheckpointError(f"Megvii ShuffleNet v2 checkpoint lacks {key}", hint=_UNSUPPORTED_HINT)
        value = self.left.pop(key)
        if value.dim() != ndim:
            raise CheckpointError(
                f"Megvii checkpoint tensor {key} has shape {tuple(value.shape)}, not {ndim}-D", hint=_UNSUPPORTED_HINT
            )
        return value

    def conv(self, prefix: str, *, kernel: int, depthwise: bool = False) -> torch.Tensor:
        weight = self.take(f"{prefix}.weight", 4)
        if tuple(weight.shape[2:]) != (kernel, kernel) or (depthwise and weight.shape[1] != 1):
            kind = "depthwise " if depthwise else ""
            raise CheckpointError(
                f"Megvii checkpoint conv {prefix} has shape {tuple(weight.shape)}, not a "
                f"{kind}{kernel}x{kernel} conv as in ShuffleNet v2",
                hint=_UNSUPPORTED_HINT,
            )
        return weight

    def bn(self, prefix: str, channels: int) -> dict[str, torch.Tensor]:
        params = {name: self.take(f"{prefix}.{name}", 1) for name in _BN_PARAMS}
        for name, value in params.items():
            if value.shape[0] != channels:
                raise CheckpointError(
                    f"Megvii checkpoint tensor {prefix}.{name} has {value.shape[0]} channels, not {channels}",
                    hint=_UNSUPPORTED_HINT,
                )
        if f"{prefix}.{_COUNTER}" in self.left:
            params[_COUNTER] = self.left.pop(f"{prefix}.{_COUNTER}")
        return params


class _Writer:
    """Puts converted tensors under torchvision's names, permuting channels where asked."""

    def __init__(self) -> None:
        self.state: dict[str, torch.Tensor] = {}

    def conv(
        self, prefix: str, weight: torch.Tensor, *, out: list[int] | None = None, inp: list[int] | None = None
    ) -> None:
        if out is not None:
            weight = weight.index_select(0, torch.tensor(out, dtype=torch.long))
        if inp is not None:
            weight = weight.index_select(1, torch.tensor(inp, dtype=torch.long))
        self.state[f"{prefix}.weight"] = weight

    def bn(self, prefix: str, params: dict[str, torch.Tensor], *, order: list[int] | None = None) -> None:
        index = None if order is None else torch.tensor(order, dtype=torch.long)
        for name, value in params.items():
            if index is not None and name != _COUNTER:
                value = value.index_select(0, index)
            self.state[f"{prefix}.{name}"] = value


def _megvii_life(position: int, units: int) -> int:
    """How many of the next ``units`` stride-1 units keep the channel at this Megvii position."""
    life = 0
    while life < units and position % 2 == 0:
        position //= 2
        life += 1
    return life


def _torchvision_life(position: int, units: int, half: int) -> int:
    """How many of the next ``units`` stride-1 units keep the channel at this torchvision position."""
    life = 0
    while life < units and position < half:
        position *= 2
        life += 1
    return life


def _pair_new_channels(
    megvii: range, torchvision: range, life_m: Callable[[int], int], life_t: Callable[[int], int]
) -> dict[int, int]:
    """torchvision position -> Megvii position for freshly computed channels, pairing equal lifetimes."""
    by_life_m = sorted(megvii, key=lambda m: (life_m(m), m))
    by_life_t = sorted(torchvision, key=lambda t: (life_t(t), t))
    pairs = dict(zip(by_life_t, by_life_m))
    if any(life_t(t) != life_m(m) for t, m in pairs.items()):  # cannot happen for equal widths (see module doc)
        raise RuntimeError("internal error: Megvii and torchvision channel lifetimes do not pair up")
    return pairs


def _size_name(channels: tuple[int, ...]) -> str:
    return next(
        (name for name, sizes in MEGVII_V2_SIZES.items() if sizes == channels),
        "with widths " + "/".join(map(str, channels)),
    )


def _blocks(state: Mapping[str, torch.Tensor]) -> list[list[int]]:
    """Indices of features.N grouped into stages; each stage opens with a stride-2 (projecting) unit."""
    stages: list[list[int]] = []
    index = 0
    while f"features.{index}.branch_main.0.weight" in state:
        if f"features.{index}.branch_proj.0.weight" in state:
            stages.append([])
        elif not stages:
            raise CheckpointError("Megvii checkpoint's first unit has no projection branch", hint=_UNSUPPORTED_HINT)
        stages[-1].append(index)
        index += 1
    if not stages:
        raise CheckpointError("Megvii checkpoint has no features.N.branch_main units", hint=_UNSUPPORTED_HINT)
    return stages


def splits_in_halves(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether every stride-2 unit of a Megvii v2 state dict splits its output in halves (so it converts
    to torchvision's layout). False for Megvii's 1.0x and wider, which keep their own layout."""
    stages = _blocks(state)
    return all(proj == main for proj, main in _projecting_splits(state, stages))


def _projecting_splits(state: Mapping[str, torch.Tensor], stages: list[list[int]]) -> list[tuple[int, int]]:
    """(projection, main) output channels of each stage's first unit."""
    outs = []
    for stage in stages:
        proj = state.get(f"features.{stage[0]}.branch_proj.2.weight")
        main = state.get(f"features.{stage[0]}.branch_main.5.weight")
        if proj is None or main is None or proj.dim() != 4 or main.dim() != 4:
            raise CheckpointError(
                f"Megvii checkpoint unit features.{stage[0]} lacks its 1x1 convs", hint=_UNSUPPORTED_HINT
            )
        outs.append((proj.shape[0], main.shape[0]))
    return outs


def _check_widths(state: Mapping[str, torch.Tensor], stages: list[list[int]]) -> None:
    """Refuse, with the reason, a checkpoint whose stride-2 units do not split their output in halves."""
    outs = _projecting_splits(state, stages)
    first = state["first_conv.0.weight"].shape[0]
    last = state["conv_last.0.weight"].shape[0]
    channels = (first, *(p + m for p, m in outs), last)
    for stage_number, (proj_out, main_out) in enumerate(outs, start=2):
        if proj_out != main_out:
            half = (proj_out + main_out) // 2
            raise CheckpointError(
                f"Megvii ShuffleNet v2 {_size_name(channels)} cannot be converted exactly: its first "
                f"stage-{stage_number} unit splits {proj_out} + {main_out} channels where torchvision's layout "
                f"splits {half} + {half}",
                hint="load it as it is (shufflekit's *_megvii variants take Megvii's own layout)",
            )


def convert_megvii_v2(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Megvii ShuffleNet-Series v2 state dict (prefixes stripped) -> torchvision-layout state dict that
    gives the same outputs in shufflekit's ShuffleNetV2. Raises CheckpointError, one line, if it cannot."""
    if "first_conv.0.weight" not in state or "conv_last.0.weight" not in state:
        raise CheckpointError("Megvii ShuffleNet v2 checkpoint lacks first_conv or conv_last", hint=_UNSUPPORTED_HINT)
    stages = _blocks(state)
    _check_widths(state, stages)
    src, dst = _Reader(state), _Writer()

    stem = src.conv("first_conv.0", kernel=3)
    dst.conv("conv1.0", stem)
    dst.bn("conv1.1", src.bn("first_conv.1", stem.shape[0]))
    order = list(range(stem.shape[0]))  # order[t]: the Megvii channel at torchvision position t

    for stage_number, blocks in enumerate(stages, start=2):
        for unit, index in enumerate(blocks):
            units_after = len(blocks) - 1 - unit  # stride-1 units that may keep a new channel
            megvii, tv = f"features.{index}", f"stage{stage_number}.{unit}"
            if unit == 0:
                order = _convert_projecting_unit(src, dst, megvii, tv, order, units_after)
            else:
                order = _convert_splitting_unit(src, dst, megvii, tv, order, units_after)

    last = src.conv("conv_last.0", kernel=1)
    if last.shape[1] != len(order):
        raise CheckpointError(
            f"Megvii checkpoint conv_last reads {last.shape[1]} channels, not {len(order)}", hint=_UNSUPPORTED_HINT
        )
    dst.conv("conv5.0", last, inp=order)
    dst.bn("conv5.1", src.bn("conv_last.1", last.shape[0]))

    fc = src.take("classifier.0.weight", 2)
    if fc.shape[1] != last.shape[0]:
        raise CheckpointError(
            f"Megvii checkpoint classifier reads {fc.shape[1]} features, not {last.shape[0]}", hint=_UNSUPPORTED_HINT
        )
    dst.state["fc.weight"] = fc
    bias = src.left.pop("classifier.0.bias", None)  # Megvii's classifier has none: a zero bias is the same
    dst.state["fc.bias"] = bias if bias is not None else torch.zeros(fc.shape[0], dtype=fc.dtype)

    if src.left:
        extra = sorted(src.left)
        raise CheckpointError(
            f"Megvii checkpoint has {len(extra)} tensors ShuffleNet v2 does not (first: {extra[0]})",
            hint=_UNSUPPORTED_HINT,
        )
    return dst.state


def _convert_projecting_unit(
    src: _Reader, dst: _Writer, megvii: str, tv: str, order: list[int], units_after: int
) -> list[int]:
    """Stride 2: both branches read the whole map; Megvii concatenates (proj, main), torchvision
    interleaves (branch1, branch2). Returns the order of the unit's output."""
    channels = len(order)
    dw = src.conv(f"{megvii}.branch_proj.0", kernel=3, depthwise=True)
    proj_bn1 = src.bn(f"{megvii}.branch_proj.1", channels)
    proj = src.conv(f"{megvii}.branch_proj.2", kernel=1)
    proj_bn2 = src.bn(f"{megvii}.branch_proj.3", proj.shape[0])
    main_in = src.conv(f"{megvii}.branch_main.0", kernel=1)
    mid = main_in.shape[0]
    main_bn1 = src.bn(f"{megvii}.branch_main.1", mid)
    main_dw = src.conv(f"{megvii}.branch_main.3", kernel=3, depthwise=True)
    main_bn2 = src.bn(f"{megvii}.branch_main.4", mid)
    main_out = src.conv(f"{megvii}.branch_main.5", kernel=1)
    main_bn3 = src.bn(f"{megvii}.branch_main.6", main_out.shape[0])
    half = proj.shape[0]
    if (
        (dw.shape[0], proj.shape[1], main_in.shape[1]) != (channels,) * 3
        or mid != half
        or main_dw.shape[0] != mid
        or tuple(main_out.shape[:2]) != (half, mid)
    ):
        raise CheckpointError(
            f"Megvii checkpoint unit {megvii} does not have ShuffleNet v2's shapes", hint=_UNSUPPORTED_HINT
        )

    out_channels = 2 * half
    life_m = partial(_megvii_life, units=units_after)
    life_t = partial(_torchvision_life, units=units_after, half=out_channels // 2)
    proj_pairs = _pair_new_channels(range(half), range(0, out_channels, 2), life_m, life_t)
    main_pairs = _pair_new_channels(range(half, out_channels), range(1, out_channels, 2), life_m, life_t)
    q1 = [proj_pairs[2 * i] for i in range(half)]
    q2 = [main_pairs[2 * i + 1] - half for i in range(half)]

    dst.conv(f"{tv}.branch1.0", dw, out=order)
    dst.bn(f"{tv}.branch1.1", proj_bn1, order=order)
    dst.conv(f"{tv}.branch1.2", proj, out=q1, inp=order)
    dst.bn(f"{tv}.branch1.3", proj_bn2, order=q1)
    dst.conv(f"{tv}.branch2.0", main_in, inp=order)
    dst.bn(f"{tv}.branch2.1", main_bn1)
    dst.conv(f"{tv}.branch2.3", main_dw)
    dst.bn(f"{tv}.branch2.4", main_bn2)
    dst.conv(f"{tv}.branch2.5", main_out, out=q2)
    dst.bn(f"{tv}.branch2.6", main_bn3, order=q2)
    return [channel for i in range(half) for channel in (q1[i], half + q2[i])]


def _convert_splitting_unit(
    src: _Reader, dst: _Writer, megvii: str, tv: str, order: list[int], units_after: int
) -> list[int]:
    """Stride 1: torchvision keeps positions [0, half) and transforms [half, C); Megvii keeps its even
    channels and transforms its odd ones. Returns the order of the unit's output."""
    channels = len(order)
    half = channels // 2
    if channels % 4:  # Megvii's split asserts it too
        raise CheckpointError(
            f"Megvii checkpoint unit {megvii} does not have ShuffleNet v2's shapes", hint=_UNSUPPORTED_HINT
        )
    kept, transformed = order[:half], order[half:]
    if any(m % 2 for m in kept) or not all(m % 2 for m in transformed):  # guaranteed by the pairing
        raise RuntimeError("internal error: torchvision's kept half is not Megvii's even channels")
    main_in = src.conv(f"{megvii}.branch_main.0", kernel=1)
    mid = main_in.shape[0]
    main_bn1 = src.bn(f"{megvii}.branch_main.1", mid)
    main_dw = src.conv(f"{megvii}.branch_main.3", kernel=3, depthwise=True)
    main_bn2 = src.bn(f"{megvii}.branch_main.4", mid)
    main_out = src.conv(f"{megvii}.branch_main.5", kernel=1)
    main_bn3 = src.bn(f"{megvii}.branch_main.6", main_out.shape[0])
    if (
        tuple(main_in.shape[:2]) != (half, half)
        or main_dw.shape[0] != half
        or tuple(main_out.shape[:2]) != (half, half)
    ):
        raise CheckpointError(
            f"Megvii checkpoint unit {megvii} does not have ShuffleNet v2's shapes", hint=_UNSUPPORTED_HINT
        )

    pairs = _pair_new_channels(
        range(half, channels),
        range(1, channels, 2),
        partial(_megvii_life, units=units_after),
        partial(_torchvision_life, units=units_after, half=half),
    )
    q = [pairs[2 * i + 1] - half for i in range(half)]

    dst.conv(f"{tv}.branch2.0", main_in, inp=[(m - 1) // 2 for m in transformed])
    dst.bn(f"{tv}.branch2.1", main_bn1)
    dst.conv(f"{tv}.branch2.3", main_dw)
    dst.bn(f"{tv}.branch2.4", main_bn2)
    dst.conv(f"{tv}.branch2.5", main_out, out=q)
    dst.bn(f"{tv}.branch2.6", main_bn3, order=q)
    # Megvii moves kept channel m to m // 2; new channel j of the branch sits at half + j.
    return [channel for i in range(half) for channel in (kept[i] // 2, half + q[i])]
