"""Constants and helpers the release tests share (a plain module: tests/ has no packages)."""

from __future__ import annotations

from shufflekit.runtimes.profile import ProfileSettings

# Small figures so the suite stays fast; the CLI tests pass the same, so their fingerprints match.
PROFILE = ProfileSettings(warmup=2, iters=10, op_profile=True, keep_times=True)
CALIB_SAMPLES = 32
EVAL_LIMIT = 100
CLI_FAST = [
    "--data",
    "demo",
    "--calib-samples",
    str(CALIB_SAMPLES),
    "--limit",
    str(EVAL_LIMIT),
    "--warmup",
    str(PROFILE.warmup),
    "--iters",
    str(PROFILE.iters),
]
INTERRUPT_AFTER_PROFILES = 3
LEFTOVER = ".shufflenet_v2_x0_5_fp16.tflite.shufflekit-abc123.tflite.partial"  # as files.atomic_path names it


class SimulatedCrash(RuntimeError):
    pass


def run_release(options):
    """Run a release in-process; returns (report or None, [(unit key, status)], the exception or None)."""
    from shufflekit.release import release

    seen: list[tuple[str, str]] = []
    try:
        report = release(options, on_event=lambda o: seen.append((o.unit.key, o.status)))
    except Exception as exc:  # noqa: BLE001 - the caller checks which
        return None, seen, exc
    return report, seen, None
