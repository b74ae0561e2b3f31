"""`shufflekit guidelines` over the real sshd on loopback, on a Raspberry Pi-like device Python and on
an emulated ARM64 board at once: both get the paper's table with the measured multiply-adds; the
board's rows carry no speed and no verdict (an emulator's speed is not the device's). ONNX only, 4x4
feature maps, one timed run."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from shufflekit.cli import main
from shufflekit.guidelines import TABLES
from shufflekit.guidelines.tables import EMULATED, REFERENCE

pytestmark = [pytest.mark.ssh, pytest.mark.slow]


def test_g2_on_an_ssh_device_and_an_emulated_board(tmp_path, ssh_client, device_python, arm64_python):
    pi, arm = ssh_client.url(python=device_python, name="pi"), ssh_client.url(python=arm64_python, name="arm64")
    result = CliRunner().invoke(
        main,
        [
            "guidelines",
            "--guideline",
            "G2",
            "--scale",
            "1",
            "--size",
            "4",
            "--formats",
            "onnx",
            "--warmup",
            "0",
            "--iters",
            "1",
            "--out",
            str(tmp_path / "bench"),
            "--device",
            pi,
            "--device",
            arm,
            "--ssh-config",
            str(ssh_client.config),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    tables = {t["device"]: t for t in data["results"]}
    assert set(tables) == {"pi", "arm64"}
    labels = [r.label for r in TABLES["G2"].rows]
    for table in tables.values():
        assert [r["label"] for r in table["rows"]] == labels and table["threads"] == 1
        flops = [r["cells"][0]["mult_adds"] for r in table["rows"]]
        assert flops == [10 * 16 * c * c // g for c, g in ((64, 1), (90, 2), (128, 4), (184, 8))]
    assert not tables["pi"]["emulated"] and all(r["cells"][0]["images_per_s"] > 0 for r in tables["pi"]["rows"])
    board = tables["arm64"]
    assert board["emulated"] and all(r["cells"][0]["images_per_s"] is None for r in board["rows"])
    assert [r["verdict"] for r in board["rows"]] == [REFERENCE] + [EMULATED] * 3
    assert data["report"]["device_facts"]["arm64"]["machine"] == "aarch64"
