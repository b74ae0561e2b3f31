"""The release pipeline: model -> ONNX -> TFLite, plus the parity reference, into a release folder
recorded by manifest.json.

Atomic per folder: everything is built in a staging directory inside the folder (same file system),
then each finished file is renamed into place and the manifest is written last. Until that final
rename the old manifest stays in charge; a reader that meets a file already replaced but still
listed by the old manifest refuses it on its sha256, never uses it as the old one. A killed export
leaves at most a ``.shufflekit-staging-*`` directory, which the next export into the folder removes.

A file the folder holds that its manifest does not record (a user's README.md, reference.npz, or a
same-named model file) is never replaced: the export is refused naming it, before the model loads (the
reference) and again before any conversion (the artifact names, once the model is known).

Re-exporting keeps what is still valid: artifacts made by other commands (quantized children) stay
when their lineage parent is still in the folder byte for byte, otherwise they are dropped with
their files; results recorded on files that changed go stale through their sha256.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import MANIFEST_NAME, Artifact, Manifest, TensorSpec, tool_versions
from ..errors import ManifestError, UsageError
from ..files import sha256_file
from ..folder import ReleaseFolder
from ..formats import get_format
from ..metadata import InputSize
from .conversion import ConversionRequest
from .converters import convertible_formats, get_converter
from .onnx import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, OnnxExport, export_onnx, parse_batch
from .source import ModelSource, load_source

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "tflite")  # the default; any format with a converter can be asked for
ProgressFn = Callable[[str, int, "int | None"], None]


def artifact_filename(model: str, fmt: str, precision: str, variant: str = "") -> str:
    """File name of an artifact in a release folder, e.g. shufflenet_v2_x1_0_fp32.tflite."""
    suffix = f"_{variant}" if variant else ""
    return get_format(fmt).filename(f"{model}_{precision}{suffix}")


@dataclass(frozen=True)
class ExportOptions:
    formats: tuple[str, ...] = EXPORT_FORMATS
    batch: int | str = 1  # 1, N or "dynamic"
    layout: str = "NHWC"  # of the TFLite input; ONNX is always NCHW
    opset: int = DEFAULT_OPSET
    exporter: str = "torchscript"
    reference_samples: int = 16
    seed: int = 0  # weights of a model exported without checkpoint, and the reference inputs
    reference_data: str | None = None  # images for the parity reference (its val split); None: synthetic
    optimize: bool = True  # exact graph rewrites per format (export.rewrites); False: the plain graph

    def checked(self) -> ExportOptions:
        formats = tuple(dict.fromkeys(f.strip().lower() for f in self.formats if f.strip()))
        known = convertible_formats()
        unknown = [f for f in formats if f not in known]
        if unknown or not formats:
            raise UsageError(
                f"unknown format {', '.join(unknown) or '(none)'}",
                hint=f"use --formats with {' and/or '.join(known)}, e.g. onnx,tflite",
            )
        layout = self.layout.upper()
        if layout not in ("NHWC", "NCHW"):
            raise UsageError(f"unknown layout {self.layout!r}", hint="use nhwc (what apps feed) or nchw")
        if self.reference_samples < 1:
            raise UsageError("the parity reference needs at least one sample")
        batch = parse_batch(self.batch)
        fixed = [get_format(f) for f in formats if get_format(f).fixed_batch_reason]
        if batch == "dynamic" and fixed:
            names = ", ".join(f.name for f in fixed)
            raise UsageError(
                str(fixed[0].fixed_batch_reason),
                hint=f"pass --batch 1 or --batch N for {names}, or --formats onnx for a dynamic-batch ONNX file",
            )
        return ExportOptions(
            formats=formats,
            batch=batch,
            layout=layout,
            opset=self.opset,
            exporter=self.exporter,
            reference_samples=self.reference_samples,
            seed=self.seed,
            reference_data=self.reference_data,
            optimize=self.optimize,
        )


@dataclass(frozen=True)
class ExportReport:
    folder: Path
    artifacts: tuple[Artifact, ...]  # made by this export
    kept: tuple[str, ...]  # artifacts of an earlier run still valid and kept
    dropped: tuple[str, ...]  # artifacts of an earlier run whose parent changed, removed
    timings: dict[str, float] = field(default_factory=dict)


def export_model(
    out: str | Path,
    *,
    model: str | None = None,
    checkpoint: str | Path | None = None,
    num_classes: int | None = None,
    input_size: InputSize | int | None = None,  # an int is a square
    options: ExportOptions | None = None,
    progress: ProgressFn | None = None,
    meanwhile: Callable[[ModelSource], None] | None = None,
) -> ExportReport:
    """Export a model (registry name, optionally with a checkpoint) into the release folder ``out``.
    ``meanwhile``: work of this process's (a release's) done with the model while another process
    converts the ONNX file (``_while_converting``); after the conversions where none does."""
    options = (options or ExportOptions()).checked()
    progress = progress or (lambda task, done, total: None)
    if not str(out).strip():
        raise UsageError("the output folder is an empty path (an unset shell variable?)", hint="pass --out DIR")
    out = Path(out)
    _check_folder(out)
    _previous_manifest(out)  # an unreadable manifest is refused before any work
    folder = ReleaseFolder(out)
    folder.check_replaceable(export_file_names(model, options), hint=OUT_HINT)  # before the model loads
    timings: dict[str, float] = {}
    started = time.perf_counter()
    source = load_source(
        model=model, checkpoint=checkpoint, num_classes=num_classes, input_size=input_size, seed=options.seed
    )
    timings["load_model"] = time.perf_counter() - started
    folder.check_replaceable(export_file_names(source.meta.model, options), hint=OUT_HINT)  # before any conversion
    steps = 2 + len(options.formats)
    progress("export", 0, steps)

    created = not out.exists()
    try:
        folder.remove_staging()  # what a killed export left; a .partial may be another command's, in flight
        with folder.staging() as staging:
            t0 = time.perf_counter()
            reference_record = _write_reference(source, staging, options)
            timings["reference"] = time.perf_counter() - t0
            progress("export", 1, steps)

            onnx_name = artifact_filename(source.meta.model, "onnx", "fp32")
            made = _export_onnx_artifact(source, staging / onnx_name, options)
            timings["onnx_export"] = made[1].seconds
            artifacts = [made[0]] if "onnx" in options.formats else []
            progress("export", 2, steps)

            def convert_others() -> list[Artifact]:
                converted = []
                for fmt in options.formats:
                    if fmt == "onnx":
                        continue
                    t0 = time.perf_counter()
                    converted.append(_convert_artifact(fmt, source, made[0], staging, options, progress))
                    timings[f"{fmt}_convert"] = time.perf_counter() - t0
                return converted

            artifacts += _while_converting(convert_others, meanwhile, source, options.formats)
            progress("export", steps, steps)
            kept, dropped = _commit(folder, staging, source, artifacts, reference_record)
    except BaseException:
        if created:  # a failed or interrupted export into a new folder leaves no folder behind
            _remove_if_untouched(out)
        raise
    timings["total"] = time.perf_counter() - started
    log.info("exported %s to %s: %s", source.meta.model, out, ", ".join(a.name for a in artifacts))
    return ExportReport(out, tuple(artifacts), tuple(a.name for a in kept), tuple(a.name for a in dropped), timings)


# -- the steps ---------------------------------------------------------------------------------------
def _write_reference(source: ModelSource, staging: Path, options: ExportOptions) -> dict[str, Any]:
    import torch

    from .reference import REFERENCE_NAME, Reference, reference_inputs

    pre = source.meta.preprocessing
    if options.reference_data is not None:  # real images: a file that misranks them cannot pass parity
        from ..data import calibration_images, open_images

        images = open_images(options.reference_data, split="val")
        inputs = calibration_images(images, pre, options.reference_samples, seed=options.seed)
        described = (
            f"{len(inputs)} images of {options.reference_data if options.reference_data == 'demo' else Path(options.reference_data).name} "
            "(its validation split) through the model's preprocessing"
        )
    else:
        inputs = reference_inputs(options.reference_samples, pre, seed=options.seed)
        described = "synthetic images, normalised with the model's mean/std"
    with torch.no_grad():
        logits = source.model.eval()(torch.from_numpy(inputs)).numpy()
    sha = Reference(inputs, logits, options.seed).save(staging / REFERENCE_NAME)
    return {
        "file": REFERENCE_NAME,
        "sha256": sha,
        "samples": len(inputs),
        "seed": options.seed,
        "layout": "NCHW",
        "inputs": described,
        "data": options.reference_data,
        "outputs": "PyTorch float32 logits, eval mode",
        "input_shape": list(inputs.shape[1:]),
    }


def _export_onnx_artifact(source: ModelSource, path: Path, options: ExportOptions) -> tuple[Artifact, OnnxExport]:
    made = export_onnx(
        source.model,
        source.meta,
        path,
        source=source.record,
        batch=options.batch,
        opset=options.opset,
        exporter=options.exporter,
        optimize=options.optimize,
    )
    artifact = Artifact.from_file(
        path,
        format="onnx",
        precision="fp32",
        meta=source.meta,
        inputs=(TensorSpec(INPUT_NAME, made.input_shape, "float32", "NCHW"),),
        outputs=(TensorSpec(OUTPUT_NAME, made.output_shape, "float32"),),
        parent_sha256=source.sha256,  # lineage: the checkpoint, when there is one
        tools=tool_versions("torch", "onnx", "onnxslim"),
        options=dict(made.options),
    )
    return artifact, made


def _while_converting(
    convert: Callable[[], list[Artifact]],
    meanwhile: Callable[[ModelSource], None] | None,
    source: ModelSource,
    formats: Sequence[str],
) -> list[Artifact]:
    """``convert()``, with ``meanwhile(source)`` run beside it when the conversions go to the release's
    converter process (this thread then only waits on its pipe); in turn otherwise, as TensorFlow in this
    process redirects its descriptors while it converts. A failure of either is raised once both ended."""
    from . import tflite_worker

    if meanwhile is None:
        return convert()
    if "tflite" not in formats or tflite_worker.current() is None:
        converted = convert()
        meanwhile(source)
        return converted
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-convert") as pool:
        converting = pool.submit(convert)
        try:
            meanwhile(source)
        except BaseException:
            with contextlib.suppress(Exception):
                converting.result()  # wait for it: the staging folder is removed only after
            raise
        return converting.result()


def _convert_artifact(
    fmt: str, source: ModelSource, onnx_artifact: Artifact, staging: Path, options: ExportOptions, progress: ProgressFn
) -> Artifact:
    """The float32 file of ``fmt``, converted from the exported ONNX file by the format's converter."""
    layouts = get_format(fmt).layouts
    path = staging / artifact_filename(source.meta.model, fmt, "fp32")
    request = ConversionRequest(
        onnx=staging / onnx_artifact.name,
        onnx_inputs=onnx_artifact.inputs,
        onnx_outputs=onnx_artifact.outputs,
        out=path,
        batch=options.batch,
        progress=progress,
        layout=options.layout if options.layout in layouts else layouts[0],
        optimize=options.optimize,
    )
    made = get_converter(fmt)(request)
    return Artifact.from_file(
        path,
        format=fmt,
        precision="fp32",
        meta=source.meta,
        inputs=made.inputs,
        outputs=made.outputs,
        parent_sha256=onnx_artifact.sha256,
        tools=tool_versions(*made.tools),
        options=dict(made.options),
    )


# -- folder handling ---------------------------------------------------------------------------------
def _remove_if_untouched(out: Path) -> None:
    """Remove a folder this export created, when it holds nothing but the lock file (nobody else wrote)."""
    from ..folder import LOCK_NAME

    with contextlib.suppress(OSError):
        if {p.name for p in out.iterdir()} <= {LOCK_NAME}:
            (out / LOCK_NAME).unlink(missing_ok=True)
            out.rmdir()


OUT_HINT = "move it away or choose another --out"


def export_file_names(model: str | None, options: ExportOptions) -> list[str]:
    """The names an export renames into the folder: the reference, and each format's file once the
    model name is known."""
    from .reference import REFERENCE_NAME

    names = [REFERENCE_NAME]
    if model:
        names += [artifact_filename(model, fmt, "fp32") for fmt in options.formats]
    return names


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is a file", hint="pass a folder path (it is created if missing)")
    parent = out.parent if not out.exists() else out
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write to {parent}", hint="choose a folder you can write to")


def _previous_manifest(out: Path) -> Manifest | None:
    if not (out / MANIFEST_NAME).exists():
        return None
    try:
        return Manifest.load(out)
    except ManifestError as exc:
        raise ManifestError(
            f"{out} holds a {MANIFEST_NAME} shufflekit cannot read ({exc.message})",
            hint="remove it or export into another folder; nothing was changed",
        ) from None


def _commit(
    folder: ReleaseFolder, staging: Path, source: ModelSource, artifacts: Sequence[Artifact], reference: dict[str, Any]
) -> tuple[list[Artifact], list[Artifact]]:
    """Rename the staged files into the folder and write the manifest last. Returns (kept, dropped)
    artifacts of the previous manifest."""
    out = folder.path
    found: dict[str, list[Artifact]] = {}

    def build() -> Manifest:
        previous = _previous_manifest(out)  # again, under the lock: another command may have added to it
        found["kept"], found["dropped"] = _still_valid(previous, artifacts)
        data = Manifest.new(out, source.meta, source=source.record).to_dict()
        if previous is not None:
            old = previous.to_dict()
            data["results"] = old.get("results", {})  # stale entries are filtered by sha256
            if old.get("files"):
                data["files"] = old["files"]  # the report's files stay the tool's (the next report rewrites them)
        manifest = Manifest(out, data)
        for artifact in [*found["kept"], *artifacts]:
            manifest.add(artifact)
        manifest.set_reference(**reference)
        return manifest

    def remove_dropped() -> None:
        for artifact in found["dropped"]:
            path = out / artifact.name
            if path.is_file() and sha256_file(path) == artifact.sha256:  # never delete a file we did not make
                path.unlink()

    folder.commit(staging, [a.name for a in artifacts] + [reference["file"]], build, after=remove_dropped)
    return found["kept"], found["dropped"]


def _still_valid(previous: Manifest | None, new: Sequence[Artifact]) -> tuple[list[Artifact], list[Artifact]]:
    """Old artifacts not replaced by name whose lineage parent is still present, byte for byte."""
    if previous is None:
        return [], []
    replaced = {a.name for a in new}
    candidates = [a for a in previous.artifacts if a.name not in replaced]
    present = {a.sha256 for a in new}
    kept: list[Artifact] = []
    changed = True
    while changed:
        changed = False
        for artifact in candidates:
            if artifact not in kept and artifact.parent_sha256 in present:
                kept.append(artifact)
                present.add(artifact.sha256)
                changed = True
    dropped = [a for a in candidates if a not in kept]
    return kept, dropped
