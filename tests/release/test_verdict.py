"""The per-device verdict that opens the summary, the card and the page: a file ships to a device only
where it was checked there and held; a device that could not be used, or a file never run on it, is
never a SHIP. Built from a real release's manifest, with the failures a release records."""

from __future__ import annotations

from click.testing import CliRunner

from shufflekit.artifacts import Manifest, update_manifest
from shufflekit.cli import main
from shufflekit.release.driver import Context
from shufflekit.release.quantize import _quant_units
from shufflekit.report.view import load_view

MODEL = "shufflenet_v2_x0_5"


def _record_failures(folder, devices=None, artifacts=None) -> None:
    with update_manifest(folder) as manifest:
        manifest.record(
            "release", "profile_failures", {"devices": devices or {}, "artifacts": artifacts or {}, "measured_at": ""}
        )


def test_every_file_checked_on_a_device_ships_there(released_copy):
    (verdict,) = [v for v in load_view(released_copy.folder).verdicts() if v.device == "local"]
    assert verdict.ship and verdict.word == "SHIP" and not verdict.reasons()
    assert len(verdict.holds) == len(Manifest.load(released_copy.folder).artifacts)


def test_a_device_that_could_not_be_used_is_do_not_ship_in_one_line_everywhere(released_copy):
    folder = released_copy.folder
    _record_failures(folder, devices={"ssh://pi@[fd00::5]:2222": "no route to host"})
    verdicts = {v.device: v for v in load_view(folder).verdicts()}
    pi = verdicts["ssh://pi@[fd00::5]:2222"]
    assert not pi.ship and "could not be used (no route to host)" in pi.headline() and pi.reasons() == []
    assert verdicts["local"].ship
    assert CliRunner().invoke(main, ["report", str(folder)]).exit_code == 0
    card = (folder / "README.md").read_text()
    assert card.index("**DO NOT SHIP** ssh://pi@[fd00::5]:2222") < card.index("## Artifacts")
    assert "<strong>DO NOT SHIP</strong> ssh://pi@[fd00::5]:2222" in (folder / "report.html").read_text()


def test_a_file_that_did_not_run_or_never_ran_on_a_device_does_not_ship_there(released_copy):
    import json

    folder = released_copy.folder
    int8 = f"{MODEL}_int8.onnx"
    _record_failures(folder, artifacts={"local": {int8: "no kernel for ConvInteger(10)"}})
    (local,) = load_view(folder).verdicts()
    assert not local.ship and list(local.fails) == [int8] and "no kernel" in local.reasons()[0]

    _record_failures(folder)
    path = folder / "manifest.json"  # as if int8 was made again and not yet measured here
    data = json.loads(path.read_text())
    del data["results"]["latency"]["local"][int8]
    path.write_text(json.dumps(data))
    (local,) = load_view(folder).verdicts()
    assert not local.ship and list(local.fails) == [int8] and "not run on this device" in local.reasons()[0]


def test_a_file_changed_after_the_release_is_never_reported_as_holding(released_copy):
    """`report` hashes every file again: one changed after it was measured (or gone) is marked on the card
    and the page and is DO NOT SHIP, though the manifest still says its parity passed."""
    folder = released_copy.folder
    fp32 = folder / f"{MODEL}_fp32.tflite"
    fp32.write_bytes(fp32.read_bytes()[:-16] + bytes(16))  # same size, other bytes
    (folder / f"{MODEL}_fp16.tflite").unlink()
    assert CliRunner().invoke(main, ["report", str(folder)]).exit_code == 0
    (local,) = load_view(folder).verdicts()
    assert not local.ship
    assert "changed after it was made" in local.fails[fp32.name][0]
    assert "missing" in local.fails[f"{MODEL}_fp16.tflite"][0]
    card = (folder / "README.md").read_text()
    row = next(line for line in card.splitlines() if line.startswith(f"| {fp32.name}"))
    assert "FILE CHANGED" in row and "pass" not in row
    assert "FILE MISSING" in card and "FILE CHANGED" in (folder / "report.html").read_text()


def test_a_changed_calibration_method_makes_the_onnx_int8_file_again(released_copy):
    from dataclasses import replace

    manifest = Manifest.load(released_copy.folder)
    parent = next(a for a in manifest.artifacts if a.key == "onnx:fp32")
    from shufflekit.release import check_options

    def units(method: str) -> dict[str, str]:
        options = check_options(released_copy.options())
        options = replace(options, quantize=replace(options.quantize, calibration=method))
        ctx = Context(released_copy.folder, options, lambda *a: None, lambda o: None)
        return {unit.name: unit.fingerprint for unit, _, _ in _quant_units(ctx, parent)}

    minmax, entropy = units("minmax"), units("entropy")
    assert minmax["onnx:int8"] != entropy["onnx:int8"]
    assert minmax["onnx:dynamic"] == entropy["onnx:dynamic"]  # dynamic calibrates nothing
