"""Accuracy of every artifact of a release folder, and of the PyTorch model it came from, on labelled
images; each artifact's drop in top-1 against PyTorch is the gate a release passes (``max_drop``
percentage points).

The images go through the model's own preprocessing (the manifest's metadata) once, and every batch is
fed to PyTorch and to each artifact's runtime (``Session.predict``: layout, int8 (de)quantisation and
batching done by the runtime layer). PyTorch is the manifest's source: its checkpoint, checked against
the sha256 recorded at export. Results go into the manifest under kind ``accuracy``: one entry per
artifact (with its sha256, so a result never outlives the file) and one named ``pytorch``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import MANIFEST_NAME, Artifact, Manifest, update_manifest
from ..errors import CheckFailed, UsageError
from ..export.tensorspecs import verified
from ..files import check_writable, sha256_file
from ..records import Accuracy
from . import run_cache
from .tolerances import DEFAULT_MAX_DROP

log = logging.getLogger(__name__)

RESULT_KIND = Accuracy.kind
PYTORCH = "pytorch"
TOP_K = 5
LOGITS_BATCH = 16  # PyTorch's logits on labelled images (see _classified)
_LIMIT_SEED = 0  # --eval-samples takes a fixed random subset spread over every class, not the first classes
ProgressFn = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class AccuracyResult:
    name: str  # artifact file name, or "pytorch"
    key: str  # format:precision, or "pytorch"
    runtime: str
    top1: float  # percent
    top5: float  # percent (top-k with k = min(5, classes))
    samples: int
    agreement: float | None = None  # percent of images with PyTorch's top-1 class
    delta_top1: float | None = None  # percentage points against PyTorch (negative: a loss)
    delta_top5: float | None = None
    max_drop: float | None = None

    @property
    def drop(self) -> float:
        return -(self.delta_top1 or 0.0)

    @property
    def passed(self) -> bool:
        return self.max_drop is None or self.delta_top1 is None or self.drop <= self.max_drop + 1e-9

    def failure(self) -> str | None:
        if self.passed:
            return None
        return f"top-1 {self.top1:.2f}% is {self.drop:.2f} points below PyTorch's (limit {self.max_drop:g})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "runtime": self.runtime,
            "top1": self.top1,
            "top5": self.top5,
            "samples": self.samples,
            "agreement": self.agreement,
            "delta_top1": self.delta_top1,
            "delta_top5": self.delta_top5,
            "max_drop": self.max_drop,
            "passed": self.passed,
            "failure": self.failure(),
        }

    def as_record(self, **more: Any) -> Accuracy:
        """The manifest record of this result, with the run's common fields (data, samples, limit...)."""
        return Accuracy(**{**self.to_dict(), **more})


@dataclass(frozen=True)
class AccuracyReport:
    folder: Path
    data: str
    samples: int
    max_drop: float
    pytorch: AccuracyResult
    results: tuple[AccuracyResult, ...] = field(default_factory=tuple)
    checkpoint: str | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[AccuracyResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "data": self.data,
            "samples": self.samples,
            "max_drop": self.max_drop,
            "checkpoint": self.checkpoint,
            "passed": self.passed,
            "pytorch": self.pytorch.to_dict(),
            "results": [r.to_dict() for r in self.results],
        }

    def raise_if_failed(self) -> None:
        if self.passed:
            return
        worst = "; ".join(f"{r.name} -{r.drop:.2f}" for r in self.failed)
        raise CheckFailed(
            f"{len(self.failed)} of {len(self.results)} artifacts lose more than {self.max_drop:g} "
            f"points of top-1 against PyTorch ({worst})",
            hint="see the table above; calibrate on more or better images, try per-channel or "
            "--calibration entropy, or ship a float artifact",
        )


class _Tally:
    """Running top-1/top-5 counts of one model."""

    def __init__(self) -> None:
        self.top1 = self.top5 = self.total = self.agree = 0

    def add(self, logits: np.ndarray, labels: np.ndarray, reference_top1: np.ndarray | None = None) -> np.ndarray:
        k = min(TOP_K, logits.shape[1])
        ranked = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        self.top1 += int((ranked[:, 0] == labels).sum())
        self.top5 += int((ranked == labels[:, None]).any(axis=1).sum())
        self.total += len(labels)
        if reference_top1 is not None:
            self.agree += int((ranked[:, 0] == reference_top1).sum())
        return ranked[:, 0]

    def percent(self, count: int) -> float:
        return 100.0 * count / self.total if self.total else 0.0


def evaluate_release(
    folder: str | Path,
    data: str | Path,
    *,
    limit: int | None = None,
    max_drop: float = DEFAULT_MAX_DROP,
    select: Sequence[str] = (),
    checkpoint: str | Path | None = None,
    batch_size: int = 64,
    record: bool = True,
    runtime_options: Any = None,
    progress: ProgressFn | None = None,
) -> AccuracyReport:
    """Top-1/top-5 of PyTorch and of every (selected) artifact on the labelled images of ``data``
    (a folder with class subfolders, its val/ split when it has one, an .npz with labels, or 'demo').

    ``checkpoint``: the model to compare with, when the one recorded at export moved (it must be the
    same file, by sha256). ``limit``: a fixed random subset of that many images, spread over the classes.
    """
    from ..runtimes import RuntimeOptions, load_session

    progress = progress or (lambda task, done, total: None)
    folder = Path(folder)
    if limit is not None and limit < 1:
        raise UsageError(f"--eval-samples must be at least 1, got {limit}")
    if max_drop < 0:
        raise UsageError(f"--max-drop must be 0 or more points, got {max_drop}")
    manifest = Manifest.load(folder)
    artifacts = manifest.select(select)
    if not artifacts:
        raise UsageError(f"{folder} lists no artifacts", hint="run `shufflekit export` into it first")
    if record:  # before any measuring: the results go into the manifest at the end
        check_writable(folder, f"evaluate records its results in {folder / MANIFEST_NAME}")
    for artifact in artifacts:  # refuse changed files before spending time on anything
        verified(artifact, folder)
    options = runtime_options or RuntimeOptions()
    source = _pytorch_source(manifest, checkpoint)
    arrays = labelled_arrays(data, manifest, limit=limit, checkpoint=checkpoint) if run_cache.active() else None
    if arrays is not None and run_cache.key_of(arrays.images) is not None:  # kept for the run: classified once
        tallies, runtimes = _run_arrays(arrays, artifacts, folder, options, batch_size, progress)
    else:
        images = _labelled_images(data, manifest, limit)
        sessions = []
        try:
            for artifact in artifacts:
                sessions.append(load_session(artifact, folder, options))
            tallies = _run(images, manifest, source.model, list(zip(artifacts, sessions)), batch_size, progress)
        finally:
            for session in sessions:
                session.close()
        runtimes = [session.runtime for session in sessions]

    reference, per_artifact = tallies[0], tallies[1:]
    torch_result = AccuracyResult(
        PYTORCH, PYTORCH, "torch", reference.percent(reference.top1), reference.percent(reference.top5), reference.total
    )
    results = []
    for artifact, runtime, tally in zip(artifacts, runtimes, per_artifact):
        top1, top5 = tally.percent(tally.top1), tally.percent(tally.top5)
        results.append(
            AccuracyResult(
                artifact.name,
                artifact.key,
                runtime,
                top1,
                top5,
                tally.total,
                agreement=tally.percent(tally.agree),
                delta_top1=top1 - torch_result.top1,
                delta_top5=top5 - torch_result.top5,
                max_drop=max_drop,
            )
        )
    data_name = str(data) if str(data) == "demo" else str(Path(data).resolve())
    report = AccuracyReport(
        folder, data_name, reference.total, max_drop, torch_result, tuple(results), checkpoint=source.sha256
    )
    if record:
        _record(folder, artifacts, report, limit)
    return report


def _labelled_images(data: str | Path, manifest: Manifest, limit: int | None) -> Any:
    return _open_labelled(data, manifest.meta.label_names(), limit)


def _open_labelled(data: str | Path, classes: Any, limit: int | None) -> Any:
    from ..data import open_images

    images = open_images(data, split="val", classes=classes)
    images.require_labels("evaluating accuracy")
    if limit is not None and limit < len(images):
        chosen = np.sort(np.random.default_rng(_LIMIT_SEED).permutation(len(images))[:limit])
        images = images.subset(chosen)
    return images


@dataclass(frozen=True)
class LabelledArrays:
    """Preprocessed labelled images held in memory (NCHW float32) with PyTorch's logits on them: what
    the quantizer's accuracy gate and a device's own accuracy check classify."""

    images: np.ndarray
    labels: np.ndarray  # int64 class indices
    pytorch_logits: np.ndarray
    data: str  # "demo" or the resolved path

    @property
    def pytorch_top1(self) -> float:
        return top1_percent(self.pytorch_logits, self.labels)

    def head(self, count: int) -> LabelledArrays:
        """A fixed subset spread over the classes (the same seed as --eval-samples), for a slow device."""
        if count >= len(self.labels):
            return self
        chosen = np.sort(np.random.default_rng(_LIMIT_SEED).permutation(len(self.labels))[:count])
        return LabelledArrays(self.images[chosen], self.labels[chosen], self.pytorch_logits[chosen], self.data)


def top1_percent(logits: np.ndarray, labels: np.ndarray) -> float:
    return 100.0 * float((np.argmax(np.asarray(logits), axis=1) == labels).mean()) if len(labels) else 0.0


def labelled_arrays(
    data: str | Path, manifest: Manifest, *, limit: int | None = None, checkpoint: str | Path | None = None
) -> LabelledArrays:
    """The validation images of ``data`` through the model's preprocessing, with PyTorch's logits; once
    per release run (``run_cache``): a subset (``limit``) is then taken from the whole set already made."""
    key = _labelled_key(data, manifest, checkpoint)
    whole = run_cache.peek((*key, None))
    if limit is not None and whole is not None:
        images = _labelled_images(data, manifest, None)
        if len(whole.labels) == len(images):  # every image was readable: head() picks what --eval-samples picks
            subset: LabelledArrays = run_cache.once((*key, limit), lambda: whole.head(limit), nbytes=_nbytes)
            return subset
    return run_cache.once((*key, limit), lambda: _labelled_arrays(data, manifest, limit, checkpoint), nbytes=_nbytes)


def _nbytes(arrays: LabelledArrays) -> int:
    return int(arrays.images.nbytes)


def _labelled_key(data: str | Path, manifest: Manifest, checkpoint: str | Path | None) -> tuple[Any, ...]:
    """What labelled arrays depend on: the data, the classes and preprocessing, the model source."""
    return _key_of(data, manifest.meta, manifest.source, checkpoint)


def _key_of(data: str | Path, meta: Any, source: dict[str, Any], checkpoint: str | Path | None) -> tuple[Any, ...]:
    name = str(data) if str(data) == "demo" else str(Path(data).resolve())
    record = json.dumps(source, sort_keys=True, default=str)
    return ("labelled", name, meta.label_names(), repr(meta.preprocessing), record, str(checkpoint))


def warm_labelled_arrays(data: str | Path, source: Any, *, limit: int | None = None) -> None:
    """Within a release run, the labelled arrays of ``data`` made now from ``source`` (the export stage's
    ``ModelSource``, before the folder's manifest records it), under the key ``labelled_arrays`` will
    ask for: the export stage calls this while the converter process makes the TFLite file, so the
    quantizer's gate finds PyTorch's logits made on a core that was waiting."""
    if not run_cache.active():
        return
    key = (*_key_of(data, source.meta, source.record, None), limit)
    if run_cache.peek(key) is not None:
        return
    images = _open_labelled(data, source.meta.label_names(), limit)
    size = source.meta.preprocessing.input_size
    if len(images) * 3 * size.height * size.width * 4 > run_cache.MAX_KEPT_BYTES:
        return  # a set too large to keep would be classified here only to be dropped: its stages read it
    run_cache.once(key, lambda: _classified(images, source.meta, source.model, data), nbytes=_nbytes)


def _labelled_arrays(
    data: str | Path, manifest: Manifest, limit: int | None, checkpoint: str | Path | None
) -> LabelledArrays:
    images = _labelled_images(data, manifest, limit)
    return _classified(images, manifest.meta, _pytorch_source(manifest, checkpoint).model, data)


def _classified(images: Any, meta: Any, model: Any, data: str | Path) -> LabelledArrays:
    """The images through ``meta``'s preprocessing, with ``model``'s logits on them."""
    import torch

    from ..data import iter_batches

    model = channels_last(model)
    arrays, labels, logits = [], [], []
    with torch.no_grad():
        # batches of 16: an activation of v2 1.0x at 224 then stays under glibc's 32 MB mmap ceiling and
        # its memory is reused; at 64 every large tensor is a fresh mapping the kernel zeroes (2.3 against
        # 1.0 s for 352 images on a 2-core EPYC, 1.5 s of it system time)
        for batch in iter_batches(images, meta.preprocessing, batch_size=LOGITS_BATCH, layout="nchw"):
            arrays.append(batch.images)
            labels.append(np.asarray(batch.labels, dtype=np.int64))
            logits.append(model(_channels_last_input(batch.images)).numpy())
    if not arrays:
        raise UsageError(f"no readable labelled image in {data}", hint="check the data folder")
    name = str(data) if str(data) == "demo" else str(Path(data).resolve())
    return LabelledArrays(
        np.concatenate(arrays).astype(np.float32),
        np.concatenate(labels),
        np.concatenate(logits).astype(np.float32),
        name,
    )


def channels_last(model: Any) -> Any:
    """A copy of ``model`` in eval mode with its weights channels-last: PyTorch's CPU kernels run a
    ShuffleNet about 1.5x faster so (v2 1.0x at 224, batch 64: 5.4 against 8.1 ms per image on a
    2-core Xeon), with the same logits to rounding (1.6e-8 of their scale). A copy: the cached model
    stays as it was for the export and the parity reference."""
    import copy

    import torch

    return copy.deepcopy(model).eval().to(memory_format=torch.channels_last)


def _channels_last_input(images: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(images).contiguous(memory_format=torch.channels_last)


def _pytorch_source(manifest: Manifest, checkpoint: str | Path | None) -> Any:
    """The model the folder was exported from; its checkpoint must be there, byte for byte (checked
    before it is opened: ``export.source.recorded_checkpoint``)."""
    from ..export.source import rebuild_source

    record = manifest.source

    def rebuild() -> Any:
        if checkpoint is None and record.get("kind") == "seed":
            log.warning("%s was exported from a seeded, untrained model: its accuracy is chance level", manifest.folder)
        return rebuild_source(record, manifest.meta, checkpoint=checkpoint)

    key = ("source", json.dumps(record, sort_keys=True, default=str), repr(manifest.meta), str(checkpoint))
    return run_cache.once(key, rebuild)  # a release run builds it once (and warns once)


def _run(
    images: Any,
    manifest: Manifest,
    model: Any,
    sessions: Sequence[tuple[Artifact, Any]],
    batch_size: int,
    progress: ProgressFn,
) -> list[_Tally]:
    import torch

    from ..data import iter_batches

    tallies = [_Tally() for _ in range(1 + len(sessions))]
    total = len(images)
    done = 0
    progress("evaluate", 0, total)
    model = channels_last(model)
    with torch.no_grad():
        for batch in iter_batches(images, manifest.meta.preprocessing, batch_size=batch_size, layout="nchw"):
            labels = np.asarray(batch.labels)
            torch_top1 = tallies[0].add(model(_channels_last_input(batch.images)).numpy(), labels)
            for (_artifact, session), tally in zip(sessions, tallies[1:]):
                logits = np.asarray(session.predict_all(batch.images))  # whole batches for a fixed batch N
                tally.add(np.asarray(logits, dtype=np.float32), labels, torch_top1)
            done += len(batch.indices)
            progress("evaluate", done, total)
    return tallies


def _run_arrays(
    arrays: LabelledArrays,
    artifacts: Sequence[Artifact],
    folder: Path,
    options: Any,
    batch_size: int,
    progress: ProgressFn,
) -> tuple[list[_Tally], list[str]]:
    """``_run`` on labelled images kept for the run: PyTorch's logits are already there, a file whose
    predictions on them this run already made (the quantizer's gate) is not run again, and the others
    run side by side, one file per core with one thread each (unless the options fix the threads):
    on a small machine that beats one file at a time on every core, whose threads wait on each other."""
    from concurrent.futures import ThreadPoolExecutor, as_completed
    from dataclasses import replace

    from ..runtimes import load_session

    keys = [prediction_key(folder / a.name, arrays.images, options) for a in artifacts]
    found = {i: run_cache.predictions(key) for i, key in enumerate(keys)}
    pending = [i for i, hit in found.items() if hit is None]
    workers = 1 if options.threads is not None else max(1, min(len(pending), os.cpu_count() or 1))
    per_file = options if workers == 1 else replace(options, threads=1)

    def classify(index: int) -> tuple[np.ndarray, str]:
        session = load_session(artifacts[index], folder, per_file)
        try:
            parts = [
                np.asarray(session.predict_all(arrays.images[i : i + batch_size]), dtype=np.float32)
                for i in range(0, len(arrays.labels), batch_size)
            ]
        finally:
            session.close()
        return np.concatenate(parts), session.runtime

    progress("evaluate", len(artifacts) - len(pending), len(artifacts))
    with ThreadPoolExecutor(max_workers=workers) as pool:  # the runtimes let go of the GIL while they run
        futures = {pool.submit(classify, i): i for i in pending}
        for done, future in enumerate(as_completed(futures), start=len(artifacts) - len(pending) + 1):
            index = futures[future]
            found[index] = future.result()
            run_cache.keep_predictions(keys[index], *future.result())
            progress("evaluate", done, len(artifacts))
    tallies = [_Tally() for _ in range(1 + len(artifacts))]
    torch_top1 = tallies[0].add(arrays.pytorch_logits, arrays.labels)
    runtimes = []
    for index, tally in enumerate(tallies[1:]):
        hit = found[index]
        assert hit is not None  # every pending file was classified above
        logits, runtime = hit
        tally.add(logits, arrays.labels, torch_top1)
        runtimes.append(runtime)
    return tallies, runtimes


def prediction_key(path: Path, images: np.ndarray, options: Any) -> tuple[Any, ...] | None:
    """What a file's predictions on kept images depend on: the images, the runtime options, and the file's
    computation (for ONNX its graph and opsets, not its metadata, which the quantizer writes after its
    gate judged the file). None when the images are not kept for the run."""
    from dataclasses import replace

    images_key = run_cache.key_of(images)
    if images_key is None:
        return None
    if path.suffix == ".onnx":
        import hashlib

        import onnx

        model = onnx.load(str(path), load_external_data=False)
        digest = hashlib.sha256(model.graph.SerializeToString())
        for opset in model.opset_import:
            digest.update(f"{opset.domain}:{opset.version};".encode())
        content = "onnx graph " + digest.hexdigest()
    else:
        content = sha256_file(path)
    # threads are left out: they split the work, not the sums (the gate runs on every core, evaluate on one)
    return ("predictions", content, images_key, repr(replace(options, threads=None)))


def _record(folder: Path, artifacts: Sequence[Artifact], report: AccuracyReport, limit: int | None) -> None:
    by_name = {a.name: a for a in artifacts}
    common = {"data": report.data, "samples": report.samples, "limit": limit}
    with update_manifest(folder) as manifest:
        manifest.record(report.pytorch.as_record(**common, checkpoint_sha256=report.checkpoint), PYTORCH)
        current = {a.name: a for a in manifest.artifacts}
        for result in report.results:
            artifact = by_name[result.name]
            if current.get(artifact.name) != artifact:
                continue  # replaced meanwhile by another command: this result is about the old file
            manifest.record(result.as_record(**common, pytorch_top1=report.pytorch.top1), artifact)
