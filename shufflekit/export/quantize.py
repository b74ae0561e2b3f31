"""Quantize a release folder: fp16, dynamic-range int8 and full int8 artifacts made from its fp32 ONNX
file, added to its manifest with their lineage, options, tool versions and calibration record.

- ONNX through ``onnxruntime.quantization`` (``quantize_onnx``): pre-processing first, then fp16,
  dynamic int8, or static int8 in QDQ format calibrated on the caller's images.
- TFLite through ``export.tflite.convert_to_tflite``: every requested TFLite precision from ONE onnx2tf
  conversion of the same fp32 ONNX file (its parent, as for the fp32 TFLite file). No int16-activation
  variant: on x86 it runs about 50x slower than int8.
- Calibration images come from the data layer (``data.calibration_images``) through the model's own
  preprocessing (the manifest's metadata); the count actually used is recorded.

Atomic: everything is made in a staging folder inside the release folder; only when every file is
made are they renamed into place and the manifest written (under the manifest lock). A failure at any
step leaves the folder as it was.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import Artifact, Manifest, tool_versions
from ..data import DECODE_ERRORS, DEMO, ImageSet, calibration_images, has_splits, open_images
from ..errors import ExportError, ManifestError, ShufflekitError, UsageError
from ..folder import ReleaseFolder
from ..formats import quantized_precisions
from ..metadata import Preprocessing
from . import quantize_onnx, recipes
from .fallback import AccuracyGate, GateTools, quantize_with_fallback
from .pipeline import artifact_filename
from .tensorspecs import verified

log = logging.getLogger(__name__)

QUANT_PRECISIONS = quantized_precisions()
QUANT_FORMATS = ("onnx", "tflite")  # the formats with a quantizer below (their options differ: see _check_applicable)
IO_DTYPES = ("float32", "int8", "uint8")
DEFAULT_CALIB_SAMPLES = 256  # ONNX int8 (ONNX Runtime calibrates 256 images in about a second)
# TFLite int8: TFLiteConverter's calibrator runs TFLite's built-in kernels (no XNNPACK) on one core, about
# 57 ms an image for v2 1.0x at 224 (15 s for 256). On two trained demo models (v2 0.5x, 86 % and 95 %),
# 128 images gave the int8 file's top-1 of 256 within one image, three draws each (README, Quantize).
TFLITE_CALIB_SAMPLES = 128
STAGING_KIND = "quantize"  # .staging-quantize-*: export's clean-up of '.staging-*' also removes a killed run's
ProgressFn = Callable[[str, int, "int | None"], None]


def parse_list(values: str | Sequence[str], known: Sequence[str], what: str) -> tuple[str, ...]:
    """'fp16,int8' or ['fp16', 'int8'] (repeatable options) -> ('fp16', 'int8'), in a stable order."""
    items = [values] if isinstance(values, str) else list(values)
    parsed = [v.strip().lower() for item in items for v in item.split(",") if v.strip()]
    unknown = [v for v in parsed if v not in known]
    if unknown or not parsed:
        raise UsageError(
            f"unknown {what} {', '.join(unknown) or '(none)'}",
            hint=f"use one or more of {', '.join(known)}, comma-separated or repeated",
        )
    return tuple(v for v in known if v in parsed)


@dataclass(frozen=True)
class QuantizeOptions:
    """What to make. ``formats`` None: the formats the folder already holds. ``calib``: an image folder,
    a .npy/.npz file or 'demo' (int8 only). ``calibration`` (method), ``reduce_range`` and
    ``activation_type`` apply to ONNX; ``io_dtype`` to TFLite int8; ``per_channel`` to both."""

    precisions: tuple[str, ...]
    formats: tuple[str, ...] | None = None
    calib: str | os.PathLike[str] | None = None
    calib_samples: int | None = None  # None: each format's own default (calib_count)
    calib_seed: int = 0
    per_channel: bool | None = None  # None: the recipe's (ONNX); per-channel for TFLite
    calibration: str = "minmax"
    io_dtype: str = "float32"
    reduce_range: bool | None = None  # None: the recipe's
    activation_type: str | None = None  # ONNX static int8 activations; None: the recipe's (uint8)
    weight_type: str | None = None  # ONNX weights; None: the recipe's
    layout: str | None = None  # TFLite input layout; None: the folder's TFLite fp32 layout, else NHWC
    target: str = recipes.DEFAULT_TARGET  # the CPUs the ONNX files must hold on (recipes.TARGETS)
    gate_data: str | os.PathLike[str] | None = None  # labelled images: turns on the accuracy-aware fallback
    max_drop: float | None = None  # None: the gate's own default (validate.tolerances.DEFAULT_MAX_DROP)
    gate_limit: int | None = None  # labelled images the gate classifies (a fixed subset); None: all
    skip_recipes: tuple[str, ...] = ()  # "int8:full-range": recipes a device's own kernels already failed

    def calib_count(self, fmt: str) -> int:
        """The calibration images ``fmt``'s int8 file is calibrated on: ``calib_samples`` when given, else
        the format's default (ONNX 256, TFLite 128: ``TFLITE_CALIB_SAMPLES``)."""
        if self.calib_samples is not None:
            return self.calib_samples
        return TFLITE_CALIB_SAMPLES if fmt == "tflite" else DEFAULT_CALIB_SAMPLES

    def applicable_to(self, fmt: str, precisions: tuple[str, ...]) -> QuantizeOptions:
        """These options for making ``precisions`` of ``fmt`` alone, every option that does not apply to
        them at its default (calibration only for int8, the ONNX recipe and accuracy gate only for ONNX
        int8 and dynamic, the layout and io dtype only for TFLite), so that a release unit's fingerprint
        changes only with what changes its file."""
        int8 = "int8" in precisions
        onnx_quantized = fmt == "onnx" and bool({"int8", "dynamic"} & set(precisions))
        calib = self.calib if int8 else None
        gated = onnx_quantized and self.gate_data is not None
        return replace(
            self,
            precisions=precisions,
            formats=(fmt,),
            calib=calib,
            calib_samples=self.calib_count(fmt) if calib is not None else DEFAULT_CALIB_SAMPLES,
            calibration=self.calibration if fmt == "onnx" and int8 else "minmax",
            io_dtype=self.io_dtype if fmt == "tflite" and int8 else "float32",
            layout=self.layout if fmt == "tflite" else None,
            reduce_range=self.reduce_range if onnx_quantized else None,
            activation_type=self.activation_type if onnx_quantized else None,
            weight_type=self.weight_type if onnx_quantized else None,
            target=self.target if onnx_quantized else "any",
            gate_data=self.gate_data if gated else None,
            max_drop=self.max_drop if gated else None,
            gate_limit=self.gate_limit if gated else None,
            skip_recipes=tuple(sorted(r for r in self.skip_recipes if r.split(":")[0] in precisions))
            if onnx_quantized
            else (),
        )

    @property
    def explicit_recipe(self) -> bool:
        return any(v is not None for v in (self.per_channel, self.reduce_range, self.activation_type, self.weight_type))

    def recipes(self, precision: str) -> tuple[recipes.Recipe, ...]:
        """The ONNX recipes to try for ``precision``: the target's ladder, or only the user's own settings."""
        ladder = recipes.ladder(precision, self.target)
        if not self.explicit_recipe:
            left = tuple(r for r in ladder if f"{precision}:{r.name}" not in self.skip_recipes)
            return left or ladder[-1:]  # every recipe failed somewhere: the last one, recorded as failing
        return (
            ladder[0].with_settings(
                per_channel=self.per_channel,
                reduce_range=self.reduce_range,
                activation_type=self.activation_type if precision == "int8" else None,
                weight_type=self.weight_type,
            ),
        )

    def checked(self) -> QuantizeOptions:
        precisions = parse_list(self.precisions, QUANT_PRECISIONS, "precision")
        formats = None if self.formats is None else parse_list(self.formats, QUANT_FORMATS, "format")
        calibration = self.calibration.lower()
        if calibration not in quantize_onnx.CALIBRATION_METHODS:
            raise UsageError(
                f"unknown calibration method {self.calibration!r}",
                hint=f"use one of {', '.join(quantize_onnx.CALIBRATION_METHODS)}",
            )
        io_dtype = self.io_dtype.lower()
        if io_dtype not in IO_DTYPES:
            raise UsageError(f"unknown input/output dtype {self.io_dtype!r}", hint=f"use one of {', '.join(IO_DTYPES)}")
        for what, value in (("activation type", self.activation_type), ("weight type", self.weight_type)):
            if value is not None and value not in quantize_onnx.ACTIVATION_TYPES:
                raise UsageError(f"unknown {what} {value!r}", hint="use uint8 or int8")
        target = recipes.check_target(self.target)
        if self.max_drop is not None and not (self.max_drop >= 0 and self.max_drop <= 100):
            raise UsageError(f"--max-drop must be between 0 and 100 points, got {self.max_drop}")
        if self.gate_limit is not None and self.gate_limit < 1:
            raise UsageError(f"--eval-samples must be at least 1, got {self.gate_limit}")
        if self.calib_samples is not None and self.calib_samples < 1:
            raise UsageError(f"--calib-samples must be at least 1, got {self.calib_samples}")
        layout = None if self.layout is None else self.layout.upper()
        if layout not in (None, "NHWC", "NCHW"):
            raise UsageError(f"unknown layout {self.layout!r}", hint="use nhwc or nchw")
        return QuantizeOptions(
            precisions=precisions,
            formats=formats,
            calib=self.calib,
            calib_samples=self.calib_samples,
            calib_seed=self.calib_seed,
            per_channel=self.per_channel,
            calibration=calibration,
            io_dtype=io_dtype,
            reduce_range=self.reduce_range,
            activation_type=self.activation_type,
            weight_type=self.weight_type,
            layout=layout,
            target=target,
            gate_data=self.gate_data,
            max_drop=self.max_drop,
            gate_limit=self.gate_limit,
            skip_recipes=tuple(self.skip_recipes),
        )


@dataclass(frozen=True)
class Calibration:
    """Preprocessed calibration images (NCHW float32) and what the manifest records about them."""

    images: np.ndarray
    record: dict[str, Any]


@dataclass(frozen=True)
class QuantizeReport:
    folder: Path
    parent: Artifact  # the fp32 ONNX file everything was made from
    artifacts: tuple[Artifact, ...]
    calibration: dict[str, Any] | None
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "parent": self.parent.name,
            "parent_sha256": self.parent.sha256,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "calibration": self.calibration,
            "warnings": list(self.warnings),
            "timings": dict(self.timings),
        }


def quantize_release(
    folder: str | Path, options: QuantizeOptions, *, progress: ProgressFn | None = None, gate: GateTools | None = None
) -> QuantizeReport:
    """Make the requested precisions of the folder's fp32 ONNX model and add them to its manifest.
    ``gate``: the judge of the accuracy-aware fallback (``validate.gate.TOOLS``), needed with ``gate_data``."""
    options = options.checked()
    if options.gate_data is not None and gate is None:
        raise UsageError(
            "the accuracy-aware fallback (gate_data) needs a judge",
            hint="pass gate=shufflekit.validate.gate.TOOLS to quantize_release",
        )
    progress = progress or (lambda task, done, total: None)
    folder = Path(folder)
    started = time.perf_counter()
    manifest = Manifest.load(folder)
    parent = _fp32_onnx(manifest)
    verified(parent, folder)  # a changed parent is refused before any work
    formats = options.formats or tuple(f for f in QUANT_FORMATS if any(a.format == f for a in manifest.artifacts))
    warnings = _check_applicable(options, formats)
    ReleaseFolder(folder).check_replaceable(quantize_file_names(parent.meta.model, options, formats))  # before any work
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write to {folder}", hint="choose a release folder you can write to")

    calibration = None
    if "int8" in options.precisions:
        # one draw for every format: a format that needs fewer images takes the first ones (the same a
        # draw of that many would give: the draw is a seeded permutation)
        wanted = max((options.calib_count(f) for f in formats), default=DEFAULT_CALIB_SAMPLES)
        calibration = collect_calibration(options.calib, manifest.meta.preprocessing, wanted, seed=options.calib_seed)
        if calibration.record["used"] < wanted:
            warnings.append(f"calibrated on {calibration.record['used']} images, fewer than the {wanted} asked for")
    elif options.calib is not None:
        warnings.append("calibration images are only used for int8; no int8 precision was asked for")
    for text in warnings:
        log.warning("%s", text)

    made: list[Artifact] = []
    timings: dict[str, float] = {}
    total = len(options.precisions) * len(formats)
    progress("quantize", 0, total)
    with ReleaseFolder(folder).staging(STAGING_KIND) as staging:
        if "onnx" in formats:
            made += _onnx_artifacts(
                folder / parent.name,
                parent,
                staging,
                options,
                calibration,
                warnings,
                timings,
                lambda: progress("quantize", len(made), total),
                gate,
            )
        progress("quantize", len(made), total)
        if "tflite" in formats:
            made += _tflite_artifacts(manifest, parent, staging, options, calibration, timings)
        progress("quantize", total, total)
        _commit(folder, parent, staging, made)
    timings["total"] = time.perf_counter() - started
    log.info("quantized %s in %s: %s", parent.name, folder, ", ".join(a.name for a in made))
    return QuantizeReport(
        folder,
        parent,
        tuple(made),
        calibration.record if calibration else None,
        tuple(dict.fromkeys(warnings)),
        timings,
    )


# -- checks ----------------------------------------------------------------------------------------------
def _fp32_onnx(manifest: Manifest) -> Artifact:
    found = [a for a in manifest.artifacts if a.key == "onnx:fp32"]
    if not found:
        raise ManifestError(
            f"{manifest.folder} has no fp32 ONNX artifact to quantize",
            hint="export with --formats onnx,tflite (every quantized file is made from the ONNX one)",
        )
    if len(found) > 1:
        raise ManifestError(
            f"{manifest.folder} lists {len(found)} fp32 ONNX artifacts; which to quantize is unclear",
            hint="re-export the folder",
        )
    return found[0]


def _check_applicable(options: QuantizeOptions, formats: Sequence[str]) -> list[str]:
    """An option that would change nothing is an error; one that applies to part of the work is said."""
    warnings: list[str] = []
    int8 = "int8" in options.precisions
    if options.io_dtype != "float32":
        if not int8 or "tflite" not in formats:
            raise UsageError(
                f"--io-dtype {options.io_dtype} applies to TFLite int8 only",
                hint="also make TFLite int8 (the int8 precision and the tflite format), or leave --io-dtype out",
            )
        if "onnx" in formats:
            warnings.append(
                f"--io-dtype {options.io_dtype} applies to TFLite; the ONNX int8 file keeps float32 "
                "input/output (its QuantizeLinear/DequantizeLinear do the conversion)"
            )
    if options.calibration != "minmax":
        if not int8 or "onnx" not in formats:
            raise UsageError(
                f"--calibration {options.calibration} applies to ONNX int8 only",
                hint="TFLite's converter calibrates by min/max; leave --calibration out",
            )
        if "tflite" in formats:
            warnings.append(
                f"--calibration {options.calibration} applies to ONNX; TFLite's converter calibrates by min/max"
            )
    onnx_quantized = "onnx" in formats and bool({"int8", "dynamic"} & set(options.precisions))
    for flag, value in (
        ("--activation-type", options.activation_type),
        ("--weight-type", options.weight_type),
        ("--target", None if options.target == recipes.DEFAULT_TARGET else options.target),
    ):
        if value is not None and not onnx_quantized:
            raise UsageError(
                f"{flag} applies to ONNX int8 and dynamic only",
                hint="also make an ONNX int8 or dynamic file (the onnx format), or leave it out",
            )
    if options.gate_data is not None and not onnx_quantized:
        raise UsageError(
            "--accuracy-data applies to ONNX int8 and dynamic only (the recipe fallback)",
            hint="also make an ONNX int8 or dynamic file (the onnx format), or leave it out",
        )
    if options.reduce_range and ("onnx" not in formats or not ({"int8", "dynamic"} & set(options.precisions))):
        raise UsageError(
            "--reduce-range applies to ONNX int8 and dynamic only",
            hint="also make an ONNX int8 or dynamic file (the onnx format), or leave it out",
        )
    return warnings


# -- calibration -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _CountingImages(ImageSet):
    """An ImageSet that remembers which images failed to decode (the data layer skips them)."""

    failures: list = field(default_factory=list, repr=False)

    def load(self, index: int) -> Any:
        try:
            return super().load(index)
        except DECODE_ERRORS:
            self.failures.append(index)
            raise


def collect_calibration(
    source: str | os.PathLike[str] | None, pre: Preprocessing, count: int = DEFAULT_CALIB_SAMPLES, *, seed: int = 0
) -> Calibration:
    """Up to ``count`` images of ``source`` through the model's preprocessing. Unreadable files are
    skipped and counted (one warning from the data layer); no source, or no readable image, is an error."""
    if source is None:
        raise UsageError(
            "int8 needs calibration images", hint="pass --data DATA: an image folder, a .npy/.npz file, or 'demo'"
        )
    images = open_images(source, split="train")
    counting = _CountingImages(**{f.name: getattr(images, f.name) for f in fields(images)})
    arrays = calibration_images(counting, pre, count, seed=seed)
    demo = str(source) == DEMO
    split = "train" if demo or (Path(source).is_dir() and has_splits(Path(source))) else "all"
    record = {
        "source": DEMO if demo else str(Path(source).resolve()),
        "split": split,
        "requested": count,
        "used": len(arrays),
        "skipped_files": len(images.skipped) + len(counting.failures),
        "seed": seed,
        "preprocessing": pre.to_dict(),
    }
    return Calibration(arrays, record)


def _first(calibration: Calibration, count: int) -> Calibration:
    """The first ``count`` images of ``calibration`` (all when it has fewer), recorded as asked for."""
    return Calibration(calibration.images[:count], {**calibration.record, "requested": count})


# -- ONNX --------------------------------------------------------------------------------------------------
def _onnx_artifacts(
    source: Path,
    parent: Artifact,
    staging: Path,
    options: QuantizeOptions,
    calibration: Calibration | None,
    warnings: list[str],
    timings: dict[str, float],
    step_done: Callable[[], None],
    tools: GateTools | None = None,
) -> list[Artifact]:
    model = parent.meta.model
    if calibration is not None:
        calibration = _first(calibration, options.calib_count("onnx"))
    metadata = quantize_onnx.read_metadata(source)
    cpu = quantize_onnx.cpu_int8_facts()
    made: list[Artifact] = []
    prepared = staging / "pre-processed.onnx"
    if {"dynamic", "int8"} & set(options.precisions):
        t0 = time.perf_counter()
        quantize_onnx.pre_process(source, prepared)
        timings["onnx_pre_process"] = time.perf_counter() - t0
    gate = _accuracy_gate(options, parent, staging, tools) if {"dynamic", "int8"} & set(options.precisions) else None
    host = recipes.kernel_family({"machine": cpu.get("machine"), "vnni": cpu.get("vnni") if cpu.get("x86") else None})
    for precision in options.precisions:
        t0 = time.perf_counter()
        path = staging / artifact_filename(model, "onnx", precision)
        record: dict[str, Any] = {}
        if precision == "fp16":
            step = quantize_onnx.to_fp16(source, path)
        elif precision == "dynamic":
            step = quantize_with_fallback(
                options.recipes("dynamic"),
                path,
                parent,
                lambda recipe, out: quantize_onnx.quantize_dynamic(prepared, out, recipe),
                gate,
                host_family=host,
            )
        else:
            assert calibration is not None

            def make_static(recipe: recipes.Recipe, out: Path) -> dict[str, Any]:
                assert calibration is not None
                return quantize_onnx.quantize_static(
                    prepared,
                    out,
                    calibration.images,
                    input_name=parent.input.name,
                    batch=parent.input.shape[0],
                    recipe=recipe,
                    method=options.calibration,
                )

            step = quantize_with_fallback(
                options.recipes("int8"),
                path,
                parent,
                make_static,
                gate,
                per_layer=lambda quantized: _per_layer(prepared, quantized, parent, calibration, tools),
                host_family=host,
            )
            record = {**calibration.record, "used": step["calibration_images"]}
        if precision in ("dynamic", "int8"):
            step = {
                **step,
                "target": options.target,
                "pre_process": "onnxruntime.quantization.quant_pre_process",
                "host_cpu": cpu,
            }
            for text in _recipe_warnings(step, cpu, options.target, artifact_filename(model, "onnx", precision)):
                step.setdefault("warning", text)
                if text not in warnings:
                    warnings.append(text)
                    log.warning("%s", text)
        quantize_onnx.finish(
            path,
            metadata,
            {
                "precision": precision,
                "parent_sha256": parent.sha256,
                "quantization": json.dumps(step, sort_keys=True, default=str),
            },
        )
        inputs, outputs = quantize_onnx.io_specs(path, parent.inputs, parent.outputs)
        opts = {**step, "io_dtype": "float32", "batch": parent.options.get("batch", parent.input.shape[0])}
        if record:
            opts["calibration"] = record
        made.append(
            Artifact.from_file(
                path,
                format="onnx",
                precision=precision,
                inputs=inputs,
                outputs=outputs,
                meta=parent.meta,
                parent_sha256=parent.sha256,
                tools=tool_versions("onnxruntime", "onnx"),
                options=opts,
            )
        )
        timings[f"onnx_{precision}"] = time.perf_counter() - t0
        step_done()
    prepared.unlink(missing_ok=True)
    return made


def _accuracy_gate(
    options: QuantizeOptions, parent: Artifact, staging: Path, tools: GateTools | None
) -> AccuracyGate | None:
    """The fallback's gate: labelled images and PyTorch's logits on them (None without labelled --data)."""
    if options.gate_data is None or options.explicit_recipe or tools is None:
        return None  # the user's own settings are made as asked, never swapped for another recipe
    manifest = Manifest.load(staging.parent)
    max_drop = tools.default_max_drop if options.max_drop is None else options.max_drop
    return AccuracyGate(
        tools.labelled_arrays(options.gate_data, manifest, limit=options.gate_limit), max_drop, tools.predict
    )


def _per_layer(
    prepared: Path, quantized: Path, parent: Artifact, calibration: Calibration, tools: GateTools | None
) -> Any:
    if tools is None:  # no gate, no fallback: never asked
        return None
    try:
        return tools.per_layer_report(
            prepared, quantized, calibration.images, input_name=parent.input.name, batch=parent.input.shape[0]
        )
    except ShufflekitError as exc:
        log.warning("no per-layer report, so no layer is kept in float: %s", exc.one_line())
        return None


def _recipe_warnings(step: dict[str, Any], cpu: dict[str, Any], target: str, name: str) -> list[str]:
    """A recipe that does not hold on every CPU the target names, or on this computer, is said."""
    holds = set(step.get("holds_on") or ())
    texts = []
    wanted = set(recipes.KERNEL_FAMILIES if target == "any" else (target,))
    if not wanted <= holds:
        missing = ", ".join(recipes.family_description(f) for f in recipes.KERNEL_FAMILIES if f in wanted - holds)
        texts.append(f"{name}: the {step.get('recipe')} recipe does not hold on {missing}")
    if cpu.get("overflow_risk") and "x86-avx2" not in holds:
        texts.append(
            f"{name}: this CPU has no VNNI (x86 without avx512_vnni/avx_vnni), where the "
            f"{step.get('recipe')} recipe saturates in ONNX Runtime's int8 kernels; leave --target and "
            "the recipe options out (or pass --reduce-range) for a file that holds on every CPU"
        )
    fallback = step.get("fallback")
    if fallback and not fallback.get("passed"):
        best = max(fallback["attempts"], key=lambda a: a["top1"] or 0.0)
        texts.append(
            f"{name}: no recipe passed the accuracy gate ({len(fallback['attempts'])} tried); kept "
            f"{best['recipe']} at top-1 {best['top1']:.2f}% ({best['drop']:.2f} points below PyTorch)"
        )
    return texts


# -- TFLite ------------------------------------------------------------------------------------------------
def _tflite_layout(manifest: Manifest, options: QuantizeOptions) -> str:
    if options.layout:
        return options.layout
    fp32 = [a for a in manifest.artifacts if a.key == "tflite:fp32"]
    return (fp32[0].input.layout or "NHWC") if fp32 else "NHWC"


def _tflite_artifacts(
    manifest: Manifest,
    parent: Artifact,
    staging: Path,
    options: QuantizeOptions,
    calibration: Calibration | None,
    timings: dict[str, float],
) -> list[Artifact]:
    from .tflite import TFLiteTarget, convert_to_tflite

    model = parent.meta.model
    targets = []
    for precision in options.precisions:
        io_dtype = options.io_dtype if precision == "int8" else "float32"
        variant = f"{io_dtype}io" if io_dtype != "float32" else ""
        targets.append(
            TFLiteTarget(precision, staging / artifact_filename(model, "tflite", precision, variant), io_dtype)
        )
    layout = _tflite_layout(manifest, options)
    if calibration is not None:
        calibration = _first(calibration, options.calib_count("tflite"))
    t0 = time.perf_counter()
    conversion = convert_to_tflite(
        manifest.folder / parent.name,
        targets,
        layout=layout,
        calibration=calibration.images if calibration else None,
        per_channel=True if options.per_channel is None else options.per_channel,
        optimize=bool(parent.options.get("optimize", True)),  # a --no-optimize export keeps the plain graph
    )
    timings["tflite_onnx2tf"] = conversion.onnx2tf_seconds
    timings["tflite_total"] = time.perf_counter() - t0
    made = []
    for result in conversion.results:
        opts: dict[str, Any] = {**result.options, "batch": parent.options.get("batch", parent.input.shape[0])}
        if result.target.precision == "int8":
            assert calibration is not None
            opts.update(
                calibration={**calibration.record, "used": int(result.options.get("calibration_samples", 0))},
                calibration_method="minmax (TFLiteConverter representative dataset)",
            )
        made.append(
            Artifact.from_file(
                result.path,
                format="tflite",
                precision=result.target.precision,
                inputs=result.inputs,
                outputs=result.outputs,
                meta=parent.meta,
                parent_sha256=parent.sha256,
                tools=tool_versions("onnx2tf", "tensorflow", "tf_keras", "onnx"),
                options=opts,
            )
        )
        timings[f"tflite_{result.target.precision}"] = result.seconds
    return made


# -- the folder --------------------------------------------------------------------------------------------
def quantize_file_names(model: str, options: QuantizeOptions, formats: Sequence[str]) -> list[str]:
    """The names a quantize run renames into the folder (as ``_onnx_artifacts``/``_tflite_artifacts``
    name them)."""
    names = []
    for precision in options.precisions:
        if "onnx" in formats:
            names.append(artifact_filename(model, "onnx", precision))
        if "tflite" in formats:
            io_dtype = options.io_dtype if precision == "int8" else "float32"
            names.append(
                artifact_filename(model, "tflite", precision, f"{io_dtype}io" if io_dtype != "float32" else "")
            )
    return names


def _commit(folder: Path, parent: Artifact, staging: Path, made: Sequence[Artifact]) -> None:
    """Rename the finished files into the folder and add them to the manifest, under the manifest lock;
    refuse when the parent changed meanwhile (another export), so no child names a parent it was not
    made from."""

    def build() -> Manifest:
        manifest = Manifest.load(folder)
        current = {a.name: a for a in manifest.artifacts}.get(parent.name)
        if current is None or current.sha256 != parent.sha256:
            raise ExportError(
                f"{parent.name} changed in {folder} while it was being quantized",
                hint="nothing was added; run shufflekit quantize again",
            )
        for artifact in made:
            manifest.add(artifact)
        return manifest

    ReleaseFolder(folder).commit(staging, [a.name for a in made], build)
