"""Input sizes (metadata.InputSize): WIDTHxHEIGHT as a camera resolution is written, one number a square;
the sides the networks take; the preprocessing of a non-square input; what a manifest and a checkpoint
record (height and width), and the one integer older manifests hold still reads. No model is built."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from shufflekit.artifacts import Manifest
from shufflekit.data import cover_size, resize_center_crop
from shufflekit.errors import ManifestError
from shufflekit.metadata import InputSize, ModelMeta, Preprocessing, check_input_size
from shufflekit.records import ModelFacts

OLD_MANIFEST = Path(__file__).parent / "fixtures" / "manifest_v1.json"  # input_size 64, an integer


@pytest.mark.parametrize(
    "text, height, width",
    [("224", 224, 224), ("640x480", 480, 640), ("640X480", 480, 640), (" 96 x 64 ", 64, 96), ("1080*720", 720, 1080)],
)
def test_parse_reads_width_then_height(text, height, width):
    size = InputSize.parse(text)
    assert (size.height, size.width) == (height, width)
    assert size.nchw() == (1, 3, height, width) and size.nhwc() == (1, height, width, 3)


def test_a_size_says_which_number_is_which():
    size = check_input_size(InputSize.parse("640x480"))
    assert str(size) == "640x480" and not size.is_square
    assert size.describe() == "640x480 (width x height; NCHW tensor [1, 3, 480, 640])"
    assert check_input_size(224) == InputSize.square(224) == InputSize(height=224, width=224)


@pytest.mark.parametrize("side", [32, 33, 65, 100, 200, 2048])
def test_sides_that_are_not_multiples_of_32_are_taken(side):
    assert check_input_size(InputSize(height=side, width=64)).height == side


@pytest.mark.parametrize(
    "size, message",
    [
        (
            InputSize(height=20, width=640),
            "640x20 has a side below 32 px: the nearest size the networks take is 640x32",
        ),
        (InputSize(height=480, width=3000), "3000x480 has a side above 2048 px"),
        (0, "0x0 has a side below 32 px: the nearest size the networks take is 32x32"),
        (True, "must be WIDTHxHEIGHT or one integer"),
    ],
)
def test_refused_sizes_name_the_nearest_one(size, message):
    with pytest.raises(ValueError, match=message):
        check_input_size(size)


@pytest.mark.parametrize("text", ["", "abc", "640x480x3", "-64", "64x", "6.4x4"])
def test_unparsable_sizes_are_refused(text):
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        InputSize.parse(text)


def test_preprocessing_resizes_each_side_by_the_imagenet_ratio():
    pre = Preprocessing.for_size(InputSize.parse("640x480"))
    assert pre.resize_size == InputSize(height=round(480 / 0.875), width=round(640 / 0.875))  # 549 x 731
    assert Preprocessing.for_size(224).resize_size == InputSize.square(256)  # the square rule unchanged


def test_cover_size_is_torchvisions_shorter_side_rule_for_a_square():
    box = InputSize.square(256)
    for width, height in [(500, 375), (375, 500), (300, 300), (1000, 257)]:
        short, long = min(width, height), max(width, height)
        expected = (256, int(256 * long / short)) if width <= height else (int(256 * long / short), 256)
        assert cover_size(width, height, box) == expected


@pytest.mark.parametrize("image_size", [(1280, 720), (480, 640), (640, 480), (100, 100)])
def test_a_frame_of_any_aspect_is_cropped_to_the_input_never_stretched(image_size):
    """Landscape, portrait, 4:3 and square frames into a 96x64 input: the crop is 96 wide, 64 high, and a
    circle stays a circle (the scale is one number for both axes)."""
    from PIL import Image, ImageDraw

    pre = Preprocessing.for_size(InputSize(height=64, width=96))
    width, height = image_size
    image = Image.new("RGB", image_size, "black")
    radius = min(width, height) // 4
    ImageDraw.Draw(image).ellipse(
        (width // 2 - radius, height // 2 - radius, width // 2 + radius, height // 2 + radius), fill="white"
    )
    out = resize_center_crop(image, pre)
    assert out.size == (96, 64)
    lit = np.argwhere(np.asarray(out)[:, :, 0] > 127)
    rows, cols = np.ptp(lit[:, 0]) + 1, np.ptp(lit[:, 1]) + 1
    assert abs(rows - cols) <= 2, (rows, cols)


def test_a_new_manifest_records_height_and_width():
    pre = Preprocessing.for_size(InputSize.parse("640x480"))
    meta = ModelMeta(model="shufflenet_v2_x0_5", num_classes=3, preprocessing=pre)
    data = json.loads(json.dumps(meta.to_dict()))
    assert data["preprocessing"]["input_size"] == {"height": 480, "width": 640}
    assert data["preprocessing"]["resize_size"] == {"height": 549, "width": 731}
    assert ModelMeta.from_dict(data) == meta


def test_an_old_manifest_with_an_integer_size_still_loads(tmp_path):
    shutil.copy(OLD_MANIFEST, tmp_path / "manifest.json")
    meta = Manifest.load(tmp_path).meta
    assert meta.input_size == InputSize.square(64)
    assert meta.preprocessing.resize_size == InputSize.square(73)


def test_model_facts_read_both_forms_and_write_the_object():
    old = ModelFacts.from_dict({"model": "m", "input_size": 224, "num_classes": 10})
    new = ModelFacts.from_dict({"model": "m", "input_size": {"height": 480, "width": 640}, "num_classes": 10})
    assert old.input_size == InputSize.square(224) and new.input_size == InputSize(height=480, width=640)
    assert new.to_dict()["input_size"] == {"height": 480, "width": 640}
    with pytest.raises(ManifestError, match="input_size"):
        ModelFacts.from_dict({"model": "m", "input_size": {"height": 480}, "num_classes": 10})
    with pytest.raises(ManifestError, match="input_size"):
        ModelFacts.from_dict({"model": "m", "input_size": "640x480", "num_classes": 10})


def test_a_training_schedule_saves_height_and_width_and_reads_back_the_same_size():
    """The checkpoint of `shufflekit train --input-size 48x32` saves its schedule as plain values (torch's
    weights_only loading), and a resumed run reads back 48x32; a schedule saved before holds one int."""
    from shufflekit.train import TrainConfig

    settings = TrainConfig(
        model="shufflenet_v2_x0_5", data="demo", input_size=InputSize(height=32, width=48)
    ).resolved()
    saved = settings.schedule()
    assert saved["input_size"] == {"height": 32, "width": 48}
    assert TrainConfig(model="shufflenet_v2_x0_5", data="demo", **saved).input_size == InputSize(height=32, width=48)
    assert TrainConfig(model="shufflenet_v2_x0_5", data="demo", **{**saved, "input_size": 64}).input_size == (
        InputSize.square(64)
    )
