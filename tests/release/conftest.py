"""One release of a briefly trained small model, built once per session and interrupted twice on the
way (the runs' outcomes are kept for the resume test)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from build_once import build_once
from release_helpers import (
    CALIB_SAMPLES,
    EVAL_LIMIT,
    INTERRUPT_AFTER_PROFILES,
    LEFTOVER,
    PROFILE,
    SimulatedCrash,
    run_release,
)


@dataclass
class Released:
    folder: Path
    checkpoint: Path
    runs: list[list[tuple[str, str]]]  # per run: (unit key, status) in order

    def options(self, folder: Path | None = None, **changes):
        from shufflekit.release import ReleaseOptions

        fields = {
            "out": folder or self.folder,
            "checkpoint": self.checkpoint,
            "data": "demo",
            "calib_samples": CALIB_SAMPLES,
            "eval_limit": EVAL_LIMIT,
            "profile": PROFILE,
        }
        fields.update(changes)
        return ReleaseOptions(**fields)


@pytest.fixture(scope="session")
def released(trained_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Released:
    """``trained_release`` (v2 0.5x trained briefly on the demo digits, exported) released with --data demo:
    run 1 crashes inside quantize (after the ONNX precisions, leaving a half-written .partial file as a
    killed process would), run 2 crashes inside profile after INTERRUPT_AFTER_PROFILES artifacts, run 3
    finishes. Read-only: tests that run a release again use ``released_copy``."""

    def build(root: Path) -> tuple[Path, Path, list[list[tuple[str, str]]]]:
        return _release_three_times(trained_release, root / "release")

    return Released(*build_once(tmp_path_factory, "released", build))


def _release_three_times(trained_release: Path, folder: Path) -> tuple[Path, Path, list[list[tuple[str, str]]]]:
    import shufflekit.export.quantize as quantize
    import shufflekit.runtimes.profile as profile

    shutil.copytree(trained_release, folder)
    done = Released(folder, trained_release.parent / "model.pt", [])

    real_quantize = quantize.quantize_release

    def crash_in_tflite(target, options, **kwargs):
        if options.formats == ("tflite",):
            (Path(target) / LEFTOVER).write_bytes(b"half a file")
            raise SimulatedCrash("killed while converting to TFLite")
        return real_quantize(target, options, **kwargs)

    real_profile = profile.profile_folder
    calls = []

    def crash_after_some(*args, **kwargs):
        calls.append(args)
        if len(calls) > INTERRUPT_AFTER_PROFILES:
            raise SimulatedCrash("killed while profiling")
        return real_profile(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quantize, "quantize_release", crash_in_tflite)
        _, outcomes, error = run_release(done.options())
        assert isinstance(error, SimulatedCrash), error
        done.runs.append(outcomes)

    def after_the_onnx_checks(target, options, **kwargs):
        """Run 2's TFLite batch starts once this process has evaluated and validated the ONNX int8 file
        (at most a minute): the checks of made files run while the converter makes the TFLite ones, so a
        release without that overlap shows it in the order of run 2's outcomes."""
        if options.formats == ("tflite",):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not _checked(Path(target), "shufflenet_v2_x0_5_int8.onnx"):
                time.sleep(0.1)
        return real_quantize(target, options, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(profile, "profile_folder", crash_after_some)
        patch.setattr(quantize, "quantize_release", after_the_onnx_checks)
        _, outcomes, error = run_release(done.options())
        assert isinstance(error, SimulatedCrash), error
        done.runs.append(outcomes)
    report, outcomes, error = run_release(done.options())
    assert error is None, error
    assert report.ok, (report.device_errors, report.parity_failures, report.accuracy_failures)
    done.runs.append(outcomes)
    return done.folder, done.checkpoint, done.runs


def _checked(folder: Path, name: str) -> bool:
    """``name``'s accuracy and parity are in the folder's manifest."""
    from shufflekit.artifacts import Manifest

    manifest = Manifest.load(folder)
    return name in manifest.results("accuracy") and name in manifest.results("parity")


@pytest.fixture()
def released_copy(released: Released, tmp_path: Path) -> Released:
    target = tmp_path / "released"
    shutil.copytree(released.folder, target)
    return Released(target, released.checkpoint, [])
