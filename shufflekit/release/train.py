"""The train stage (``--demo`` only): the demo model trained on the demo set into the release folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..errors import CheckpointError, UsageError
from .driver import Context
from .state import Unit, fingerprint, options_inputs, outputs_of

log = logging.getLogger(__name__)


def stage_train(ctx: Context) -> Path:
    """Train the demo model on the demo set into the release folder (resuming an interrupted training)."""
    from ..train import TrainConfig, train

    options = ctx.options
    model = options.model  # the demo's, filled in by options.check_options
    assert model is not None
    config = TrainConfig(model=model, data="demo", epochs=options.demo_epochs, seed=0, input_size=options.input_size)
    checkpoint = ctx.folder / f"{model}_demo.pt"
    unit = Unit("train", "", fingerprint("train", options_inputs(config, data={"data"})))
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
    top1 = result.val_top1
    ctx.finish(
        unit,
        time.perf_counter() - started,
        outputs_of(ctx.folder, [checkpoint.name]),
        f"{options.demo_epochs} epochs, validation top-1 {top1:.1f}%"
        if top1 is not None
        else f"{options.demo_epochs} epochs",
    )
    return checkpoint
