"""release takes every stage's options under the stage commands' names, or from ``--config release.toml``:
each reaches ReleaseOptions (parsed as the command parses, no release run), and each is a stage input
(a changed one runs again the units it feeds, an unchanged one skips them)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from release_helpers import run_release

from shufflekit.cli import main
from shufflekit.cli.config_file import _options
from shufflekit.cli.devices_cmd import connect_from
from shufflekit.cli.output import command_params
from shufflekit.cli.release_cmd import RELEASE_SECTIONS, release_options
from shufflekit.release.options import DEFAULT_PROFILE, check_options
from shufflekit.runtimes import RuntimeOptions

MODEL = "shufflenet_v2_x0_5"
COMMAND = main.commands["release"]


def parsed(*argv: str):
    """The ReleaseOptions ``shufflekit release ARGV`` runs with."""
    params = command_params(COMMAND.make_context("release", [*argv]).params)
    return release_options(connect=connect_from(params), **params)


EVERY_STAGE = [
    *("--model", MODEL, "--out", "rel", "--data", "demo"),
    *("--layout", "nchw", "--no-optimize", "--parity-samples", "8"),  # export
    *("--precisions", "fp16,int8", "--formats", "onnx", "--target", "arm64", "--calib-samples", "64"),  # quantize
    *("--eval-samples", "50", "--max-drop", "2.5"),  # evaluate
    "--no-gpu-check",  # validate
    *("--device", "ssh://pi", "--provider", "xnnpack", "--allow-fallback", "--threads", "2"),  # profile
    *("--warmup", "3", "--seconds", "1.5", "--min-iters", "5", "--batch", "4", "--no-op-profile", "--no-parity"),
    *("--device-accuracy-samples", "40", "--connect-timeout", "20"),
]


def test_every_stage_option_reaches_the_release_options():
    options = parsed(*EVERY_STAGE)
    assert (options.layout, options.optimize, options.reference_samples) == ("nchw", False, 8)
    q = options.quantize
    assert (q.precisions, q.formats, q.target, options.calib_samples) == (("fp16,int8",), ("onnx",), "arm64", 64)
    assert (options.eval_limit, options.max_drop, options.gpu_check) == (50, 2.5, False)
    assert options.devices == ("ssh://pi",) and options.connect.connect_timeout == 20
    assert options.runtime == RuntimeOptions(provider="xnnpack", threads=2, allow_fallback=True)
    assert options.profile == replace(
        DEFAULT_PROFILE, warmup=3, seconds=1.5, min_iters=5, batch=4, op_profile=False, parity=False
    )
    assert options.device_accuracy_samples == 40
    checked = check_options(options)  # the library takes them as given
    assert checked.layout == "NCHW" and checked.quantize.precisions == ("fp16", "int8")


def test_the_defaults_are_the_release_defaults():
    options = parsed("--model", MODEL, "--out", "rel")
    assert options.profile == DEFAULT_PROFILE and options.runtime == RuntimeOptions()
    assert (options.layout, options.reference_samples, options.gpu_check) == ("nhwc", 16, True)
    counted = parsed("--model", MODEL, "--out", "rel", "--iters", "20").profile
    assert (counted.iters, counted.seconds, counted.min_iters) == (20, None, None)  # a count, no time budget


def test_the_old_name_of_an_option_still_works_and_gives_the_same_options():
    assert parsed("--model", MODEL, "--out", "r", "--limit", "5") == parsed(
        "--model", MODEL, "--out", "r", "--eval-samples", "5"
    )
    assert "--limit" not in CliRunner().invoke(main, ["release", "-h"]).output  # one name in the help


@pytest.mark.parametrize(
    "args, message",
    [
        (["--iters", "5", "--seconds", "1"], "--iters and --seconds both given"),
        (["--iters", "5", "--min-iters", "3"], "--min-iters goes with --seconds"),
        (["--provider", "cuda"], "--provider cuda: TFLite has no provider 'cuda'"),
        (["--provider", "cpu,xnnpack"], "TFLite takes one delegate"),
        (["--limit", "5", "--eval-samples", "6"], "--eval-samples and --limit are one option"),
    ],
)
def test_options_that_cannot_go_together_are_one_line_before_any_work(tmp_path, args, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["release", "--model", MODEL, "--out", str(out), *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not out.exists()


# -- --config release.toml ---------------------------------------------------------------------------------
CONFIG = """
model = "shufflenet_v2_x0_5"
out = "rel"
data = "demo"

[export]
layout = "nchw"
optimize = false
parity_samples = 8

[quantize]
precisions = ["fp16", "int8"]
formats = "onnx"
target = "arm64"
calib-samples = 64

[evaluate]
eval-samples = 50
max-drop = 2.5

[validate]
gpu-check = false

[profile]
device = "ssh://pi"
provider = "xnnpack"
allow-fallback = true
threads = 2
warmup = 3
seconds = 1.5
min-iters = 5
batch = 4
op-profile = false
parity = false
device-accuracy-samples = 40
connect-timeout = 20
"""


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "release.toml").write_text(text)
    return folder / "release.toml"


def test_a_config_file_gives_the_options_its_flags_give(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _write(tmp_path, CONFIG)
    from_file = parsed("--config", str(config))
    from_flags = parsed(*EVERY_STAGE)
    assert from_file == replace(
        from_flags,
        out=tmp_path / "rel",  # relative to the file's folder
        quantize=replace(from_flags.quantize, precisions=("fp16", "int8")),  # a list: repeated
    )


def test_a_flag_overrides_the_file_and_paths_are_relative_to_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _write(tmp_path / "conf", 'checkpoint = "model.pt"\ndata = "images"\n[profile]\nthreads = 2\n')
    options = parsed("--config", str(config), "--threads", "4", "--model", MODEL, "--out", "o")
    assert options.runtime.threads == 4 and options.out == Path("o")
    assert options.checkpoint == tmp_path / "conf" / "model.pt" and options.data == str(tmp_path / "conf" / "images")
    assert parsed("--config", str(config), "--model", MODEL, "--out", "o").runtime.threads == 2


def test_every_section_key_is_a_release_option():
    names = set(_options(COMMAND))
    for section, keys in RELEASE_SECTIONS.items():
        assert set(keys) <= names, (section, set(keys) - names)
    stage_options = names - {"model", "checkpoint", "out", "demo", "input-size", "num-classes"}
    assert stage_options <= {key for keys in RELEASE_SECTIONS.values() for key in keys}  # each has a section


# -- each option is a stage input ----------------------------------------------------------------------------
def test_profile_units_follow_the_run_and_timing_options():
    from shufflekit.release.options import ReleaseOptions
    from shufflekit.release.profile import settings_inputs

    base = ReleaseOptions(out=Path("r"), model=MODEL)
    changed = [
        replace(base, runtime=RuntimeOptions(threads=2)),
        replace(base, runtime=RuntimeOptions(provider="xnnpack")),
        replace(base, runtime=RuntimeOptions(allow_fallback=True)),
        replace(base, profile=replace(DEFAULT_PROFILE, batch=4)),
        replace(base, profile=replace(DEFAULT_PROFILE, seconds=1.0)),
        replace(base, profile=replace(DEFAULT_PROFILE, parity=False)),
    ]
    inputs = [settings_inputs(o) for o in changed]
    assert all(i != settings_inputs(base) for i in inputs)
    assert len({str(sorted(i.items())) for i in inputs}) == len(changed)
    assert settings_inputs(replace(base, layout="NCHW", gpu_check=False)) == settings_inputs(base)


def test_export_and_tflite_units_follow_the_layout_and_the_reference(released):
    from shufflekit.artifacts import Manifest
    from shufflekit.release.driver import Context
    from shufflekit.release.export import _export_unit
    from shufflekit.release.quantize import _quant_units

    parent = next(a for a in Manifest.load(released.folder).artifacts if a.key == "onnx:fp32")

    def units(**changes):
        ctx = Context(released.folder, check_options(released.options(**changes)), lambda *a: None, lambda o: None)
        quantized = {unit.name: unit.fingerprint for unit, _, _ in _quant_units(ctx, parent)}
        return _export_unit(ctx, released.checkpoint)[0].fingerprint, quantized

    export, quantized = units()
    assert units() == (export, quantized)  # unchanged: the same fingerprints, so skipped
    nchw_export, nchw = units(layout="NCHW")
    assert nchw_export != export
    assert {n for n in quantized if nchw[n] != quantized[n]} == {n for n in quantized if n.startswith("tflite")}
    assert units(reference_samples=8)[0] != export


def test_a_rerun_with_other_threads_measures_again_and_keeps_the_rest(released_copy):
    report, outcomes, error = run_release(released_copy.options(runtime=RuntimeOptions(threads=1)))
    assert error is None and report.ok
    ran = {key for key, status in outcomes if status == "ran"}
    assert {key.split(" ")[0] for key in ran} == {"profile", "report"}
    assert len([key for key in ran if key.startswith("profile")]) == 8  # every file, measured anew
