"""Options that changed name: the old names stay working, hidden from --help, and a message about a
value names the option as the user typed it (``--limit must be ...`` for ``--limit 0``)."""

from __future__ import annotations

from typing import Any

import click

from ..errors import UsageError

_TYPED = "shufflekit.typed_as"  # ctx.meta key: {parameter name: the old name it was given under}


class Renamed(click.Option):
    """An option whose names after the first are old ones: each parses into the same value, and --help
    shows the first. Not for flags (their ``--x/--no-x`` pairs have no old names here)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert not self.is_flag and not self.secondary_opts, "Renamed is for options that take a value"

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(self.opts[1:])

    def _dest(self, alias: str) -> str:
        return f"{self.name}\0{alias}"

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        # each old name gets a destination of its own, so the value knows the name it came under
        opts, name = self.opts, self.name
        try:
            self.opts = opts[:1]
            super().add_to_parser(parser, ctx)
            for alias in opts[1:]:
                self.opts, self.name = [alias], self._dest(alias)
                super().add_to_parser(parser, ctx)
        finally:
            self.opts, self.name = opts, name

    def consume_value(self, ctx: click.Context, opts: Any) -> tuple[Any, Any]:
        given = [alias for alias in self.aliases if self._dest(alias) in opts]
        if given:
            assert self.name is not None
            values = [opts[self._dest(alias)] for alias in given]
            if self.name in opts:
                values.insert(0, opts[self.name])
            if len(values) > 1 and not self.multiple:
                raise UsageError(
                    f"{' and '.join([self.opts[0], *given])} are one option ({', '.join(given)}: its old name)",
                    hint=f"give {self.opts[0]} once",
                )
            ctx.meta.setdefault(_TYPED, {})[self.name] = given[0] if self.name not in opts else self.opts[0]
            opts = {**opts, self.name: [v for part in values for v in part] if self.multiple else values[0]}
        return super().consume_value(ctx, opts)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        opts = self.opts
        self.opts = opts[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = opts


def option_name(param: click.Parameter | None, ctx: click.Context | None, fallback: str = "the value") -> str:
    """The name to put in a message about ``param``'s value: the one it was typed under."""
    if param is None or not param.opts:
        return fallback
    typed = ctx.meta.get(_TYPED, {}).get(param.name) if ctx is not None else None
    return typed or param.opts[0]


def aliases_of(command: click.Command) -> dict[str, str]:
    """old option name -> the name that replaced it, for every ``Renamed`` option of ``command``."""
    return {old: p.opts[0] for p in command.params if isinstance(p, Renamed) for old in p.aliases}
