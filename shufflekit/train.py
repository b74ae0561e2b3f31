"""Train a ShuffleNet on an image folder, an .npz file or the demo set.

SGD with Nesterov momentum, a linear warm-up then a cosine schedule stepped every iteration, label
smoothing, random resized crops (and flips where the classes allow them). Weight decay spares
BatchNorm and bias parameters, as the ShuffleNet papers' reference code does.

A checkpoint (``models.checkpoints.save_checkpoint``: weights, metadata with the data set's labels,
and the training state) is written atomically after every epoch, so an interrupted run keeps the last
finished epoch, and ``resume=True`` continues from it on the same schedule: augmentation and shuffling
are seeded by (seed, epoch, index), so a resumed run computes what an uninterrupted one would have.

On a GPU it trains with mixed precision (``torch.amp``); under ``torchrun`` with several processes it
wraps the model in DistributedDataParallel, each rank reads its share of the data and only rank 0
writes the checkpoint and reports progress.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .data import (
    DECODE_ERRORS,
    DEMO,
    Augmentation,
    ImageSet,
    Skipped,
    augment,
    preprocess,
    relabel,
    report_skipped,
    train_val_sets,
)
from .errors import CheckpointError, UsageError
from .metadata import DEFAULT_SIZE, InputSize, ModelMeta, Preprocessing, check_input_size

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, "int | None"], None]

# Defaults for any data, then what the demo set (32x32 digits) changes. On the demo, v2 0.5x reaches
# >= 90 % validation accuracy in under 3 minutes on 2 CPU cores (benchmarks/train_demo.py).
DEFAULTS: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 64,
    "input_size": DEFAULT_SIZE,
    "lr": None,
    "weight_decay": 4e-5,
    "label_smoothing": 0.1,
    "warmup_epochs": 1,
    "seed": 0,
    "hflip": True,
    "crop_scale": 0.25,
    "val_fraction": 0.1,
}
DEMO_DEFAULTS: dict[str, Any] = {"epochs": 15, "input_size": InputSize.square(32), "hflip": False, "crop_scale": 0.8}
BASE_LR = 0.2  # per 256 images of global batch (the linear scaling rule); 0.05 at the default batch of 64


@dataclass(frozen=True)
class TrainConfig:
    """What to train. ``None`` means the default for the data (``DEFAULTS``, ``DEMO_DEFAULTS``) or, on
    resume, the value the checkpoint was trained with."""

    model: str
    data: str
    epochs: int | None = None
    batch_size: int | None = None  # per process
    input_size: InputSize | None = None  # an int is a square; so is the int of a checkpoint saved before
    lr: float | None = None  # None: BASE_LR * global batch / 256
    weight_decay: float | None = None
    label_smoothing: float | None = None
    warmup_epochs: int | None = None
    seed: int | None = None
    hflip: bool | None = None
    crop_scale: float | None = None  # smallest area fraction of a random resized crop
    val_fraction: float | None = None  # held out when the data has no val/ split

    def __post_init__(self) -> None:
        size: Any = self.input_size
        if size is not None and not isinstance(size, InputSize):
            try:  # an int, or the {"height", "width"} a checkpoint's saved schedule holds
                object.__setattr__(self, "input_size", InputSize.from_json(size, where="input_size"))
            except (TypeError, ValueError) as exc:
                raise UsageError(str(exc)) from None

    def resolved(self, world_size: int = 1) -> TrainSettings:
        defaults = {**DEFAULTS, **(DEMO_DEFAULTS if self.data == DEMO else {})}
        filled = {name: getattr(self, name) if getattr(self, name) is not None else defaults[name] for name in defaults}
        if filled["lr"] is None:
            filled["lr"] = BASE_LR * filled["batch_size"] * world_size / 256
        settings = TrainSettings(model=self.model, data=self.data, **filled)
        settings.check()
        return settings

    def schedule(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues (None: not given)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("model", "data")}


@dataclass(frozen=True)
class TrainSettings:
    """A TrainConfig with every default filled in: what a run actually trains with."""

    model: str
    data: str
    epochs: int
    batch_size: int  # per process
    input_size: InputSize
    lr: float
    weight_decay: float
    label_smoothing: float
    warmup_epochs: int
    seed: int
    hflip: bool
    crop_scale: float
    val_fraction: float

    def check(self) -> None:
        try:
            check_input_size(self.input_size)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise UsageError(f"--lr must be positive, got {self.lr}")
        if not 0 < self.crop_scale <= 1 or not 0 <= self.label_smoothing < 1:
            raise UsageError("crop_scale must be in (0, 1] and label_smoothing in [0, 1)")

    def schedule(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues (saved in the checkpoint, so
        plain values: the input size as {"height", "width"})."""
        saved = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("model", "data")}
        return {**saved, "input_size": self.input_size.to_json()}


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    epochs: int
    train_loss: float
    train_top1: float  # percent, on augmented images
    val_loss: float | None
    val_top1: float | None  # percent
    lr: float  # at the end of the epoch
    seconds: float
    images: int  # training images seen this epoch, all ranks

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    out: Path
    meta: ModelMeta
    epochs_done: int
    history: list[EpochStats] = field(default_factory=list)  # this run's epochs only
    seconds: float = 0.0
    is_main: bool = True  # False on torchrun ranks other than 0, which write and report nothing

    @property
    def val_top1(self) -> float | None:
        return self.meta.training.get("val_top1")


# ------------------------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _start_distributed(torch: Any) -> tuple[_Dist, Any]:
    """(ranks, device). Under torchrun (WORLD_SIZE > 1) join the process group: NCCL on GPUs, Gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank % torch.cuda.device_count()) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world == 1:
        return _Dist(), device
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return _Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank), device


def _workers_and_threads(device_type: str, world: int, input_size: InputSize) -> tuple[int, int | None]:
    """(loader processes, torch threads) per rank.

    Tiny inputs (<= 64 px) train on one thread: their convolutions are too small for intra-op threads to
    pay (on 2 cores, v2 0.5x at 32 px: 62 ms/step on one thread, 57 ms on two unloaded, and 900 ms on
    two when other processes share the cores, as OpenMP threads spin waiting for each other). The
    cores left decode and augment images in loader processes. Larger inputs use every core for the math
    and decode in the main process unless there are cores to spare."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    per_rank = max(1, cores // world)
    if device_type == "cuda":
        return min(8, per_rank), None
    if max(input_size.height, input_size.width) <= 64:
        return min(4, per_rank - 1), 1
    workers = 0 if per_rank <= 4 else min(4, per_rank // 4)
    return workers, per_rank - workers


# ------------------------------------------------------------------------------------------------ data


class _Samples:
    """A torch map-style data set over an ImageSet. Keys are (epoch, index) so each sample's augmentation
    depends only on (seed, epoch, index): the same with any number of loader workers, and after a resume.
    An image that cannot be decoded comes back as None with its name, and the batch leaves it out."""

    def __init__(self, images: ImageSet, pre: Preprocessing, aug: Augmentation | None, seed: int) -> None:
        self.images, self.pre, self.aug, self.seed = images, pre, aug, seed
        self.labels = images.require_labels("training")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: Any) -> tuple[Any, int, str | None]:
        import torch

        epoch, index = key if isinstance(key, tuple) else (0, key)
        try:
            image = self.images.load(index)
        except DECODE_ERRORS:
            return None, -1, self.images.name(index)
        if self.aug is None:
            pixels = preprocess(image, self.pre)
        else:
            pixels = augment(image, self.pre, self.aug, np.random.default_rng((self.seed, epoch, index)))
        return torch.from_numpy(pixels), int(self.labels[index]), None


def _collate(samples: list[tuple[Any, int, str | None]]) -> tuple[Any, Any, list[str]]:
    import torch

    good = [s for s in samples if s[0] is not None]
    failed = [s[2] for s in samples if s[0] is None and s[2] is not None]
    if not good:
        return None, None, failed
    return torch.stack([s[0] for s in good]), torch.tensor([s[1] for s in good]), failed


class _EpochKeys:
    """Wraps a sampler so it yields (epoch, index) keys; lives in the main process, so set_epoch reaches
    persistent loader workers too."""

    def __init__(self, sampler: Any) -> None:
        self.sampler, self.epoch = sampler, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, int(i)) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def _loaders(
    train: ImageSet,
    val: ImageSet | None,
    pre: Preprocessing,
    config: TrainSettings,
    dist: _Dist,
    device: Any,
    workers: int,
) -> tuple[Any, _EpochKeys, Any]:
    from torch.utils.data import DataLoader, DistributedSampler, Subset

    aug = Augmentation(scale=(config.crop_scale, 1.0), hflip=config.hflip)
    train_samples: Any = _Samples(train, pre, aug, config.seed)  # a map-style data set by duck typing
    # DistributedSampler with one replica is a seeded shuffle too: one code path for 1 or N processes.
    keys = _EpochKeys(
        DistributedSampler(train_samples, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=config.seed)
    )
    common: dict[str, Any] = {
        "num_workers": workers,
        "collate_fn": _collate,
        "pin_memory": device.type == "cuda",
        "persistent_workers": workers > 0,
    }
    train_loader: Any = DataLoader(
        train_samples, batch_size=config.batch_size, sampler=keys, drop_last=len(keys) >= config.batch_size, **common
    )
    val_loader = None
    if val is not None and len(val):
        val_samples: Any = _Samples(val, pre, None, config.seed)
        shard: Any = Subset(val_samples, range(dist.rank, len(val), dist.world))
        val_loader = DataLoader(shard, batch_size=max(config.batch_size, 128), shuffle=False, **common)
    return train_loader, keys, val_loader


# ---------------------------------------------------------------------------------------------- training


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[Any] = []
    no_decay: list[Any] = []
    for _name, param in model.named_parameters():
        (no_decay if param.ndim <= 1 else decay).append(param)  # BatchNorm weights/biases, fc bias
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_factor(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _open_resume(out: Path, config: TrainConfig) -> tuple[Any, TrainConfig]:
    """Load a training checkpoint; the run continues with its schedule. A conflicting explicit option
    is an error, not a silent change."""
    from .models.checkpoints import load_checkpoint

    if not out.exists():
        raise UsageError(f"nothing to resume: {out} does not exist", hint="run again without --resume")
    loaded = load_checkpoint(out, model=config.model)
    saved = loaded.extra.get("config")
    if loaded.layout != "shufflekit" or not isinstance(saved, dict) or "epoch" not in loaded.extra:
        raise CheckpointError(
            f"{out} is not a shufflekit training checkpoint, so it cannot be resumed",
            hint="pass another --out to train from scratch",
        )
    stored = TrainConfig(model=config.model, data=config.data, **saved)
    for name, value in config.schedule().items():
        if value is not None and value != getattr(stored, name):
            raise UsageError(
                f"{out} was trained with {name.replace('_', '-')}={getattr(stored, name)}, not {value}",
                hint=f"leave --{name.replace('_', '-')} out to resume on the same schedule",
            )
    return loaded, stored


def train(
    config: TrainConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: ProgressFn | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``config.data`` and write a checkpoint to ``out`` after every epoch.

    ``progress(task, done, total)`` is called after every step; ``on_epoch(stats)`` after every epoch
    (both on rank 0 only). Raises UsageError/DataError/CheckpointError on bad input, before training.
    """
    import torch
    from torch import nn

    from .models import get_model, model_spec
    from .models.checkpoints import save_checkpoint

    started = time.perf_counter()
    model_spec(config.model)  # an unknown name fails before any data is read
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder", hint="give the checkpoint file's path, e.g. model.pt")
    dist, device = _start_distributed(torch)
    try:
        loaded = None
        if resume:
            loaded, config = _open_resume(out, config)
        elif out.exists():
            raise UsageError(f"{out} exists already", hint="pass --resume to continue it, or choose another --out")
        settings = config.resolved(dist.world)  # on resume every value is the checkpoint's already
        workers, threads = _workers_and_threads(device.type, dist.world, settings.input_size)
        if threads is not None:
            torch.set_num_threads(threads)
        if device.type == "cpu":
            torch.set_flush_denormal(True)  # denormal floats can slow CPU convolutions tenfold

        train_set, val_set = train_val_sets(settings.data, val_fraction=settings.val_fraction, seed=settings.seed)
        if loaded is not None:  # the checkpoint's label order wins; the data must hold the same classes
            train_set = relabel(train_set, loaded.meta.label_names())
            val_set = relabel(val_set, loaded.meta.label_names())
        labels = tuple(train_set.classes or ())  # labelled: _Samples refuses a set without labels
        if dist.is_main:
            train_set.warn_skipped()
            if val_set.skipped:
                val_set.warn_skipped()
        pre = Preprocessing.for_size(settings.input_size)

        torch.manual_seed(settings.seed)
        model = loaded.model if loaded is not None else get_model(settings.model, num_classes=len(labels))
        amp = device.type == "cuda"
        memory_format = torch.channels_last if amp else torch.contiguous_format
        model = model.to(device, memory_format=memory_format)  # type: ignore[call-overload]  # not in torch's stubs
        if amp:
            torch.backends.cudnn.benchmark = True
        net = model
        if dist.world > 1:
            net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if amp else None)

        train_loader, keys, val_loader = _loaders(train_set, val_set, pre, settings, dist, device, workers)
        steps = len(train_loader)
        optimizer = torch.optim.SGD(
            _param_groups(model, settings.weight_decay), lr=settings.lr, momentum=0.9, nesterov=True
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            _lr_factor(steps * settings.epochs, min(steps * settings.warmup_epochs, steps * settings.epochs // 5)),
        )
        scaler = torch.amp.GradScaler(device.type, enabled=amp)
        criterion = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
        history: list[dict[str, Any]] = []
        start_epoch = 0
        if loaded is not None:
            optimizer.load_state_dict(loaded.extra["optimizer"])
            scheduler.load_state_dict(loaded.extra["scheduler"])
            if amp and loaded.extra.get("scaler"):
                scaler.load_state_dict(loaded.extra["scaler"])
            history = list(loaded.extra.get("history") or [])
            start_epoch = int(loaded.extra["epoch"])
            if start_epoch and dist.is_main:
                log.info("resuming %s after epoch %d of %d", out, start_epoch, settings.epochs)

        meta = ModelMeta(
            model=settings.model,
            num_classes=len(labels),
            preprocessing=pre,
            labels=labels,
            training=loaded.meta.training if loaded is not None else {},
        )
        run_stats: list[EpochStats] = []
        decode_failures: set[str] = set()
        for epoch in range(start_epoch, settings.epochs):
            epoch_start = time.perf_counter()
            keys.set_epoch(epoch)
            task = f"epoch {epoch + 1}/{settings.epochs}"
            on_step = (lambda step, task=task: progress(task, step, steps)) if progress and dist.is_main else None
            sums, failed = _train_epoch(
                net, train_loader, optimizer, scheduler, scaler, criterion, device, amp, memory_format, on_step
            )
            decode_failures.update(failed)
            val = _evaluate(model, val_loader, criterion, device, amp, memory_format) if val_loader else None
            if dist.world > 1:
                import torch.distributed as tdist

                packed = torch.cat(
                    [sums, val if val is not None else torch.zeros(3, device=device, dtype=torch.float64)]
                )
                tdist.all_reduce(packed)
                sums, val = packed[:3], (packed[3:] if val is not None else None)
            if epoch == start_epoch and decode_failures and dist.is_main:
                report_skipped(
                    train_set.source, [Skipped(name, "could not be decoded") for name in sorted(decode_failures)]
                )
            seen = max(1.0, float(sums[2]))
            stats = EpochStats(
                epoch=epoch + 1,
                epochs=settings.epochs,
                train_loss=float(sums[0]) / seen,
                train_top1=100.0 * float(sums[1]) / seen,
                val_loss=float(val[0] / val[2]) if val is not None and val[2] else None,
                val_top1=float(100.0 * val[1] / val[2]) if val is not None and val[2] else None,
                lr=float(scheduler.get_last_lr()[0]),
                seconds=time.perf_counter() - epoch_start,
                images=int(sums[2]),
            )
            history.append(stats.to_dict())
            run_stats.append(stats)
            meta = meta.with_(training=_training_summary(settings, stats, train_set, val_set, device, dist))
            if dist.is_main:
                save_checkpoint(
                    out,
                    model,
                    meta,
                    epoch=epoch + 1,
                    config=settings.schedule(),
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict(),
                    scaler=scaler.state_dict() if amp else {},
                    history=history,
                )
                if on_epoch is not None:
                    on_epoch(stats)
        if dist.world > 1:  # every rank leaves together: a rank tearing gloo down while rank 0 still saves
            import torch.distributed as tdist  # its checkpoint aborted now and then ("terminate called ...")

            tdist.barrier()
        return TrainResult(
            out=out,
            meta=meta,
            epochs_done=settings.epochs,
            history=run_stats,
            seconds=time.perf_counter() - started,
            is_main=dist.is_main,
        )
    finally:
        if dist.world > 1:
            import torch.distributed as tdist

            if tdist.is_initialized():
                tdist.destroy_process_group()


def _train_epoch(
    net: Any,
    loader: Any,
    optimizer: Any,
    scheduler: Any,
    scaler: Any,
    criterion: Any,
    device: Any,
    amp: bool,
    memory_format: Any,
    on_step: Callable[[int], None] | None,
) -> tuple[Any, set[str]]:
    """One pass over this rank's share: ((loss * n, correct, n) as a float64 tensor, undecodable files)."""
    import torch

    net.train()
    sums = torch.zeros(3, device=device, dtype=torch.float64)
    failures: set[str] = set()
    for step, (images, targets, failed) in enumerate(loader, 1):
        failures.update(failed)
        if images is not None and len(images) > 1:  # BatchNorm needs two samples per channel
            images = images.to(device, non_blocking=True, memory_format=memory_format)
            targets = targets.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                logits = net(images)
                loss = criterion(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            sums += torch.stack(
                [
                    loss.detach().double() * len(targets),
                    (logits.argmax(1) == targets).sum().double(),
                    torch.tensor(float(len(targets)), device=device, dtype=torch.float64),
                ]
            )
        scheduler.step()  # every step, skipped batch or not, so the schedule depends on the step count only
        if on_step is not None:
            on_step(step)
    return sums, failures


def _evaluate(model: Any, loader: Any, criterion: Any, device: Any, amp: bool, memory_format: Any) -> Any:
    """(loss * n, correct, n) over this rank's share of the validation set, as a float64 tensor."""
    import torch

    model.eval()
    sums = torch.zeros(3, device=device, dtype=torch.float64)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        for images, targets, _ in loader:
            if images is None:
                continue
            images = images.to(device, non_blocking=True, memory_format=memory_format)
            targets = targets.to(device, non_blocking=True)
            logits = model(images)
            sums += torch.stack(
                [
                    criterion(logits.float(), targets).double() * len(targets),
                    (logits.argmax(1) == targets).sum().double(),
                    torch.tensor(float(len(targets)), device=device, dtype=torch.float64),
                ]
            )
    return sums


def _training_summary(
    config: TrainSettings, stats: EpochStats, train: ImageSet, val: ImageSet, device: Any, dist: _Dist
) -> dict[str, Any]:
    """What the metadata says about how the weights were made (plain values only)."""
    return {
        "data": str(config.data),
        "epochs": config.epochs,
        "epochs_done": stats.epoch,
        "train_images": len(train),
        "val_images": len(val),
        "val_top1": round(stats.val_top1, 3) if stats.val_top1 is not None else None,
        "train_top1": round(stats.train_top1, 3),
        "batch_size": config.batch_size * dist.world,
        "lr": config.lr,
        "device": device.type,
        "processes": dist.world,
        "shufflekit": __version__,
    }
