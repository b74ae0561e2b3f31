"""The evaluate stage: top-1/top-5 of every artifact and of PyTorch on the data's validation images."""

from __future__ import annotations

from functools import partial

from ..artifacts import Manifest
from .driver import Context, Planned
from .state import Unit, data_fingerprint, fingerprint
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
    plans = [
        Planned(
            Unit("evaluate", a.name, fingerprint("evaluate", {"artifact": a.sha256, **settings})),
            a,
            partial(fresh, ctx, "accuracy", a),
        )
        for a in manifest.artifacts
    ]
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
