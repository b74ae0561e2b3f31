"""`shufflekit profile --device ssh://...` as a user runs it against a board: the release's artifacts
measured through the real sshd in the lean device Python, figures filed under the device's key."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line

pytestmark = pytest.mark.ssh
FAST = ("--warmup", "1", "--iters", "3")


def test_profile_on_an_ssh_board_files_figures_under_its_address(ssh_client, device_python, small_release_copy):
    device = ssh_client.url(python=device_python)
    result = CliRunner().invoke(
        main,
        [
            "profile",
            str(small_release_copy),
            *FAST,
            "--device",
            device,
            "--ssh-config",
            str(ssh_client.config),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    envelope = json.loads(result.stdout)
    (report,) = envelope["report"]["devices"]
    key = ssh_client.address(python=device_python).key  # where the figures are filed: with its interpreter
    assert report["device"] == key and {r["device"] for r in envelope["results"]} == {key}
    rows = {r["artifact"]: r for r in envelope["results"]}
    assert {r["format"] for r in rows.values()} == {"onnx", "tflite"}
    assert {r["interpreter"] for r in rows.values() if r["format"] == "tflite"} == {"tflite-runtime"}
    assert all(r["latency_ms"]["p50_ms"] > 0 for r in rows.values())
    assert report["host"]["numpy"].startswith("1.")
    assert set(Manifest.load(small_release_copy).results("latency", group=key)) == set(rows)


def test_profile_refuses_an_unknown_host_key_until_trusted(ssh_client, device_python, small_release_copy):
    ssh_client.forget_server()
    args = [
        "profile",
        str(small_release_copy),
        "onnx:fp32",
        *FAST,
        "--device",
        ssh_client.url(python=device_python),
        "--ssh-config",
        str(ssh_client.config),
    ]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    (line,) = [line for line in refused.stderr.splitlines() if line.strip() and not is_progress_line(line)]
    assert line.startswith("error: ") and "not in known_hosts" in line
    trusted = CliRunner().invoke(main, [*args, "--trust-new-host-key"])
    assert trusted.exit_code == 0, trusted.output


def test_profile_on_an_ssh_board_judges_the_boards_outputs_against_pytorch(
    ssh_client, device_python, small_release_copy
):
    """Export -> push -> run -> pull -> compare: the board predicts the folder's reference inputs with its
    own kernels (tflite-runtime and onnxruntime under numpy<2) and the host judges them like validate."""
    device = ssh_client.url(python=device_python)
    result = CliRunner().invoke(
        main,
        [
            "profile",
            str(small_release_copy),
            *FAST,
            "--device",
            device,
            "--ssh-config",
            str(ssh_client.config),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert all(r["parity"]["passed"] and r["parity"]["metrics"]["samples"] == 16 for r in rows)
    key = ssh_client.address(python=device_python).key
    recorded = Manifest.load(small_release_copy).results("device_parity", group=key)
    assert set(recorded) == {r["artifact"] for r in rows}
    assert {r["runtime"] for r in recorded.values()} == {"onnxruntime", "litert"}


def test_a_board_whose_outputs_differ_from_pytorch_fails_parity_and_keeps_its_figures(
    ssh_client, device_python, small_release_copy
):
    _shift_reference_logits(small_release_copy, by=0.5)  # PyTorch now says something the board cannot match
    result = CliRunner().invoke(
        main,
        [
            "profile",
            str(small_release_copy),
            "tflite:fp32",
            *FAST,
            "--device",
            ssh_client.url(python=device_python),
            "--ssh-config",
            str(ssh_client.config),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "parity on the device failed for 1 artifact(s)" in result.stderr
    # one error line (a busy test machine may add `warning: ... unreliable figures` lines before it)
    assert (
        len(
            [
                line
                for line in result.stderr.strip().splitlines()
                if not line.startswith("warning:") and not is_progress_line(line)
            ]
        )
        == 1
    )
    key = ssh_client.address(python=device_python).key
    manifest = Manifest.load(small_release_copy)
    assert [r["passed"] for r in manifest.results("device_parity", group=key).values()] == [False]
    assert len(manifest.results("latency", group=key)) == 1  # the latency figures are still there


def _shift_reference_logits(folder, by: float) -> None:
    import numpy as np

    from shufflekit.artifacts import update_manifest
    from shufflekit.files import sha256_file

    path = folder / "reference.npz"
    with np.load(path) as data:
        inputs, logits, seed = data["inputs"], data["logits"], data["seed"]
    np.savez(path, inputs=inputs, logits=logits + by, seed=seed)
    with update_manifest(folder) as manifest:
        manifest.set_reference(**{**manifest.reference, "sha256": sha256_file(path)})
