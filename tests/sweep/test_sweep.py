"""`shufflekit sweep` on a small sweep (v2 0.5x and v1 g3 0.5x at 64x64, ONNX, made once for the module):
the table, the plot and report.html on `local`, a rerun that adds a TFLite file (the module's one
conversion), and the same sweep measured over the real sshd. Speed is never asserted, only that it was
measured and that the figures agree with each other."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.metadata import InputSize
from shufflekit.models.complexity import model_complexity
from shufflekit.models.registry import model_spec
from shufflekit.records import Latency
from shufflekit.report.sweep import SWEEP_HTML, SWEEP_NAME, SWEEP_PLOT, load_sweep
from shufflekit.sweep import SweepOptions, run_sweep, select_variants
from shufflekit.sweep.paper import TABLE8_ARM_IPS

SIZE = 64
V2, V1 = "shufflenet_v2_x0_5", "shufflenet_v1_g3_x0_5"
QUICK = {"input_size": SIZE, "formats": ("onnx",), "warmup": 1, "iters": 3}


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    result = CliRunner().invoke(
        main,
        ["sweep", "--width", "0.5", "--groups", "3", "--input-size", str(SIZE), "--formats", "onnx"]
        + ["--warmup", "1", "--iters", "3", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "paper: Snapdragon 810" in result.output and "random weights" in result.output
    return out


@pytest.fixture
def sweep_copy(sweep_folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "sweep"
    shutil.copytree(sweep_folder, copy)
    return copy


def test_table_and_plot_on_local(sweep_folder: Path):
    view = load_sweep(sweep_folder)
    assert [m.name for m in view.index.models] == [V2, V1]  # the registry's order: v2 first
    assert view.devices == ["local"]
    rows = {r.model.name: r for r in view.device_rows("local")}
    assert set(rows) == {V2, V1} and {r.format for r in rows.values()} == {"onnx"}
    for name, row in rows.items():
        counted = model_complexity(name, SIZE, 1000)
        assert (row.model.mult_adds, row.model.memory_access) == (counted.mult_adds, counted.memory_access)
        assert row.p50_ms and row.p50_ms > 0 and row.threads == 1
        assert row.images_per_s == pytest.approx(1000 / row.p50_ms)
        assert row.us_per_mmac == pytest.approx(row.p50_ms * 1e3 / (counted.mult_adds / 1e6))
        assert row.model.paper_ips is None  # the paper measured at 224 only
    assert view.index.devices == ("local",)
    # each variant is an export folder any other command reads
    for name in (V2, V1):
        manifest = Manifest.load(sweep_folder / name)
        assert manifest.meta.model == name and manifest.meta.input_size == InputSize.square(SIZE)
    assert (sweep_folder / SWEEP_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (sweep_folder / SWEEP_HTML).read_text()
    assert "Speed against FLOPs" in page and V2 in page and V1 in page
    assert "1 thread" in page and "load average" in page  # the conditions the figures were taken in
    assert "data:image/png;base64," in page and "http" not in page.replace('lang="en"', "")
    index = json.loads((sweep_folder / SWEEP_NAME).read_text())
    assert set(index["files"]) == {SWEEP_HTML, SWEEP_PLOT}


def test_rerun_keeps_the_exports_and_adds_a_format(sweep_copy: Path):
    """A second run exports only what is missing (here the v2 TFLite file: the module's one conversion),
    keeps the other variant in the index and measures the new file; `shufflekit report` rebuilds the page."""
    v1_onnx = (sweep_copy / V1 / f"{V1}_fp32.onnx").read_bytes()
    report = run_sweep(sweep_copy, [model_spec(V2)], SweepOptions(**{**QUICK, "formats": ("tflite",)}))
    assert report.exported == (V2,) and report.kept == ()
    assert [m.name for m in report.view.index.models] == [V1, V2]
    formats = {(r.model.name, r.format) for r in report.view.device_rows("local") if r.p50_ms}
    assert formats == {(V2, "onnx"), (V2, "tflite"), (V1, "onnx")}
    assert (sweep_copy / V1 / f"{V1}_fp32.onnx").read_bytes() == v1_onnx
    assert report.view.index.formats == ("onnx", "tflite")

    (sweep_copy / SWEEP_HTML).unlink()
    result = CliRunner().invoke(main, ["report", str(sweep_copy)])
    assert result.exit_code == 0, result.output
    assert "tflite" in (sweep_copy / SWEEP_HTML).read_text()


def test_over_a_real_ssh_device(sweep_copy: Path, ssh_client, device_python: str, device_tmp: Path):
    """The structure over ssh: the variant measured on the device, filed under its key, in the table beside
    the local figures of the first run; with two rounds each file keeps the figures of its median round."""
    device = ssh_client.url(python=device_python, tmp=str(device_tmp))
    report = run_sweep(
        sweep_copy,
        select_variants(["v2"], ["0.5"]),
        SweepOptions(**{**QUICK, "devices": (device,), "rounds": 2}),
        connect=ssh_client.options(),
    )
    key = ssh_client.address(python=device_python).key  # the interpreter is part of the key
    assert report.kept == (V2,) and report.devices == (key,)
    assert report.view.devices == ["local", key]
    (row,) = report.view.device_rows(key)
    assert row.model.name == V2 and row.p50_ms and row.runtime == "onnxruntime" and row.threads == 1
    assert {r.model.name for r in report.view.device_rows("local")} == {V2, V1}
    assert set(report.view.index.devices) == {"local", key}
    assert key in (sweep_copy / SWEEP_HTML).read_text()
    (entry,) = Manifest.load(sweep_copy / V2).results(Latency, group=key).values()
    assert entry.extra["rounds"] == 2 and len(entry.extra["round_p50_ms"]) == 2
    assert entry.per_image_p50_ms in entry.extra["round_p50_ms"]
    assert list(device_tmp.iterdir()) == []  # nothing left on the device


def test_the_papers_figures_name_registered_variants():
    """Table 8's ARM column is keyed by registry name: a renamed variant would lose its reference."""
    for name in TABLE8_ARM_IPS:
        assert model_spec(name).family in ("v1", "v2")
    assert TABLE8_ARM_IPS["shufflenet_v2_x1_0"] == 24.4 and TABLE8_ARM_IPS["shufflenet_v1_g3_x1_0"] == 21.8


def test_a_damaged_index_is_one_line(sweep_copy: Path):
    data = json.loads((sweep_copy / SWEEP_NAME).read_text())
    data["models"][0]["folder"] = "../elsewhere"
    (sweep_copy / SWEEP_NAME).write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["report", str(sweep_copy)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: sweep.json field models[0].folder names '../elsewhere', not a plain name inside the folder; "
        "run `shufflekit sweep --out FOLDER` again to rewrite it"
    ]
