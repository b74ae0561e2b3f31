"""A release for an ARM64 board and an x86 CPU without VNNI, both emulated and reached through the real
sshd: each device classifies labelled images with its own kernels, a recipe that loses accuracy on one
of them is replaced by the next recipe of the ladder, the verdict per device opens the summary, the card
and the page, and the emulators' latency is never shown as the devices' speed."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from release_helpers import CALIB_SAMPLES

from shufflekit.artifacts import Manifest
from shufflekit.cli import main

pytestmark = [pytest.mark.ssh, pytest.mark.slow]
MODEL = "shufflenet_v2_x0_5"


def test_a_recipe_that_fails_on_a_device_is_replaced_and_every_device_gets_a_verdict(
    trained_release, tmp_path, ssh_client, arm64_python, avx2_python
):
    out = tmp_path / "release"
    arm, avx2 = ssh_client.url(python=arm64_python, name="arm64"), ssh_client.url(python=avx2_python, name="avx2")
    result = CliRunner().invoke(
        main,
        [
            "release",
            "--checkpoint",
            str(trained_release.parent / "model.pt"),
            "--out",
            str(out),
            "--data",
            "demo",
            "--calib-samples",
            str(CALIB_SAMPLES),
            "--limit",
            "100",
            "--warmup",
            "0",
            "--iters",
            "2",
            "--no-op-profile",
            "--precisions",
            "int8",
            "--formats",
            "onnx",
            "--target",
            "x86-vnni",
            "--device-accuracy-samples",
            "100",
            "--device",
            arm,
            "--device",
            avx2,
            "--ssh-config",
            str(ssh_client.config),
        ],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output

    manifest = Manifest.load(out)
    int8 = manifest.artifact(f"{MODEL}_int8.onnx")
    # full-range (the x86-vnni target's fastest recipe) saturated on the CPU without VNNI: made again
    assert int8.options["recipe"] == "portable", int8.options
    assert manifest.results("release")["recipe_fallback"]["skip"] == ["int8:full-range"]
    assert "recipe fallback: int8:full-range failed on avx2 (top-1" in result.output
    for device in ("arm64", "avx2"):  # both boards, told apart by name= on one sshd
        accuracy = manifest.results("device_accuracy", group=device)
        assert set(accuracy) == {a.name for a in manifest.artifacts} and all(e["passed"] for e in accuracy.values())
        assert all(e["emulated"] for e in manifest.results("latency", group=device).values())

    lines = result.output.splitlines()
    verdict = lines.index("verdict:")
    assert verdict < next(i for i, line in enumerate(lines) if line.lstrip().startswith("┏"))  # verdict first
    heads = lines[verdict + 1 : verdict + 4]
    assert any(line.strip().startswith("SHIP local") for line in heads)
    assert any("SHIP arm64 (emulated)" in line for line in heads) and any(
        "SHIP avx2 (emulated)" in line for line in heads
    )

    card = (out / "README.md").read_text()
    assert card.index("## Verdict") < card.index("## Artifacts")
    assert "checks @ arm64 (emulated)" in card and "p50 ms @ arm64" not in card
    html = (out / "report.html").read_text()
    assert html.index("<h2>Verdict</h2>") < html.index("<h2>Artifacts</h2>")
    assert "checks @ avx2 (emulated)" in html and "p50 ms @ avx2" not in html
    # the emulators' figures are in the manifest (marked) but no table cell shows them as a speed
    for device in ("arm64", "avx2"):
        for entry in manifest.results("latency", group=device).values():
            p50 = f"{entry['per_image_p50_ms']:.3f}"
            assert not re.search(rf"\b{re.escape(p50)}\b", card.split("## Artifacts")[1].split("## Devices")[0])
