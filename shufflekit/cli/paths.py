"""Path parameters of the commands that write or read a folder: an empty value (``--out "$UNSET"``) is
refused in one line instead of meaning the current directory."""

from __future__ import annotations

from typing import Any

import click

from ..errors import UsageError


class NonEmptyPath(click.Path):
    """``click.Path`` that refuses '' and blanks (an unset shell variable): Path('') is the current
    directory, where a release would overwrite whatever lies there."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            label = _label(param)
            raise UsageError(f"{label} is an empty path (an unset shell variable?)", hint=f"pass a path for {label}")
        return super().convert(value, param, ctx)


def _label(param: click.Parameter | None) -> str:
    if param is None:
        return "the path"
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return (param.human_readable_name or "the path").upper()
