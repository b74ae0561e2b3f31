"""report.html as a person opens it: a real release's page, with one file failing accuracy and a second
device, rendered by Debian's Chromium headless (playwright drives it; scripts/install-chromium.sh, run
by `make test-deps`, installs it). Every plot is there and decoded, every section is there, all op types
are on the page, the page asks for nothing outside itself, logs no error, and screenshots as a page.
The plots' own layout (labels beside every point, none over another) is measured on the same folder."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest

from shufflekit.artifacts import Manifest
from shufflekit.report import write_report
from shufflekit.report.plots import accuracy_figure
from shufflekit.report.view import load_view

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
MODEL = "shufflenet_v2_x0_5"
FAILING = f"{MODEL}_int8.onnx"
BOARD = "ssh://pi@raspberrypi.local"
SECTIONS = ("Verdict", "Artifacts", "Accuracy vs latency", "Where the time goes", "Latency distribution", "Devices")
# What Chromium is told, beside headless: no sandbox (root in CI), no GPU, and none of the background
# requests it makes on its own (updates, sync, field trials): the machine has no network to give them.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        subprocess.run([str(ROOT / "scripts" / "install-chromium.sh")], check=False)
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed and could not be installed by scripts/install-chromium.sh "
            "(no root or no apt-get); `make test-deps` installs it"
        )
    return CHROMIUM


def _fail_one_file_and_add_a_board(folder: Path) -> None:
    """int8 ONNX at 11.4% (failing the accuracy gate far below the others) and a Raspberry Pi that ran
    every file 14 times slower than this computer, the dynamic ONNX one 500 times: the cases that once
    squashed the plots."""
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    results = data["results"]
    entry = results["accuracy"][FAILING]
    entry.update(top1=11.4, delta_top1=11.4 - entry["pytorch_top1"], passed=False, failure="top-1 11.4%")
    for kind in ("latency", "latency_times", "op_profile", "device_facts", "conv_peak"):
        results[kind][BOARD] = json.loads(json.dumps(results[kind]["local"]))
    results["device_facts"][BOARD].update(cpu_model="Cortex-A72", machine="aarch64", logical_cores=4)
    for name, timed in results["latency"][BOARD].items():
        slower = 500.0 if name.endswith("_dynamic.onnx") else 14.0
        timed["latency_ms"] = {key: value * slower for key, value in timed["latency_ms"].items()}
        timed["per_image_p50_ms"] *= slower
        times = results["latency_times"][BOARD][name]
        times["times_ms"] = [t * slower for t in times["times_ms"]]
    path.write_text(json.dumps(data, indent=1))


@pytest.fixture()
def failing_release(released_copy) -> Path:
    folder = released_copy.folder
    _fail_one_file_and_add_a_board(folder)
    write_report(folder)
    return folder


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", header[16:24])


def test_report_html_renders_in_chromium_with_every_plot_and_no_error(failing_release, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    page_path = failing_release / "report.html"
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "console",
                lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img",
                "els => els.map(e => ({alt: e.alt, complete: e.complete, natural: e.naturalWidth, shown: e.width,"
                " room: e.closest('main').clientWidth}))",
            )
            headings = page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
            folded = page.eval_on_selector_all(
                "details.ops",
                "els => els.map(e => [e.querySelector('summary').textContent, e.querySelectorAll('tbody tr').length])",
            )
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            failing_cells = page.eval_on_selector_all("td.fail", "els => els.map(e => e.textContent)")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    assert problems == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests  # nothing from outside the file
    assert [i["alt"] for i in images] == ["accuracy vs latency", "operator breakdown", "latency distribution"]
    for image in images:  # decoded, drawn, and within the page's column
        assert image["complete"] and image["natural"] > 300 and 0 < image["shown"] <= image["room"], image
    assert set(SECTIONS) <= set(headings), headings
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px"
    assert any(FAILING in cell for cell in failing_cells) and any("FAIL" in cell for cell in failing_cells)
    # every op type of every file on every device is on the page, folded per file; none cut
    view = load_view(failing_release)
    profiled = [(row, device) for row in view.rows for device in view.devices if device in row.op_profile]
    assert len(folded) == len(profiled) and {BOARD, "local"} <= {d for _, d in profiled}
    for (summary, shown), (row, device) in zip(folded, profiled):
        assert row.name in summary and device in summary
        assert shown == len(row.op_profile[device].op_types) and f"{shown} op types" in summary
    width, height = _png_size(shot)
    assert width == 1280 and 2000 < height < 40000 and shot.stat().st_size > 50_000


def test_every_point_of_accuracy_vs_latency_is_labelled_and_none_is_hidden(failing_release):
    view = load_view(failing_release)
    fig = accuracy_figure(view)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        panels = [ax for ax in fig.axes if ax.collections]
        assert len(panels) == 2  # local and the board
        for ax in panels:
            markers = [c.get_offset_transform().transform(c.get_offsets())[0] for c in ax.collections]
            assert len(markers) == len(Manifest.load(failing_release).artifacts)
            for i, a in enumerate(markers):  # each marker at least its own width from every other
                for b in markers[i + 1 :]:
                    assert max(abs(a[0] - b[0]), abs(a[1] - b[1])) >= 6, (a, b)
            labels = [t for t in ax.texts if t.get_text()]
            text = "\n".join(t.get_text() for t in labels)
            for row in view.rows:
                assert row.key in text
            assert "11.4% (off the scale) FAIL" in text  # the failing file: in the band, its value written
            boxes = [t.get_window_extent(renderer) for t in labels]
            for i, a in enumerate(boxes):
                for b in boxes[i + 1 :]:
                    assert not a.overlaps(b), (labels[i].get_text(), labels[boxes.index(b)].get_text())
            # the scale is the holding files' (and PyTorch's), not stretched down to the failing one
            low, high = ax.get_ylim()
            holding = [r.top1 for r in view.rows if r.accuracy_passed] + [view.pytorch_accuracy.top1]
            assert low > 11.4 and all(low < value < high for value in holding)
            assert high - low < 3 * max(1.0, max(holding) - min(holding))
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
