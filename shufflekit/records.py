"""One frozen dataclass per kind of result the manifest files, each with its ``kind``, ``to_dict()`` and a
strict ``from_dict()``; the manifest's schema version; the JSON Schema of each record, generated from the
same field declarations that validate it (so the published schema cannot drift from the code).

Unknown fields are kept, not refused: they land in ``extra`` and are written back unchanged. The fields a
consumer reads are declared and validated; a producer may carry more (the device package adds per-runtime
facts such as ``xnnpack_declined`` or ``delegate_partitions``), and refusing them would make every new
figure a schema change in two places. A declared field can only ever have one name and one type."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from .errors import ManifestError
from .metadata import MIN_INPUT_SIDE, InputSize

SCHEMA_VERSION = 2
SCHEMA = f"shufflekit.manifest/{SCHEMA_VERSION}"
SCHEMA_V1 = "shufflekit.manifest/1"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


# -- field types: one declaration validates a value and describes it in JSON Schema -----------------------
class FieldType:
    def check(self, value: Any, where: str) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


def _fail(where: str, value: Any, expected: str) -> ManifestError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ManifestError(f"field {where}: {shown} is not {expected}", hint="re-run the command that recorded it")


class Str(FieldType):
    def __init__(self, choices: Sequence[str] = (), pattern: str | None = None, nonempty: bool = False) -> None:
        self.choices, self.pattern, self.nonempty = tuple(choices), pattern, nonempty

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, str):
            raise _fail(where, value, "a string")
        if self.choices and value not in self.choices:
            raise _fail(where, value, "one of " + ", ".join(self.choices))
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise _fail(where, value, f"a string matching {self.pattern}")
        if self.nonempty and not value:
            raise _fail(where, value, "a non-empty string")
        return value

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.choices:
            out["enum"] = list(self.choices)
        if self.pattern:
            out["pattern"] = f"^{self.pattern}$"
        if self.nonempty:
            out["minLength"] = 1
        return out


class Num(FieldType):
    """A finite number (int or float, never a bool) within optional bounds."""

    def __init__(
        self,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_min: bool = False,
        integer: bool = False,
    ) -> None:
        self.minimum, self.maximum, self.exclusive_min, self.integer = minimum, maximum, exclusive_min, integer

    def check(self, value: Any, where: str) -> Any:
        what = "an integer" if self.integer else "a finite number"
        if isinstance(value, bool) or not isinstance(value, int if self.integer else (int, float)):
            raise _fail(where, value, what)
        if not math.isfinite(value):
            raise _fail(where, value, what)
        if self.minimum is not None and (value <= self.minimum if self.exclusive_min else value < self.minimum):
            raise _fail(where, value, f"{what} {'>' if self.exclusive_min else '>='} {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise _fail(where, value, f"{what} <= {self.maximum:g}")
        return value

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer" if self.integer else "number"}
        if self.minimum is not None:
            out["exclusiveMinimum" if self.exclusive_min else "minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


def Int(minimum: int | None = None, maximum: int | None = None) -> Num:
    return Num(minimum, maximum, integer=True)


class Bool(FieldType):
    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, bool):
            raise _fail(where, value, "true or false")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class Anything(FieldType):
    """A value whose inner shape belongs to its producer (e.g. a runtime's version table)."""

    def check(self, value: Any, where: str) -> Any:
        return value

    def schema(self) -> dict[str, Any]:
        return {}


class Opt(FieldType):
    def __init__(self, inner: FieldType) -> None:
        self.inner = inner

    def check(self, value: Any, where: str) -> Any:
        return None if value is None else self.inner.check(value, where)

    def schema(self) -> dict[str, Any]:
        inner = self.inner.schema()
        return {"anyOf": [inner, {"type": "null"}]} if inner else {}


class ListOf(FieldType):
    def __init__(self, item: FieldType, min_items: int = 0) -> None:
        self.item, self.min_items = item, min_items

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _fail(where, value, "a list")
        if len(value) < self.min_items:
            raise _fail(where, value, f"a list of at least {self.min_items}")
        return tuple(self.item.check(v, f"{where}[{i}]") for i, v in enumerate(value))

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "array", "items": self.item.schema()}
        if self.min_items:
            out["minItems"] = self.min_items
        return out


class MapOf(FieldType):
    """An object with string keys, each value of one type."""

    def __init__(self, value: FieldType) -> None:
        self.value = value

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _fail(where, value, "an object")
        return {k: self.value.check(v, f"{where}.{k}") for k, v in value.items()}

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": self.value.schema()}


class Obj(FieldType):
    """An object with some required keys (typed) and any others."""

    def __init__(self, **required: FieldType) -> None:
        self.required = required

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _fail(where, value, "an object")
        for key, kind in self.required.items():
            if key not in value:
                raise ManifestError(f"field {where}.{key} is missing", hint="re-run the command that recorded it")
            kind.check(value[key], f"{where}.{key}")
        return dict(value)

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object"}
        if self.required:
            out["required"] = list(self.required)
            out["properties"] = {k: t.schema() for k, t in self.required.items()}
        return out


class Size(FieldType):
    """An input size: ``{"height": H, "width": W}``, or the one integer (a square) older manifests hold.
    Read as an InputSize, written as the object."""

    def check(self, value: Any, where: str) -> Any:
        if isinstance(value, InputSize):
            return value
        try:
            return InputSize.from_json(value, where=where)
        except (TypeError, ValueError):
            raise _fail(where, value, '{"height": H, "width": W} (integers)') from None

    def schema(self) -> dict[str, Any]:
        return SIZE_SCHEMA


_SIDE_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": MIN_INPUT_SIDE}
SIZE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "required": ["height", "width"],
            "properties": {"height": _SIDE_SCHEMA, "width": _SIDE_SCHEMA},
            "additionalProperties": False,
        },
        {**_SIDE_SCHEMA, "description": "a square (manifests written before non-square inputs)"},
    ]
}


SHA256 = Str(pattern="[0-9a-f]{64}")
PERCENT = Num(0, 100)
POINTS = Num(-100, 100)
MS = Num(0)


def spec(kind: FieldType, default: Any = MISSING) -> Any:
    """A record field: its type, and its default when it may be left out (``{}``: an empty mapping)."""
    if default is MISSING:
        return field(metadata={"type": kind})
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={"type": kind})
    return field(default=default, metadata={"type": kind})


# -- records ----------------------------------------------------------------------------------------------
R = TypeVar("R", bound="Record")


@dataclass(frozen=True, kw_only=True)
class Record:
    """A result filed in the manifest. ``kind`` names its table; ``grouped`` ones are filed per device;
    ``entry`` fixes the one name a release-wide record is filed under; ``per_artifact`` ones carry the
    sha256 of the file they were measured on (and go stale when it changes)."""

    kind: ClassVar[str]
    grouped: ClassVar[bool] = False
    entry: ClassVar[str | None] = None
    per_artifact: ClassVar[bool] = True

    sha256: str | None = spec(Opt(SHA256), None)
    measured_at: str | None = spec(Opt(Str()), None)  # None: stamped when filed; "" keeps a record unchanged
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # built in code or read from a file, a record holds only what its declaration allows
        for f in self.declared():
            value = f.metadata["type"].check(getattr(self, f.name), f"{self.kind}.{f.name}")
            object.__setattr__(self, f.name, value)
        object.__setattr__(self, "extra", dict(self.extra))

    def get(self, key: str, default: Any = None) -> Any:
        """Read a field (or an extra one) by name: the transition form for callers that still read
        records as dicts (the release and CLI code being moved); new code reads the attributes."""
        value = self.extra.get(key, default) if key not in self._names() else getattr(self, key)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        if key not in self._names() and key not in self.extra:
            raise KeyError(key)
        return self.get(key)

    @classmethod
    def _names(cls) -> set[str]:
        return {f.name for f in cls.declared()}

    @classmethod
    def declared(cls) -> list[Any]:
        return [f for f in fields(cls) if f.name != "extra"]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in self.declared():
            data[f.name] = _plain(getattr(self, f.name))  # every declared field, null included: one shape
        if not self.per_artifact:
            data.pop("sha256", None)
        data.update({k: v for k, v in self.extra.items() if k not in data})
        return data

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any], *, where: str | None = None) -> R:
        where = where or cls.kind
        if not isinstance(data, Mapping):
            raise _fail(where, data, "an object")
        values: dict[str, Any] = {}
        for f in cls.declared():
            if f.name in data:
                values[f.name] = f.metadata["type"].check(data[f.name], f"{where}.{f.name}")
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ManifestError(f"field {where}.{f.name} is missing", hint="re-run the command that recorded it")
        names = {f.name for f in cls.declared()}
        extra = {k: v for k, v in data.items() if k not in names and k != "extra"}
        return cls(**values, extra=extra)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        props = {f.name: f.metadata["type"].schema() for f in cls.declared()}
        if not cls.per_artifact:
            props.pop("sha256", None)
        required = [f.name for f in cls.declared() if f.default is MISSING and f.default_factory is MISSING]
        out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": True}
        if required:
            out["required"] = required
        if cls.__doc__:
            out["description"] = " ".join(cls.__doc__.split())
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, InputSize):
        return value.to_json()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


_REGISTRY: dict[tuple[str, str | None], type[Record]] = {}


def register(cls: type[R]) -> type[R]:
    """File a record class under its kind (and entry); a kind registered twice is an error."""
    key = (cls.kind, cls.entry)
    if key in _REGISTRY:
        raise ValueError(
            f"record kind {cls.kind!r}{f' entry {cls.entry!r}' if cls.entry else ''} is registered "
            f"twice ({_REGISTRY[key].__name__} and {cls.__name__})"
        )
    if any(k == cls.kind and (e is None) != (cls.entry is None) for k, e in _REGISTRY):
        raise ValueError(f"record kind {cls.kind!r} mixes named entries and per-artifact records")
    _REGISTRY[key] = cls
    return cls


def record_class(kind: str, name: str | None = None) -> type[Record]:
    """The class of records of ``kind`` (for release-wide kinds, of the entry ``name``)."""
    cls = _REGISTRY.get((kind, None)) or _REGISTRY.get((kind, name))
    if cls is None:
        known = sorted({k for k, _ in _REGISTRY})
        what = f"result kind {kind!r}" + (f" entry {name!r}" if name and kind in known else "")
        raise ManifestError(f"unknown {what}", hint=f"known kinds: {', '.join(known)}")
    return cls


def registered() -> list[type[Record]]:
    return list(_REGISTRY.values())


def kinds() -> list[str]:
    return list(dict.fromkeys(k for k, _ in _REGISTRY))


# -- per-artifact, per-device measurements ----------------------------------------------------------------
@register
@dataclass(frozen=True, kw_only=True)
class Latency(Record):
    """Latency of one file on one device: per-run statistics in ms, per image at the batch, and what ran."""

    kind: ClassVar[str] = "latency"
    grouped: ClassVar[bool] = True

    latency_ms: Mapping[str, float | None] = spec(MapOf(Opt(MS)))
    per_image_p50_ms: float | None = spec(Opt(MS), None)
    format: str | None = spec(Opt(Str()), None)
    precision: str | None = spec(Opt(Str()), None)
    size_bytes: int | None = spec(Opt(Int(0)), None)
    runtime: str | None = spec(Opt(Str()), None)
    batch: int | None = spec(Opt(Int(1)), None)
    threads: int | None = spec(Opt(Int(0)), None)
    throughput_ips: float | None = spec(Opt(Num(0)), None)
    mult_adds: float | None = spec(Opt(Num(0)), None)
    us_per_mmac: float | None = spec(Opt(Num(0)), None)
    emulated: bool = spec(Bool(), False)
    emulator: str | None = spec(Opt(Str()), None)
    peak_fraction: float | None = spec(Opt(Num(0)), None)  # of the device's conv_peak named by conv_peak
    conv_peak: str | None = spec(Opt(Str()), None)
    # Whether the figures can be trusted: why not (runtimes.noise), the cores other processes kept busy
    # while it was timed, the device's 1-minute load average after it.
    noise: str | None = spec(Opt(Str()), None)
    other_busy_cores: float | None = spec(Opt(Num(0)), None)
    load_average: float | None = spec(Opt(Num(0)), None)


@register
@dataclass(frozen=True, kw_only=True)
class ConvPeak(Record):
    """A device's measured dense-convolution peak in one runtime, provider and thread count: a 1x1
    convolution micro-benchmark's multiply-adds over its p50 (``runtimes.peak``). Filed per device under
    a name made of the runtime, provider, threads and the micro-benchmark file's sha256."""

    kind: ClassVar[str] = "conv_peak"
    grouped: ClassVar[bool] = True
    per_artifact: ClassVar[bool] = False

    runtime: str = spec(Str(nonempty=True))
    provider: str = spec(Str(nonempty=True))  # as requested (what ran: providers)
    threads: int | None = spec(Opt(Int(1)), None)  # None: the runtime's default
    benchmark: str = spec(Str(nonempty=True))
    benchmark_sha256: str = spec(SHA256)
    mult_adds: int = spec(Int(1))
    p50_ms: float = spec(MS)
    iters: int = spec(Int(1))
    gmacs: float = spec(Num(0))  # giga multiply-adds per second: mult_adds / p50
    providers: tuple[str, ...] = spec(ListOf(Str()), ())
    runtime_version: str | None = spec(Opt(Str()), None)


@register
@dataclass(frozen=True, kw_only=True)
class LatencyTimes(Record):
    """Per-iteration times of a latency entry (the distribution plot)."""

    kind: ClassVar[str] = "latency_times"
    grouped: ClassVar[bool] = True

    times_ms: tuple[float, ...] = spec(ListOf(MS))


@register
@dataclass(frozen=True, kw_only=True)
class OpProfile(Record):
    """Where one run's time goes on a device: per category, per op type and the slowest nodes."""

    kind: ClassVar[str] = "op_profile"
    grouped: ClassVar[bool] = True

    method: str = spec(Str(nonempty=True))
    runs: int = spec(Int(0))
    node_sum_ms: float = spec(MS)
    run_ms: float | None = spec(Opt(MS), None)
    benchmark_mean_ms: float | None = spec(Opt(MS), None)
    node_providers: Any = spec(Anything(), None)
    categories: tuple[Mapping[str, Any], ...] = spec(ListOf(Obj(category=Str(), share=Num(0))), ())
    op_types: tuple[Mapping[str, Any], ...] = spec(ListOf(Obj(op_type=Str(), ms=MS)), ())
    nodes: tuple[Mapping[str, Any], ...] = spec(ListOf(Obj(name=Str(), op_type=Str(), mean_ms=MS)), ())


@register
@dataclass(frozen=True, kw_only=True)
class DeviceFacts(Record):
    """The device a group of results was measured on (one per device key, no artifact)."""

    kind: ClassVar[str] = "device_facts"  # filed under the device key itself
    per_artifact: ClassVar[bool] = False

    hostname: str | None = spec(Opt(Str()), None)
    cpu_model: str | None = spec(Opt(Str()), None)
    machine: str | None = spec(Opt(Str()), None)
    logical_cores: int | None = spec(Opt(Int(1)), None)
    physical_cores: int | None = spec(Opt(Int(1)), None)
    governor: str | None = spec(Opt(Str()), None)
    os: str | None = spec(Opt(Str()), None)
    python: str | None = spec(Opt(Str()), None)
    numpy: str | None = spec(Opt(Str()), None)
    memory_bytes: int | None = spec(Opt(Int(0)), None)
    android_model: str | None = spec(Opt(Str()), None)
    runtimes: Any = spec(Anything(), None)
    emulated: bool = spec(Bool(), False)
    emulator: str | None = spec(Opt(Str()), None)


# -- parity and accuracy ----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class _ParityFields(Record):
    artifact: str = spec(Str(nonempty=True))
    key: str = spec(Str(nonempty=True))
    runtime: str = spec(Str())
    providers: tuple[str, ...] = spec(ListOf(Str()), ())
    passed: bool = spec(Bool())
    failures: tuple[str, ...] = spec(ListOf(Str()), ())
    metrics: Mapping[str, Any] | None = spec(Opt(MapOf(Anything())), None)
    tolerance: Mapping[str, Any] | None = spec(Opt(MapOf(Anything())), None)
    accuracy: Any = spec(Anything(), None)


@register
@dataclass(frozen=True, kw_only=True)
class Parity(_ParityFields):
    """One file's outputs on this computer against PyTorch's on the reference inputs."""

    kind: ClassVar[str] = "parity"

    samples: int | None = spec(Opt(Int(1)), None)
    reference: str | None = spec(Opt(Str()), None)


@register
@dataclass(frozen=True, kw_only=True)
class DeviceParity(_ParityFields):
    """One file's outputs computed on a device against PyTorch's on the reference inputs."""

    kind: ClassVar[str] = "device_parity"
    grouped: ClassVar[bool] = True


@register
@dataclass(frozen=True, kw_only=True)
class GpuCompatibility(Record):
    """Which operators of one TFLite file a mobile GPU delegate would take (``validate.gpu_compat``):
    the TFLite model analyzer (LiteRT's or TensorFlow's, gpu_compatibility=True: its verdict and
    per-op warnings) and, from the analyzer's own dump, every op on a tensor of more than 4 dimensions and
    every custom op. ``findings`` are the ops that would fall back to the CPU: op, index, subgraph, why, and
    source (analyzer, rank or custom); ``max_rank`` is the largest tensor rank any op touches."""

    kind: ClassVar[str] = "gpu_compatibility"

    compatible: bool = spec(Bool())
    ops: int = spec(Int(0))
    max_rank: int = spec(Int(0))
    findings: tuple[Mapping[str, Any], ...] = spec(
        ListOf(Obj(op=Str(), index=Int(0), subgraph=Int(0), why=Str(), source=Str(("analyzer", "rank", "custom")))),
        (),
    )
    analyzer: str = spec(Str(nonempty=True))  # e.g. "ai_edge_litert 2.3.0", "tensorflow 2.21.0"
    analyzer_compatible: bool = spec(Bool())  # the analyzer's own verdict line

    def summary(self) -> str:
        """One line: "GPU delegate: all 60 ops" or "GPU delegate: 2 of 60 ops fall back to the CPU (...)"."""
        if not self.findings and self.analyzer_compatible:
            return f"GPU delegate: all {self.ops} ops (largest tensor {self.max_rank}-D)"
        if not self.findings:
            return f"GPU delegate: {self.analyzer} reports the file incompatible without naming an op"
        fallback = len({(f["subgraph"], f["index"]) for f in self.findings})
        shown = list(dict.fromkeys(f"{f['op']} {f['why']}" for f in self.findings))
        more = f", +{len(shown) - 3} more" if len(shown) > 3 else ""
        return f"GPU delegate: {fallback} of {self.ops} ops fall back to the CPU ({'; '.join(shown[:3])}{more})"


@register
@dataclass(frozen=True, kw_only=True)
class Accuracy(Record):
    """Top-1/top-5 in percent of one file (or of PyTorch, entry ``pytorch``) on labelled images, and its
    top-1 delta against PyTorch in points (negative: a loss)."""

    kind: ClassVar[str] = "accuracy"

    name: str = spec(Str(nonempty=True))
    key: str = spec(Str(nonempty=True))
    runtime: str = spec(Str())
    top1: float = spec(PERCENT)
    top5: float | None = spec(Opt(PERCENT), None)
    samples: int = spec(Int(0))
    agreement: float | None = spec(Opt(PERCENT), None)
    delta_top1: float | None = spec(Opt(POINTS), None)
    delta_top5: float | None = spec(Opt(POINTS), None)
    max_drop: float | None = spec(Opt(Num(0)), None)
    passed: bool = spec(Bool(), True)
    failure: str | None = spec(Opt(Str()), None)
    data: str | None = spec(Opt(Str()), None)
    limit: int | None = spec(Opt(Int(1)), None)
    pytorch_top1: float | None = spec(Opt(PERCENT), None)
    checkpoint_sha256: str | None = spec(Opt(Str()), None)


@register
@dataclass(frozen=True, kw_only=True)
class DeviceAccuracy(Record):
    """Top-1 of one file on labelled images from a device's own outputs, against PyTorch's on the same."""

    kind: ClassVar[str] = "device_accuracy"
    grouped: ClassVar[bool] = True

    artifact: str = spec(Str(nonempty=True))
    runtime: str = spec(Str())
    top1: float = spec(PERCENT)
    pytorch_top1: float = spec(PERCENT)
    delta_top1: float = spec(POINTS)
    samples: int = spec(Int(0))
    max_drop: float = spec(Num(0))
    margin: float = spec(Num(0), 0.0)
    discordant: int = spec(Int(0), 0)
    data: str = spec(Str(), "")
    passed: bool = spec(Bool())
    failure: str | None = spec(Opt(Str()), None)


# -- the release's own records ----------------------------------------------------------------------------
@register
@dataclass(frozen=True, kw_only=True)
class StageRecord(Record):
    """A finished release stage unit: the fingerprint of its inputs and the sha256 of each file it made."""

    kind: ClassVar[str] = "release_stages"
    per_artifact: ClassVar[bool] = False

    fingerprint: str = spec(Str(nonempty=True))
    outputs: Mapping[str, str] = spec(MapOf(SHA256), {})
    seconds: float = spec(Num(0), 0.0)
    finished_at: str = spec(Str(), "")


@dataclass(frozen=True, kw_only=True)
class _ReleaseEntry(Record):
    kind: ClassVar[str] = "release"
    per_artifact: ClassVar[bool] = False


@register
@dataclass(frozen=True, kw_only=True)
class ModelFacts(_ReleaseEntry):
    """The model's complexity as the card prints it (params, mult-adds at the input size)."""

    entry: ClassVar[str | None] = "model"

    model: str = spec(Str(nonempty=True))
    input_size: InputSize = spec(Size())
    num_classes: int = spec(Int(1))
    params: int | None = spec(Opt(Int(0)), None)
    mult_adds: int | None = spec(Opt(Int(0)), None)


@register
@dataclass(frozen=True, kw_only=True)
class ReleaseNotes(_ReleaseEntry):
    """The notes of the last release run (what was left out, which device failed)."""

    entry: ClassVar[str | None] = "notes"

    lines: tuple[str, ...] = spec(ListOf(Str()), ())


@register
@dataclass(frozen=True, kw_only=True)
class ProfileFailures(_ReleaseEntry):
    """Devices that could not be used (key -> why) and files that did not run (device -> file -> why)."""

    entry: ClassVar[str | None] = "profile_failures"

    devices: Mapping[str, str] = spec(MapOf(Str()), {})
    artifacts: Mapping[str, Mapping[str, str]] = spec(MapOf(MapOf(Str())), {})


@register
@dataclass(frozen=True, kw_only=True)
class RecipeFallback(_ReleaseEntry):
    """Quantization recipes the devices failed, skipped from then on for the model they were found on."""

    entry: ClassVar[str | None] = "recipe_fallback"

    skip: tuple[str, ...] = spec(ListOf(Str()), ())
    why: Mapping[str, str] = spec(MapOf(Str()), {})
    parent_sha256: str | None = spec(Opt(SHA256), None)


RELEASE_KIND = _ReleaseEntry.kind
