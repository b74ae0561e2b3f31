"""The validate stage: parity of every artifact against PyTorch (``validate.parity``)."""

from __future__ import annotations

from functools import partial

from ..artifacts import Artifact, Manifest
from .driver import Context, Planned
from .state import Unit, fingerprint


def fresh(ctx: Context, kind: str, artifact: Artifact) -> bool:
    """A ``kind`` result is in the manifest for this very file."""
    entry = Manifest.load(ctx.folder).results(kind).get(artifact.name)
    return isinstance(entry, dict) and entry.get("sha256") == artifact.sha256


def stage_validate(ctx: Context) -> None:
    """Parity of every artifact against PyTorch; a failure is recorded (and fails the release at the end),
    the other stages still run so the report shows it."""
    from ..validate.gpu_compat import check_release, tflite_artifacts
    from ..validate.parity import validate_release

    manifest = Manifest.load(ctx.folder)
    reference_sha = (manifest.reference or {}).get("sha256")
    plans = [
        Planned(
            Unit("validate", a.name, fingerprint("validate", {"artifact": a.sha256, "reference": reference_sha})),
            a,
            partial(fresh, ctx, "parity", a),
        )
        for a in manifest.artifacts
    ]
    pending = ctx.pending(plans, manifest)

    def note(plan: Planned[Artifact], report: object) -> str:
        result = {r.artifact: r for r in report.results}.get(plan.item.name)  # type: ignore[attr-defined]
        return (
            "pass"
            if result is not None and result.passed
            else f"FAIL: {result.failures[0]}"
            if result is not None
            else "no result"
        )

    ctx.run(
        pending,
        lambda: validate_release(ctx.folder, select=[p.item.name for p in pending], progress=ctx.progress),
        note=note,
    )
    # the GPU-delegate report of each TFLite file not yet checked as it is now (the TFLite model analyzer)
    if not ctx.options.gpu_check:
        return
    unchecked = [a.name for a in tflite_artifacts(Manifest.load(ctx.folder)) if not fresh(ctx, "gpu_compatibility", a)]
    if unchecked:
        check_release(ctx.folder, select=unchecked, progress=ctx.progress)
