"""The quantize stage: fp16, dynamic and int8 of both formats from the fp32 ONNX file (``export.quantize``),
and the recipe fallback on the devices: an ONNX recipe a device's own kernels failed is recorded and the
file made again with the next recipe of the ladder."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any

from ..artifacts import Artifact, Manifest, update_manifest
from ..errors import UsageError
from ..export import (
    quantize as export_quantize,  # called through the module: a test stands in for it
)
from ..export import tflite_worker
from ..export.pipeline import artifact_filename
from ..export.quantize import QUANT_FORMATS, QuantizeOptions
from ..records import RELEASE_KIND, RecipeFallback
from ..validate.gate import TOOLS
from .driver import Context, Planned
from .state import Unit, fingerprint, options_inputs

# not in a unit's fingerprint: the unit's name says the format and precision; the data sets enter by
# what they are (``options_inputs(data=...)``), not by their path
_NOT_FINGERPRINTED = ("precisions", "formats")
_DATA_FIELDS = ("calib", "gate_data")


def unit_options(ctx: Context, fmt: str, precisions: tuple[str, ...]) -> QuantizeOptions:
    """The options ``quantize_release`` is called with to make ``precisions`` of ``fmt``: the release's
    quantize options with its data, layout and gate, narrowed to what applies to them
    (``QuantizeOptions.applicable_to``), so that one object both runs the unit and fingerprints it."""
    options = ctx.options
    gate = options.data if ctx.data_has_labels() else None  # the accuracy-aware recipe fallback needs labels
    return replace(
        options.quantize,
        calib=options.data,
        calib_samples=options.calib_samples,
        layout=options.layout,  # the release's, whatever the folder held before
        gate_data=gate,
        max_drop=options.max_drop,
        gate_limit=options.eval_limit,
    ).applicable_to(fmt, precisions)


def _quant_units(ctx: Context, parent: Artifact) -> list[tuple[Unit, str, str]]:
    q = ctx.options.quantize
    units = []
    for fmt in q.formats or QUANT_FORMATS:
        for precision in q.precisions:
            inputs = {
                "parent_sha256": parent.sha256,
                "format": fmt,
                "precision": precision,
                **options_inputs(unit_options(ctx, fmt, (precision,)), exclude=_NOT_FINGERPRINTED, data=_DATA_FIELDS),
            }
            units.append((Unit("quantize", f"{fmt}:{precision}", fingerprint("quantize", inputs)), fmt, precision))
    return units


def _io_dtype(ctx: Context, fmt: str, precision: str) -> str:
    io_dtype = ctx.options.quantize.io_dtype
    return io_dtype if fmt == "tflite" and precision == "int8" else "float32"


def _made_from(
    manifest: Manifest, parent: Artifact, fmt: str, precision: str, io_dtype: str = "float32"
) -> Artifact | None:
    """The release's own file of that format and precision (with the release's input/output type), made
    from ``parent``; other variants `shufflekit quantize` may have added are left alone."""
    name = artifact_filename(parent.meta.model, fmt, precision, f"{io_dtype}io" if io_dtype != "float32" else "")
    for artifact in manifest.artifacts:
        if artifact.name == name and artifact.parent_sha256 == parent.sha256:
            return artifact
    return None


def stage_quantize(ctx: Context, meanwhile: Callable[[], None] | None = None) -> None:
    """fp16, dynamic and int8 of both formats from the fp32 ONNX file; ONNX one precision at a time,
    TFLite every missing precision from one conversion. int8 needs calibration images (--data).
    ``meanwhile``: what this process does once the ONNX files are made while the converter process
    still makes the TFLite ones (the checks of the files made so far; never a latency measurement)."""
    ctx.labelled = None  # a rerun's data may have changed: asked anew
    manifest = Manifest.load(ctx.folder)
    parent = next(a for a in manifest.artifacts if a.key == "onnx:fp32")
    plans: list[Planned[tuple[str, str]]] = []
    for unit, fmt, precision in _quant_units(ctx, parent):
        io_dtype = _io_dtype(ctx, fmt, precision)
        if precision == "int8" and ctx.options.data is None:
            if _made_from(manifest, parent, fmt, precision, io_dtype) is not None:
                ctx.outcome(unit, "skipped", note="kept from an earlier run with --data (calibrated then)")
            else:
                ctx.outcome(unit, "not run", note="no --data: int8 needs calibration images")
                ctx.notes.append("int8 not made: it needs calibration images; pass --data DIR|demo")
            continue
        plans.append(Planned(unit, (fmt, precision), partial(_still_made, ctx, parent, fmt, precision, io_dtype)))
    todo = ctx.pending(plans, manifest)
    batches = [[plan] for plan in todo if plan.item[0] == "onnx"]  # one at a time: each is quick and kept on its own
    tflite = [plan for plan in todo if plan.item[0] == "tflite"]
    if tflite:
        batches.append(tflite)  # one onnx2tf conversion for all of them

    def run(batch: list[Planned[tuple[str, str]]]) -> None:
        fmt = batch[0].item[0]
        options = unit_options(ctx, fmt, tuple(plan.item[1] for plan in batch))
        work = partial(export_quantize.quantize_release, ctx.folder, options, progress=ctx.progress, gate=TOOLS)
        ctx.run(batch, work, outputs=lambda plan, _: _made_output(ctx, parent, *plan.item))

    if tflite and tflite_worker.current() is not None and (len(batches) > 1 or meanwhile is not None):
        # The TFLite files are made by the converter process while this one quantizes the ONNX files, then
        # checks the files made so far (``meanwhile``): the stage takes the longer of the two. Each batch
        # commits under the folder's lock, as two commands would.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="quantize-tflite") as pool:
            converting = pool.submit(run, batches.pop())
            try:
                for batch in batches:
                    run(batch)
                if meanwhile is not None and not converting.done():
                    meanwhile()
            except BaseException:
                with contextlib.suppress(Exception):
                    converting.result()  # wait for it; the first failure is the one reported
                raise
            converting.result()  # raises what it raised
        return
    for batch in batches:
        run(batch)


def _still_made(ctx: Context, parent: Artifact, fmt: str, precision: str, io_dtype: str) -> bool:
    return _made_from(Manifest.load(ctx.folder), parent, fmt, precision, io_dtype) is not None


def _made_output(ctx: Context, parent: Artifact, fmt: str, precision: str) -> dict[str, str]:
    made = _made_from(Manifest.load(ctx.folder), parent, fmt, precision, _io_dtype(ctx, fmt, precision))
    if made is None:
        raise UsageError(f"quantize made no {fmt}:{precision} artifact", hint="run shufflekit quantize -v")
    return {made.name: made.sha256}


# -- the recipe fallback on the devices ---------------------------------------------------------------------
RECIPE_SKIPS = "recipe_fallback"  # the release's record of recipes a device's kernels failed


def recipes_failed_on_devices(ctx: Context) -> dict[str, str]:
    """ONNX recipes (``int8:full-range``) whose file lost accuracy on a device's own kernels, or found no
    kernel there, with where;
    recorded in the manifest so a rerun does not make the same file again. Only the release's own
    recipe choice falls back: a file made with the user's explicit settings is kept as asked."""
    from ..report.view import load_view

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
                found.setdefault(
                    key, f"{device} (top-1 {entry.get('top1')}% vs PyTorch's {entry.get('pytorch_top1')}%)"
                )
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
            manifest.record(
                RecipeFallback(
                    skip=tuple(sorted(set(current.get("skip", [])) | set(found))),
                    why={**current.get("why", {}), **found},
                    parent_sha256=parent,
                    measured_at="",
                ),
                RECIPE_SKIPS,
            )
    return found


def _fp32_onnx_sha(manifest: Manifest) -> str | None:
    return next((a.sha256 for a in manifest.artifacts if a.key == "onnx:fp32"), None)


def _recorded_skips(manifest: Manifest | None) -> dict[str, Any]:
    """The recipe fallback record, when it was made for the model the folder holds now."""
    if manifest is None:
        return {}
    record = manifest.results(RELEASE_KIND).get(RECIPE_SKIPS, {})
    return record if record.get("parent_sha256") == _fp32_onnx_sha(manifest) else {}


def recipe_fallback_notes(ctx: Context) -> list[str]:
    """One note for the recipes the devices failed (from the manifest, so a rerun says the same)."""
    why = _recorded_skips(ctx.manifest).get("why") or {}
    if not why:
        return []
    return [
        "recipe fallback: "
        + "; ".join(f"{recipe} failed on {where}" for recipe, where in sorted(why.items()))
        + "; made again with the next recipe"
    ]


def with_recorded_recipe_skips(ctx: Context) -> Any:
    """The options with the recipes an earlier run's devices failed on this model (kept in the manifest)."""
    recorded = _recorded_skips(ctx.manifest).get("skip", [])
    if not recorded:
        return ctx.options
    q = ctx.options.quantize
    return replace(ctx.options, quantize=replace(q, skip_recipes=tuple(sorted(set(q.skip_recipes) | set(recorded)))))
