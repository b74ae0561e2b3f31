"""A non-square input end to end at a small size: v2 0.5x at 96x64 (width x height; NCHW [1, 3, 64, 96]),
a side that is a multiple of 32 and one that is not, exported once to ONNX and TFLite (one onnx2tf
conversion for the module). Both files take the frame the right way round and pass parity; the manifest,
the reference and the card say 96 wide, 64 high; the card's Python preprocessing is the toolchain's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from shufflekit.artifacts import Manifest
from shufflekit.metadata import InputSize

SMALL_V2, SMALL_CLASSES = "shufflenet_v2_x0_5", 10  # as conftest.py
SIZE = InputSize(height=64, width=96)


@pytest.fixture(scope="module")
def wide_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from shufflekit.export import export_model

    folder = tmp_path_factory.mktemp("wide") / "release"
    export_model(folder, model=SMALL_V2, num_classes=SMALL_CLASSES, input_size=SIZE)
    return folder


@pytest.mark.slow
def test_both_files_take_the_frame_the_right_way_round(wide_release: Path) -> None:
    manifest = Manifest.load(wide_release)
    assert manifest.meta.input_size == SIZE
    shapes = {a.format: list(a.input.shape) for a in manifest.artifacts}
    assert shapes == {"onnx": [1, 3, 64, 96], "tflite": [1, 64, 96, 3]}
    raw = json.loads((wide_release / "manifest.json").read_text())
    assert raw["model"]["preprocessing"]["input_size"] == {"height": 64, "width": 96}
    with np.load(wide_release / manifest.reference["file"]) as stored:
        assert stored["inputs"].shape[1:] == (3, 64, 96)


@pytest.mark.slow
def test_onnx_and_tflite_pass_parity_at_a_non_square_size(wide_release: Path, tmp_path: Path) -> None:
    import shutil

    from shufflekit.validate.parity import validate_release

    folder = tmp_path / "release"
    shutil.copytree(wide_release, folder)
    report = validate_release(folder)
    assert {r.key for r in report.results} == {"onnx:fp32", "tflite:fp32"}
    assert report.passed, [r.failures for r in report.results]
    for result in report.results:
        assert result.metrics is not None and result.metrics.top1 == 1.0


@pytest.mark.slow
def test_the_card_states_the_size_and_its_python_preprocesses_as_the_toolchain(
    wide_release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from PIL import Image

    from shufflekit.data import preprocess
    from shufflekit.report import write_report

    folder = tmp_path / "release"
    shutil.copytree(wide_release, folder)
    write_report(folder)
    card = (folder / "README.md").read_text()
    assert "RGB input 96x64 (width x height; NCHW tensor [1, 3, 64, 96])" in card
    assert "Center-crop 96x64 (width x height)" in card
    assert "covers 110x73 (width x height)" in card  # 96 / 0.875 and 64 / 0.875, rounded
    code = card.split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(folder)  # the snippet reads labels.txt beside the model
    namespace: dict = {}
    exec(re.split(r"\n# (?:ONNX Runtime|LiteRT)", code)[0], namespace)  # imports, MEAN/STD, preprocess()
    meta = Manifest.load(folder).meta
    for size in [(640, 480), (300, 500), (97, 65)]:
        image = Image.fromarray(np.random.default_rng(sum(size)).integers(0, 255, (*size[::-1], 3), dtype=np.uint8))
        path = tmp_path / f"frame_{size[0]}x{size[1]}.png"
        image.save(path)
        card_input = namespace["preprocess"](str(path))  # NHWC, batch 1
        assert card_input.shape == (1, 64, 96, 3)
        np.testing.assert_allclose(card_input[0], preprocess(image, meta.preprocessing, "nhwc"), atol=1e-6)
