"""The record that travels between stages (Artifact) and the release folder's single source of truth
(manifest.json). Every command that reads a folder reads its manifest; nothing is guessed from names."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata as _importlib_metadata
from pathlib import Path
from typing import Any, TypeVar, overload

from . import __version__
from .errors import IntegrityError, ManifestError, UsageError
from .files import atomic_write_text, sha256_file
from .folder import ReleaseFolder, recorded_names
from .formats import format_names, get_precision, precision_names, precisions
from .metadata import ModelMeta
from .records import SCHEMA, SCHEMA_V1, SHA256_RE, SIZE_SCHEMA, DeviceFacts, Record, kinds, record_class, registered

MANIFEST_NAME = "manifest.json"
LAYOUTS = ("NCHW", "NHWC")
DTYPES = ("float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool")
R = TypeVar("R", bound=Record)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def tool_versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the named distributions (those not installed are left out)."""
    versions = {"shufflekit": __version__}
    for name in distributions:
        try:
            versions[name] = _importlib_metadata.version(name)
        except _importlib_metadata.PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class QuantParams:
    scale: float
    zero_point: int


@dataclass(frozen=True)
class TensorSpec:
    """One input or output. ``shape`` holds ints, or a string for a dynamic dimension ("batch")."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    layout: str | None = None  # NCHW / NHWC for image inputs, None for logits
    quantization: QuantParams | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "layout": self.layout,
        }
        if self.quantization is not None:
            data["quantization"] = {"scale": self.quantization.scale, "zero_point": self.quantization.zero_point}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "tensor") -> TensorSpec:
        """Strict: a shape of positive ints or dimension names, a known dtype and layout, a positive scale."""
        if not isinstance(data, Mapping):
            raise _bad(where, data, "an object")
        name = _need(data, "name", where)
        if not isinstance(name, str) or not name:
            raise _bad(f"{where}.name", name, "a non-empty string")
        shape = _need(data, "shape", where)
        if not isinstance(shape, list) or not shape:
            raise _bad(f"{where}.shape", shape, "a list of dimensions")
        for i, dim in enumerate(shape):
            if (isinstance(dim, str) and dim) or (type(dim) is int and dim > 0):
                continue
            raise _bad(f"{where}.shape[{i}]", dim, "a positive int or a dimension name")
        dtype = _need(data, "dtype", where)
        if dtype not in DTYPES:
            raise _bad(f"{where}.dtype", dtype, "one of " + ", ".join(DTYPES))
        layout = data.get("layout")
        if layout is not None and layout not in LAYOUTS:
            raise _bad(f"{where}.layout", layout, "NCHW, NHWC or null")
        quant = data.get("quantization")
        params = None
        if quant is not None:
            if not isinstance(quant, Mapping):
                raise _bad(f"{where}.quantization", quant, "an object with scale and zero_point")
            scale, zero = quant.get("scale"), quant.get("zero_point")
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
                raise _bad(f"{where}.quantization.scale", scale, "a finite number > 0")
            if type(zero) is not int:
                raise _bad(f"{where}.quantization.zero_point", zero, "an integer")
            params = QuantParams(float(scale), zero)
        return cls(name=name, shape=tuple(shape), dtype=dtype, layout=layout, quantization=params)


@dataclass(frozen=True)
class Artifact:
    """A model file in a release folder, with everything needed to run and trust it."""

    name: str  # file name inside the folder; unique there
    format: str
    precision: str
    sha256: str
    size_bytes: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    meta: ModelMeta
    parent_sha256: str | None = None
    tools: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        if self.format not in format_names():
            raise ValueError(f"unknown format {self.format!r}; known: {', '.join(format_names())}")
        if self.precision not in precision_names():
            raise ValueError(f"unknown precision {self.precision!r}; known: {', '.join(precision_names())}")
        if "/" in self.name or self.name.startswith("."):
            raise ValueError(f"artifact name {self.name!r} must be a plain file name")

    @property
    def key(self) -> str:
        """'format:precision', the key of the tolerance table and a handy selector."""
        return f"{self.format}:{self.precision}"

    @property
    def input(self) -> TensorSpec:
        return self.inputs[0]

    @classmethod
    def from_file(cls, path: Path, **fields: Any) -> Artifact:
        """Build the record for a finished file; hash and size are read from the bytes."""
        return cls(name=path.name, sha256=sha256_file(path), size_bytes=path.stat().st_size, **fields)

    def path_in(self, folder: str | Path) -> Path:
        return Path(folder) / self.name

    def verify(self, folder: str | Path) -> Path:
        """Return the file's path after checking it is the one recorded; refuse anything else: a name that
        resolves outside the folder (a symlink), another file than the one hashed. (Its tensors against the
        manifest's: ``export.tensorspecs.verified``, which the commands use.)"""
        path = confined_path(folder, self.name, field=f"artifacts[{self.name}].name")
        if not path.is_file():
            raise IntegrityError(
                f"artifact {self.name} is listed in the manifest but missing from {folder}",
                hint="re-run the command that made it",
            )
        if path.stat().st_size != self.size_bytes or sha256_file(path) != self.sha256:
            raise IntegrityError(
                f"artifact {self.name} was changed after it was made (sha256 mismatch)",
                hint="refusing to use it; re-export to get a trusted file",
            )
        return path

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format": self.format,
            "precision": self.precision,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "meta": self.meta.to_dict(),
            "parent_sha256": self.parent_sha256,
            "tools": dict(self.tools),
            "options": dict(self.options),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "artifact") -> Artifact:
        """Strict: every field typed, tensors checked, inputs consistent with the precision and the model's
        input size, so an edited manifest cannot claim what the file is not."""
        if not isinstance(data, Mapping):
            raise _bad(where, data, "an object")
        name = _need(data, "name", where)
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise _bad(f"{where}.name", name, "a plain file name")
        where = f"artifacts[{name}]"
        fmt, precision = _need(data, "format", where), _need(data, "precision", where)
        if fmt not in format_names():
            raise _bad(f"{where}.format", fmt, "one of " + ", ".join(format_names()))
        if precision not in precision_names():
            raise _bad(f"{where}.precision", precision, "one of " + ", ".join(precision_names()))
        sha = _need(data, "sha256", where)
        if not isinstance(sha, str) or not SHA256_RE.match(sha):
            raise _bad(f"{where}.sha256", sha, "a sha256 in hex")
        size = _need(data, "size_bytes", where)
        if type(size) is not int or size < 0:
            raise _bad(f"{where}.size_bytes", size, "a size in bytes")
        tensors = {}
        for part in ("inputs", "outputs"):
            items = _need(data, part, where)
            if not isinstance(items, list) or not items:
                raise _bad(f"{where}.{part}", items, "a non-empty list of tensors")
            tensors[part] = tuple(TensorSpec.from_dict(t, where=f"{where}.{part}[{i}]") for i, t in enumerate(items))
        try:
            meta = _check_finite(ModelMeta.from_dict(_need(data, "meta", where)), f"{where}.meta")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"field {where}.meta: {type(exc).__name__}: {exc}", hint=_HINT) from None
        parent = data.get("parent_sha256")
        if parent is not None and (not isinstance(parent, str) or not SHA256_RE.match(parent)):
            raise _bad(f"{where}.parent_sha256", parent, "a sha256 in hex or null")
        tools, options = data.get("tools") or {}, data.get("options") or {}
        if not isinstance(tools, Mapping) or not all(isinstance(v, str) for v in tools.values()):
            raise _bad(f"{where}.tools", tools, "an object of versions")
        if not isinstance(options, Mapping):
            raise _bad(f"{where}.options", options, "an object")
        created = data.get("created_at", "")
        if not isinstance(created, str):
            raise _bad(f"{where}.created_at", created, "a time stamp")
        _check_inputs(where, precision, tensors["inputs"])
        return cls(
            name=name,
            format=fmt,
            precision=precision,
            sha256=sha,
            size_bytes=size,
            inputs=tensors["inputs"],
            outputs=tensors["outputs"],
            meta=meta,
            parent_sha256=parent,
            tools=dict(tools),
            options=dict(options),
            created_at=created,
        )

    def with_(self, **changes: Any) -> Artifact:
        return replace(self, **changes)


_HINT = "re-export the folder"
MAX_MANIFEST_BYTES = 16 << 20  # a manifest shufflekit writes is a few hundred kB at most
MAX_DEPTH = 64  # the deepest a manifest shufflekit writes nests is under 10


def confined_path(folder: str | Path, name: Any, *, field: str) -> Path:
    """``folder / name`` with symlinks resolved, after checking it stays inside ``folder`` (resolved too):
    every file name a manifest holds goes through here before anything opens it. ``field`` names the
    manifest field in the one-line refusal."""
    root = Path(folder).resolve()
    if not isinstance(name, str) or not name or "\x00" in name:
        raise _bad(field, name, "a file name inside the folder")
    if any(len(part.encode("utf-8", "surrogateescape")) > _NAME_MAX for part in Path(name).parts):
        raise _bad(field, name, f"a file name of at most {_NAME_MAX} bytes per part")
    try:
        resolved = (root / name).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a name the OS refuses
        raise ManifestError(f"field {field}: {_shown(name)} cannot be resolved ({exc})", hint=_CONFINED_HINT) from None
    lexical = Path(os.path.normpath(root / name))
    if lexical == root or not lexical.is_relative_to(root):
        raise ManifestError(
            f"field {field}: {_shown(name)} is outside the folder {folder} (refusing to read it)", hint=_CONFINED_HINT
        )
    if resolved == root or not resolved.is_relative_to(root):
        raise ManifestError(
            f"field {field}: {_shown(name)} is a symlink that leads outside the folder {folder} (refusing to read it)",
            hint=_CONFINED_HINT,
        )
    return resolved


_CONFINED_HINT = "re-export the folder or fix manifest.json"
_NAME_MAX = 255  # bytes in one path component on every file system a release lands on (else ENAMETOOLONG)


_checked_texts: dict[str, None] = {}  # sha256 of manifest texts whose data passed check_manifest_data (oldest first)
_CHECKED_TEXTS_KEPT = 256


def _parse_manifest(path: Path) -> tuple[Any, str]:
    """json.loads of a manifest.json, where anything hostile (a huge file, deep nesting, a number of
    thousands of digits, bytes that are not UTF-8) is one ManifestError; with the sha256 of its bytes."""
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{path} is {size / 2**20:.1f} MiB, larger than any manifest shufflekit writes "
            f"({MAX_MANIFEST_BYTES >> 20} MiB at most)",
            hint=_CONFINED_HINT,
        )
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path} is not UTF-8 text ({exc.reason})", hint=_HINT) from None
    except OSError as exc:
        shown = " ".join(str(exc).split())[:120]
        raise ManifestError(f"{path} cannot be read ({shown})", hint=_HINT) from None
    # measured before parsing: json's C decoder recurses per level and, where a library raised the
    # recursion limit (onnx2tf does), overflows the C stack (a segfault) long before a RecursionError
    digest = hashlib.sha256(raw).hexdigest()
    if digest not in _checked_texts and json_depth(text) > MAX_DEPTH:
        raise ManifestError(
            f"{path} nests deeper than any manifest shufflekit writes (more than {MAX_DEPTH} levels)",
            hint=_CONFINED_HINT,
        )
    try:
        return json.loads(text), digest
    except RecursionError:
        raise ManifestError(f"{path} nests deeper than any manifest shufflekit writes", hint=_CONFINED_HINT) from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not valid JSON ({exc})", hint=_HINT) from None
    except ValueError:  # Python's limit on integer digits (no JSON a tool writes comes near it)
        raise ManifestError(f"{path} holds a number too long to read", hint=_CONFINED_HINT) from None


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def json_depth(text: str) -> int:
    """How deep brackets nest in JSON text, strings left out (regex and numpy: C speed on 16 MiB)."""
    import numpy as np

    bare = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8", "replace"), dtype=np.uint8)
    step = np.isin(bare, (ord("["), ord("{"))).astype(np.int32) - np.isin(bare, (ord("]"), ord("}")))
    return int(np.cumsum(step).max(initial=0))


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _bad(where: str, value: Any, expected: str) -> ManifestError:
    return ManifestError(f"field {where}: {_shown(value)} is not {expected}", hint=_HINT)


def _check_finite(meta: ModelMeta, where: str) -> ModelMeta:
    """NaN or infinite mean/std (JSON's NaN, Infinity, 1e999) would normalise every image to nonsense."""
    pre = meta.preprocessing
    for key, values in (("mean", pre.mean), ("std", pre.std)):
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"preprocessing.{key} must hold finite numbers, not {list(values)}")
    return meta


def _need(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise ManifestError(f"field {where}.{key} is missing", hint=_HINT)
    return data[key]


def _check_inputs(where: str, precision: str, inputs: tuple[TensorSpec, ...]) -> None:
    """An input's dtype is one the precision allows (a float file takes floats). Its spatial size is not
    tied to the model's input size: tests and tools make small graphs (16x16) under a model's metadata."""
    # float files take floats (an fp16 file keeps float32 I/O or takes float16); only an int8 file may take
    # integers (TFLite int8 with --io-dtype): the registry says, per precision
    allowed = get_precision(precision).input_dtypes
    for i, spec in enumerate(inputs):
        if spec.dtype not in allowed:
            raise ManifestError(
                f"field {where}.inputs[{i}].dtype: a {precision} file takes "
                f"{' or '.join(allowed)} inputs, not {spec.dtype}",
                hint=_HINT,
            )


class Manifest:
    """manifest.json of a release folder: artifacts plus the typed records measured on them.

    Records are stored per artifact together with the artifact's sha256, so a result measured on an
    older file is never reported for a newer one. Version 1 folders are upgraded in memory on load
    (saving writes version 2); every field is checked on load, so a damaged manifest is one line.
    """

    def __init__(self, folder: str | Path, data: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self._data = data

    # -- reading and writing -------------------------------------------------------------------------
    @classmethod
    def new(cls, folder: str | Path, meta: ModelMeta, *, source: Mapping[str, Any] | None = None) -> Manifest:
        return cls(
            folder,
            {
                "schema": SCHEMA,
                "shufflekit_version": __version__,
                "created_at": utc_now(),
                "model": meta.to_dict(),
                "source": dict(source or {}),
                "artifacts": [],
                "results": {},
            },
        )

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        folder = Path(folder)
        path = folder / MANIFEST_NAME
        if not folder.is_dir():
            raise ManifestError(f"{folder} is not a folder", hint="pass the folder that `shufflekit export` wrote")
        if not path.exists() and not path.is_symlink():
            raise ManifestError(
                f"{folder} has no {MANIFEST_NAME}",
                hint="pass a folder written by `shufflekit export` or `shufflekit release`",
            )
        # a symlinked manifest.json is read only where it stays inside the folder; a FIFO or a folder of
        # that name is refused before anything opens it (a FIFO would block the read for ever)
        try:
            resolved = confined_path(folder, MANIFEST_NAME, field=MANIFEST_NAME)
        except ManifestError:
            raise ManifestError(
                f"{path} is a symlink that leads outside the folder (refusing to read it)", hint=_CONFINED_HINT
            ) from None
        if not resolved.is_file():
            raise ManifestError(f"{path} is not a regular file", hint=_CONFINED_HINT)
        data, digest = _parse_manifest(resolved)
        if isinstance(data, dict) and data.get("schema") == SCHEMA_V1:
            data = upgrade_v1(data)
        manifest = cls(folder, data)
        manifest._check(digest)
        return manifest

    def _check(self, digest: str | None = None) -> None:
        """The manifest's checks. ``digest``: the sha256 of the text it was read from; the record checks
        of a text that passed them already in this process are not run again (a release reads its
        manifest dozens of times; the checks are a pure function of the text). The path checks always run."""
        data = self._data
        path = self.folder / MANIFEST_NAME
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ManifestError(
                f"{path} is not a shufflekit manifest (schema {SCHEMA!r} expected)", hint="re-export the folder"
            )
        try:
            if digest is None or digest not in _checked_texts:
                check_manifest_data(data)
                if digest is not None:
                    _checked_texts[digest] = None
                    while len(_checked_texts) > _CHECKED_TEXTS_KEPT:
                        _checked_texts.pop(next(iter(_checked_texts)))
            self.reference_path()  # its name stays inside the folder, symlinks resolved
        except ManifestError as exc:
            raise ManifestError(f"{path} is damaged: {exc.message}", hint=exc.hint) from None

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._data["schema"] = SCHEMA
        self._data["updated_at"] = utc_now()
        atomic_write_text(self.folder / MANIFEST_NAME, json.dumps(self._data, indent=2, sort_keys=False) + "\n")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._data))

    # -- model and source ---------------------------------------------------------------------------
    @property
    def meta(self) -> ModelMeta:
        return ModelMeta.from_dict(self._data["model"])

    @property
    def source(self) -> dict[str, Any]:
        return dict(self._data.get("source") or {})

    def set_source(self, **fields: Any) -> None:
        self._data.setdefault("source", {}).update(fields)

    # -- parity reference ---------------------------------------------------------------------------
    @property
    def reference(self) -> dict[str, Any] | None:
        """The fixed inputs and PyTorch outputs stored beside the artifacts (file, sha256, samples,
        seed, layout), or None for a folder without one."""
        ref = self._data.get("reference")
        return dict(ref) if ref else None

    def reference_path(self) -> Path | None:
        """Where the parity reference file is, checked to stay inside the folder (symlinks resolved);
        None for a folder without one."""
        ref = self.reference
        if ref is None:
            return None
        return confined_path(self.folder, ref.get("file"), field="reference.file")

    def set_reference(self, **fields: Any) -> None:
        self._data["reference"] = dict(fields)

    # -- the other files the tool wrote (labels.txt, README.md, report.html) ------------------------
    @property
    def files(self) -> dict[str, str]:
        """name -> sha256 of the files beside the artifacts and the reference that shufflekit wrote (the
        report's), so the folder knows it owns them (``folder.ReleaseFolder.owned_names``)."""
        return dict(self._data.get("files") or {})

    def set_files(self, files: Mapping[str, str]) -> None:
        self._data["files"] = {**self.files, **files}

    def owned_names(self) -> set[str]:
        """Every file name in the folder this manifest records as shufflekit's."""
        return recorded_names(self._data)

    # -- artifacts ----------------------------------------------------------------------------------
    @property
    def artifacts(self) -> list[Artifact]:
        return [Artifact.from_dict(a) for a in self._data["artifacts"]]

    def artifact(self, name: str) -> Artifact:
        for art in self.artifacts:
            if art.name == name:
                return art
        known = ", ".join(a.name for a in self.artifacts) or "none"
        raise UsageError(f"no artifact named {name!r} in {self.folder}", hint=f"artifacts: {known}")

    def add(self, artifact: Artifact) -> None:
        """Add or replace (same name) an artifact; results recorded for an older file stay but go stale."""
        entry = artifact.to_dict()
        Artifact.from_dict(entry)  # the same checks as on load: never write what could not be read back
        items = [a for a in self._data["artifacts"] if a["name"] != artifact.name]
        items.append(entry)
        self._data["artifacts"] = items

    def remove(self, name: str) -> None:
        self._data["artifacts"] = [a for a in self._data["artifacts"] if a["name"] != name]

    def select(self, selectors: Iterable[str] = ()) -> list[Artifact]:
        """Artifacts by file name, 'format', or 'format:precision'; all of them when none is given."""
        selectors = list(selectors)
        arts = self.artifacts
        if not selectors:
            return arts
        chosen: list[Artifact] = []
        for sel in selectors:
            hits = [a for a in arts if sel in (a.name, a.format, a.key)]
            if not hits:
                known = ", ".join(a.name for a in arts) or "none"
                raise UsageError(
                    f"no artifact matches {sel!r} in {self.folder}",
                    hint=f"use a file name, a format or format:precision; artifacts: {known}",
                )
            chosen.extend(a for a in hits if a not in chosen)
        return chosen

    # -- records ------------------------------------------------------------------------------------
    def record(
        self,
        record: Record | str,
        artifact: Artifact | str,
        result: Mapping[str, Any] | None = None,
        *,
        group: str | None = None,
    ) -> None:
        """File a typed record for an artifact (or a pseudo-entry such as 'pytorch', or a release-wide
        entry such as 'notes'), under a device key for the kinds measured per device.

        The old form ``record(kind, artifact, dict)`` still works (it goes through the kind's
        ``from_dict``, so it is checked the same way) while producers move to the typed form."""
        name = artifact.name if isinstance(artifact, Artifact) else artifact
        if isinstance(record, Record):
            if result is not None:
                raise TypeError("record(record, artifact): the record carries its own fields")
            cls: type[Record] = type(record)
        else:
            cls = record_class(record, name)
            record = cls.from_dict(dict(result or {}), where=f"{cls.kind}.{name}")
        if cls.entry is not None and name != cls.entry:
            raise UsageError(f"a {cls.__name__} record is filed as {cls.entry!r}, not {name!r}")
        if cls.grouped != (group is not None):
            raise UsageError(
                f"{cls.kind} records are filed {'per device' if cls.grouped else 'once'}: "
                f"{'pass' if cls.grouped else 'leave out'} group="
            )
        changes: dict[str, Any] = {}
        if isinstance(artifact, Artifact) and cls.per_artifact:
            changes["sha256"] = artifact.sha256
        if record.measured_at is None:
            changes["measured_at"] = utc_now()
        if changes:
            record = replace(record, **changes)
        table = self._data.setdefault("results", {}).setdefault(cls.kind, {})
        if group is not None:
            table = table.setdefault(group, {})
        table[name] = record.to_dict()

    @overload
    def results(self, kind: type[R], *, group: str | None = None, fresh_only: bool = True) -> dict[str, R]: ...

    @overload
    def results(self, kind: str, *, group: str | None = None, fresh_only: bool = True) -> dict[str, dict[str, Any]]: ...

    def results(self, kind: type[Record] | str, *, group: str | None = None, fresh_only: bool = True) -> Any:
        """Records of one kind (name -> record); with ``fresh_only``, drop those measured on a file since
        replaced. With a record class the records come typed; with a kind's name (the transition form),
        as the dicts they are stored as."""
        name = kind if isinstance(kind, str) else kind.kind
        table = self._data.get("results", {}).get(name, {})
        if group is not None:
            table = table.get(group, {})
        if fresh_only:
            current = {a.name: a.sha256 for a in self.artifacts}
            table = {
                n: entry
                for n, entry in table.items()
                if not isinstance(entry, dict) or "sha256" not in entry or current.get(n) == entry["sha256"]
            }
        table = json.loads(json.dumps(table))
        if isinstance(kind, str):
            return table
        if kind.entry is not None:
            table = {n: e for n, e in table.items() if n == kind.entry}
        return {n: kind.from_dict(e, where=f"{kind.kind}.{n}") for n, e in table.items()}

    def groups(self, kind: type[Record] | str) -> list[str]:
        name = kind if isinstance(kind, str) else kind.kind
        return list(self._data.get("results", {}).get(name, {}).keys())

    def device_facts(self, device: str) -> DeviceFacts | None:
        """The facts of the device a group of results was measured on, None when none were recorded."""
        entry = self._data.get("results", {}).get(DeviceFacts.kind, {}).get(device)
        return None if entry is None else DeviceFacts.from_dict(entry, where=f"{DeviceFacts.kind}.{device}")

    def set_device_facts(self, device: str, facts: DeviceFacts) -> None:
        self._data.setdefault("results", {}).setdefault(DeviceFacts.kind, {})[device] = facts.to_dict()

    def set_group_info(self, kind: str, group: str, info: Mapping[str, Any]) -> None:
        """The transition form of ``set_device_facts``: facts about the device ``kind`` was measured on."""
        if kind != "latency":
            raise UsageError(f"only latency groups carry device facts, not {kind!r}")
        self.set_device_facts(group, DeviceFacts.from_dict(dict(info), where=f"{DeviceFacts.kind}.{group}"))

    def group_info(self, kind: str, group: str) -> dict[str, Any]:
        """The transition form of ``device_facts``, as a dict (empty when none were recorded)."""
        facts = self.device_facts(group) if kind == "latency" else None
        return facts.to_dict() if facts is not None else {}


# -- checking and upgrading the stored form --------------------------------------------------------------
def check_manifest_data(data: Mapping[str, Any]) -> None:
    """Every field of a version 2 manifest's data, as ``Manifest.load`` checks it (ManifestError naming
    the field on the first one that is wrong)."""
    for key in ("model", "artifacts"):
        _need(data, key, "manifest")
    try:
        _check_finite(ModelMeta.from_dict(data["model"]), "model")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ManifestError(f"field model: {type(exc).__name__}: {exc}", hint=_HINT) from None
    if not isinstance(data.get("source", {}), dict):
        raise _bad("source", data.get("source"), "an object")
    for key in ("shufflekit_version", "created_at", "updated_at"):
        if key in data and not isinstance(data[key], str):
            raise _bad(key, data[key], "a string")
    if not isinstance(data["artifacts"], list):
        raise _bad("artifacts", data["artifacts"], "a list")
    names = [Artifact.from_dict(a, where=f"artifacts[{i}]").name for i, a in enumerate(data["artifacts"])]
    if len(set(names)) != len(names):
        raise ManifestError("lists an artifact twice", hint=_HINT)
    if "reference" in data and data["reference"] is None:  # the schema has no null: absent means none
        raise _bad("reference", None, "an object naming its file and sha256 (or no reference key)")
    ref = data.get("reference")
    if ref is not None and not (
        isinstance(ref, dict) and isinstance(ref.get("file"), str) and isinstance(ref.get("sha256"), str)
    ):
        raise _bad("reference", ref, "an object naming its file and sha256")
    if ref is not None:
        if not ref["file"] or ref["file"].startswith("/") or ".." in Path(ref["file"]).parts:
            raise ManifestError(
                f"field reference.file: {_shown(ref['file'])} is outside the folder (refusing to read it)",
                hint=_CONFINED_HINT,
            )
        if not SHA256_RE.match(ref["sha256"]):
            raise _bad("reference.sha256", ref["sha256"], "a sha256 in hex")
    files = data.get("files", {})
    if not isinstance(files, dict):
        raise _bad("files", files, "an object of file name -> sha256")
    for name, sha in files.items():
        if not name or "/" in name or name.startswith("."):
            raise _bad("files", name, "plain file names inside the folder")
        if not isinstance(sha, str) or not SHA256_RE.match(sha):
            raise _bad(f"files.{name}", sha, "a sha256")
    results = data.get("results", {})
    if not isinstance(results, dict):
        raise _bad("results", results, "an object")
    for kind, table in results.items():
        if not isinstance(table, dict):
            raise _bad(f"results.{kind}", table, "an object")
        if kind not in kinds():
            record_class(kind)  # an unknown kind is refused, even an empty one
        groups = table.items() if _is_grouped(kind) else [(None, table)]
        for group, entries in groups:
            where = f"results.{kind}" + (f".{group}" if group is not None else "")
            if not isinstance(entries, dict):
                raise _bad(where, entries, "an object")
            for name, entry in entries.items():
                record_class(kind, name).from_dict(entry, where=f"{where}.{name}")


def _is_grouped(kind: str) -> bool:
    return any(c.grouped for c in registered() if c.kind == kind)


# Fields renamed by version 2: one name per field (read only here).
_V1_RENAMES = {
    "accuracy": {"top1_delta": "delta_top1", "delta": "delta_top1", "top1_percent": "top1", "top5_percent": "top5"},
    "device_accuracy": {"top1_delta": "delta_top1", "delta": "delta_top1"},
    DeviceFacts.kind: {"cpu_count": "logical_cores"},
}


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version 1 manifest's data in version 2's shape: device facts move from ``latency_groups`` to
    ``device_facts``, old field names become the one name each field has now."""
    data = json.loads(json.dumps(data))
    data["schema"] = SCHEMA
    results = data.get("results")
    if isinstance(results, dict):
        groups = results.pop("latency_groups", None)
        for key in [k for k in results if k.endswith("_groups")]:
            results.pop(key)  # only latency ever had group facts
        if isinstance(groups, dict):
            results[DeviceFacts.kind] = groups
        for kind, renames in _V1_RENAMES.items():
            table = results.get(kind)
            if not isinstance(table, dict):
                continue
            nested = table.values() if _is_grouped(kind) else [table]
            for entries in nested:
                for entry in entries.values() if isinstance(entries, dict) else []:
                    if not isinstance(entry, dict):
                        continue
                    for old, new in renames.items():
                        if old in entry:
                            value = entry.pop(old)
                            entry.setdefault(new, value)
    return data


@contextlib.contextmanager
def update_manifest(folder: str | Path) -> Iterator[Manifest]:
    """Read-modify-write a manifest under the folder's lock (``ReleaseFolder.lock``), so concurrent
    workers (one per device) and commands never lose each other's results."""
    with ReleaseFolder(folder).lock():
        manifest = Manifest.load(folder)
        yield manifest
        manifest.save()


# -- the published JSON Schema (schemas/manifest.schema.json), generated from the checks above -------------
def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of a version 2 manifest: the records' from their declarations, the artifacts' from
    the same constants the loader checks against. tests/test_manifest_schema.py asserts
    the committed file equals this (regenerate with ``python -m shufflekit.artifacts > schemas/...``)."""
    number = {"type": "number"}
    tensor = {
        "type": "object",
        "required": ["name", "shape", "dtype"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "shape": {
                "type": "array",
                "minItems": 1,
                "items": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1}]},
            },
            "dtype": {"enum": list(DTYPES)},
            "layout": {"enum": [*LAYOUTS, None]},
            "quantization": {
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["scale", "zero_point"],
                        "properties": {
                            "scale": {"type": "number", "exclusiveMinimum": 0},
                            "zero_point": {"type": "integer"},
                        },
                    },
                ]
            },
        },
    }
    meta = {
        "type": "object",
        "required": ["model", "num_classes", "preprocessing"],
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "num_classes": {"type": "integer", "minimum": 1},
            "labels": {"anyOf": [{"type": "null"}, {"type": "array", "items": {"type": "string"}}]},
            "training": {"anyOf": [{"type": "null"}, {"type": "object"}]},
            "preprocessing": {
                "type": "object",
                "required": ["input_size", "resize_size", "mean", "std"],
                "properties": {
                    "input_size": SIZE_SCHEMA,
                    "resize_size": SIZE_SCHEMA,
                    "mean": {"type": "array", "items": number, "minItems": 3, "maxItems": 3},
                    "std": {
                        "type": "array",
                        "minItems": 3,
                        "maxItems": 3,
                        "items": {"type": "number", "exclusiveMinimum": 0},
                    },
                },
            },
        },
    }
    sha = {"type": "string", "pattern": f"^{SHA256_RE.pattern.strip('^$')}$"}
    precision_rules = [
        {
            "if": {"properties": {"precision": {"const": p}}},
            "then": {"properties": {"inputs": {"items": {"properties": {"dtype": {"enum": list(d)}}}}}},
        }
        for p, d in ((p.name, p.input_dtypes) for p in precisions())
    ]
    artifact = {
        "type": "object",
        "required": ["name", "format", "precision", "sha256", "size_bytes", "inputs", "outputs", "meta"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "pattern": "^[^./][^/]*$"},
            "format": {"enum": list(format_names())},
            "precision": {"enum": list(precision_names())},
            "sha256": sha,
            "size_bytes": {"type": "integer", "minimum": 0},
            "inputs": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/TensorSpec"}},
            "outputs": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/TensorSpec"}},
            "meta": {"$ref": "#/$defs/ModelMeta"},
            "parent_sha256": {"anyOf": [sha, {"type": "null"}]},
            "tools": {"type": "object", "additionalProperties": {"type": "string"}},
            "options": {"type": "object"},
            "created_at": {"type": "string"},
        },
        "allOf": precision_rules,
    }
    defs: dict[str, Any] = {"TensorSpec": tensor, "ModelMeta": meta, "Artifact": artifact}
    tables: dict[str, Any] = {}
    for cls in registered():
        defs[cls.__name__] = cls.json_schema()
        ref = {"$ref": f"#/$defs/{cls.__name__}"}
        if cls.entry is not None:
            table = tables.setdefault(cls.kind, {"type": "object", "properties": {}, "additionalProperties": False})
            table["properties"][cls.entry] = ref
        elif cls.grouped:
            per_device = {"type": "object", "additionalProperties": ref}
            tables[cls.kind] = {"type": "object", "additionalProperties": per_device}
        else:
            tables[cls.kind] = {"type": "object", "additionalProperties": ref}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://shufflekit.invalid/schemas/manifest.schema.json",
        "title": "shufflekit release folder manifest (manifest.json)",
        "description": "Generated by shufflekit.artifacts.manifest_schema(); do not edit by hand.",
        "type": "object",
        "required": ["schema", "model", "artifacts"],
        "properties": {
            "schema": {"const": SCHEMA},
            "shufflekit_version": {"type": "string"},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "model": {"$ref": "#/$defs/ModelMeta"},
            "source": {"type": "object"},
            "reference": {
                "type": "object",
                "required": ["file", "sha256"],
                "properties": {"file": {"type": "string"}, "sha256": {"type": "string"}},
            },
            "artifacts": {"type": "array", "items": {"$ref": "#/$defs/Artifact"}},
            "files": {
                "type": "object",
                "propertyNames": {"pattern": "^[^./][^/]*$"},
                "additionalProperties": sha,
            },
            "results": {"type": "object", "properties": tables, "additionalProperties": False},
        },
        "$defs": defs,
    }


def schema_text() -> str:
    return json.dumps(manifest_schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
