"""``--config FILE.toml``: a command's options from a TOML file, under the option names (``threads = 2``,
``no-op-profile`` as ``op-profile = false``; ``-`` or ``_``), at the top or in a section per stage
(``[profile]``). Options on the command line win over the file: the file only sets click's
``default_map``, which click reads for an option the command line left out. Relative paths in the file
are relative to the file's folder. Every key is checked before any work, one line each: an unknown key
(with the closest name), a key in the wrong section, and a value of the wrong type (click's own message
for the option, with the file named)."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Collection, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import click

from ..errors import ShufflekitError, UsageError
from .renamed import aliases_of

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (pyproject: tomli there)
    import tomli as tomllib

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def config_option(
    *,
    sections: Mapping[str, Collection[str]],
    path_options: Collection[str] = (),
    keep: Collection[str] = ("demo",),
    help: str,
) -> Decorator:
    """The ``--config`` option of a command. ``sections``: stage -> the option names that may be written
    under ``[stage]``. ``path_options``: text options holding a path (besides every ``click.Path`` option),
    resolved against the file's folder unless the value is one of ``keep`` (``demo``)."""
    return click.option(
        "--config",
        type=click.Path(path_type=Path),
        metavar="FILE.toml",
        is_eager=True,  # read before every other option, so that they find the file's values as defaults
        expose_value=False,
        callback=partial(_load, sections=sections, path_options=path_options, keep=keep),
        help=help,
    )


def _load(
    ctx: click.Context,
    param: click.Parameter,
    value: Path | None,
    *,
    sections: Mapping[str, Collection[str]],
    path_options: Collection[str],
    keep: Collection[str],
) -> None:
    if value is None or ctx.resilient_parsing:
        return
    defaults = read_config(value, ctx, sections=sections, path_options=path_options, keep=keep)
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


def read_config(
    path: Path,
    ctx: click.Context,
    *,
    sections: Mapping[str, Collection[str]],
    path_options: Collection[str] = (),
    keep: Collection[str] = ("demo",),
) -> dict[str, Any]:
    """The file's values by parameter name (click's ``default_map``), each checked as its option checks a
    value given on the command line."""
    table = _parse(path)
    options = _options(ctx.command)
    found: dict[str, tuple[Any, str]] = {}  # parameter name -> (value, where it was written)
    for key, value in table.items():
        if isinstance(value, dict):
            if key not in sections:
                raise UsageError(
                    f"unknown section [{key}] in {path}",
                    hint=f"sections: {', '.join(f'[{s}]' for s in sections)}, or write the keys at the top",
                )
            for inner, item in value.items():
                _take(found, path, ctx, options, inner, item, key, sections, path_options, keep)
        else:
            _take(found, path, ctx, options, key, value, None, sections, path_options, keep)
    return {name: value for name, (value, _) in found.items()}


def _parse(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise UsageError(f"config file {path} does not exist", hint="check the path given to --config")
    if not path.is_file():
        raise UsageError(f"config file {path} is not a file", hint="pass a .toml file to --config")
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}", hint="see https://toml.io") from None
    except UnicodeDecodeError:
        raise UsageError(f"config file {path} is not UTF-8 text", hint="save it as UTF-8 TOML") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}", hint="check its permissions") from None


def _options(command: click.Command) -> dict[str, click.Option]:
    """Option name without dashes -> option, for the options a file may set (not --config or --help, nor
    --json, -q and -v: how this run prints is the command line's business)."""
    from .output import OUTPUT_PARAMS

    return {
        p.opts[0].lstrip("-"): p
        for p in command.params
        if isinstance(p, click.Option)
        and p.expose_value
        and not p.hidden
        and p.opts[0].startswith("--")
        and p.name not in OUTPUT_PARAMS
    }


def _take(
    found: dict[str, tuple[Any, str]],
    path: Path,
    ctx: click.Context,
    options: Mapping[str, click.Option],
    key: str,
    value: Any,
    section: str | None,
    sections: Mapping[str, Collection[str]],
    path_options: Collection[str],
    keep: Collection[str],
) -> None:
    name = key.replace("_", "-")
    where = f"[{section}] {name}" if section else name
    option = options.get(name)
    if option is None:
        raise UsageError(f"unknown key {key!r} in {path}", hint=_suggest(name, ctx.command, options))
    if section is not None and name not in sections[section]:
        homes = [f"[{s}]" for s, names in sections.items() if name in names]
        raise UsageError(
            f"{key!r} is not a {section} option (in {path})",
            hint=f"write it under {' or '.join(homes)} or at the top" if homes else "write it at the top",
        )
    if isinstance(value, dict):
        raise UsageError(f"{where} in {path} is a table; it takes a value", hint=f"write {name} = VALUE")
    if option.is_flag and option.is_bool_flag and not isinstance(value, bool):  # click's BOOL takes 3 as True
        raise UsageError(
            f"{where} in {path} is {value!r}; a flag is true or false", hint=f"write {name} = true or {name} = false"
        )
    value = _shaped(option, value)
    if option.name in path_options or isinstance(option.type, click.Path):
        value = _resolved(value, path.parent, keep)
    try:
        option.type_cast_value(ctx, value)
    except click.BadParameter as exc:
        raise UsageError(f"{exc.format_message().rstrip('.')} (in {path})") from None
    except ShufflekitError as exc:
        raise UsageError(f"{exc.message} (in {path})", hint=exc.hint) from None
    assert option.name is not None
    earlier = found.get(option.name)
    if earlier is not None and earlier[0] != value:
        raise UsageError(
            f"{name} is given twice in {path} ({earlier[1]}, {where}) with different values", hint="keep one"
        )
    found[option.name] = (value, where)


def _suggest(name: str, command: click.Command, options: Mapping[str, click.Option]) -> str:
    renamed = {old.lstrip("-"): new.lstrip("-") for old, new in aliases_of(command).items()}
    if name in renamed:
        return f"{name!r} is the old name of {renamed[name]!r}: write {renamed[name]} ="
    negated = {s.lstrip("-"): o for o in options.values() for s in o.secondary_opts}
    if name in negated:
        return f"write {negated[name].opts[0].lstrip('-')} = false"
    close = difflib.get_close_matches(name, list(options), n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"the keys are the option names: {', '.join(sorted(options))}"


def _shaped(option: click.Option, value: Any) -> Any:
    """A TOML value in the shape click expects: a list for a repeatable option (one value or several), and
    a list given to a text option as its comma-separated form (``formats = ["onnx", "tflite"]``)."""
    if option.multiple:
        return tuple(value) if isinstance(value, list) else (value,)
    if isinstance(value, list) and isinstance(option.type, click.types.StringParamType):
        return ",".join(str(item) for item in value)
    return value


def _resolved(value: Any, base: Path, keep: Collection[str]) -> Any:
    if isinstance(value, tuple):
        return tuple(_resolved(item, base, keep) for item in value)
    if not isinstance(value, str) or value in keep or not value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)
