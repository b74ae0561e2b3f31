"""The export stage: the fp32 ONNX and TFLite files and the parity reference (``export.pipeline``)."""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

from ..artifacts import Manifest
from ..errors import ShufflekitError
from ..export import tflite_worker
from ..export.pipeline import ExportOptions, export_model
from ..export.tensorspecs import verified
from ..files import sha256_file
from ..metadata import DEFAULT_SIZE
from .driver import Context
from .state import Unit, fingerprint, options_inputs, outputs_of

log = logging.getLogger(__name__)


def _export_options(ctx: Context) -> ExportOptions:
    """The export the release makes: with --data, the parity reference is the data's own images."""
    return ExportOptions(
        reference_data=str(ctx.options.data) if ctx.options.data is not None else None,
        reference_samples=ctx.options.reference_samples,
        layout=ctx.options.layout,
        optimize=ctx.options.optimize,
    ).checked()


def _export_unit(ctx: Context, checkpoint: Path | None) -> tuple[Unit, dict[str, Any]]:
    options = ctx.options
    export_options = _export_options(ctx)
    source = {"checkpoint_sha256": sha256_file(checkpoint)} if checkpoint else {"seed": export_options.seed}
    inputs = {
        "model": options.model,
        "num_classes": options.num_classes,
        "input_size": options.input_size,
        **source,
        **options_inputs(export_options, data={"reference_data"}),
    }
    return Unit("export", "", fingerprint("export", inputs)), source


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
    expected_size = options.input_size or (meta.input_size if "checkpoint_sha256" in source else DEFAULT_SIZE)
    if meta.num_classes != expected_classes or meta.input_size != expected_size:
        return False
    fp32 = {a.key: a for a in manifest.artifacts if a.precision == "fp32"}
    if set(fp32) != {"onnx:fp32", "tflite:fp32"} or fp32["tflite:fp32"].input.layout != options.layout:
        return False
    if any(a.input.shape[0] != 1 for a in fp32.values()):
        return False
    if any(a.options.get("optimize", True) != options.optimize for a in fp32.values()):
        return False  # made with the other --optimize choice
    wanted = str(ctx.options.data) if ctx.options.data is not None else None
    if manifest.reference.get("data") != wanted:  # the reference must be made from the release's data
        return False
    if manifest.reference.get("samples") != options.reference_samples:
        return False
    try:
        for artifact in fp32.values():
            verified(artifact, ctx.folder)
        return sha256_file(ctx.folder / manifest.reference["file"]) == manifest.reference["sha256"]
    except (OSError, ShufflekitError):  # any doubt: export again
        return False


def stage_export(ctx: Context, checkpoint: Path | None) -> None:
    unit, source = _export_unit(ctx, checkpoint)
    manifest = ctx.manifest
    if ctx.skip_if_done(unit, manifest):
        return
    if _already_exported(ctx, manifest, source):
        assert manifest is not None
        ctx.keep(unit, outputs_of(ctx.folder, _export_outputs(manifest)), "kept: the folder already holds this export")
        return
    started = time.perf_counter()
    tflite_worker.warm_up()  # TensorFlow loads in the converter process while torch exports the ONNX file
    options = ctx.options
    export_model(
        ctx.folder,
        model=options.model,
        checkpoint=checkpoint,
        num_classes=options.num_classes,
        input_size=options.input_size,
        options=_export_options(ctx),
        progress=ctx.progress,
        meanwhile=partial(_warm_for_later_stages, ctx),
    )
    ctx.finish(unit, time.perf_counter() - started, outputs_of(ctx.folder, _export_outputs(Manifest.load(ctx.folder))))
    ctx.record_deferred()


def _warm_for_later_stages(ctx: Context, source: Any) -> None:
    """While the converter process makes the TFLite file, this process (otherwise waiting) makes what the
    later stages will ask of the model: PyTorch's logits on the labelled images (the quantizer's gate,
    evaluate and the device checks share them, ``validate.run_cache``) and its multiply-adds (profile).
    Nothing here is required: what fails is made, and reported, by the stage that needs it."""
    import torch

    data, meta = ctx.options.data, source.meta
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core: the converter process works on the other
    try:
        if data is not None and ctx.data_has_labels():
            from ..validate.accuracy import warm_labelled_arrays

            try:
                warm_labelled_arrays(data, source, limit=ctx.options.eval_limit)
            except Exception as exc:  # noqa: BLE001 - made again, and any failure said, by the stage that needs it
                log.debug("labelled images not made ahead of the quantize stage: %s", exc)
        from ..runtimes.profile import model_mult_adds_of

        model_mult_adds_of(meta)  # kept for the process (None where it cannot be counted: profile says so)
    finally:
        torch.set_num_threads(threads)
