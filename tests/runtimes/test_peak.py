"""The device's dense-convolution peak beside each file's speed (issue 15, goal 4): a 1x1-convolution
micro-benchmark measured on the device in the same runtime and threads, filed once per device as a
``conv_peak`` record and reused, and each file's fraction of it in the latency record, --json and the
table. Real files, real runtimes: the small release's ONNX and TFLite fp32 on this computer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.device import job as device_job
from shufflekit.records import ConvPeak, Latency
from shufflekit.runtimes import peak
from shufflekit.runtimes.profile import ProfileSettings, profile_folder

FAST = ProfileSettings(warmup=1, iters=5, parity=False)


@pytest.fixture(scope="module")
def profiled(small_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the small release, profiled once (fp32 ONNX and TFLite) on this computer."""
    import shutil

    folder = tmp_path_factory.mktemp("peak") / "release"
    shutil.copytree(small_release, folder)
    profile_folder(folder, ["onnx:fp32", "tflite:fp32"], settings=FAST)
    return folder


def test_the_peak_is_measured_once_per_runtime_and_filed_as_a_record(profiled: Path) -> None:
    peaks = Manifest.load(profiled).results(ConvPeak, group="local")
    assert {p.runtime for p in peaks.values()} == {"onnxruntime", "litert"}
    for name, record in peaks.items():
        assert name == peak.peak_name(record.runtime, "cpu", None, record.benchmark_sha256)
        assert record.mult_adds == peak.MULT_ADDS and record.iters >= peak.MIN_ITERS
        assert record.gmacs == pytest.approx(record.mult_adds / (record.p50_ms / 1e3) / 1e9)
        assert record.measured_at and record.providers  # what ran: CPUExecutionProvider, xnnpack


def test_each_file_gets_its_fraction_of_the_peak_of_its_own_runtime(profiled: Path) -> None:
    manifest = Manifest.load(profiled)
    peaks = manifest.results(ConvPeak, group="local")
    latency = manifest.results(Latency, group="local")
    assert len(latency) == 2
    for entry in latency.values():
        used = peaks[entry.conv_peak]
        assert used.runtime == entry.runtime
        # how large is a measurement (two timings taken apart on a shared machine): only its definition is
        # asserted here; benchmarks/profile_stage.py prints the figures
        assert entry.peak_fraction is not None and entry.peak_fraction > 0
        rate = entry.mult_adds / entry.per_image_p50_ms
        assert entry.peak_fraction == pytest.approx(rate / (used.mult_adds / used.p50_ms))


def test_a_rerun_reuses_the_filed_peak(profiled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {n: p.measured_at for n, p in Manifest.load(profiled).results(ConvPeak, group="local").items()}
    jobs: list[dict] = []
    from shufflekit.runtimes import profile as host_profile

    real = host_profile.run_on_device

    def spy(device, art, path, job, **kwargs):  # the real measuring path, with the jobs it was given kept
        jobs.append(job)
        return real(device, art, path, job, **kwargs)

    monkeypatch.setattr(host_profile, "run_on_device", spy)
    report = profile_folder(profiled, ["onnx:fp32", "tflite:fp32"], settings=FAST)
    assert len(jobs) == 2 and not any("peak" in job for job in jobs)  # nothing measured again
    after = {n: p.measured_at for n, p in Manifest.load(profiled).results(ConvPeak, group="local").items()}
    assert after == before
    assert all(p.peak_fraction is not None for p in report.profiles)


def test_the_fraction_is_shown_in_the_table_and_the_json(profiled: Path) -> None:
    runner = CliRunner()
    table = runner.invoke(main, ["profile", str(profiled), "onnx:fp32", "--iters", "3", "--no-parity"])
    assert table.exit_code == 0, table.output
    flat = " ".join(table.output.split())
    assert "% peak" in flat and "dense-convolution peak" in flat and "GMAC/s" in flat
    result = runner.invoke(main, ["profile", str(profiled), "tflite:fp32", "--iters", "3", "--no-parity", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["results"][0]
    assert 0 < row["peak_fraction"] <= 1.5 and row["peak"]["runtime"] == "litert"
    assert row["conv_peak"] == peak.peak_name("litert", "cpu", None, row["peak"]["benchmark_sha256"])


def test_an_emulated_device_measures_no_peak(small_release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shufflekit.device import bench

    art = Manifest.load(small_release).select(["onnx:fp32"])[0]
    facts = bench.host_facts()
    monkeypatch.setattr(bench, "host_facts", lambda *a, **k: {**facts, "emulated": True, "emulator": "qemu"})
    job = {"mode": "benchmark", "model": str(small_release / art.name), "warmup": 0, "iters": 2}
    entry = {"model": str(peak.bench_file("onnx")), "layout": "NCHW", "seconds": 0.01, "min_iters": 1}
    assert "conv_peak" not in device_job.run_job({**job, "peak": entry})
    monkeypatch.undo()
    measured = device_job.run_job({**job, "peak": entry})["conv_peak"]
    assert measured["iters"] >= 1 and measured["latency_ms"]["p50_ms"] > 0


def test_a_peak_that_cannot_run_leaves_the_files_figures_standing(small_release: Path, tmp_path: Path) -> None:
    art = Manifest.load(small_release).select(["onnx:fp32"])[0]
    broken = tmp_path / "conv1x1-peak.onnx"
    broken.write_bytes(b"not a model")
    job = {"mode": "benchmark", "model": str(small_release / art.name), "warmup": 0, "iters": 2}
    result = device_job.run_job({**job, "peak": {"model": str(broken)}})
    assert result["latency_ms"]["p50_ms"] > 0 and "conv_peak" not in result
    assert "cannot load" in result["conv_peak_error"]


def test_the_card_and_the_report_show_the_fraction_and_the_peak(profiled: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(profiled)])
    assert result.exit_code == 0, result.output
    card = (profiled / "README.md").read_text()
    html = (profiled / "report.html").read_text()
    fractions = {e.peak_fraction for e in Manifest.load(profiled).results(Latency, group="local").values()}
    assert all(f"{f * 100:.0f}% of peak" in card for f in fractions if f is not None)
    for text in (card, html):
        assert "dense-convolution peak" in text and "local: litert cpu, default threads" in text and "GMAC/s" in text
