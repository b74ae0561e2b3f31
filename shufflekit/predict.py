"""Classify image files with one artifact of a release folder, on this computer or any device, through
the manifest's own preprocessing: the first thing an app developer tries.

The images are decoded and preprocessed here (the card's steps: resize, crop, scale, normalize), sent as
float32 NCHW with the artifact, and run on the device by the same job that measures it (``profile``'s
path: push, run, pull), so the classes come from the kernels that will run the file, and the latency
beside them is that device's."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import Artifact, Manifest
from .errors import UsageError

# The suffixes a folder's images are found by (a file named on the command line is read whatever its name).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm")
MAX_IMAGES = 1000  # one job's inputs in memory and on the device: ~0.6 MB per 224x224 image
DEFAULT_ARTIFACTS = ("onnx:fp32", "tflite:fp32")


@dataclass(frozen=True)
class Guess:
    index: int
    label: str
    score: float  # softmax probability

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "score": self.score}


@dataclass(frozen=True)
class ImagePrediction:
    image: Path
    top: tuple[Guess, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"image": str(self.image), "top": [g.to_dict() for g in self.top]}


@dataclass(frozen=True)
class PredictReport:
    folder: Path
    artifact: Artifact
    device: str  # the device's key
    runtime: str | None
    providers: tuple[str, ...]  # what ran (ONNX Runtime providers, or the TFLite delegate)
    latency_p50_ms: float | None  # one image, on that device
    predictions: tuple[ImagePrediction, ...]
    random_weights: bool  # no checkpoint: the classes mean nothing
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "artifact": self.artifact.name,
            "key": self.artifact.key,
            "device": self.device,
            "runtime": self.runtime,
            "providers": list(self.providers),
            "latency_p50_ms": self.latency_p50_ms,
            "random_weights": self.random_weights,
            "predictions": [p.to_dict() for p in self.predictions],
        }


def find_images(paths: Sequence[Path]) -> list[Path]:
    """The image files named, and those under the folders named (by suffix, sorted, links not followed
    out of the folder); a name that is neither is an error."""
    found: list[Path] = []
    for given in paths:
        if given.is_dir():
            root = given.resolve()
            for parent, dirs, files in os.walk(given, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    path = Path(parent) / name
                    if path.suffix.lower() in IMAGE_SUFFIXES and path.resolve().is_relative_to(root):
                        found.append(path)
            continue
        if not given.is_file():
            raise UsageError(f"{given} is neither an image file nor a folder", hint="check the path")
        found.append(given)
    if not found:
        raise UsageError(
            f"no image found in {', '.join(map(str, paths))}",
            hint=f"give image files or folders holding {', '.join(IMAGE_SUFFIXES[:5])}... files",
        )
    if len(found) > MAX_IMAGES:
        raise UsageError(
            f"{len(found)} images given; predict takes at most {MAX_IMAGES} at a time",
            hint="give fewer, or measure a labelled set with `shufflekit evaluate --data`",
        )
    return found


def load_images(paths: Sequence[Path], manifest: Manifest) -> np.ndarray:
    """Decode and preprocess each image as the manifest says (NCHW float32); an unreadable one is named."""
    from .data import DECODE_ERRORS, open_image, preprocess

    pre = manifest.meta.preprocessing
    arrays = []
    for path in paths:
        try:
            with open_image(path) as image:
                arrays.append(preprocess(image.convert("RGB"), pre, "nchw"))
        except DECODE_ERRORS as exc:
            raise UsageError(
                f"cannot read {path} as an image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                hint="give JPEG, PNG, BMP or WebP files",
            ) from None
    return np.stack(arrays).astype(np.float32)


def choose_artifact(manifest: Manifest, selector: str | None) -> Artifact:
    """The one artifact named (file name, format or format:precision); by default the fp32 ONNX file (or
    TFLite's where there is no ONNX file)."""
    if selector:
        chosen = manifest.select([selector])
        if len(chosen) > 1:
            raise UsageError(
                f"{selector!r} names {len(chosen)} artifacts ({', '.join(a.name for a in chosen)})",
                hint="name one: a file name or format:precision such as tflite:int8",
            )
        return chosen[0]
    for default in DEFAULT_ARTIFACTS:
        found = [a for a in manifest.artifacts if a.key == default]
        if found:
            return found[0]
    if not manifest.artifacts:
        raise UsageError(f"{manifest.folder} lists no artifacts", hint="export some first: shufflekit export")
    return manifest.artifacts[0]


def top_k(logits: np.ndarray, labels: Sequence[str], k: int) -> tuple[Guess, ...]:
    shifted = np.exp(logits.astype(np.float64) - logits.max())
    probs = shifted / shifted.sum()
    order = np.argsort(-probs, kind="stable")[: min(k, len(probs))]
    return tuple(Guess(int(i), labels[int(i)], float(probs[i])) for i in order)


def predict_images(
    folder: str | Path,
    images: Sequence[Path],
    *,
    artifact: str | None = None,
    device: str = "local",
    k: int = 5,
    options: Any = None,  # runtimes.RuntimeOptions: provider, threads, fallback
    connect: Any = None,  # runtimes.remote.ConnectOptions
) -> PredictReport:
    """Classify ``images`` with one artifact of ``folder`` on ``device``."""
    from .export.tensorspecs import verified
    from .runtimes import RuntimeOptions
    from .runtimes.base import runtime_for_format
    from .runtimes.profile import ProfileSettings, benchmark_job, check_provider, run_on_device
    from .runtimes.remote import parse_address

    folder = Path(folder)
    options = options or RuntimeOptions()
    parse_address(device, ssh_config=getattr(connect, "ssh_config", None))  # a bad address before any work
    manifest = Manifest.load(folder)
    chosen = choose_artifact(manifest, artifact)
    check_provider(options, runtime_for_format(chosen.format).name, chosen)
    paths = find_images(images)
    path = verified(chosen, folder)
    pixels = load_images(paths, manifest)
    settings = ProfileSettings(warmup=2, iters=10, batch=1)
    with tempfile.TemporaryDirectory(prefix="shufflekit-predict-") as work:
        inputs, outputs = Path(work) / "predict_inputs.npy", Path(work) / "back" / "predict_logits.npy"
        outputs.parent.mkdir()
        np.save(inputs, pixels)
        key, result, facts = run_on_device(
            device,
            chosen,
            path,
            benchmark_job(chosen, path.name, options, settings),
            timeout=900.0,
            connect=connect,
            parity_inputs=inputs,
            parity_outputs=outputs,
        )
        logits = np.load(outputs, allow_pickle=False)
    labels = manifest.meta.label_names()
    rows = logits.reshape(len(paths), -1)
    predictions = tuple(ImagePrediction(p, top_k(r, labels, k)) for p, r in zip(paths, rows))
    p50 = (result.get("latency_ms") or {}).get("p50_ms")
    return PredictReport(
        folder=folder,
        artifact=chosen,
        device=key,
        runtime=result.get("runtime"),
        providers=tuple(result.get("providers") or ()),
        latency_p50_ms=float(p50) if p50 is not None else None,
        predictions=predictions,
        random_weights=manifest.source.get("kind") != "checkpoint",
        facts=facts,
    )
