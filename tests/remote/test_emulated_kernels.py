"""Quantized files on the kernels of the CPUs they ship to, whatever CPU runs the tests: every precision of
both formats of the trained test release runs on an emulated ARM64 board and on an emulated x86-64 CPU
without VNNI, reached through the real sshd like any board, and passes parity and the accuracy gate
there with the device's own kernels. The two defects the default recipes fix are shown on the boards
where they happen: full-range per-channel int8 saturates without VNNI, and ConvInteger with int8 weights
has no ARM64 kernel. An emulated device's latency is never shown as its speed.

Emulation is about 250x slower than native: the model is v2 0.5x at 32x32 and each file runs once."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line
from shufflekit.export.quantize import QuantizeOptions, quantize_release

pytestmark = [pytest.mark.ssh, pytest.mark.slow]
ONCE = ("--warmup", "0", "--iters", "1")
MODEL = "shufflenet_v2_x0_5"
BOARDS = {"arm64": "arm64_python", "x86-avx2": "avx2_python"}


def _said(stderr: str) -> list[str]:
    """The lines on stderr other than progress."""
    return [line for line in stderr.splitlines() if line.strip() and not is_progress_line(line)]


def _profile(ssh_client, python: str, folder, *selectors: str, samples: int = 60):
    result = CliRunner().invoke(
        main,
        [
            "profile",
            str(folder),
            *selectors,
            *ONCE,
            "--data",
            "demo",
            "--accuracy-samples",
            str(samples),
            "--device",
            ssh_client.url(python=python),
            "--ssh-config",
            str(ssh_client.config),
            "--json",
        ],
    )
    rows = json.loads(result.stdout)["results"] if result.stdout.strip().startswith("{") else []
    return result, {r["artifact"]: r for r in rows}


@pytest.mark.parametrize("board", BOARDS, ids=list(BOARDS))
def test_every_precision_of_both_formats_holds_on_the_emulated_board(board, request, ssh_client, quantized_copy):
    python = request.getfixturevalue(BOARDS[board])
    result, rows = _profile(ssh_client, python, quantized_copy)
    assert result.exit_code == 0, result.output
    assert len(rows) == 8  # fp32, fp16, dynamic, int8 of ONNX and TFLite
    for name, row in rows.items():
        assert row["parity"]["passed"], (name, row["parity"]["failures"])
        assert row["accuracy"]["passed"], (name, row["accuracy"]["failure"])
        assert row["accuracy"]["samples"] == 60 and row["emulated"] is True
    (measured,) = json.loads(result.stdout)["report"]["devices"]
    assert measured["host"]["machine"] == ("aarch64" if board == "arm64" else "x86_64")
    assert measured["host"]["kernel_family"] == board and measured["host"]["emulated"] is True
    key = ssh_client.address(python=python).key
    manifest = Manifest.load(quantized_copy)
    assert set(manifest.results("device_accuracy", group=key)) == set(rows)
    assert all(e.get("emulated") for e in manifest.results("latency", group=key).values())


def test_full_range_int8_saturates_without_vnni_and_the_device_gate_says_so(
    ssh_client, avx2_python, arm64_python, trained_release_copy
):
    """Today's former default (uint8 activations, 8-bit per-channel int8 weights) keeps its accuracy where
    int8 dot products accumulate in 32 bits (ARM64) and loses it on x86 without VNNI."""
    quantize_release(
        trained_release_copy, QuantizeOptions(precisions=("int8",), formats=("onnx",), calib="demo", target="x86-vnni")
    )
    artifact = Manifest.load(trained_release_copy).artifact(f"{MODEL}_int8.onnx")
    assert artifact.options["recipe"] == "full-range" and "x86-avx2" not in artifact.options["holds_on"]

    saturated, rows = _profile(ssh_client, avx2_python, trained_release_copy, "onnx:int8", samples=100)
    assert saturated.exit_code == 1, saturated.output
    assert "accuracy on the device failed" in saturated.stderr and len(_said(saturated.stderr)) == 1
    lost = rows[f"{MODEL}_int8.onnx"]["accuracy"]
    assert not lost["passed"] and lost["delta_top1"] < -10  # tens of points, far beyond the sampling margin

    held, rows = _profile(ssh_client, arm64_python, trained_release_copy, "onnx:int8", samples=100)
    assert held.exit_code == 0, held.output
    assert rows[f"{MODEL}_int8.onnx"]["accuracy"]["passed"]


def test_dynamic_onnx_with_int8_weights_does_not_load_on_arm64_the_default_does(
    ssh_client, arm64_python, trained_release_copy
):
    quantize_release(
        trained_release_copy,
        QuantizeOptions(precisions=("dynamic",), formats=("onnx",), weight_type="int8", per_channel=True),
    )
    result, _ = _profile(ssh_client, arm64_python, trained_release_copy, "onnx:dynamic")
    assert result.exit_code != 0
    assert "ConvInteger" in result.stderr and len(_said(result.stderr)) == 1

    quantize_release(trained_release_copy, QuantizeOptions(precisions=("dynamic",), formats=("onnx",)))
    result, rows = _profile(ssh_client, arm64_python, trained_release_copy, "onnx:dynamic")
    assert result.exit_code == 0, result.output
    row = rows[f"{MODEL}_dynamic.onnx"]
    assert row["parity"]["passed"] and row["accuracy"]["passed"]


def test_devices_says_a_board_is_emulated(ssh_client, arm64_python):
    result = CliRunner().invoke(
        main, ["devices", ssh_client.url(python=arm64_python), "--ssh-config", str(ssh_client.config)]
    )
    assert result.exit_code == 0, result.output
    assert "aarch64" in result.output and "qemu-aarch64" in result.output
    assert "latency is the emulator's" in result.output


def test_the_profile_table_never_shows_an_emulated_latency(ssh_client, avx2_python, quantized_copy):
    result = CliRunner().invoke(
        main,
        [
            "profile",
            str(quantized_copy),
            "tflite:fp32",
            *ONCE,
            "--device",
            ssh_client.url(python=avx2_python),
            "--ssh-config",
            str(ssh_client.config),
        ],
        terminal_width=240,
    )
    assert result.exit_code == 0, result.output
    assert "EMULATED" in result.output and "emulated" in result.output
    lines = result.output.splitlines()
    header = [c.strip() for c in next(line for line in lines if "p50" in line).split("┃")]
    cells = dict(zip(header, (c.strip() for c in next(line for line in lines if "tflite:fp32" in line).split("│"))))
    assert cells["p50"] == "emulated"
    for column in ("p90", "p99", "mean ± std", "img/s", "load ms", "first ms", "peak RSS MB", "µs/M-MAC"):
        assert cells[column] == "", column  # the emulator's figures are not the device's
