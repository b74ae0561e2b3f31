"""Checkpoints in, models out; never executing code from a file.

Three layouts are read:
- shufflekit's own: {"format": CHECKPOINT_FORMAT, "meta": {...}, "state_dict": {...}, ...training state}
- a bare state dict in torchvision's key layout (v2) or our v1 layout
- the official Megvii ShuffleNet-Series layout: {"state_dict": {"module.<key>": ...}}; v1 keys are ours
  already; Megvii's own v2 keys are converted to torchvision's by ``megvii.convert_megvii_v2`` where that
  is exact (0.5x), and otherwise kept as they are for the ``*_megvii`` variants (1.0x and wider).
Every file is opened with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import functools
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ShufflekitError, UsageError
from ..files import atomic_path, not_regular, sha256_file
from ..metadata import DEFAULT_SIZE, InputSize, ModelMeta, Preprocessing, check_input_size
from .registry import list_models, model_spec

CHECKPOINT_FORMAT = "shufflekit.checkpoint/1"
_CLASSIFIER_WEIGHTS = ("fc.weight", "classifier.0.weight")
_IGNORED_SUFFIX = "num_batches_tracked"  # absent from some published checkpoints; no effect in eval


@dataclass
class LoadedCheckpoint:
    model: nn.Module  # in eval mode
    meta: ModelMeta
    layout: str  # "shufflekit" | "torchvision" | "megvii"
    sha256: str
    path: Path
    extra: dict[str, Any] = field(default_factory=dict)  # training state of shufflekit checkpoints


def save_checkpoint(path: str | Path, model: nn.Module, meta: ModelMeta, **extra: Any) -> None:
    """Write weights plus metadata (and optional training state) atomically."""
    if "state_dict" in extra or "meta" in extra or "format" in extra:
        raise ValueError("extra keys may not shadow 'format', 'meta' or 'state_dict'")
    payload = {"format": CHECKPOINT_FORMAT, "meta": meta.to_dict(), "state_dict": model.state_dict(), **extra}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save since 1.6
_PICKLE_PROTOCOL = 0x80  # the legacy format opens with a pickle protocol opcode


def check_regular_file(path: Path, what: str, error: type[ShufflekitError]) -> None:
    """Refuse a missing path, a FIFO, device, socket or folder before opening it (a FIFO blocks forever)."""
    kind = not_regular(path)
    if kind == "missing":
        raise error(f"{what} {path} does not exist", hint="check the path")
    if kind is not None and kind.startswith("unreadable"):
        raise error(f"{what} {path} is {kind}", hint="check the path")
    if kind is not None:
        raise error(f"{what} {path} is {kind}, not a regular file", hint="pass a file")


def read_checkpoint_file(path: str | Path) -> Any:
    """Open a checkpoint safely. Each failure is one line that says what to do."""
    path = Path(path)
    check_regular_file(path, "checkpoint", CheckpointError)
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc.strerror})", hint="check the path") from None
    if head != _ZIP_MAGIC and head[:1] != bytes([_PICKLE_PROTOCOL]):
        what = "is empty" if not head else "is not a PyTorch checkpoint (not a torch.save file)"
        raise CheckpointError(
            f"checkpoint {path} {what}",
            hint="pass a file written by torch.save: a shufflekit, torchvision or Megvii checkpoint",
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"(?:GLOBAL|global) ([\w.]+)", text)
        if "Weights only load failed" in text and found:
            raise CheckpointError(
                f"checkpoint {path} carries pickled code ({found.group(1)}); refused and not executed",
                hint="save a plain state_dict or a shufflekit checkpoint instead",
            ) from None
        raise CheckpointError(
            f"checkpoint {path} is damaged or not a checkpoint ({_first_line(exc)})", hint="copy or download it again"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure of the unpickler on foreign bytes is a damaged file
        raise CheckpointError(
            f"checkpoint {path} is damaged or truncated ({_first_line(exc)})", hint="copy or download it again"
        ) from None


def _first_line(exc: BaseException) -> str:
    """The first informative line of an error (torch's weights-only message opens with boilerplate)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "operand" in line or "GLOBAL" in line or "Unsupported" in line:
            return line[:100]
    return lines[0][:100] if lines else type(exc).__name__


def check_finite(state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Refuse weights that are NaN or infinite (they would export an all-NaN model), naming the first."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" and {len(bad) - 1} more tensor(s)" if len(bad) > 1 else ""
        raise CheckpointError(
            f"checkpoint {path} has NaN or infinite weights in {bad[0]}{more}",
            hint="use a checkpoint saved before training diverged",
        )


def _fit_message(net: nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    """Which keys are missing, unexpected or mis-shaped: the first few of each, and how many."""
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shaped = [
        f"{k} {tuple(state[k].shape)} instead of {expected[k]}"
        for k in expected
        if k in state and tuple(state[k].shape) != expected[k]
    ]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shaped)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            parts.append(f"{len(keys)} {label} ({', '.join(keys[:3])}{more})")
    return "; ".join(parts)


def _strip_prefix(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}
    return dict(state)


def _unwrap(payload: Any, path: Path) -> tuple[str, dict[str, torch.Tensor], dict[str, Any] | None, dict[str, Any]]:
    """(layout, state dict, meta dict or None, extra) from whatever the file held."""
    if not isinstance(payload, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, not a state dict")
    if payload.get("format") == CHECKPOINT_FORMAT:
        extra = {k: v for k, v in payload.items() if k not in ("format", "meta", "state_dict")}
        return "shufflekit", dict(payload["state_dict"]), dict(payload["meta"]), extra
    layout = "torchvision"
    state: Any = payload
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state, layout = state[wrapper], "megvii"
            break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"checkpoint {path} holds no state dict of tensors",
            hint="expected a shufflekit, torchvision or Megvii ShuffleNet checkpoint",
        )
    state = _strip_prefix(_strip_prefix(state, "module."), "model.")
    if "first_conv.0.weight" in state and any(".branch_main." in key for key in state):
        from .megvii import convert_megvii_v2, splits_in_halves  # only for Megvii's own v2 key names

        try:
            if splits_in_halves(state):
                state = convert_megvii_v2(state)
            layout = "megvii"
        except CheckpointError as exc:
            raise CheckpointError(f"checkpoint {path}: {exc.message}", hint=exc.hint) from None
    return layout, dict(state), None, {}


@functools.cache
def _signature(name: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Key names and shapes of a variant, classifier excluded (it depends on the class count)."""
    with torch.device("meta"):
        model = model_spec(name)(num_classes=1)
    return tuple(
        sorted(
            (k, tuple(v.shape))
            for k, v in model.state_dict().items()
            if not k.endswith(_IGNORED_SUFFIX) and k not in _CLASSIFIER_WEIGHTS and k != "fc.bias"
        )
    )


def _state_signature(state: Mapping[str, torch.Tensor]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple(
        sorted(
            (k, tuple(v.shape))
            for k, v in state.items()
            if not k.endswith(_IGNORED_SUFFIX) and k not in _CLASSIFIER_WEIGHTS and k != "fc.bias"
        )
    )


def identify_variant(state: Mapping[str, torch.Tensor]) -> tuple[str | None, int | None]:
    """(registered variant whose keys and shapes match, number of classes); (None, None) if none does."""
    classes = next((int(state[k].shape[0]) for k in _CLASSIFIER_WEIGHTS if k in state), None)
    wanted = _state_signature(state)
    for spec in list_models():
        if _signature(spec.name) == wanted:
            return spec.name, classes
    return None, classes


def load_checkpoint(
    path: str | Path,
    *,
    model: str | None = None,
    num_classes: int | None = None,
    input_size: InputSize | int | None = None,
) -> LoadedCheckpoint:
    """Load a checkpoint into its variant. ``model`` and ``num_classes`` are checked against the file
    when given; the file's own metadata wins over guesses. ``input_size`` (an int is a square) replaces
    the size the file says it was trained at; without it that size is kept. Returns the model in eval mode."""
    path = Path(path)
    layout, state, meta_dict, extra = _unwrap(read_checkpoint_file(path), path)
    check_finite(state, path)
    found, classes = identify_variant(state)
    meta = None
    if meta_dict is not None:
        try:
            meta = ModelMeta.from_dict(meta_dict)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint {path} has unreadable metadata ({exc})",
                hint="re-save it with shufflekit.models.checkpoints.save_checkpoint, or save the plain state_dict",
            ) from None
    if found is None and model is not None:
        with torch.device("meta"):  # shapes only: nothing is allocated
            wanted = model_spec(model)(num_classes=classes or 1)
        raise CheckpointError(
            f"checkpoint {path} does not fit {model}: {_fit_message(wanted, state)}",
            hint="pass the checkpoint of that variant, or the whole state_dict",
        )
    if found is None:
        raise CheckpointError(
            f"checkpoint {path} matches no ShuffleNet variant shufflekit knows",
            hint="its layer names or shapes differ from every entry of `shufflekit models`",
        )
    if model is not None and model != found:
        model_spec(model)  # an unknown name gets the registry's own message
        raise CheckpointError(
            f"checkpoint {path} holds {found}, not {model}", hint=f"pass --model {found}, or a checkpoint of {model}"
        )
    if num_classes is not None and classes is not None and num_classes != classes:
        raise CheckpointError(
            f"checkpoint {path} has {classes} classes, not {num_classes}",
            hint=f"pass --num-classes {classes} or leave it out",
        )
    if input_size is not None:
        try:
            input_size = check_input_size(input_size)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if meta is None:
        size = input_size or DEFAULT_SIZE
        try:
            meta = ModelMeta(model=found, num_classes=classes or 1000, preprocessing=Preprocessing.for_size(size))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    elif input_size is not None and input_size != meta.input_size:
        try:
            meta = meta.with_(
                preprocessing=Preprocessing.for_size(
                    input_size, mean=meta.preprocessing.mean, std=meta.preprocessing.std
                )
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    net = model_spec(found)(num_classes=meta.num_classes)
    expected = net.state_dict()
    for key, value in expected.items():  # fill counters a published file may lack
        if key.endswith(_IGNORED_SUFFIX):
            state.setdefault(key, value)
    misfit = _fit_message(net, state)
    if misfit:
        raise CheckpointError(
            f"checkpoint {path} does not fit {found}: {misfit}", hint="save the model's whole state_dict"
        )
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit {found}: {_first_line(exc)}") from None
    return LoadedCheckpoint(
        model=net.eval(), meta=meta, layout=layout, sha256=sha256_file(path), path=path, extra=extra
    )
