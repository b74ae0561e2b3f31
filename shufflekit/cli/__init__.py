"""Command-line interface. Each command lives in its own module and stays a few lines around one
library call; importing a module registers its commands on ``main``."""

from . import (  # noqa: F401  (registers commands)
    board_cmd,
    devices_cmd,
    evaluate_cmd,
    export_cmd,
    guidelines_cmd,
    models_cmd,
    predict_cmd,
    profile_cmd,
    quantize_cmd,
    release_cmd,
    report_cmd,
    sweep_cmd,
    train_cmd,
    validate_cmd,
)
from .app import main

__all__ = ["main"]
