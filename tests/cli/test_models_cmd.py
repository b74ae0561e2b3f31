import json

import pytest
from click.testing import CliRunner

from shufflekit.cli import main


def test_models_json_lists_every_variant_with_complexity():
    result = CliRunner().invoke(main, ["models", "--json", "--input-size", "224"])
    assert result.exit_code == 0, result.output
    rows = {row["model"]: row for row in json.loads(result.stdout)["results"]}
    # 4 v2 widths, 25 v1 (groups x widths), 3 v2 in Megvii's official layout, 4 v2*, v2 2x SE, v2-50, v2-164
    assert len(rows) == 39
    assert rows["shufflenet_v2_164_se"]["width"] is None and rows["shufflenet_v2_x1_0_star"]["width"] == 1.0
    v2 = rows["shufflenet_v2_x1_0"]
    assert v2["params"] == 2278604 and abs(v2["mult_adds"] - 146e6) / 146e6 < 0.02
    assert v2["memory_access"] > v2["params"]
    assert rows["shufflenet_v1_g8_x1_0"]["groups"] == 8


def test_models_table_at_another_size_and_family():
    result = CliRunner().invoke(main, ["models", "--family", "v2", "--input-size", "128"])
    assert result.exit_code == 0
    assert "shufflenet_v2_x2_0" in result.output and "shufflenet_v1" not in result.output
    assert "128x128" in result.output


def test_models_at_a_camera_frame_counts_its_pixels():
    """640x480 is width x height: the tensor [1, 3, 480, 640]; multiply-adds grow with the pixels."""
    result = CliRunner().invoke(main, ["models", "--json", "--family", "v2", "--input-size", "640x480"])
    assert result.exit_code == 0, result.output
    rows = {row["model"]: row for row in json.loads(result.stdout)["results"]}
    v2 = rows["shufflenet_v2_x0_5"]
    assert v2["input_size"] == {"height": 480, "width": 640}
    at_224 = CliRunner().invoke(main, ["models", "--json", "--family", "v2"])
    square = {row["model"]: row for row in json.loads(at_224.output)["results"]}["shufflenet_v2_x0_5"]
    # the convolutions scale with H x W (the classifier does not): about 640*480 / 224^2 = 6.1x
    assert 5.5 < v2["mult_adds"] / square["mult_adds"] < 6.2
    table = CliRunner().invoke(main, ["models", "--family", "v2", "--input-size", "640x480"])
    assert "640x480 (width x height; NCHW tensor [1, 3, 480, 640])" in " ".join(table.output.split())


@pytest.mark.parametrize(
    "size, message",
    [
        (
            "640x20",
            "error: --input-size: input size 640x20 has a side below 32 px: the nearest size the networks take is 640x32",
        ),
        ("3000x480", "error: --input-size: input size 3000x480 has a side above 2048 px"),
        ("640x480x3", "error: --input-size: input size must be WIDTHxHEIGHT (e.g. 640x480) or one side"),
        ("-64", "error: --input-size: input size must be WIDTHxHEIGHT"),
    ],
)
def test_bad_input_size_is_one_line_and_exit_2(size, message):
    result = CliRunner().invoke(main, ["models", "--input-size", size])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), lines
