"""The record that travels between stages (Artifact) and the release folder's single source of truth
(manifest.json). Every command that reads a folder reads its manifest; nothing is guessed from names."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
from dataclasses import dataclass, field, replace
from importlib import metadata as _importlib_metadata
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from . import __version__
from .errors import IntegrityError, ManifestError, UsageError
from .files import atomic_write_text, sha256_file
from .folder import ReleaseFolder
from .metadata import ModelMeta

MANIFEST_NAME = "manifest.json"
SCHEMA = "shufflekit.manifest/1"
FORMATS = ("onnx", "tflite")
PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
LAYOUTS = ("NCHW", "NHWC")


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
        data: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                                "layout": self.layout}
        if self.quantization is not None:
            data["quantization"] = {"scale": self.quantization.scale,
                                    "zero_point": self.quantization.zero_point}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TensorSpec":
        quant = data.get("quantization")
        return cls(name=str(data["name"]), shape=tuple(d if isinstance(d, str) else int(d) for d in data["shape"]),
                   dtype=str(data["dtype"]), layout=data.get("layout"),
                   quantization=QuantParams(float(quant["scale"]), int(quant["zero_point"])) if quant else None)


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
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; known: {', '.join(FORMATS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; known: {', '.join(PRECISIONS)}")
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
    def from_file(cls, path: Path, **fields: Any) -> "Artifact":
        """Build the record for a finished file; hash and size are read from the bytes."""
        return cls(name=path.name, sha256=sha256_file(path), size_bytes=path.stat().st_size, **fields)

    def path_in(self, folder: str | Path) -> Path:
        return Path(folder) / self.name

    def verify(self, folder: str | Path) -> Path:
        """Return the file's path after checking it is the one recorded; refuse anything else."""
        path = self.path_in(folder)
        if not path.is_file():
            raise IntegrityError(f"artifact {self.name} is listed in the manifest but missing from {folder}",
                                 hint="re-run the command that made it")
        if path.stat().st_size != self.size_bytes or sha256_file(path) != self.sha256:
            raise IntegrityError(f"artifact {self.name} was changed after it was made (sha256 mismatch)",
                                 hint="refusing to use it; re-export to get a trusted file")
        return path

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "format": self.format, "precision": self.precision,
                "sha256": self.sha256, "size_bytes": self.size_bytes,
                "inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs],
                "meta": self.meta.to_dict(), "parent_sha256": self.parent_sha256,
                "tools": dict(self.tools), "options": dict(self.options), "created_at": self.created_at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Artifact":
        return cls(name=str(data["name"]), format=str(data["format"]), precision=str(data["precision"]),
                   sha256=str(data["sha256"]), size_bytes=int(data["size_bytes"]),
                   inputs=tuple(TensorSpec.from_dict(t) for t in data["inputs"]),
                   outputs=tuple(TensorSpec.from_dict(t) for t in data["outputs"]),
                   meta=ModelMeta.from_dict(data["meta"]), parent_sha256=data.get("parent_sha256"),
                   tools=dict(data.get("tools") or {}), options=dict(data.get("options") or {}),
                   created_at=str(data.get("created_at", "")))

    def with_(self, **changes: Any) -> "Artifact":
        return replace(self, **changes)


class Manifest:
    """manifest.json of a release folder: artifacts plus the results measured on them.

    Results are stored per artifact together with the artifact's sha256, so a result measured on an
    older file is never reported for a newer one.
    """

    def __init__(self, folder: str | Path, data: dict[str, Any]):
        self.folder = Path(folder)
        self._data = data

    # -- reading and writing -------------------------------------------------------------------------
    @classmethod
    def new(cls, folder: str | Path, meta: ModelMeta, *, source: Mapping[str, Any] | None = None) -> "Manifest":
        return cls(folder, {"schema": SCHEMA, "shufflekit_version": __version__, "created_at": utc_now(),
                            "model": meta.to_dict(), "source": dict(source or {}), "artifacts": [],
                            "results": {}})

    @classmethod
    def load(cls, folder: str | Path) -> "Manifest":
        folder = Path(folder)
        path = folder / MANIFEST_NAME
        if not folder.is_dir():
            raise ManifestError(f"{folder} is not a folder", hint="pass the folder that `shufflekit export` wrote")
        if not path.is_file():
            raise ManifestError(f"{folder} has no {MANIFEST_NAME}",
                                hint="pass a folder written by `shufflekit export` or `shufflekit release`")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{path} is not valid JSON ({exc})", hint="re-export the folder") from None
        manifest = cls(folder, data)
        manifest._check()
        return manifest

    def _check(self) -> None:
        data = self._data
        path = self.folder / MANIFEST_NAME
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ManifestError(f"{path} is not a shufflekit manifest (schema {SCHEMA!r} expected)",
                                hint="re-export the folder")
        try:
            self.meta
            arts = self.artifacts
            if not isinstance(data.get("results", {}), dict):
                raise TypeError("results must be an object")
            ref = data.get("reference")
            if ref is not None and not (isinstance(ref, dict) and isinstance(ref.get("file"), str)
                                        and isinstance(ref.get("sha256"), str)):
                raise TypeError("reference must name its file and sha256")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"{path} is damaged: {type(exc).__name__}: {exc}", hint="re-export the folder") from None
        names = [a.name for a in arts]
        if len(set(names)) != len(names):
            raise ManifestError(f"{path} lists an artifact twice", hint="re-export the folder")

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
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

    def set_reference(self, **fields: Any) -> None:
        self._data["reference"] = dict(fields)

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
        items = [a for a in self._data["artifacts"] if a["name"] != artifact.name]
        items.append(artifact.to_dict())
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
                raise UsageError(f"no artifact matches {sel!r} in {self.folder}",
                                 hint=f"use a file name, a format or format:precision; artifacts: {known}")
            chosen.extend(a for a in hits if a not in chosen)
        return chosen

    # -- results ------------------------------------------------------------------------------------
    def record(self, kind: str, artifact: Artifact | str, result: Mapping[str, Any], *, group: str | None = None) -> None:
        """Store a result for an artifact (or for a pseudo-entry such as 'pytorch'), under an optional
        group such as a device key."""
        table = self._data.setdefault("results", {}).setdefault(kind, {})
        if group is not None:
            table = table.setdefault(group, {})
        name = artifact.name if isinstance(artifact, Artifact) else artifact
        entry = dict(result)
        if isinstance(artifact, Artifact):
            entry["sha256"] = artifact.sha256
        entry.setdefault("measured_at", utc_now())
        table[name] = entry

    def results(self, kind: str, *, group: str | None = None, fresh_only: bool = True) -> dict[str, dict[str, Any]]:
        """Results of one kind; with ``fresh_only``, drop those measured on a file since replaced."""
        table = self._data.get("results", {}).get(kind, {})
        if group is not None:
            table = table.get(group, {})
        if not fresh_only:
            return json.loads(json.dumps(table))
        current = {a.name: a.sha256 for a in self.artifacts}
        return {name: dict(entry) for name, entry in table.items()
                if not isinstance(entry, dict) or "sha256" not in entry or current.get(name) == entry["sha256"]}

    def groups(self, kind: str) -> list[str]:
        return list(self._data.get("results", {}).get(kind, {}).keys())

    def set_group_info(self, kind: str, group: str, info: Mapping[str, Any]) -> None:
        """Facts about a group of results, e.g. the device a latency table was measured on."""
        self._data.setdefault("results", {}).setdefault(f"{kind}_groups", {})[group] = dict(info)

    def group_info(self, kind: str, group: str) -> dict[str, Any]:
        return dict(self._data.get("results", {}).get(f"{kind}_groups", {}).get(group, {}))


@contextlib.contextmanager
def update_manifest(folder: str | Path) -> Iterator[Manifest]:
    """Read-modify-write a manifest under the folder's lock (``ReleaseFolder.lock``), so concurrent
    workers (one per device) and commands never lose each other's results."""
    with ReleaseFolder(folder).lock():
        manifest = Manifest.load(folder)
        yield manifest
        manifest.save()
