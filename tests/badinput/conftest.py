"""Fixtures of the bad-input table: one valid checkpoint per session, a sandbox per case."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from .harness import SANDBOX, SMALL, Case, Workspace

CLASSES = 10
SIZE = 64


@pytest.fixture(scope="session")
def badinput_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded shufflekit checkpoint of SMALL (10 classes, 64x64), made once; cases get a copy."""
    from shufflekit.export.source import seeded_model
    from shufflekit.metadata import ModelMeta, Preprocessing
    from shufflekit.models.checkpoints import save_checkpoint

    path = tmp_path_factory.mktemp("badinput-checkpoint") / "model.pt"
    meta = ModelMeta(model=SMALL, num_classes=CLASSES, preprocessing=Preprocessing.for_size(SIZE))
    save_checkpoint(path, seeded_model(SMALL, num_classes=CLASSES, input_size=SIZE, seed=3), meta)
    return path


def make_workspace(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checkpoint: Path, release: Path | None
) -> Workspace:
    """ws.root = tmp_path/"ws" (the cwd), with HOME, TMPDIR and XDG_CACHE_HOME inside ws.root/.sandbox.
    SHUFFLEKIT_CACHE stays where the session put it (a private cache holding the demo set)."""
    root = tmp_path / "ws"
    sandbox = root / SANDBOX
    for name in ("home", "tmp", "cache"):
        (sandbox / name).mkdir(parents=True)
    monkeypatch.setenv("HOME", str(sandbox / "home"))
    monkeypatch.setenv("TMPDIR", str(sandbox / "tmp"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(sandbox / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile caches $TMPDIR on first use
    monkeypatch.chdir(root)
    shutil.copyfile(checkpoint, root / "model.pt")
    target = None
    if release is not None:
        target = root / "release"
        shutil.copytree(release, target, symlinks=True)
    return Workspace(root=root, out=root / "out", release=target, checkpoint=root / "model.pt")
