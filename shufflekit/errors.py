"""One exception hierarchy. Every error carries a one-line message that says what was wrong and what
to do; the CLI prints it and exits with the error's code, never a traceback."""

from __future__ import annotations


class ShufflekitError(Exception):
    """Base class. ``exit_code`` 2 means bad input or environment; 1 means a check ran and failed."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        return " ".join(text.split())


class UsageError(ShufflekitError):
    """An option or argument the program cannot act on (unknown model, bad size, bad path)."""


class CheckpointError(ShufflekitError):
    """A checkpoint that is missing, truncated, of another variant, or carries pickled code."""


class ManifestError(ShufflekitError):
    """A release folder whose manifest.json is missing or not one shufflekit can read."""


class IntegrityError(ShufflekitError):
    """An artifact whose bytes no longer match the sha256 recorded when it was made."""


class ExportError(ShufflekitError):
    """A conversion (torch -> ONNX, ONNX -> TFLite, quantization) that failed."""


class DataError(ShufflekitError):
    """A data set that is empty, unreadable, or does not fit the model."""


class BackendMissingError(ShufflekitError):
    """An optional backend (onnxruntime, LiteRT, TensorFlow...) that is not installed."""


class ProviderUnavailableError(ShufflekitError):
    """An execution provider or delegate this runtime build does not have."""


class DeviceError(ShufflekitError):
    """A target device that cannot be reached, logged into, or used."""


class CheckFailed(ShufflekitError):
    """A gate ran and did not pass (parity, accuracy drop). The report says which and by how much."""

    exit_code = 1
