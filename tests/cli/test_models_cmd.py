import json

from click.testing import CliRunner

from shufflekit.cli import main


def test_models_json_lists_every_variant_with_complexity():
    result = CliRunner().invoke(main, ["models", "--json", "--input-size", "224"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
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


def test_bad_input_size_is_one_line_and_exit_2():
    result = CliRunner().invoke(main, ["models", "--input-size", "100"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: input size 100 is not a positive multiple of 32: use e.g. 96, 128, 160, 224, 320"]
