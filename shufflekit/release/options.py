"""What a release is asked to make (``ReleaseOptions``), checked before any work (``check_options``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, DataError, UsageError
from ..metadata import InputSize, check_input_size
from ..runtimes.base import RuntimeOptions
from ..runtimes.profile import ProfileSettings

# A time budget per file with a floor of runs (a slow file still gets 30 samples), and an op profile of
# 10 runs: per-operator shares settle within a few runs, and 100 profiled runs were most of the stage.
DEFAULT_PROFILE = ProfileSettings(
    warmup=10, seconds=0.3, min_iters=30, op_profile=True, op_profile_runs=10, keep_times=True
)
DEFAULT_RUNTIME = RuntimeOptions()  # each runtime's CPU kernels (TFLite: XNNPACK), its own thread count
DEMO_MODEL = "shufflenet_v2_x0_5"
DEVICE_ACCURACY_SAMPLES = 100  # per device: enough to see a kernel that loses points, quick when emulated
MAX_RECIPE_ROUNDS = 4  # quantize..profile again while a device's kernels fail a recipe (the ladder is short)
DEMO_EPOCHS = 8  # about 94 % validation top-1 on the digits; the release's other stages need the rest of 5 minutes
REFERENCE_SAMPLES = 16  # reference inputs the export stores; parity here and on every device is judged on them
RELEASE_FORMATS = ("onnx", "tflite")  # the fp32 file of each is always made, and profiled


@dataclass(frozen=True)
class ReleaseOptions:
    out: Path
    model: str | None = None
    checkpoint: Path | None = None
    data: str | None = None  # an image folder, a .npy/.npz file, or "demo"
    devices: tuple[str, ...] = ()
    input_size: InputSize | None = None  # an int is a square
    num_classes: int | None = None
    connect: Any = None  # remote.ConnectOptions
    demo: bool = False
    demo_epochs: int = DEMO_EPOCHS
    calib_samples: int | None = None  # None: each format's default (ONNX 256, TFLite 128)
    eval_limit: int | None = None
    max_drop: float = 1.0
    profile: ProfileSettings = DEFAULT_PROFILE
    runtime: RuntimeOptions = DEFAULT_RUNTIME  # how the profile stage runs each file: provider, threads
    native: Any = None  # runtimes.native.NativeTools: --benchmark-binary, used on the remote devices
    quantize: Any = None  # export.quantize.QuantizeOptions: precisions, formats and recipe settings
    device_accuracy_samples: int = DEVICE_ACCURACY_SAMPLES  # labelled images each device classifies (--data)
    optimize: bool = True  # exact graph rewrites per format in the exported files (--no-optimize: plain graph)
    layout: str = "NHWC"  # the input layout of every TFLite file (ONNX is always NCHW)
    reference_samples: int = REFERENCE_SAMPLES  # --parity-samples
    gpu_check: bool = True  # TensorFlow's GPU-delegate report of each TFLite file (the validate stage)


LOCAL = "local"


def check_options(options: ReleaseOptions) -> ReleaseOptions:
    """Refuse bad input before any work, one line each."""
    from ..models import model_spec

    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is a file", hint="pass a folder path for --out (it is created)")
    if options.demo and options.checkpoint is not None:
        raise UsageError("--demo trains its own checkpoint; --checkpoint cannot go with it", hint="drop one of them")
    if not options.demo and options.model is None and options.checkpoint is None:
        raise UsageError("no model to release", hint="pass --model NAME (see `shufflekit models`), or --demo")
    if options.model is not None:
        model_spec(options.model)
    if options.checkpoint is not None and not Path(options.checkpoint).is_file():
        raise CheckpointError(f"checkpoint {options.checkpoint} does not exist", hint="check the path")
    if options.input_size is not None:
        try:
            options = replace(options, input_size=check_input_size(options.input_size))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if options.num_classes is not None and options.num_classes < 1:
        raise UsageError(f"--num-classes must be at least 1, got {options.num_classes}")
    if options.data is not None and options.data != "demo" and not Path(options.data).exists():
        raise DataError(
            f"data {options.data} does not exist",
            hint="pass an image folder (one subfolder per class), a .npy/.npz file, or demo",
        )
    if options.eval_limit is not None and options.eval_limit < 1:
        raise UsageError(f"--eval-samples must be at least 1, got {options.eval_limit}")
    if options.reference_samples < 1:
        raise UsageError(f"--parity-samples must be at least 1, got {options.reference_samples}")
    layout = options.layout.upper()
    if layout not in ("NHWC", "NCHW"):
        raise UsageError(f"unknown layout {options.layout!r}", hint="use nhwc (what apps feed) or nchw")
    options = replace(options, layout=layout)
    check_runtime(options.runtime)
    if options.max_drop < 0:
        raise UsageError(f"--max-drop must be 0 or more points, got {options.max_drop}")
    if options.calib_samples is not None and options.calib_samples < 1:
        raise UsageError(f"calibration needs at least one image, got {options.calib_samples}")
    if options.device_accuracy_samples < 1:
        raise UsageError(f"--device-accuracy-samples must be at least 1, got {options.device_accuracy_samples}")
    from ..export.quantize import QuantizeOptions

    quantize = (options.quantize or QuantizeOptions(precisions=("fp16", "dynamic", "int8"))).checked()
    if quantize.io_dtype != "float32" and (
        "int8" not in quantize.precisions or "tflite" not in (quantize.formats or ("onnx", "tflite"))
    ):
        raise UsageError(
            f"--io-dtype {quantize.io_dtype} applies to TFLite int8 only",
            hint="keep int8 and tflite in --precisions/--formats, or leave --io-dtype out",
        )
    options = replace(options, quantize=quantize)
    device_keys(options.devices, options.connect)  # a malformed address fails here, before any work
    if options.demo:
        options = replace(options, model=options.model or DEMO_MODEL, data=options.data or "demo")
    return options


def check_runtime(runtime: RuntimeOptions) -> None:
    """A release profiles the files of every format, each in its own runtime: the provider must be one
    each of them knows (a provider it knows but a device lacks is that device's error, or its fallback)."""
    from ..device import backends

    if runtime.runtime is not None:
        raise UsageError(
            "a release profiles every file in its own runtime; runtime cannot be chosen",
            hint="leave runtime out (shufflekit profile --runtime measures one runtime's files)",
        )
    runtimes = [b for b in (backends.for_format(f) for f in RELEASE_FORMATS) if b is not None]
    for backend in runtimes:
        bad = backend.unknown_providers(runtime.providers)
        several = backend.max_providers is not None and len(runtime.providers) > backend.max_providers
        if bad or several:
            what = f"has no provider {bad[0]!r}" if bad else f"takes one delegate, not {runtime.provider!r}"
            common = sorted(set.intersection(*(set(b.providers) for b in runtimes)))
            raise UsageError(
                f"--provider {runtime.provider}: {backend.label} {what}, and a release profiles every format",
                hint=f"pass one provider every runtime knows ({', '.join(common)}), or profile one format's "
                "files with `shufflekit profile DIR FORMAT --provider ...`",
            )


def device_keys(devices: Sequence[str], connect: Any) -> dict[str, str]:
    """address as given -> the key its results are filed under, every key once. This computer is always
    measured; a ``local?python=...`` address says how (its results are filed under local too)."""
    from ..runtimes.fanout import device_keys as keys_of

    keys = keys_of(devices, getattr(connect, "ssh_config", None))
    if LOCAL not in keys.values():
        keys = {LOCAL: LOCAL, **keys}
    return keys
