"""Bad input to the options release took from the stage commands, to ``release --config FILE.toml``, to the
artifact selectors of validate and to quantize's --data: one line each, before any work."""

from __future__ import annotations

from .harness import SMALL, Case, Workspace

_OUT = ["--out", "out"]


def _config(text: str, name: str = "release.toml"):
    def setup(ws: Workspace) -> None:
        (ws.root / name).write_text(text)

    return setup


def _config_case(id: str, text: str, error: str) -> Case:
    return Case(f"release-config-{id}", lambda ws: ["release", "--config", "release.toml"], error, setup=_config(text))


def _empty_release(ws: Workspace) -> None:
    """A valid manifest of SMALL at 64x64 with no artifacts (cheap: nothing to load)."""
    from shufflekit.artifacts import Manifest
    from shufflekit.metadata import ModelMeta, Preprocessing

    meta = ModelMeta(model=SMALL, num_classes=10, preprocessing=Preprocessing.for_size(64))
    Manifest.new(ws.root / "rel", meta).save()


_MODEL = f'model = "{SMALL}"\nout = "out"\n'

CASES: list[Case] = [
    # -- the stage options release takes ----------------------------------------------------------------------
    Case("release-threads-0", lambda ws: ["release", "--model", SMALL, "--threads", "0", *_OUT], r"--threads must be"),
    Case("release-batch-0", lambda ws: ["release", "--model", SMALL, "--batch", "0", *_OUT], r"--batch must be"),
    Case("release-seconds-inf", lambda ws: ["release", "--model", SMALL, "--seconds", "inf", *_OUT], r"--seconds"),
    Case(
        "release-iters-and-seconds",
        lambda ws: ["release", "--model", SMALL, "--iters", "5", "--seconds", "1", *_OUT],
        r"--iters and --seconds both given",
    ),
    Case(
        "release-provider-only-onnx-knows",
        lambda ws: ["release", "--model", SMALL, "--provider", "cuda", *_OUT],
        r"--provider cuda: TFLite has no provider 'cuda'.*cpu, nnapi, xnnpack",
    ),
    Case(
        "release-layout-unknown",
        lambda ws: ["release", "--model", SMALL, "--layout", "nwhc", *_OUT],
        r"Invalid value for '--layout'",
    ),
    Case(
        "release-parity-samples-0",
        lambda ws: ["release", "--model", SMALL, "--parity-samples", "0", *_OUT],
        r"--parity-samples must be",
    ),
    Case(
        "release-old-and-new-name-together",
        lambda ws: ["release", "--model", SMALL, "--limit", "5", "--eval-samples", "6", *_OUT],
        r"--eval-samples and --limit are one option",
    ),
    # -- --config release.toml -----------------------------------------------------------------------------------
    Case(
        "release-config-missing",
        lambda ws: ["release", "--config", "gone.toml"],
        r"config file gone\.toml does not exist",
    ),
    _config_case(
        "unknown-key", _MODEL + "thread = 2\n", r"unknown key 'thread' in release\.toml; did you mean 'threads'"
    ),
    _config_case("old-name", _MODEL + "limit = 5\n", r"'limit' is the old name of 'eval-samples'"),
    _config_case("negated-flag", _MODEL + "no-parity = true\n", r"unknown key 'no-parity'.*write parity = false"),
    _config_case("wrong-section", _MODEL + "[quantize]\nthreads = 2\n", r"'threads' is not a quantize option"),
    _config_case("unknown-section", _MODEL + "[deploy]\nthreads = 2\n", r"unknown section \[deploy\]"),
    _config_case(
        "wrong-type", _MODEL + 'threads = "two"\n', r"--threads must be an integer from 1 to 1,024, not 'two' \(in"
    ),
    _config_case("bad-choice", _MODEL + 'calibration = "max"\n', r"Invalid value for '--calibration': 'max'"),
    _config_case(
        "flag-not-bool", _MODEL + "op-profile = 3\n", r"op-profile in release\.toml is 3; a flag is true or false"
    ),
    _config_case("not-toml", _MODEL + "threads = \n", r"release\.toml is not valid TOML"),
    _config_case(
        "given-twice", _MODEL + "[quantize]\nmax-drop = 1\n[profile]\nmax-drop = 2\n", r"max-drop is given twice"
    ),
    # -- validate's artifact selectors, quantize's --data --------------------------------------------------------
    Case(
        "validate-unknown-selector",
        lambda ws: ["validate", "rel", "coreml"],
        r"no artifact matches 'coreml' in rel; use a file name, a format or format:precision",
        setup=_empty_release,
    ),
    Case(
        "quantize-data-used-for-nothing",
        lambda ws: ["quantize", "rel", "--precisions", "fp16", "--data", "demo"],
        r"--data calibrates int8 and gates ONNX int8/dynamic files, and neither is made here",
        setup=_empty_release,
    ),
]
