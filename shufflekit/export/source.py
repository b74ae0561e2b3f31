"""Where the exported model comes from: a checkpoint, or a seeded model with non-trivial BatchNorm.

A freshly initialised network has BatchNorm running mean 0, variance 1, gamma 1, beta 0: an
identity, under which an unfolded or wrongly folded BatchNorm, or a layout mistake, can hide. So a
model exported without a checkpoint gets random affine BatchNorm parameters, and running statistics
measured on image-like inputs (one pass in train mode), which keep activations in a realistic range.
The recipe is deterministic, so the seed recorded in the manifest rebuilds the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ManifestError, UsageError
from ..files import not_regular, sha256_file
from ..metadata import (
    DEFAULT_SIZE,
    MAX_NUM_CLASSES,
    InputSize,
    ModelMeta,
    Preprocessing,
    check_input_size,
    check_num_classes,
)
from ..records import SHA256_RE

_STATS_IMAGES = 8
_STATS_SEED_OFFSET = 1_000_003  # other images than the parity reference's


@dataclass
class ModelSource:
    model: Any  # torch.nn.Module in eval mode
    meta: ModelMeta
    record: dict[str, Any]  # what the manifest stores under "source"

    @property
    def sha256(self) -> str | None:
        return self.record.get("checkpoint_sha256")


def load_source(
    *,
    model: str | None = None,
    checkpoint: str | Path | None = None,
    num_classes: int | None = None,
    input_size: InputSize | int | None = None,
    seed: int = 0,
) -> ModelSource:
    """The model to export, in eval mode, with its metadata and a record of where it came from."""
    from ..models import model_spec

    if input_size is not None:
        input_size = _check_size(input_size)
    if num_classes is not None:
        try:
            check_num_classes(num_classes)
        except ValueError as exc:
            raise UsageError(str(exc), hint=f"pass --num-classes from 1 to {MAX_NUM_CLASSES:,}") from None
    if checkpoint is not None:
        from ..models.checkpoints import load_checkpoint

        loaded = load_checkpoint(checkpoint, model=model, num_classes=num_classes, input_size=input_size)
        return ModelSource(
            loaded.model,
            loaded.meta,
            {
                "kind": "checkpoint",
                "checkpoint": str(Path(checkpoint).resolve()),
                "checkpoint_sha256": loaded.sha256,
                "layout": loaded.layout,
            },
        )
    if model is None:
        raise UsageError("no model to export", hint="pass --model NAME (see `shufflekit models`) or --checkpoint PATH")
    model_spec(model)  # unknown names fail here with the registry's hint
    meta = ModelMeta(
        model=model,
        num_classes=1000 if num_classes is None else num_classes,
        preprocessing=Preprocessing.for_size(input_size or DEFAULT_SIZE),
    )
    net = seeded_model(model, num_classes=meta.num_classes, input_size=meta.input_size, seed=seed)
    return ModelSource(net, meta, {"kind": "seed", "seed": seed, "note": "random weights, BatchNorm made non-trivial"})


def rebuild_source(record: dict[str, Any], meta: ModelMeta, *, checkpoint: str | Path | None = None) -> ModelSource:
    """The model a manifest's source record describes (to recompute a parity reference)."""
    if checkpoint is not None or record.get("kind") == "checkpoint":
        path = Path(checkpoint) if checkpoint is not None else recorded_checkpoint(record)
        # The variant and class count are compared here, not by load_checkpoint: its hints name --model and
        # --num-classes, which the commands reading a folder (validate, evaluate, profile) do not have.
        source = load_source(checkpoint=path, input_size=meta.input_size)
        held = (source.meta.model, source.meta.num_classes)
        if held != (meta.model, meta.num_classes):
            raise UsageError(
                f"checkpoint {path} holds {held[0]} with {held[1]} classes, but this folder was exported from "
                f"{meta.model} with {meta.num_classes}",
                hint="pass the checkpoint the folder was exported from",
            )
        assert source.sha256 is not None  # a checkpoint source always records its sha256
        expected = record.get("checkpoint_sha256")
        if expected != source.sha256:
            made_from = f"checkpoint sha256 {expected[:12]}" if expected else f"seed {record.get('seed')}"
            raise UsageError(
                f"checkpoint {path} (sha256 {source.sha256[:12]}) is not what this folder was "
                f"exported from ({made_from})",
                hint="pass the checkpoint the folder was exported from",
            )
        return source
    if record.get("kind") == "seed" and isinstance(record.get("seed"), int):
        net = seeded_model(meta.model, num_classes=meta.num_classes, input_size=meta.input_size, seed=record["seed"])
        return ModelSource(net, meta, dict(record))
    raise UsageError(
        "the manifest does not say which model it was exported from",
        hint="re-export the folder; validate and evaluate also take --checkpoint PATH",
    )


def recorded_checkpoint(record: dict[str, Any]) -> Path:
    """The checkpoint a manifest's source record names. It lies outside the release folder by design (the
    file the user exported from), so it is opened only as a checkpoint (``load_checkpoint``: weights only,
    never pickled code) and only when it is a regular file whose bytes hash to the recorded sha256: an
    edited manifest cannot make shufflekit read any other file."""
    name, expected = record.get("checkpoint"), record.get("checkpoint_sha256")
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ManifestError(f"field source.checkpoint: {name!r:.60} is not a path", hint=_SOURCE_HINT)
    if not isinstance(expected, str) or not SHA256_RE.match(expected):
        raise ManifestError(
            f"field source.checkpoint_sha256: {expected!r:.60} is not a sha256 in hex", hint=_SOURCE_HINT
        )
    path = Path(name)
    kind = not_regular(path)  # a FIFO would block the hash below
    if kind is not None:
        where = "is missing" if kind == "missing" or kind.startswith("unreadable") else "is not a regular file"
        raise CheckpointError(
            f"the checkpoint this folder was exported from {where} ({path})",
            hint="put it back at that path (checked by sha256); validate and evaluate also take --checkpoint PATH",
        )
    found = sha256_file(path)
    if found != expected:
        raise CheckpointError(
            f"checkpoint {path} (sha256 {found[:12]}) is not what this folder was exported from "
            f"(checkpoint sha256 {expected[:12]})",
            hint="put the file the folder was exported from back; validate and evaluate also take --checkpoint PATH",
        )
    return path


_SOURCE_HINT = "re-export the folder, or pass --checkpoint PATH"


def seeded_model(name: str, *, num_classes: int, input_size: InputSize | int, seed: int) -> Any:
    """A deterministic random model whose BatchNorm layers are far from identity."""
    import torch

    from ..models import get_model
    from .reference import reference_inputs

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = get_model(name, num_classes=num_classes)
        generator = torch.Generator().manual_seed(seed + 1)
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                channels = module.num_features
                module.weight.data = torch.empty(channels).uniform_(0.5, 1.5, generator=generator)
                module.bias.data = torch.empty(channels).normal_(0.0, 0.25, generator=generator)
                module.reset_running_stats()
                module.momentum = None  # cumulative average: the statistics of exactly this batch
    images = torch.from_numpy(
        reference_inputs(_STATS_IMAGES, Preprocessing.for_size(input_size), seed=seed + _STATS_SEED_OFFSET)
    )
    net.train()
    with torch.no_grad():
        net(images)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 0.1
    net.eval()
    _spread_logits(net, images)
    return net


def _spread_logits(net: Any, images: Any) -> None:
    """Make top-1 depend on the image: a random classifier on near-identical pooled features picks
    the same class for every input, so top-1 agreement would prove nothing. Remove the component of
    the classifier along the mean feature and scale the logits to unit spread."""
    import torch

    linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    features: list[torch.Tensor] = []
    hook = linear.register_forward_hook(lambda _m, args, _out: features.append(args[0]))
    with torch.no_grad():
        net(images)
        hook.remove()
        mean = features[0].mean(0)
        weight = linear.weight - torch.outer(linear.weight @ mean, mean) / (mean @ mean).clamp_min(1e-12)
        spread = (features[0] @ weight.T).std().clamp_min(1e-12)
        linear.weight.copy_(weight / spread)
        if linear.bias is not None:
            linear.bias.zero_()


def _check_size(size: InputSize | int) -> InputSize:
    try:
        return check_input_size(size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
