"""Parity of every artifact of a release folder against PyTorch, judged by the tolerance table.

Each artifact runs in its own runtime through the Session API (ONNX Runtime CPU; LiteRT, or
tflite_runtime on boards), on the folder's stored reference inputs, with the layout conversion and
(de)quantisation done by ``Session.predict``. Results go into the manifest under "parity".

Quantised artifacts are also judged by accuracy: where ``shufflekit evaluate`` measured this very file
(the manifest's fresh "accuracy" result), a top-1 drop against PyTorch beyond the tolerance's
``max_accuracy_drop`` fails it, and the figure is reported beside the agreement metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..artifacts import MANIFEST_NAME, Artifact, Manifest, update_manifest
from ..errors import CheckFailed, IntegrityError, UsageError
from ..export.reference import DEFAULT_SAMPLES, Reference, reference_inputs
from ..export.tensorspecs import verified
from ..files import check_writable
from ..records import Accuracy, Parity, _ParityFields
from .metrics import ParityMetrics, compare, judge
from .tolerances import Tolerance, tolerance_for

log = logging.getLogger(__name__)

RESULT_KIND = Parity.kind
P = TypeVar("P", bound=_ParityFields)
ProgressFn = Callable[[str, int, "int | None"], None]
_REBUILD_MATCH = 1e-4  # a rebuilt model must reproduce the stored reference to this (relative) error


@dataclass(frozen=True)
class ParityResult:
    artifact: str
    key: str  # format:precision
    runtime: str
    providers: tuple[str, ...]
    metrics: ParityMetrics | None
    tolerance: Tolerance
    failures: tuple[str, ...]
    accuracy: dict[str, Any] | None = None  # what `shufflekit evaluate` measured on this file, if it did

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "key": self.key,
            "runtime": self.runtime,
            "providers": list(self.providers),
            "passed": self.passed,
            "failures": list(self.failures),
            "metrics": self.metrics.to_dict() if self.metrics else None,
            "tolerance": self.tolerance.to_dict(),
            "accuracy": self.accuracy,
        }

    def as_record(self, cls: type[P] = Parity, **more: Any) -> P:  # type: ignore[assignment]
        """The manifest record of this result (``Parity`` on this computer, ``DeviceParity`` on a device)."""
        return cls(
            artifact=self.artifact,
            key=self.key,
            runtime=self.runtime,
            providers=tuple(self.providers),
            passed=self.passed,
            failures=tuple(self.failures),
            metrics=self.metrics.to_dict() if self.metrics else None,
            tolerance=self.tolerance.to_dict(),
            accuracy=self.accuracy,
            **more,
        )


@dataclass(frozen=True)
class ParityReport:
    folder: Path
    samples: int
    reference: str  # where the PyTorch outputs came from
    results: tuple[ParityResult, ...] = field(default_factory=tuple)
    source: str = ""  # "checkpoint" or "seed": what the folder was exported from

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[ParityResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "samples": self.samples,
            "reference": self.reference,
            "source": self.source,
            "passed": self.passed,
            "results": [r.to_dict() for r in self.results],
        }

    def raise_if_failed(self) -> None:
        if self.passed:
            return
        worst = "; ".join(f"{r.artifact}: {r.failures[0]}" for r in self.failed)
        hint = (
            seeded_weights_hint(self.source, [r.key for r in self.failed])
            or "see the table above; re-export, or check the converter versions"
        )
        raise CheckFailed(f"parity failed for {len(self.failed)} of {len(self.results)} artifacts ({worst})", hint=hint)


def seeded_weights_hint(source: str, failed_keys: Sequence[str]) -> str | None:
    """Why reduced-precision files of a seeded (untrained) export fail parity, or None where that is not it.
    Measured: a random network's pooled features barely differ between images, so its classes hang on
    small differences that fp16 rounding and int8 steps swamp."""
    if source != "seed" or not failed_keys or any(k.endswith(":fp32") for k in failed_keys):
        return None
    return (
        "this folder holds seeded random weights, on which reduced-precision agreement measures "
        "noise rather than quantization quality; judge fp16/int8 on a trained checkpoint"
    )


def validate_release(
    folder: str | Path,
    *,
    checkpoint: str | Path | None = None,
    samples: int | None = None,
    select: Sequence[str] = (),
    record: bool = True,
    progress: ProgressFn | None = None,
    runtime_options: Any = None,
) -> ParityReport:
    """Run every (selected) artifact on the reference inputs and compare with PyTorch's outputs.

    ``checkpoint``: recompute the reference from this checkpoint (it must be the one the folder was
    exported from). ``samples``: how many reference inputs; more than the folder stores are generated
    and their PyTorch outputs recomputed from the recorded source.
    """
    from ..runtimes import RuntimeOptions, load_session

    progress = progress or (lambda task, done, total: None)
    folder = Path(folder)
    if samples is not None and samples < 1:
        raise UsageError(f"--parity-samples must be at least 1, got {samples}")
    manifest = Manifest.load(folder)
    artifacts = manifest.select(select)
    if not artifacts:
        raise UsageError(f"{folder} lists no artifacts", hint="run `shufflekit export` into it first")
    if record:  # before any measuring: the results go into the manifest at the end
        check_writable(folder, f"validate records its results in {folder / MANIFEST_NAME}")
    for artifact in artifacts:  # refuse changed files before spending time on anything
        verified(artifact, folder)
    reference, origin = load_reference(manifest, checkpoint=checkpoint, samples=samples)
    options = runtime_options or RuntimeOptions()
    accuracy = manifest.results(Accuracy)  # fresh only: measured on these very files

    results = []
    progress("parity", 0, len(artifacts))
    for index, artifact in enumerate(artifacts, start=1):
        tolerance = tolerance_for(artifact.format, artifact.precision)
        session = load_session(artifact, folder, options)
        try:
            outputs = np.asarray(session.predict_all(reference.inputs))  # any fixed batch: padded there
            runtime, providers = session.runtime, tuple(session.providers)
        finally:
            session.close()
        result = judge_outputs(artifact, runtime, providers, reference, outputs, tolerance)
        results.append(_with_accuracy(result, accuracy.get(artifact.name)))
        progress("parity", index, len(artifacts))
    report = ParityReport(folder, reference.samples, origin, tuple(results), str(manifest.source.get("kind", "")))
    if record:
        _record(folder, artifacts, report)
    return report


def judge_outputs(
    artifact: Artifact,
    runtime: str,
    providers: tuple[str, ...],
    reference: Reference,
    outputs: np.ndarray,
    tolerance: Tolerance,
) -> ParityResult:
    """One artifact's outputs on the reference inputs against PyTorch's, judged by ``tolerance``."""
    outputs = np.asarray(outputs)
    if outputs.shape != reference.logits.shape:
        failure = f"output shape {outputs.shape} differs from PyTorch's {reference.logits.shape}"
        return ParityResult(artifact.name, artifact.key, runtime, providers, None, tolerance, (failure,))
    metrics = compare(reference.logits, outputs)
    return ParityResult(
        artifact.name, artifact.key, runtime, providers, metrics, tolerance, tuple(judge(metrics, tolerance))
    )


def _with_accuracy(result: ParityResult, measured: Accuracy | None) -> ParityResult:
    """Add the accuracy drop `shufflekit evaluate` measured on this file, judged by the tolerance."""
    if measured is None or measured.delta_top1 is None:
        return result
    drop = -float(measured.delta_top1)
    summary = {k: getattr(measured, k) for k in ("top1", "delta_top1", "agreement", "data", "samples", "measured_at")}
    failures = result.failures
    limit = result.tolerance.max_accuracy_drop
    if limit is not None and drop > limit + 1e-9:
        failures += (
            f"top-1 accuracy {drop:.2f} points below PyTorch's > {limit:g} "
            f"(shufflekit evaluate, {measured.samples} images)",
        )
    return replace(result, accuracy=summary, failures=failures)


def _record(folder: Path, artifacts: Sequence[Artifact], report: ParityReport) -> None:
    by_name = {a.name: a for a in artifacts}
    with update_manifest(folder) as manifest:
        current = {a.name: a for a in manifest.artifacts}
        for result in report.results:
            artifact = by_name[result.artifact]
            if current.get(artifact.name) != artifact:
                continue  # replaced meanwhile by another command: this result is about the old file
            manifest.record(result.as_record(samples=report.samples, reference=report.reference), artifact)


# -- the reference -------------------------------------------------------------------------------------
def load_reference(
    manifest: Manifest, *, checkpoint: str | Path | None = None, samples: int | None = None
) -> tuple[Reference, str]:
    """The folder's stored reference, or one recomputed from the recorded source (or ``checkpoint``)."""
    record = manifest.reference
    stored: Reference | None = None
    if record is not None:
        stored = stored_reference(manifest)
    if checkpoint is None and stored is not None and (samples is None or samples <= stored.samples):
        assert record is not None  # stored was loaded from it
        return stored.head(samples or stored.samples), f"stored {record['file']}"
    count = samples or (stored.samples if stored is not None else DEFAULT_SAMPLES)
    seed = stored.seed if stored is not None else int((record or {}).get("seed", 0))
    reference = _recompute(manifest, checkpoint, count, seed)
    if stored is not None:
        overlap = min(stored.samples, reference.samples)
        error = np.abs(reference.logits[:overlap] - stored.logits[:overlap]).max()
        if error > _REBUILD_MATCH * max(float(np.abs(stored.logits).max()), 1e-12):
            raise IntegrityError(
                "the model rebuilt from the recorded source does not reproduce the stored reference "
                f"(max abs diff {error:.2e})",
                hint="re-export the folder with this shufflekit version",
            )
    how = f"checkpoint {Path(checkpoint).name}" if checkpoint else f"{manifest.source.get('kind', 'source')}"
    return reference, f"recomputed from {how}"


def _recompute(manifest: Manifest, checkpoint: str | Path | None, count: int, seed: int) -> Reference:
    import torch

    from ..export.source import rebuild_source

    source = rebuild_source(manifest.source, manifest.meta, checkpoint=checkpoint)
    inputs = reference_inputs(count, manifest.meta.preprocessing, seed=seed)
    with torch.no_grad():
        logits = source.model.eval()(torch.from_numpy(inputs)).numpy()
    return Reference(inputs, logits, seed)


def stored_reference(manifest: Manifest) -> Reference | None:
    """The folder's reference, None for a folder exported without one: its name confined to the folder,
    its bytes checked against the recorded sha256, its arrays against the model (input size, classes)
    before they are read. No torch needed."""
    record = manifest.reference
    path = manifest.reference_path()
    if record is None or path is None:
        return None
    meta = manifest.meta
    return Reference.load(
        path, sha256=record["sha256"], input_shape=meta.input_size.nchw()[1:], num_classes=meta.num_classes
    )
