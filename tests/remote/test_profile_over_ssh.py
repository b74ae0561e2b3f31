"""`shufflekit profile --device ssh://...` as a user runs it against a board: the release's artifacts
measured through the real sshd in the lean device Python, figures filed under the device's key."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main

pytestmark = pytest.mark.ssh
FAST = ("--warmup", "1", "--iters", "3")


def test_profile_on_an_ssh_board_files_figures_under_its_address(ssh_client, device_python, small_release_copy):
    device = ssh_client.url(python=device_python)
    result = CliRunner().invoke(main, ["profile", str(small_release_copy), *FAST, "--device", device,
                                       "--ssh-config", str(ssh_client.config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    key = ssh_client.address().key  # the address without ?python=: where the figures are filed
    assert report["device"] == key
    rows = {r["artifact"]: r for r in report["artifacts"]}
    assert {r["format"] for r in rows.values()} == {"onnx", "tflite"}
    assert {r["interpreter"] for r in rows.values() if r["format"] == "tflite"} == {"tflite-runtime"}
    assert all(r["latency_ms"]["p50_ms"] > 0 for r in rows.values())
    assert report["host"]["numpy"].startswith("1.")
    assert set(Manifest.load(small_release_copy).results("latency", group=key)) == set(rows)


def test_profile_refuses_an_unknown_host_key_until_trusted(ssh_client, device_python, small_release_copy):
    ssh_client.forget_server()
    args = ["profile", str(small_release_copy), "onnx:fp32", *FAST, "--device", ssh_client.url(python=device_python),
            "--ssh-config", str(ssh_client.config)]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: ") and "not in known_hosts" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    trusted = CliRunner().invoke(main, [*args, "--trust-new-host-key"])
    assert trusted.exit_code == 0, trusted.output
