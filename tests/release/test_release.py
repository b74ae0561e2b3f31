"""`shufflekit release` on a briefly trained small model: every artifact, a manifest that agrees with the
files, the model card, labels and an offline report; reruns that skip, resumes that redo only what was
unfinished, tampered files re-made, devices over a real sshd, and one line for each bad input."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from release_helpers import CLI_FAST, EVAL_LIMIT, INTERRUPT_AFTER_PROFILES, LEFTOVER, PROFILE, run_release

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.cli.output import is_progress_line
from shufflekit.files import PARTIAL_GLOB, sha256_file
from shufflekit.folder import STAGING_PREFIX

KINDS = {f"{fmt}:{precision}" for fmt in ("onnx", "tflite") for precision in ("fp32", "fp16", "dynamic", "int8")}
URL = re.compile(r"(?i)\b(?:https?|ftp)://|//[a-z0-9.-]+\.[a-z]{2,}/")


def _ran(outcomes: list[tuple[str, str]]) -> set[str]:
    return {key for key, status in outcomes if status == "ran"}


def test_release_holds_every_artifact_and_a_manifest_that_agrees_with_the_files(released):
    folder = released.folder
    manifest = Manifest.load(folder)
    artifacts = manifest.artifacts
    assert {a.key for a in artifacts} == KINDS
    onnx_fp32 = next(a for a in artifacts if a.key == "onnx:fp32")
    for artifact in artifacts:
        artifact.verify(folder)  # the bytes are the ones recorded
        if artifact.precision != "fp32":
            assert artifact.parent_sha256 == onnx_fp32.sha256  # lineage: made from the fp32 ONNX file
    names = {a.name for a in artifacts}
    parity = manifest.results("parity")
    accuracy = manifest.results("accuracy")
    latency = manifest.results("latency", group="local")
    assert set(parity) == names and all(entry["passed"] for entry in parity.values())
    assert set(accuracy) == names | {"pytorch"} and all(accuracy[n]["passed"] for n in names)
    assert accuracy["pytorch"]["top1"] > 50  # trained, not chance (10 classes)
    assert set(latency) == names and all(entry["latency_ms"]["p50_ms"] > 0 for entry in latency.values())
    assert set(manifest.results("op_profile", group="local")) == names
    assert set(manifest.results("latency_times", group="local")) == names
    # every unit is recorded with its fingerprint; nothing half-written is left
    stages = manifest.results("release_stages")
    assert {"export", "report"} <= set(stages)
    assert {f"quantize {k}" for k in KINDS if not k.endswith("fp32")} <= set(stages)
    assert {f"validate {n}" for n in names} | {f"evaluate {n}" for n in names} | {
        f"profile local {n}" for n in names
    } <= set(stages)
    assert not list(folder.glob(PARTIAL_GLOB)) and not list(folder.glob(f"{STAGING_PREFIX}*"))
    # the human side: labels, model card and report, written from that manifest
    assert (folder / "labels.txt").read_text().splitlines() == list(manifest.meta.label_names())
    card = (folder / "README.md").read_text()
    for artifact in artifacts:
        assert artifact.name in card and artifact.sha256 in card
        assert f"{latency[artifact.name]['per_image_p50_ms']:.3f}" in card
    for section in ("## Preprocessing", "## Labels", "## Artifacts", "### Android", "### iOS", "### Python"):
        assert section in card
    assert stages["report"]["outputs"] == {
        n: sha256_file(folder / n) for n in ("labels.txt", "README.md", "report.html")
    }


def test_report_html_is_self_contained_with_its_plots_inline(released):
    html = (released.folder / "report.html").read_text()
    assert not URL.search(html), URL.search(html)
    assert html.count('src="data:image/png;base64,') == 3  # accuracy vs latency, op breakdown, distribution
    assert re.findall(r"\b(?:src|href)=\"(?!data:)", html) == []  # nothing loaded from anywhere else
    assert "<script" not in html and "<link" not in html and "@import" not in html
    for artifact in Manifest.load(released.folder).artifacts:
        assert artifact.name in html


def test_an_interrupted_release_resumes_without_redoing_finished_work(released):
    first, second, third = released.runs
    # run 1 crashed in the TFLite conversion: the ONNX precisions were finished and recorded
    assert _ran(first) >= {"quantize onnx:fp16", "quantize onnx:dynamic", "quantize onnx:int8"}
    assert not any(key.startswith(("quantize tflite", "validate", "profile")) for key in _ran(first))
    # run 2 kept them, removed the half-written file, and made only the TFLite precisions
    assert {key for key, status in second if status == "skipped"} >= {
        "export",
        "quantize onnx:fp16",
        "quantize onnx:dynamic",
        "quantize onnx:int8",
    }
    assert {k for k in _ran(second) if k.startswith("quantize")} == {
        "quantize tflite:fp16",
        "quantize tflite:dynamic",
        "quantize tflite:int8",
    }
    assert not (released.folder / LEFTOVER).exists()
    # while the converter made them, the files already made were evaluated and validated (the TFLite batch
    # waited for that, up to a minute: see conftest); nothing was profiled meanwhile; each unit said once
    keys = [key for key, _ in second]
    converted = keys.index("quantize tflite:int8")
    for check in ("evaluate", "validate"):
        for name in ("fp32.onnx", "int8.onnx", "fp32.tflite"):
            assert keys.index(f"{check} shufflenet_v2_x0_5_{name}") < converted, second
        assert f"{check} shufflenet_v2_x0_5_int8.tflite" in keys[converted:]
    assert not any(key.startswith("profile") for key in keys[:converted])
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    profiled_before = [k for k in _ran(second) if k.startswith("profile")]
    assert len(profiled_before) == INTERRUPT_AFTER_PROFILES
    # run 3 redid nothing but the profiles the crash cut off, and the report
    assert {k for k in _ran(third) if not k.startswith("profile")} == {"report"}
    profiled_after = {k for k in _ran(third) if k.startswith("profile")}
    assert len(profiled_after) == 8 - INTERRUPT_AFTER_PROFILES and not profiled_after & set(profiled_before)


def test_a_rerun_skips_every_stage_and_changes_nothing(released_copy):
    folder = released_copy.folder
    before = {
        p.name: (p.stat().st_mtime_ns, sha256_file(p))
        for p in folder.iterdir()
        if p.is_file() and p.name != "manifest.json" and not p.name.startswith(".")
    }
    report, outcomes, error = run_release(released_copy.options())
    assert error is None and report.ok
    assert outcomes and {status for _, status in outcomes} == {"skipped"}, [o for o in outcomes if o[1] != "skipped"]
    stages = {key.split(" ")[0] for key, _ in outcomes}
    assert stages == {"export", "quantize", "validate", "evaluate", "profile", "report"}
    after = {name: (folder / name).stat().st_mtime_ns for name in before}
    assert after == {name: mtime for name, (mtime, _) in before.items()}


def test_a_tampered_artifact_is_made_again_not_trusted(released_copy):
    folder = released_copy.folder
    manifest = Manifest.load(folder)
    victim = next(a for a in manifest.artifacts if a.key == "onnx:fp16")
    data = bytearray((folder / victim.name).read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    (folder / victim.name).write_bytes(bytes(data))
    report, outcomes, error = run_release(released_copy.options())
    assert error is None and report.ok
    assert "quantize onnx:fp16" in _ran(outcomes)
    remade = Manifest.load(folder).artifact(victim.name)
    remade.verify(folder)
    assert sha256_file(folder / victim.name) == remade.sha256 != sha256_file_of(data)
    # whatever was measured on the tampered bytes would be stale; the release re-measured what changed
    for kind in ("parity", "accuracy"):
        assert Manifest.load(folder).results(kind)[victim.name]["sha256"] == remade.sha256


def test_figures_a_hand_run_command_recorded_are_measured_again_not_shipped(released_copy):
    """`evaluate` on 5 images and a 2-run `profile` of one file replace the release's records for the same
    files: the next release must not call them unchanged and ship them as its own."""
    folder = released_copy.folder
    one = next(a for a in Manifest.load(folder).artifacts if a.key == "onnx:fp32")
    runner = CliRunner()
    hand = runner.invoke(main, ["evaluate", str(folder), "--data", "demo", "--eval-samples", "5"])
    assert hand.exit_code == 0, hand.output
    hand = runner.invoke(main, ["profile", str(folder), one.name, "--iters", "2", "--warmup", "0"])
    assert hand.exit_code == 0, hand.output
    assert Manifest.load(folder).results("accuracy")[one.name]["samples"] == 5
    report, outcomes, error = run_release(released_copy.options())
    assert error is None and report.ok
    ran = _ran(outcomes)
    assert {k for k in ran if k.startswith("evaluate ")} == {
        f"evaluate {a.name}" for a in Manifest.load(folder).artifacts
    }
    assert {k for k in ran if k.startswith("profile ")} == {f"profile local {one.name}"}
    manifest = Manifest.load(folder)
    assert manifest.results("accuracy")[one.name]["samples"] == EVAL_LIMIT
    assert manifest.results("latency", group="local")[one.name]["iters"] == PROFILE.iters
    _, again, _ = run_release(released_copy.options())  # and then it is the release's own again
    assert {status for _, status in again} == {"skipped"}


def sha256_file_of(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(bytes(data)).hexdigest()


def test_report_rebuilds_the_card_and_the_page_from_the_manifest_alone(released_copy, small_release_copy):
    folder = released_copy.folder
    expected = {name: (folder / name).read_text() for name in ("labels.txt", "README.md")}
    for name in ("labels.txt", "README.md", "report.html"):
        (folder / name).unlink()
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    assert {name: (folder / name).read_text() for name in expected} == expected
    assert not URL.search((folder / "report.html").read_text())
    # a folder made by `shufflekit export` alone: no accuracy, no latency, still a report
    result = CliRunner().invoke(main, ["report", str(small_release_copy)])
    assert result.exit_code == 0, result.output
    card = (small_release_copy / "README.md").read_text()
    assert "not measured" in card and "shufflenet_v2_x0_5_fp32.tflite" in card
    assert "**Weights: random** (no checkpoint" in card.split("## Verdict")[0]  # said before anything else
    assert "Weights: checkpoint sha256" in expected["README.md"]
    # Hugging Face-style YAML front-matter: what the model is, each file by sha256, the verdict per device
    _, front, body = expected["README.md"].split("---\n", 2)
    assert body.lstrip().startswith("# ") and "library_name: shufflekit" in front
    manifest = Manifest.load(folder)
    assert all(f'file: "{a.name}"' in front and f'sha256: "{a.sha256}"' in front for a in manifest.artifacts)
    assert '\n  "local": "SHIP"' in front
    kotlin = expected["README.md"].split("```kotlin", 1)[1].split("```", 1)[0]
    assert "resizeToCover" not in kotlin and "Bitmap.createScaledBitmap" in kotlin  # the platform's own calls


@pytest.mark.ssh
def test_a_release_with_ssh_devices_merges_every_device_into_the_manifest(
    released_copy, ssh_client, device_python, device_tmp
):
    """Two ssh devices (the server by address and by its Host alias: one worker each, at once) beside
    the local figures already there; all three land in one manifest and one report."""
    folder = released_copy.folder
    by_url = ssh_client.url(python=device_python, tmp=str(device_tmp))
    by_alias = f"ssh://{ssh_client.alias}?python={device_python}&tmp={device_tmp}"
    result = CliRunner().invoke(
        main,
        [
            "release",
            "--checkpoint",
            str(released_copy.checkpoint),
            *CLI_FAST,
            "--device",
            by_url,
            "--device",
            by_alias,
            "--ssh-config",
            str(ssh_client.config),
            "--connect-timeout",
            "5",
            "--out",
            str(folder),
        ],
    )
    manifest = Manifest.load(folder)
    names = {a.name for a in manifest.artifacts}
    devices = set(manifest.groups("latency"))
    remote = devices - {"local"}
    assert len(remote) == 2 and "local" in devices, result.output
    # every precision of both formats runs on the board's tflite-runtime 2.14 and onnxruntime, and its
    # outputs there agree with PyTorch's (parity on the device)
    assert result.exit_code == 0, result.output
    assert not Manifest.load(folder).results("release").get("profile_failures", {}).get("artifacts")
    for device in remote:
        assert set(manifest.results("latency", group=device)) == names
        on_device = manifest.results("device_parity", group=device)
        assert set(on_device) == names and all(entry["passed"] for entry in on_device.values())
        facts = manifest.group_info("latency", device)
        assert facts["numpy"].startswith("1.")  # measured in the lean device Python, not here
    assert set(manifest.results("latency", group="local")) == names
    assert list(device_tmp.iterdir()) == []  # nothing left on the device
    card = (folder / "README.md").read_text()
    assert all(f"p50 ms @ {device}" in card for device in devices)
    assert "(parity ok" in card and "parity FAIL" not in card
    assert "profile (8 units)" in result.output  # the local figures: skipped, said once
    # one worker per device, at once: the two devices' profiling spans overlap
    spans = []
    for device in remote:
        units = [e for k, e in manifest.results("release_stages").items() if k.startswith(f"profile {device} ")]
        ends = [datetime.fromisoformat(e["finished_at"]).timestamp() for e in units]
        spans.append((min(end - e["seconds"] for end, e in zip(ends, units)), max(ends)))
    (start_a, end_a), (start_b, end_b) = spans
    assert start_a < end_b - 1 and start_b < end_a - 1, spans


def test_an_unreachable_device_fails_alone_in_one_line_and_keeps_the_rest(released_copy, tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = released_copy.folder
    before = Manifest.load(folder).results("latency", group="local")
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host *\n  UserKnownHostsFile /dev/null\n  IdentityAgent none\n")
    result = CliRunner().invoke(
        main,
        [
            "release",
            "--checkpoint",
            str(released_copy.checkpoint),
            *CLI_FAST,
            "--device",
            f"ssh://nobody@127.0.0.1:{port}",
            "--ssh-config",
            str(ssh_config),
            "--connect-timeout",
            "1",
            "--out",
            str(folder),
        ],
    )
    assert result.exit_code == 2, (result.output, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.strip() and not is_progress_line(line)]
    assert len(errors) == 1 and errors[0].startswith("error: ") and f"127.0.0.1:{port}" in errors[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "FAILED" in result.stdout and f"127.0.0.1:{port}" in result.stdout  # the summary says so
    manifest = Manifest.load(folder)
    assert manifest.results("latency", group="local") == before  # local results kept
    assert f"127.0.0.1:{port} could not be used" in (folder / "README.md").read_text()  # and the card says so


def test_an_artifact_the_device_cannot_run_fails_alone_and_the_rest_is_measured(
    released_copy, ssh_client, device_python, tmp_path
):
    """A board with onnxruntime but no TFLite runtime: the device Python with tflite_runtime hidden (a
    package on PYTHONPATH whose import fails, as on a board where it was never installed)."""
    shim = tmp_path / "shim" / "tflite_runtime"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("tflite_runtime is not installed on this board")\n')
    board_python = tmp_path / "board-python"
    board_python.write_text(f'#!/bin/sh\nPYTHONPATH={shim.parent} exec {device_python} "$@"\n')
    board_python.chmod(0o755)
    folder = released_copy.folder
    result = CliRunner().invoke(
        main,
        [
            "release",
            "--checkpoint",
            str(released_copy.checkpoint),
            *CLI_FAST,
            "--device",
            ssh_client.url(python=str(board_python)),
            "--ssh-config",
            str(ssh_client.config),
            "--out",
            str(folder),
        ],
    )
    assert result.exit_code == 2, result.output
    manifest = Manifest.load(folder)
    (board,) = set(manifest.groups("latency")) - {"local"}
    measured = set(manifest.results("latency", group=board))
    failed = manifest.results("release")["profile_failures"]["artifacts"][board]
    assert measured == {a.name for a in manifest.artifacts if a.format == "onnx"}
    assert set(failed) == {a.name for a in manifest.artifacts if a.format == "tflite"}
    card = (folder / "README.md").read_text()
    assert all(f"{name} did not run on {board}" in card for name in failed)


def test_an_android_phone_is_measured_with_native_tools(released_copy, tmp_path, monkeypatch):
    """An adb shell has no Python: --benchmark-binary measures every artifact there with the runtimes'
    own tools. No Android device runs here: the stand-in adb (tests/remote/fake_adb) keeps the phone's
    files in a folder and the stand-in tools (tests/runtimes/native_tools) print the real tools' output."""
    tests = Path(__file__).resolve().parents[1]
    phone_tmp = tmp_path / "android" / "data" / "local" / "tmp"
    phone_tmp.mkdir(parents=True)
    monkeypatch.setenv("PATH", f"{tests / 'remote' / 'fake_adb'}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path / "android"))
    monkeypatch.setenv("FAKE_ADB_DEVICES", "emulator-5554=device")
    tools = [tests / "runtimes" / "native_tools" / name for name in ("benchmark_model", "onnxruntime_perf_test")]
    folder = released_copy.folder
    phone = f"adb://emulator-5554?tmp={phone_tmp}&python=/system/bin/no-python3&name=pixel"  # a phone has no Python
    result = CliRunner().invoke(
        main,
        [
            "release",
            "--checkpoint",
            str(released_copy.checkpoint),
            *CLI_FAST,
            "--device",
            phone,
            *(f"--benchmark-binary={t}" for t in tools),
            "--out",
            str(folder),
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = Manifest.load(folder)
    measured = manifest.results("latency", group="pixel")
    assert set(measured) == {a.name for a in manifest.artifacts}
    assert {entry["tool"]["name"] for entry in measured.values()} == {"benchmark_model", "onnxruntime_perf_test"}
    assert list(phone_tmp.iterdir()) == []  # nothing left on the phone
    assert "p50 ms @ pixel" in (folder / "README.md").read_text()


def test_benchmark_binary_without_a_device_is_one_line(tmp_path):
    tool = Path(__file__).resolve().parents[1] / "runtimes" / "native_tools" / "benchmark_model"
    result = CliRunner().invoke(
        main,
        ["release", "--model", "shufflenet_v2_x0_5", "--benchmark-binary", str(tool), "--out", str(tmp_path / "out")],
    )
    assert result.exit_code == 2 and "none is given" in _one_error_line(result)
    assert not (tmp_path / "out").exists()


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and not is_progress_line(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), (result.stdout, result.stderr)
    return lines[0]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--model", "shufflenet_v9"], "unknown model"),
        (["--model", "shufflenet_v2_x0_5", "--checkpoint", "missing.pt"], "missing.pt does not exist"),
        (["--model", "shufflenet_v2_x0_5", "--input-size", "640x20"], "has a side below 32 px"),
        (["--model", "shufflenet_v2_x0_5", "--data", "no-such-folder"], "no-such-folder does not exist"),
        (["--model", "shufflenet_v2_x0_5", "--device", "ftp://board"], "ftp://board"),
        (["--demo", "--checkpoint", "model.pt"], "--demo trains its own checkpoint"),
        (["--model", "shufflenet_v2_x0_5", "--limit", "0"], "--limit"),
        (["--model", "shufflenet_v2_x0_5", "--target", "riscv"], "unknown --target"),
        (["--model", "shufflenet_v2_x0_5", "--precisions", "int4"], "unknown precision int4"),
        (["--model", "shufflenet_v2_x0_5", "--formats", "coreml"], "unknown format coreml"),
        (["--model", "shufflenet_v2_x0_5", "--precisions", "fp16", "--io-dtype", "int8"], "applies to TFLite int8"),
        (["--model", "shufflenet_v2_x0_5", "--device-accuracy-samples", "0"], "--device-accuracy-samples"),
        (["--model", "shufflenet_v2_x0_5", "--device", "local?name=local"], "bad name"),
        ([], "no model to release"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_written(tmp_path, args, expected):
    out = tmp_path / "out"
    (tmp_path / "model.pt").write_bytes(b"")
    result = (
        CliRunner().invoke(main, ["release", *args, "--out", str(out)], catch_exceptions=False)
        if args
        else CliRunner().invoke(main, ["release", "--out", str(out)])
    )
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert expected.lower() in _one_error_line(result).lower()
    assert not out.exists()


def test_out_must_be_a_folder_and_is_required(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    result = CliRunner().invoke(main, ["release", "--model", "shufflenet_v2_x0_5", "--out", str(a_file)])
    assert result.exit_code == 2 and "is a file" in _one_error_line(result)
    result = CliRunner().invoke(main, ["release", "--model", "shufflenet_v2_x0_5"])
    assert result.exit_code == 2 and "--out is required" in _one_error_line(result)
    assert a_file.read_text() == "not a folder"


def test_a_damaged_manifest_is_refused_before_any_work(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{not json")
    result = CliRunner().invoke(main, ["release", "--model", "shufflenet_v2_x0_5", "--out", str(out)])
    assert result.exit_code == 2 and "manifest.json" in _one_error_line(result)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    shutil.rmtree(out)
