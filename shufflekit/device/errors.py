"""The device package's one failure type: a RunnerError names its ``kind`` so the host can turn it into
the matching shufflekit error (``runtimes.base.translate``), on this computer or from a device."""

from __future__ import annotations

from typing import Any, Dict, Iterable

# The kinds a host knows how to map; anything else is reported as a device failure.
KINDS = ("backend_missing", "provider_unavailable", "bad_input", "load_failed", "no_kernel", "run_failed", "internal")


class RunnerError(Exception):
    """A failure the caller can act on. ``kind`` is one of KINDS. Extra details (``available``,
    ``package``, ``extra``, ``missing``) ride along."""

    def __init__(self, kind: str, message: str, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint
        self.details = details

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {"kind": self.kind, "message": self.message, "hint": self.hint}
        data.update(self.details)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> RunnerError:
        """The inverse of ``to_dict``: what a job printed, as the error it was."""
        details = {k: v for k, v in data.items() if k not in ("kind", "message", "hint")}
        return cls(
            str(data.get("kind") or "internal"),
            str(data.get("message") or "the runner failed without a message"),
            data.get("hint"),
            **details,
        )


def first_line(exc: BaseException) -> str:
    """An exception's first line, whitespace collapsed (runtimes raise multi-line C++ messages)."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def shape_text(shape: Iterable[Any]) -> str:
    return "[%s]" % ", ".join("?" if d is None else str(d) for d in shape)


def shape_hint(inputs: Iterable[Any]) -> str:
    return "the model takes " + ", ".join("%s %s" % (i.name, shape_text(i.shape)) for i in inputs)
