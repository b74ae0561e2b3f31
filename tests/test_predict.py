"""`shufflekit predict`: classify image files with one artifact of a release, on this computer or a device
(the real sshd with the lean device Python), through the manifest's own preprocessing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.data_demo import demo_folder
from shufflekit.predict import load_images
from shufflekit.runtimes import load_session


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two validation images per digit of the demo set, named after their digit, in nested folders."""
    folder = tmp_path_factory.mktemp("digits")
    for digit in range(10):
        (folder / str(digit % 2)).mkdir(exist_ok=True)
        for source in sorted((demo_folder() / "val" / str(digit)).iterdir())[:2]:
            shutil.copy(source, folder / str(digit % 2) / f"digit{digit}_{source.name}")
    (folder / "notes.txt").write_text("not an image: left out of a folder\n")
    return folder


def _predict(*args: object):
    return CliRunner().invoke(main, ["predict", *map(str, args)])


def test_a_folder_of_images_is_classified_as_the_files_own_session_classifies_them(trained_release, digits):
    result = _predict(trained_release, digits, "--top-k", "3", "--json")
    assert result.exit_code == 0, result.output
    envelope = json.loads(result.stdout)
    report = envelope["report"]
    assert (report["artifact"], report["device"], report["runtime"]) == (
        "shufflenet_v2_x0_5_fp32.onnx",
        "local",
        "onnxruntime",
    )
    assert report["latency_p50_ms"] > 0 and not report["random_weights"]
    predictions = envelope["results"]
    assert len(predictions) == 20 and all(p["image"].endswith(".png") for p in predictions)  # notes.txt left out
    for p in predictions:
        scores = [g["score"] for g in p["top"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and sum(scores) <= 1 + 1e-6
    correct = sum(p["top"][0]["label"] == Path(p["image"]).name[5] for p in predictions)
    assert correct >= 14, f"{correct}/20 digits right"  # the trained model: about 85 %; chance is 10 %
    # the classes are the file's own on the manifest's preprocessing, image by image
    manifest = Manifest.load(trained_release)
    paths = [Path(p["image"]) for p in predictions]
    onnx = next(a for a in manifest.artifacts if a.key == "onnx:fp32")
    with load_session(onnx, trained_release) as session:
        logits = session.predict_all(load_images(paths, manifest))
    assert [p["top"][0]["index"] for p in predictions] == list(np.argmax(logits, axis=1))


@pytest.mark.ssh
def test_the_tflite_file_runs_on_a_device_and_says_what_ran_it(
    trained_release, digits, ssh_client, device_python, device_tmp
):
    one = sorted(digits.rglob("digit7_*.png"))[0]
    device = ssh_client.url(python=device_python, tmp=str(device_tmp))
    result = _predict(
        trained_release, one, "--artifact", "tflite", "--device", device, "--ssh-config", ssh_client.config
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # the title and caption fold at 80 columns
    assert "shufflenet_v2_x0_5_fp32.tflite on ssh://" in text and "litert" in text
    assert one.name in text and "ms p50 per image" in text
    assert list(device_tmp.iterdir()) == []  # nothing left on the device


def test_random_weights_are_said(small_release, digits):
    result = _predict(small_release, sorted(digits.rglob("*.png"))[0])
    assert result.exit_code == 0, result.output
    assert "random weights" in result.stderr and "not for predictions" in result.stderr
    assert "release or export it again with --checkpoint" in result.stderr  # predict itself has no --checkpoint


@pytest.mark.parametrize(
    "args, says",
    [
        (["missing.png"], "missing.png is neither an image file nor a folder"),
        (["notes.txt"], "cannot read notes.txt as an image"),
        (["empty"], "no image found in empty"),
        (["one.png", "--artifact", "coreml"], "no artifact matches 'coreml'"),
        (["one.png", "--artifact", "onnx"], "names 2 artifacts"),
        (["one.png", "--device", "ftp://board"], "unknown device address scheme"),
    ],
)
def test_bad_input_is_one_line(small_release, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image\n")
    (tmp_path / "empty").mkdir()
    shutil.copy(sorted((demo_folder() / "val" / "1").iterdir())[0], tmp_path / "one.png")
    folder = tmp_path / "release"
    shutil.copytree(small_release, folder)
    if "onnx" in args:  # a second ONNX file: a format alone no longer names one
        shutil.copy(folder / "shufflenet_v2_x0_5_fp32.onnx", folder / "copy.onnx")
        with_copy = Manifest.load(folder)
        (onnx,) = [a for a in with_copy.artifacts if a.format == "onnx"]
        import dataclasses

        with_copy.add(dataclasses.replace(onnx, name="copy.onnx"))
        with_copy.save()
    result = _predict(folder, *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.output
