"""The options several commands share, declared once so that one idea has one name everywhere (the
README's table under "Options"). A name that changed stays working as a hidden alias (``renamed.Renamed``):
an old script keeps running, and --help shows the one name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .numbers import BATCH, ITERS, LIMIT, SAMPLES, SECONDS, THREADS, WARMUP
from .renamed import Renamed

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def stack(*decorators: Decorator) -> Decorator:
    """Several click options as one decorator, listed in --help in the order given."""

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


# -- images and counts of images ------------------------------------------------------------------------------
DATA_METAVAR = "DIR|FILE|demo"


# ``old``: the names a command took before (hidden, still parsed); a command that never had one takes none
def eval_samples_option(help: str, *, old: tuple[str, ...] = ()) -> Decorator:
    return click.option("--eval-samples", *old, "eval_samples", cls=Renamed, type=LIMIT, help=help)


def device_accuracy_samples_option(help: str, default: int = 100, *, old: tuple[str, ...] = ()) -> Decorator:
    return click.option(
        "--device-accuracy-samples",
        *old,
        "device_accuracy_samples",
        cls=Renamed,
        type=SAMPLES,
        default=default,
        show_default=True,
        help=help,
    )


def parity_samples_option(help: str, default: int | None = None, *, old: tuple[str, ...] = ()) -> Decorator:
    return click.option(
        "--parity-samples",
        *old,
        "parity_samples",
        cls=Renamed,
        type=SAMPLES,
        default=default,
        show_default=default is not None,
        help=help,
    )


def precisions_option(*, default: str | None, help: str, old: tuple[str, ...] = ()) -> Decorator:
    """Repeatable and comma-separated alike (``--precisions fp16,int8`` or ``--precisions fp16 --precisions
    int8``); the command receives a tuple of what was given."""
    return click.option(
        "--precisions",
        *old,
        "precisions",
        cls=Renamed,
        multiple=True,
        required=default is None,
        default=(default,) if default is not None else None,
        show_default=default is not None,
        metavar="fp16,dynamic,int8",
        help=help,
    )


LAYOUT_OPTION = click.option(
    "--layout",
    type=click.Choice(["nhwc", "nchw"], case_sensitive=False),
    default="nhwc",
    show_default=True,
    help="TFLite input layout (ONNX is always NCHW).",
)


OPTIMIZE_OPTION = click.option(
    "--optimize/--no-optimize",
    default=True,
    show_default=True,
    help="Exact graph rewrites per format, faster than a plain export (recorded as the files' rewrites); "
    "--no-optimize keeps the plain graph.",
)


# -- how a file is run and timed (profile, release) -------------------------------------------------------------
PROVIDER_OPTIONS = stack(
    click.option(
        "--provider",
        default="cpu",
        show_default=True,
        help="ONNX Runtime provider (cpu, cuda, tensorrt, xnnpack, acl, coreml, nnapi, qnn; several "
        "comma-separated by priority) or TFLite delegate (cpu, xnnpack, builtin, gpu, nnapi).",
    ),
    click.option("--allow-fallback", is_flag=True, help="Run on what exists when the provider is missing (recorded)."),
    click.option("--threads", type=THREADS, help="Intra-op / interpreter threads (default: the runtime's)."),
)


def timing_options(*, iters_help: str, seconds_help: str, min_iters_help: str, op_profile: bool) -> Decorator:
    """--warmup, --iters, --seconds, --min-iters, --batch and --op-profile/--no-op-profile (default
    ``op_profile``)."""
    return stack(
        click.option("--warmup", type=WARMUP, default=10, show_default=True, help="Untimed runs first."),
        click.option("--iters", type=ITERS, help=iters_help),
        click.option("--seconds", type=SECONDS, help=seconds_help),
        click.option("--min-iters", type=ITERS, help=min_iters_help),
        click.option(
            "--batch",
            type=BATCH,
            default=1,
            show_default=True,
            help="Images per timed iteration (a file fixed at batch 1 is run once per image).",
        ),
        click.option(
            "--op-profile/--no-op-profile",
            default=op_profile,
            show_default=True,
            help="Time per operator and per operator category.",
        ),
    )


def parity_option(help: str) -> Decorator:
    return click.option("--parity/--no-parity", default=True, show_default=True, help=help)


GPU_CHECK_OPTION = click.option(
    "--gpu-check/--no-gpu-check",
    default=True,
    show_default=True,
    help="Check each TFLite file with the TFLite model analyzer: which ops a mobile GPU delegate would "
    "take and which fall back to the CPU (recorded in the manifest; imports TensorFlow, a few seconds).",
)
