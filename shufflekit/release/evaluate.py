"""The evaluate stage: top-1/top-5 of every artifact and of PyTorch on the data's validation images."""

from __future__ import annotations

from functools import partial

from ..artifacts import Artifact, Manifest
from .driver import Context, Planned
from .state import Unit, data_fingerprint, fingerprint, result_as_sealed, seal_results
from .validate import fresh


def stage_evaluate(ctx: Context, *, one_core: bool = False) -> None:
    """Top-1/top-5 of every artifact and of PyTorch on the data's validation images (``--data``).
    ``one_core``: one file at a time on one thread (beside the converter process, which has the other)."""
    manifest = Manifest.load(ctx.folder)
    data = ctx.options.data
    if data is None:
        ctx.outcome(Unit("evaluate", "", ""), "not run", note="no --data: accuracy not measured")
        return
    from ..validate.accuracy import evaluate_release

    # what evaluate_release is given, but the artifact: the data (what it is), the image limit and the gate
    settings = {"data": data_fingerprint(str(data)), "limit": ctx.options.eval_limit, "max_drop": ctx.options.max_drop}
    units = {
        a.name: Unit("evaluate", a.name, fingerprint("evaluate", {"artifact": a.sha256, **settings}))
        for a in manifest.artifacts
    }
    plans = [Planned(units[a.name], a, partial(_still_evaluated, ctx, units[a.name], a)) for a in manifest.artifacts]
    pending = ctx.pending(plans, manifest)
    if not pending:  # nothing to classify: nothing to load either
        return
    from ..runtimes import RuntimeOptions

    # threads do not change a file's predictions (validate.accuracy.prediction_key), only how long they take
    runtime = RuntimeOptions(threads=1) if one_core else None
    ctx.run(
        pending,
        lambda: evaluate_release(
            ctx.folder,
            data,
            select=[p.item.name for p in pending],
            limit=ctx.options.eval_limit,
            max_drop=ctx.options.max_drop,
            runtime_options=runtime,
            progress=ctx.progress,
        ),
    )
    seal_results(ctx.folder, [(plan.unit, plan.item.name) for plan in pending], "accuracy")


def _still_evaluated(ctx: Context, unit: Unit, artifact: Artifact) -> bool:
    """This file's accuracy is the one this unit recorded, not one a hand-run ``evaluate`` (other data,
    another limit) recorded since."""
    return fresh(ctx, "accuracy", artifact) and result_as_sealed(ctx.folder, unit, "accuracy", artifact.name)
