"""`shufflekit guidelines` end to end on this computer, on tiny feature maps (4x4, G1): the networks are
exported into a folder with a manifest, measured by the profile machinery, and printed as the paper's
tables with the measured multiply-adds, the paper's figures beside and a verdict per row. A rerun
reuses the files; `shufflekit profile` and `shufflekit report` take the folder. One TFLite conversion."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.guidelines import TABLES, network
from shufflekit.guidelines.build import build_folder
from shufflekit.guidelines.tables import EMULATED, NOT_MEASURED, REFERENCE, guideline_tables
from shufflekit.records import Latency

VERDICTS = {"reproduced", "not reproduced"}
FAST = ["--size", "4", "--scale", "1", "--warmup", "0", "--iters", "2"]


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, ["guidelines", *args], terminal_width=240)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    out = tmp_path_factory.mktemp("guidelines") / "bench"
    envelope = json.loads(_run("--guideline", "G1", "--formats", "onnx", "--out", str(out), "--json", *FAST))
    return out, {"tables": envelope["results"], **envelope["report"]}  # one result per table


def test_the_tables_have_the_papers_rows_flops_figures_and_a_verdict(measured):
    out, data = measured
    assert [(t["guideline"], t["device"], t["format"]) for t in data["tables"]] == [("G1", "local", "onnx")]
    for table in data["tables"]:
        paper = TABLES[table["guideline"]]
        assert [r["label"] for r in table["rows"]] == [r.label for r in paper.rows]
        assert table["threads"] == 1 and table["scales"] == [1] and table["size"] == 4
        for row, paper_row in zip(table["rows"], paper.rows):
            assert row["paper_arm"] == [paper_row.arm[0]] and row["paper_gpu"] == [paper_row.gpu[0]]
            (cell,) = row["cells"]
            assert cell["images_per_s"] > 0
            assert row["verdict"] == REFERENCE if paper_row is paper.reference else row["verdict"] in VERDICTS
    g1 = {r["label"]: r["cells"][0] for r in data["tables"][0]["rows"]}
    assert g1["1:1"]["mult_adds"] == 10 * 2 * 16 * 32 * 32 and g1["1:12"]["mult_adds"] == 10 * 2 * 16 * 9 * 108
    # the folder's manifest holds the files and their latency on the device
    manifest = Manifest.load(out)
    assert len(manifest.artifacts) == 4 and set(manifest.results("latency", group="local")) == {
        a.name for a in manifest.artifacts
    }


def test_the_onnx_graphs_hold_the_structure_of_each_row(measured, tmp_path):
    import onnx

    out, _ = measured
    g4 = [network(TABLES["G4"], row, size=4) for row in TABLES["G4"].rows]
    build_folder(tmp_path / "g4", g4, formats=["onnx"])
    ops = {}
    for folder in (out, tmp_path / "g4"):
        for art in Manifest.load(folder).artifacts:
            graph = onnx.load(str(folder / art.name)).graph
            ops[art.options["guideline"]["row"]] = [n.op_type for n in graph.node]
    assert ops["1:2"].count("Conv") == 20 and ops["1:2"].count("Relu") == 20
    counts = {row: (o.count("Conv"), o.count("Relu"), o.count("Add")) for row, o in ops.items() if "ReLU" in row}
    assert counts == {
        "ReLU yes, shortcut yes": (30, 30, 10),
        "ReLU yes, shortcut no": (30, 30, 0),
        "ReLU no, shortcut yes": (30, 0, 10),
        "ReLU no, shortcut no": (30, 0, 0),
    }
    assert {a.options["complexity"]["mult_adds"] for a in Manifest.load(tmp_path / "g4").artifacts} == {
        10 * 16 * 11 * 32 * 32  # the same FLOPs, fewer element-wise operations
    }


def test_a_rerun_reuses_the_files_and_prints_the_tables(measured):
    out, _ = measured
    text = _run("--guideline", "G1", "--formats", "onnx", "--out", str(out), *FAST[:-1], "1")
    assert "4 networks in" in text and "(0 exported now, 4 reused)" in text
    assert "G1 (seed 000 (ShuffleNet V2 paper), Table 1) on local, onnx (onnxruntime, 1 thread)" in text
    assert "paper ARM x1" in text and "76.2" in text and "1480" in text  # the paper's figures beside
    assert "G1 on local (onnx):" in text and "of 3 rows reproduced" in text


def test_rounds_keep_each_files_median_round_so_a_later_report_shows_the_runs_figures(measured):
    out, _ = measured
    envelope = json.loads(
        _run("--guideline", "G1", "--formats", "onnx", "--out", str(out), "--json", "--rounds", "3", *FAST)
    )
    (table,) = envelope["results"]
    assert table["rounds"] == 3
    latency = Manifest.load(out).results(Latency, group="local")
    for row in table["rows"]:
        (cell,) = row["cells"]
        entry = latency[cell["artifact"]]
        p50s = entry.extra["round_p50_ms"]
        assert entry.extra["rounds"] == 3 and len(p50s) == 3
        assert entry.per_image_p50_ms == sorted(p50s)[1] == cell["p50_ms"]  # the median round, in both
    (again,) = guideline_tables(Manifest.load(out))  # what report.html draws, from the manifest alone
    assert again.rounds == 3
    assert [c.p50_ms for r in again.rows for c in r.cells] == [r["cells"][0]["p50_ms"] for r in table["rows"]]


def test_profile_and_report_take_the_folder_and_tflite_has_a_channels_last_feature_map(tmp_path):
    table = TABLES["G2"]
    net = network(table, table.rows[1], size=4)  # g=2, c=90
    out = tmp_path / "one"
    (built,) = build_folder(out, [net])
    tflite = next(a for a in built.artifacts if a.format == "tflite")
    assert tflite.input.shape == (1, 4, 4, 90) and tflite.input.layout == "NHWC"
    assert build_folder(out, [net])[0].reused
    runner = CliRunner()
    result = runner.invoke(main, ["profile", str(out), "--iters", "2", "--warmup", "0"], terminal_width=240)
    assert result.exit_code == 0, result.output
    assert tflite.name in result.output
    assert runner.invoke(main, ["report", str(out)]).exit_code == 0
    page = (out / "report.html").read_text()
    assert "The paper's guidelines on these devices" in page and "g=2" in page


def test_a_release_folder_is_refused(tmp_path):
    from shufflekit.metadata import ModelMeta

    release = tmp_path / "release"
    Manifest.new(release, ModelMeta("shufflenet_v2_x0_5", 10)).save()
    result = CliRunner().invoke(main, ["guidelines", "--out", str(release), *FAST])
    assert result.exit_code != 0 and "not a folder of guideline benchmarks" in result.output


def test_unknown_guideline_and_bad_scale_are_one_line(tmp_path):
    result = CliRunner().invoke(main, ["guidelines", "--guideline", "G7", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "unknown guideline G7" in result.output
    result = CliRunner().invoke(main, ["guidelines", "--scale", "1,x", "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "--scale" in result.output


def test_verdict_names_are_distinct():
    assert len({REFERENCE, EMULATED, NOT_MEASURED, *VERDICTS}) == 5
