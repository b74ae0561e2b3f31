import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from shufflekit.cli import main
from shufflekit.data import iter_batches, open_images, train_val_sets
from shufflekit.errors import UsageError
from shufflekit.metadata import InputSize
from shufflekit.models.checkpoints import load_checkpoint
from shufflekit.train import TrainConfig, train

SMALL_V2 = "shufflenet_v2_x0_5"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """Three digits of the demo set, 12 training and 4 validation images each, as train/ and val/."""
    root = tmp_path_factory.mktemp("tiny") / "digits"
    train_set, val_set = train_val_sets("demo")
    for split, images, per_class in (("train", train_set, 12), ("val", val_set, 4)):
        for digit in ("0", "1", "7"):
            (root / split / digit).mkdir(parents=True)
            label = train_set.classes.index(digit)
            for index in np.flatnonzero(images.labels == label)[:per_class]:
                shutil.copy(images.items[index], root / split / digit)
    # A PNG cut short: its header passes the scan, its pixels fail while training; it is left out.
    whole = next((root / "train" / "7").iterdir()).read_bytes()
    (root / "train" / "7" / "cut.png").write_bytes(whole[: len(whole) // 2])
    return root


def _tiny_config(data: Path, **changes) -> TrainConfig:
    settings = {"epochs": 2, "batch_size": 8, "input_size": 32, "hflip": False, "crop_scale": 0.8}
    return TrainConfig(model=SMALL_V2, data=str(data), **{**settings, **changes})


def test_brief_training_on_the_demo_set_beats_chance_and_the_checkpoint_says_so(tmp_path):
    out = tmp_path / "digits.pt"
    seen = []
    result = train(TrainConfig(model=SMALL_V2, data="demo", epochs=2), out, on_epoch=seen.append)
    assert [s.epoch for s in seen] == [1, 2] and result.epochs_done == 2
    assert result.val_top1 > 30.0  # chance is 10 %

    raw = torch.load(out, map_location="cpu", weights_only=True)  # plain data only: no pickled code
    assert raw["epoch"] == 2 and len(raw["history"]) == 2
    loaded = load_checkpoint(out)
    assert loaded.meta.model == SMALL_V2 and loaded.meta.input_size == InputSize.square(32)
    assert loaded.meta.labels == tuple(str(d) for d in range(10))
    assert loaded.meta.training["val_top1"] == pytest.approx(result.val_top1, abs=1e-3)

    # The data layer's evaluation path, with the preprocessing read from the checkpoint, agrees.
    val = open_images("demo", split="val", classes=loaded.meta.labels)
    correct = total = 0
    with torch.no_grad():
        for batch in iter_batches(val, loaded.meta.preprocessing, batch_size=128):
            predicted = loaded.model(torch.from_numpy(batch.images)).argmax(1).numpy()
            correct += int((predicted == batch.labels).sum())
            total += len(batch.labels)
    assert total == 359
    assert 100.0 * correct / total == pytest.approx(result.val_top1, abs=0.6)


def test_an_interrupted_run_resumes_from_its_last_epoch_and_ends_where_an_uninterrupted_one_does(tiny_folder, tmp_path):
    straight = train(_tiny_config(tiny_folder), tmp_path / "straight.pt")

    out = tmp_path / "interrupted.pt"

    def interrupt_in_epoch_2(task: str, done: int, total: int | None) -> None:
        if task.startswith("epoch 2/") and done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_tiny_config(tiny_folder), out, progress=interrupt_in_epoch_2)
    kept = torch.load(out, map_location="cpu", weights_only=True)
    assert kept["epoch"] == 1  # the finished epoch survived, whole
    assert not list(tmp_path.glob(".*.partial"))

    resumed = train(_tiny_config(tiny_folder, epochs=None, batch_size=None), out, resume=True)
    assert [s.epoch for s in resumed.history] == [2]
    final, reference = load_checkpoint(out), load_checkpoint(tmp_path / "straight.pt")
    for key, value in reference.model.state_dict().items():
        assert torch.equal(final.model.state_dict()[key], value), key
    assert resumed.val_top1 == pytest.approx(straight.val_top1)
    assert len(torch.load(out, map_location="cpu", weights_only=True)["history"]) == 2

    again = train(_tiny_config(tiny_folder), out, resume=True)  # finished: nothing left to do
    assert again.history == [] and again.epochs_done == 2


def test_resume_refuses_a_changed_schedule_and_a_fresh_run_refuses_to_overwrite(tiny_folder, tmp_path, caplog):
    out = tmp_path / "m.pt"
    with pytest.raises(UsageError, match="nothing to resume"):
        train(_tiny_config(tiny_folder, epochs=1, batch_size=37), out, resume=True)
    caplog.set_level(logging.WARNING)
    first = train(_tiny_config(tiny_folder, epochs=1, batch_size=37), out)
    assert first.meta.training["train_images"] == 37  # the cut PNG is counted as an image by the scan ...
    assert first.history[0].images == 36  # ... and left out of the one batch of 37, with one warning
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 1 and "cut.png (could not be decoded)" in warnings[0]
    before = out.read_bytes()
    with pytest.raises(UsageError, match="exists already"):
        train(_tiny_config(tiny_folder, epochs=1, batch_size=37), out)
    with pytest.raises(UsageError, match="trained with epochs=1, not 3"):
        train(_tiny_config(tiny_folder, epochs=3, batch_size=37), out, resume=True)
    assert out.read_bytes() == before


def test_cli_trains_reports_and_gives_one_line_errors(tiny_folder, tmp_path):
    out = tmp_path / "cli.pt"
    args = [
        "train",
        "--model",
        SMALL_V2,
        "--data",
        str(tiny_folder),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--input-size",
        "32",
        "--no-hflip",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)["results"]
    assert (
        summary["labels"] == ["0", "1", "7"]
        and summary["epochs"] == 1
        and summary["input_size"] == {"height": 32, "width": 32}
    )
    assert "epoch   1/1" in result.stderr

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2
    assert again.stderr.strip().splitlines() == [
        f"error: {out} exists already; pass --resume to continue it, or choose another --out"
    ]
    bad = CliRunner().invoke(
        main, ["train", "--model", "shufflenet_v9", "--data", "demo", "--out", str(tmp_path / "x.pt")]
    )
    assert bad.exit_code == 2 and bad.stderr.startswith("error: unknown model 'shufflenet_v9'")
    empty = tmp_path / "empty" / "cls"
    empty.mkdir(parents=True)
    nothing = CliRunner().invoke(
        main, ["train", "--model", SMALL_V2, "--data", str(empty.parent), "--out", str(tmp_path / "y.pt")]
    )
    assert nothing.exit_code == 2 and "holds no images" in nothing.stderr
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "y.pt").exists()


@pytest.mark.slow
def test_torchrun_trains_with_distributed_data_parallel_on_two_cpu_processes(tiny_folder, tmp_path):
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "shufflekit",
            "train",
            "--model",
            SMALL_V2,
            "--data",
            str(tiny_folder),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--input-size",
            "32",
            "--no-hflip",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert len([line for line in run.stdout.splitlines() if line.startswith("{")]) == 1  # rank 0 only
    meta = load_checkpoint(out).meta
    assert meta.training["processes"] == 2 and meta.training["batch_size"] == 8
    assert meta.labels == ("0", "1", "7")


@pytest.mark.gpu
def test_cuda_training_uses_mixed_precision_and_the_checkpoint_loads_on_cpu(tmp_path):
    out = tmp_path / "cuda.pt"
    result = train(TrainConfig(model=SMALL_V2, data="demo", epochs=2), out)
    assert result.meta.training["device"] == "cuda"
    assert result.val_top1 > 30.0
    raw = torch.load(out, map_location="cpu", weights_only=True)
    assert raw["scaler"]["scale"] > 0  # the GradScaler of torch.amp ran
    assert load_checkpoint(out).meta.labels == tuple(str(d) for d in range(10))
