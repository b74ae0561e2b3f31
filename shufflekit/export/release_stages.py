"""The stages of a release, each split into units that are skipped when their inputs are unchanged
(``release_state``): train (the demo only), export, quantize, validate, evaluate, report. Profiling,
which runs on several devices at once, is in ``release_profile``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..artifacts import Artifact, Manifest, update_manifest
from ..errors import CheckpointError, ShufflekitError, UsageError
from ..files import sha256_file
from .release_state import (StageLog, Unit, UnitOutcome, data_fingerprint, fingerprint, is_done, load_or_none,
                            mark_done, outputs_of)

if TYPE_CHECKING:
    from .release import ReleaseOptions

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, "int | None"], None]
QUANT_PRECISIONS = ("fp16", "dynamic", "int8")
FORMATS = ("onnx", "tflite")


@dataclass
class Context:
    """What every stage needs: the folder, the options, and where to report what happened."""

    folder: Path
    options: "ReleaseOptions"
    progress: ProgressFn
    on_event: Callable[[UnitOutcome], None]
    log: StageLog = field(default_factory=StageLog)
    notes: list[str] = field(default_factory=list)  # what the release left out, and why
    device_errors: dict[str, str] = field(default_factory=dict)  # device -> why it cannot be used at all
    artifact_errors: dict[str, dict[str, str]] = field(default_factory=dict)  # device -> artifact -> error
    deferred: list[tuple[Unit, dict[str, str], float]] = field(default_factory=list)  # before a manifest exists
    device_accuracy: Any = None  # validate.accuracy.LabelledArrays every device classifies (with --data)

    @property
    def manifest(self) -> Manifest | None:
        return load_or_none(self.folder)

    def outcome(self, unit: Unit, status: str, seconds: float = 0.0, note: str = "") -> None:
        self.on_event(self.log.add(UnitOutcome(unit, status, seconds, note)))

    def skip_if_done(self, unit: Unit, manifest: Manifest | None, extra_check: Callable[[], bool] | None = None) -> bool:
        if is_done(self.folder, manifest, unit) and (extra_check is None or extra_check()):
            self.outcome(unit, "skipped", note="unchanged")
            return True
        return False


# -- train (the demo) --------------------------------------------------------------------------------------
def stage_train(ctx: Context) -> Path:
    """Train the demo model on the demo set into the release folder (resuming an interrupted training)."""
    from ..data_demo import DEMO_NAME
    from ..train import TrainConfig, train

    options = ctx.options
    model = options.model  # the demo's, filled in by release.check_options
    config = TrainConfig(model=model, data="demo", epochs=options.demo_epochs, seed=0,
                         input_size=options.input_size)
    checkpoint = ctx.folder / f"{model}_demo.pt"
    unit = Unit("train", "", fingerprint("train", {"model": model, "data": DEMO_NAME, "epochs": options.demo_epochs,
                                                    "input_size": options.input_size, "seed": 0}))
    if ctx.skip_if_done(unit, ctx.manifest):
        return checkpoint
    started = time.perf_counter()
    ctx.folder.mkdir(parents=True, exist_ok=True)
    resume = checkpoint.is_file()
    try:
        result = train(config, checkpoint, resume=resume, progress=ctx.progress)
    except (UsageError, CheckpointError) as exc:
        if not resume:
            raise
        # a checkpoint of other settings (or a damaged one): start over rather than trust it
        log.info("not resuming %s (%s); training from the start", checkpoint, exc.one_line())
        checkpoint.unlink()
        result = train(config, checkpoint, resume=False, progress=ctx.progress)
    seconds = time.perf_counter() - started
    outputs = outputs_of(ctx.folder, [checkpoint.name])
    if ctx.manifest is not None:
        mark_done(ctx.folder, unit, outputs, seconds)
    else:  # no manifest to record into before the first export: the export records it
        ctx.deferred.append((unit, outputs, seconds))
    top1 = result.val_top1
    ctx.outcome(unit, "ran", seconds, f"{options.demo_epochs} epochs, validation top-1 "
                                      f"{top1:.1f}%" if top1 is not None else f"{options.demo_epochs} epochs")
    return checkpoint


# -- export ------------------------------------------------------------------------------------------------
def _export_unit(ctx: Context, checkpoint: Path | None) -> tuple[Unit, dict[str, Any]]:
    options = ctx.options
    export_options = _export_options(ctx)
    source = {"checkpoint_sha256": sha256_file(checkpoint)} if checkpoint else {"seed": export_options.seed}
    inputs = {"model": options.model, "num_classes": options.num_classes, "input_size": options.input_size,
              **source, "formats": list(export_options.formats), "batch": export_options.batch,
              "layout": export_options.layout, "opset": export_options.opset,
              "reference_samples": export_options.reference_samples}
    if export_options.reference_data is not None:
        inputs["reference_data"] = data_fingerprint(str(export_options.reference_data))
    return Unit("export", "", fingerprint("export", inputs)), source


def _export_options(ctx: Context) -> Any:
    """The export the release makes: with --data, the parity reference is the data's own images."""
    from .pipeline import ExportOptions

    return ExportOptions(reference_data=str(ctx.options.data) if ctx.options.data is not None else None).checked()


def _export_outputs(manifest: Manifest) -> list[str]:
    names = [a.name for a in manifest.artifacts if a.precision == "fp32"]
    if manifest.reference:
        names.append(manifest.reference["file"])
    return names


def _already_exported(ctx: Context, manifest: Manifest | None, source: dict[str, Any]) -> bool:
    """The folder already holds this very export (made by `shufflekit export` with the same model,
    weights and options), every file intact: it is kept rather than made again."""
    if manifest is None or manifest.reference is None:
        return False
    options, meta, record = ctx.options, manifest.meta, manifest.source
    if "checkpoint_sha256" in source:
        if record.get("checkpoint_sha256") != source["checkpoint_sha256"]:
            return False
    elif record.get("kind") != "seed" or record.get("seed") != source["seed"]:
        return False
    if options.model and meta.model != options.model:
        return False
    expected_classes = options.num_classes or (meta.num_classes if "checkpoint_sha256" in source else 1000)
    expected_size = options.input_size or (meta.input_size if "checkpoint_sha256" in source else 224)
    if meta.num_classes != expected_classes or meta.input_size != expected_size:
        return False
    fp32 = {a.key: a for a in manifest.artifacts if a.precision == "fp32"}
    if set(fp32) != {"onnx:fp32", "tflite:fp32"} or fp32["tflite:fp32"].input.layout != "NHWC":
        return False
    if any(a.input.shape[0] != 1 for a in fp32.values()):
        return False
    wanted = str(ctx.options.data) if ctx.options.data is not None else None
    if manifest.reference.get("data") != wanted:  # the reference must be made from the release's data
        return False
    try:
        for artifact in fp32.values():
            artifact.verify(ctx.folder)
        return sha256_file(ctx.folder / manifest.reference["file"]) == manifest.reference["sha256"]
    except (OSError, ShufflekitError):  # any doubt: export again
        return False


def stage_export(ctx: Context, checkpoint: Path | None) -> None:
    from .pipeline import export_model

    unit, source = _export_unit(ctx, checkpoint)
    manifest = ctx.manifest
    if ctx.skip_if_done(unit, manifest):
        return
    if _already_exported(ctx, manifest, source):
        assert manifest is not None
        mark_done(ctx.folder, unit, outputs_of(ctx.folder, _export_outputs(manifest)))
        ctx.outcome(unit, "skipped", note="kept: the folder already holds this export")
        return
    started = time.perf_counter()
    options = ctx.options
    export_model(ctx.folder, model=options.model, checkpoint=checkpoint, num_classes=options.num_classes,
                 input_size=options.input_size, options=_export_options(ctx), progress=ctx.progress)
    seconds = time.perf_counter() - started
    mark_done(ctx.folder, unit, outputs_of(ctx.folder, _export_outputs(Manifest.load(ctx.folder))), seconds)
    for deferred in ctx.deferred:
        mark_done(ctx.folder, *deferred)
    ctx.deferred.clear()
    ctx.outcome(unit, "ran", seconds)


# -- quantize ----------------------------------------------------------------------------------------------
def _calibration_inputs(ctx: Context) -> dict[str, Any]:
    return {"data": data_fingerprint(str(ctx.options.data)), "samples": ctx.options.calib_samples, "seed": 0}


def _quant_units(ctx: Context, parent: Artifact) -> list[tuple[Unit, str, str]]:
    q = ctx.options.quantize
    units = []
    for fmt in q.formats or FORMATS:
        for precision in q.precisions:
            recipe = {"per_channel": q.per_channel, "reduce_range": q.reduce_range,
                      "calibration_method": q.calibration if precision == "int8" else None,
                      "activation_type": q.activation_type, "weight_type": q.weight_type, "target": q.target,
                      "max_drop": ctx.options.max_drop, "limit": ctx.options.eval_limit,
                      "data": data_fingerprint(str(ctx.options.data)) if ctx.options.data else None,
                      "skip_recipes": sorted(r for r in q.skip_recipes if r.startswith(f"{precision}:"))} \
                if fmt == "onnx" and precision != "fp16" else {"per_channel": q.per_channel}
            inputs: dict[str, Any] = {"parent_sha256": parent.sha256, "format": fmt, "precision": precision,
                                      "io_dtype": _io_dtype(ctx, fmt, precision), **recipe}
            if precision == "int8" and ctx.options.data is not None:
                inputs["calibration"] = _calibration_inputs(ctx)
            units.append((Unit("quantize", f"{fmt}:{precision}", fingerprint("quantize", inputs)), fmt, precision))
    return units


def _io_dtype(ctx: Context, fmt: str, precision: str) -> str:
    io_dtype = ctx.options.quantize.io_dtype
    return io_dtype if fmt == "tflite" and precision == "int8" else "float32"


def _made_from(manifest: Manifest, parent: Artifact, fmt: str, precision: str, io_dtype: str = "float32") -> Artifact | None:
    """The release's own file of that format and precision (with the release's input/output type), made
    from ``parent``; other variants `shufflekit quantize` may have added are left alone."""
    from .pipeline import artifact_filename

    name = artifact_filename(parent.meta.model, fmt, precision, f"{io_dtype}io" if io_dtype != "float32" else "")
    for artifact in manifest.artifacts:
        if artifact.name == name and artifact.parent_sha256 == parent.sha256:
            return artifact
    return None


def stage_quantize(ctx: Context) -> None:
    """fp16, dynamic and int8 of both formats from the fp32 ONNX file; ONNX one precision at a time,
    TFLite every missing precision from one conversion. int8 needs calibration images (--data)."""
    from .quantize import quantize_release

    manifest = Manifest.load(ctx.folder)
    parent = next(a for a in manifest.artifacts if a.key == "onnx:fp32")
    todo: dict[str, list[tuple[Unit, str]]] = {"onnx": [], "tflite": []}
    for unit, fmt, precision in _quant_units(ctx, parent):
        io_dtype = _io_dtype(ctx, fmt, precision)
        if precision == "int8" and ctx.options.data is None:
            if _made_from(manifest, parent, fmt, precision, io_dtype) is not None:
                ctx.outcome(unit, "skipped", note="kept from an earlier run with --data (calibrated then)")
            else:
                ctx.outcome(unit, "not run", note="no --data: int8 needs calibration images")
                ctx.notes.append("int8 not made: it needs calibration images; pass --data DIR|demo")
            continue
        if ctx.skip_if_done(unit, manifest, lambda: _made_from(Manifest.load(ctx.folder), parent, fmt, precision,
                                                               io_dtype) is not None):
            continue
        todo[fmt].append((unit, precision))
    calib = ctx.options.data
    batches = [("onnx", [item]) for item in todo["onnx"]]  # one at a time: each is quick and kept on its own
    if todo["tflite"]:
        batches.append(("tflite", todo["tflite"]))  # one onnx2tf conversion for all of them
    for fmt, items in batches:
        started = time.perf_counter()
        precisions = tuple(p for _, p in items)
        q = ctx.options.quantize
        onnx_quantized = fmt == "onnx" and bool({"int8", "dynamic"} & set(precisions))
        tflite_int8 = fmt == "tflite" and "int8" in precisions
        quantize_release(ctx.folder, replace(
            q, precisions=precisions, formats=(fmt,), calib=calib if "int8" in precisions else None,
            calib_samples=ctx.options.calib_samples,
            calibration=q.calibration if fmt == "onnx" and "int8" in precisions else "minmax",
            io_dtype=q.io_dtype if tflite_int8 else "float32",
            reduce_range=q.reduce_range if onnx_quantized else None,
            activation_type=q.activation_type if onnx_quantized else None,
            weight_type=q.weight_type if onnx_quantized else None,
            target=q.target if onnx_quantized else "any",
            # the accuracy-aware recipe fallback, judged on the data's labelled images
            gate_data=calib if onnx_quantized and calib is not None and _labelled(calib) else None,
            max_drop=ctx.options.max_drop, gate_limit=ctx.options.eval_limit), progress=ctx.progress)
        seconds = time.perf_counter() - started
        current = Manifest.load(ctx.folder)
        for unit, precision in items:
            made = _made_from(current, parent, fmt, precision, _io_dtype(ctx, fmt, precision))
            if made is None:
                raise UsageError(f"quantize made no {fmt}:{precision} artifact", hint="run shufflekit quantize -v")
            mark_done(ctx.folder, unit, {made.name: made.sha256}, seconds / len(items))
            ctx.outcome(unit, "ran", seconds / len(items))


def _labelled(data: str) -> bool:
    """Whether ``data`` has labels (class folders, an .npz with labels, the demo): the fallback needs them."""
    from ..data import open_images
    from ..errors import DataError

    try:
        return open_images(data, split="val").labels is not None
    except (DataError, OSError):
        return False


# -- validate ----------------------------------------------------------------------------------------------
def _fresh(manifest: Manifest, kind: str, artifact: Artifact) -> bool:
    entry = manifest.results(kind).get(artifact.name)
    return bool(entry) and entry.get("sha256") == artifact.sha256


def stage_validate(ctx: Context) -> None:
    """Parity of every artifact against PyTorch; a failure is recorded (and fails the release at the end),
    the other stages still run so the report shows it."""
    from ..validate.parity import validate_release

    manifest = Manifest.load(ctx.folder)
    reference_sha = (manifest.reference or {}).get("sha256")
    pending = []
    for artifact in manifest.artifacts:
        unit = Unit("validate", artifact.name, fingerprint("validate", {"artifact": artifact.sha256,
                                                                        "reference": reference_sha}))
        if not ctx.skip_if_done(unit, manifest, lambda a=artifact: _fresh(Manifest.load(ctx.folder), "parity", a)):
            pending.append((unit, artifact))
    if not pending:
        return
    started = time.perf_counter()
    report = validate_release(ctx.folder, select=[a.name for _, a in pending], progress=ctx.progress)
    seconds = time.perf_counter() - started
    verdicts = {r.artifact: r for r in report.results}
    for unit, artifact in pending:
        result = verdicts.get(artifact.name)
        mark_done(ctx.folder, unit, {}, seconds / len(pending))
        note = "pass" if result is not None and result.passed else \
            f"FAIL: {result.failures[0]}" if result is not None else "no result"
        ctx.outcome(unit, "ran", seconds / len(pending), note)


# -- evaluate ----------------------------------------------------------------------------------------------
def stage_evaluate(ctx: Context) -> None:
    """Top-1/top-5 of every artifact and of PyTorch on the data's validation images."""
    manifest = Manifest.load(ctx.folder)
    data = ctx.options.data
    if data is None:
        ctx.outcome(Unit("evaluate", "", ""), "not run", note="no --data: accuracy not measured")
        return
    from ..validate.accuracy import evaluate_release  # the quantize engineer's library

    data_fp = data_fingerprint(str(data))
    pending = []
    for artifact in manifest.artifacts:
        unit = Unit("evaluate", artifact.name, fingerprint("evaluate", {"artifact": artifact.sha256, "data": data_fp,
                                                                        "limit": ctx.options.eval_limit,
                                                                        "max_drop": ctx.options.max_drop}))
        if not ctx.skip_if_done(unit, manifest, lambda a=artifact: _fresh(Manifest.load(ctx.folder), "accuracy", a)):
            pending.append((unit, artifact))
    if not pending:
        return
    started = time.perf_counter()
    evaluate_release(ctx.folder, data, select=[a.name for _, a in pending], limit=ctx.options.eval_limit,
                     max_drop=ctx.options.max_drop, progress=ctx.progress)
    seconds = time.perf_counter() - started
    for unit, _ in pending:
        mark_done(ctx.folder, unit, {}, seconds / len(pending))
        ctx.outcome(unit, "ran", seconds / len(pending))


# -- the recipe fallback on the devices ---------------------------------------------------------------------
RECIPE_SKIPS = "recipe_fallback"  # the release's record of recipes a device's kernels failed


def recipes_failed_on_devices(ctx: Context) -> dict[str, str]:
    """ONNX recipes (``int8:full-range``) whose file lost accuracy on a device's own kernels, or found no
    kernel there, with where;
    recorded in the manifest so a rerun does not make the same file again. Only the release's own
    recipe choice falls back: a file made with the user's explicit settings is kept as asked."""
    from ..report.view import RELEASE_KIND, load_view

    if ctx.options.quantize.explicit_recipe:
        return {}
    view = load_view(ctx.folder)
    found: dict[str, str] = {}
    for row in view.rows:
        recipe = row.artifact.options.get("recipe")
        if row.artifact.format != "onnx" or not recipe:
            continue
        key = f"{row.artifact.precision}:{recipe}"
        if key in ctx.options.quantize.skip_recipes:
            continue
        for device, entry in row.device_accuracy.items():
            if not entry.get("passed"):
                found.setdefault(key, f"{device} (top-1 {entry.get('top1')}% vs PyTorch's {entry.get('pytorch_top1')}%)")
        for device, errors in ctx.artifact_errors.items():  # a device whose runtime has no kernel for it
            if "has no kernel for" in errors.get(row.name, ""):
                found.setdefault(key, f"{device} (it does not load there: no kernel)")
                del errors[row.name]  # made again below: the new file is measured there anew
    if found:
        parent = _fp32_onnx_sha(view.manifest)
        with update_manifest(ctx.folder) as manifest:
            current = manifest.results(RELEASE_KIND).get(RECIPE_SKIPS, {})
            if current.get("parent_sha256") != parent:  # recorded for another model: void
                current = {}
            manifest.record(RELEASE_KIND, RECIPE_SKIPS, {"skip": sorted(set(current.get("skip", [])) | set(found)),
                                                        "why": {**current.get("why", {}), **found},
                                                        "parent_sha256": parent, "measured_at": ""})
    return found


def _fp32_onnx_sha(manifest: Manifest) -> str | None:
    return next((a.sha256 for a in manifest.artifacts if a.key == "onnx:fp32"), None)


def _recorded_skips(manifest: Manifest | None) -> dict[str, Any]:
    """The recipe fallback record, when it was made for the model the folder holds now."""
    from ..report.view import RELEASE_KIND

    if manifest is None:
        return {}
    record = manifest.results(RELEASE_KIND).get(RECIPE_SKIPS, {})
    return record if record.get("parent_sha256") == _fp32_onnx_sha(manifest) else {}


def recipe_fallback_notes(ctx: Context) -> list[str]:
    """One note for the recipes the devices failed (from the manifest, so a rerun says the same)."""
    why = _recorded_skips(ctx.manifest).get("why") or {}
    if not why:
        return []
    return ["recipe fallback: " + "; ".join(f"{recipe} failed on {where}" for recipe, where in sorted(why.items()))
            + "; made again with the next recipe"]


def with_recorded_recipe_skips(ctx: Context) -> Any:
    """The options with the recipes an earlier run's devices failed on this model (kept in the manifest)."""
    recorded = _recorded_skips(ctx.manifest).get("skip", [])
    if not recorded:
        return ctx.options
    q = ctx.options.quantize
    return replace(ctx.options, quantize=replace(q, skip_recipes=tuple(sorted(set(q.skip_recipes) | set(recorded)))))


# -- the release's own record ------------------------------------------------------------------------------
def record_release_facts(ctx: Context) -> None:
    """Facts the report needs that no other command records: the model's complexity, and the notes of
    this run (what was left out, which device failed). Written only when they changed."""
    from ..report.view import RELEASE_KIND

    manifest = Manifest.load(ctx.folder)
    meta = manifest.meta
    current = manifest.results(RELEASE_KIND)
    updates: dict[str, dict[str, Any]] = {}
    model = current.get("model", {})
    if model.get("model") != meta.model or model.get("input_size") != meta.input_size \
            or model.get("num_classes") != meta.num_classes:
        facts: dict[str, Any] = {"model": meta.model, "input_size": meta.input_size, "num_classes": meta.num_classes}
        try:
            from ..models.complexity import model_complexity

            facts.update(model_complexity(meta.model, meta.input_size, meta.num_classes).to_dict())
        except Exception as exc:  # noqa: BLE001 - no torch: the card leaves complexity out
            log.info("no complexity for %s: %s", meta.model, exc)
        updates["model"] = facts
    notes = {"lines": list(dict.fromkeys(ctx.notes))}
    if {k: v for k, v in current.get("notes", {}).items() if k in ("lines",)} != notes:
        updates["notes"] = notes
    failures = {"devices": dict(ctx.device_errors), "artifacts": {d: dict(e) for d, e in ctx.artifact_errors.items()}}
    if {k: v for k, v in current.get("profile_failures", {}).items() if k in failures} != failures:
        updates["profile_failures"] = failures
    if updates:
        with update_manifest(ctx.folder) as writable:
            for name, entry in updates.items():
                writable.record(RELEASE_KIND, name, {**entry, "measured_at": ""})


# -- report ------------------------------------------------------------------------------------------------
def _manifest_digest(manifest: Manifest) -> str:
    data = manifest.to_dict()
    data.pop("updated_at", None)
    data.get("results", {}).pop("release_stages", None)
    return fingerprint("manifest", data)


def stage_report(ctx: Context) -> Path:
    from ..report import REPORT_FILES, write_report

    manifest = Manifest.load(ctx.folder)
    unit = Unit("report", "", fingerprint("report", {"manifest": _manifest_digest(manifest)}))
    html = ctx.folder / REPORT_FILES[2]
    if ctx.skip_if_done(unit, manifest):
        return html
    started = time.perf_counter()
    files = write_report(ctx.folder, manifest)
    seconds = time.perf_counter() - started
    mark_done(ctx.folder, unit, files.files, seconds)
    ctx.outcome(unit, "ran", seconds)
    return html
