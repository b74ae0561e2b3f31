"""A sweep folder's table and plot (``shufflekit sweep``): speed against multiply-adds across the variants,
per device, like Figure 1(c)(d) of the ShuffleNet v2 paper, measured on the user's own devices.

A sweep folder holds one export folder per variant (``FOLDER/<model>/manifest.json``, each a folder every
other command reads as it is) and the sweep's index, ``sweep.json``: the variants with their complexity and
the paper's figure where it has one, the options they were made with, and the files the sweep wrote.
Latency is read from each variant's own manifest (the single source of truth: ``shufflekit profile
FOLDER/<model> --device X`` adds a device the next ``shufflekit report FOLDER`` shows). The index is read
strictly; a damaged one is refused in one line."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..artifacts import MANIFEST_NAME, Manifest, utc_now
from ..errors import ManifestError, ShufflekitError, UsageError
from ..files import atomic_write_bytes, atomic_write_text, sha256_file
from ..folder import ReleaseFolder
from ..metadata import InputSize
from ..records import DeviceFacts, Latency

SWEEP_NAME = "sweep.json"
SWEEP_SCHEMA = "shufflekit.sweep/1"
SWEEP_HTML = "report.html"
SWEEP_PLOT = "sweep.png"
SWEEP_FILES = (SWEEP_HTML, SWEEP_PLOT)  # what the sweep writes beside its index
PAPER_DEVICE = "Snapdragon 810"
PAPER_COLUMN = f"paper: {PAPER_DEVICE} (img/s)"
MAC_NOTE = (
    "MAC: memory access cost, measured as the elements every operator of one batch-1 inference reads "
    "(activations and weights) and writes, BatchNorm folded, views free (for a 1x1 convolution exactly the "
    "paper's hw(c1+c2)+c1c2)"
)
WEIGHTS_NOTE = "random weights: they do not change the speed"
_HINT = "run `shufflekit sweep --out FOLDER` again to rewrite it"


def _fail(where: str, value: Any, expected: str) -> ManifestError:
    return ManifestError(f"{SWEEP_NAME} field {where} is {json.dumps(value)[:60]}, expected {expected}", hint=_HINT)


def _get(
    data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, *, optional: bool = False
) -> Any:
    if key not in data:
        if optional:
            return None
        raise ManifestError(f"{SWEEP_NAME} field {where}.{key} is missing", hint=_HINT)
    value = data[key]
    if value is None and optional:
        return None
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise _fail(f"{where}.{key}", value, getattr(kind, "__name__", "a value"))
    if not isinstance(value, kind):
        names = kind if isinstance(kind, tuple) else (kind,)
        raise _fail(f"{where}.{key}", value, " or ".join(k.__name__ for k in names))
    return value


def _plain_name(name: str, where: str) -> str:
    """A file or folder name inside the sweep folder: no path, no dot-name (nothing outside is read)."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or name in ("..",):
        raise ManifestError(
            f"{SWEEP_NAME} field {where} names {name!r}, not a plain name inside the folder", hint=_HINT
        )
    return name


@dataclass(frozen=True)
class SweepModel:
    """One variant of a sweep: its registry row, its folder, and what it costs (torch's counters)."""

    name: str
    family: str
    width: float
    groups: int | None
    folder: str  # a sub-folder of the sweep folder, an export folder of its own
    params: int
    mult_adds: int
    memory_access: int
    paper_ips: float | None = None  # the paper's Table 8 ARM images/s, where it has this variant

    @property
    def series(self) -> str:
        """The curve this variant belongs to: its name without the width tag (shufflenet_v1_g3_x1_0 ->
        shufflenet_v1_g3), so a new kind of variant is a curve of its own."""
        return re.sub(r"_x\d+(?:_\d+)?(?=_|$)", "", self.name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> SweepModel:
        if not isinstance(data, Mapping):
            raise _fail(where, data, "an object")
        groups = _get(data, "groups", int, where, optional=True)
        paper = _get(data, "paper_ips", (int, float), where, optional=True)
        return cls(
            name=_get(data, "name", str, where),
            family=_get(data, "family", str, where),
            width=float(_get(data, "width", (int, float), where)),
            groups=groups,
            folder=_plain_name(_get(data, "folder", str, where), f"{where}.folder"),
            params=_get(data, "params", int, where),
            mult_adds=_get(data, "mult_adds", int, where),
            memory_access=_get(data, "memory_access", int, where),
            paper_ips=None if paper is None else float(paper),
        )


@dataclass(frozen=True)
class SweepIndex:
    """sweep.json: the variants of a sweep folder and how they were made and measured."""

    input_size: InputSize
    num_classes: int
    formats: tuple[str, ...]
    threads: int | None
    models: tuple[SweepModel, ...]
    devices: tuple[str, ...] = ()  # device keys measured by `shufflekit sweep`
    files: Mapping[str, str] = field(default_factory=dict)  # report files the sweep wrote: name -> sha256
    created_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SWEEP_SCHEMA,
            "input_size": self.input_size.to_json(),
            "num_classes": self.num_classes,
            "formats": list(self.formats),
            "threads": self.threads,
            "weights": WEIGHTS_NOTE,
            "models": [m.to_dict() for m in self.models],
            "devices": list(self.devices),
            "files": dict(self.files),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: Any) -> SweepIndex:
        if not isinstance(data, Mapping) or data.get("schema") != SWEEP_SCHEMA:
            raise ManifestError(f"{SWEEP_NAME} is not a shufflekit sweep index (schema {SWEEP_SCHEMA!r})", hint=_HINT)
        models = _get(data, "models", list, "sweep")
        formats = _get(data, "formats", list, "sweep")
        devices = _get(data, "devices", list, "sweep")
        files = _get(data, "files", dict, "sweep")
        for index, value in enumerate([*formats, *devices]):
            if not isinstance(value, str):
                raise _fail(f"formats/devices[{index}]", value, "a string")
        for name, sha in files.items():
            _plain_name(name, "files")
            if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
                raise _fail(f"files.{name}", sha, "a sha256")
        parsed = tuple(SweepModel.from_dict(m, f"models[{i}]") for i, m in enumerate(models))
        if len({m.folder for m in parsed}) != len(parsed):
            raise ManifestError(f"{SWEEP_NAME} lists a folder twice", hint=_HINT)
        try:
            size = InputSize.from_json(data.get("input_size"), where=f"{SWEEP_NAME} input_size")
        except (TypeError, ValueError) as exc:
            raise ManifestError(str(exc), hint=_HINT) from None
        return cls(
            input_size=size,
            num_classes=_get(data, "num_classes", int, "sweep"),
            formats=tuple(formats),
            threads=_get(data, "threads", int, "sweep", optional=True),
            models=parsed,
            devices=tuple(devices),
            files=dict(files),
            created_at=_get(data, "created_at", str, "sweep", optional=True) or "",
            updated_at=_get(data, "updated_at", str, "sweep", optional=True) or "",
        )


def is_sweep_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / SWEEP_NAME).is_file() and not (folder / MANIFEST_NAME).exists()


def load_index(folder: str | Path) -> SweepIndex:
    path = Path(folder) / SWEEP_NAME
    if not path.is_file():
        raise ManifestError(f"{folder} has no {SWEEP_NAME}", hint="pass a folder written by `shufflekit sweep`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"{path} cannot be read ({type(exc).__name__})", hint=_HINT) from None
    return SweepIndex.from_dict(data)


def save_index(folder: str | Path, index: SweepIndex) -> None:
    atomic_write_text(Path(folder) / SWEEP_NAME, json.dumps(index.to_dict(), indent=2) + "\n")


def size_text(size: InputSize | int) -> str:
    """224 -> 224x224; a size as it prints itself (WIDTHxHEIGHT)."""
    return str(InputSize.of(size))


# -- the rows: one per (device, variant, file) -----------------------------------------------------------
@dataclass(frozen=True)
class SweepRow:
    device: str
    model: SweepModel
    format: str
    p50_ms: float | None  # per image; None on an emulated device (the emulator's speed is no device's)
    us_per_mmac: float | None
    threads: int | None
    runtime: str | None
    emulated: bool

    @property
    def images_per_s(self) -> float | None:
        return None if not self.p50_ms else 1000.0 / self.p50_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "model": self.model.name,
            "series": self.model.series,
            "family": self.model.family,
            "width": self.model.width,
            "groups": self.model.groups,
            "format": self.format,
            "mult_adds": self.model.mult_adds,
            "memory_access": self.model.memory_access,
            "p50_ms": self.p50_ms,
            "images_per_s": self.images_per_s,
            "us_per_mmac": self.us_per_mmac,
            "paper_ips": self.model.paper_ips,
            "threads": self.threads,
            "runtime": self.runtime,
            "emulated": self.emulated,
        }


@dataclass(frozen=True)
class SweepView:
    folder: Path
    index: SweepIndex
    rows: tuple[SweepRow, ...]
    device_facts: Mapping[str, DeviceFacts]
    missing: tuple[str, ...] = ()  # variant folders that could not be read (why)

    @property
    def devices(self) -> list[str]:
        found = list(dict.fromkeys(r.device for r in self.rows))
        return sorted(found, key=lambda d: (d != "local", d))

    def device_rows(self, device: str) -> list[SweepRow]:
        rows = [r for r in self.rows if r.device == device]
        return sorted(rows, key=lambda r: (r.format, r.model.series, r.model.mult_adds))


def load_sweep(folder: str | Path) -> SweepView:
    """The sweep's index and, from every variant's manifest, its fresh fp32 latency on each device."""
    folder = Path(folder)
    index = load_index(folder)
    rows: list[SweepRow] = []
    facts: dict[str, DeviceFacts] = {}
    missing: list[str] = []
    for model in index.models:
        try:
            manifest = Manifest.load(folder / model.folder)
        except ShufflekitError as exc:
            missing.append(f"{model.folder}: {exc.one_line()}")
            continue
        formats = {a.name: a.format for a in manifest.artifacts if a.precision == "fp32"}
        for device in manifest.groups(Latency):
            for name, entry in manifest.results(Latency, group=device).items():
                if name not in formats:
                    continue
                emulated = bool(entry.emulated)
                rows.append(
                    SweepRow(
                        device=device,
                        model=model,
                        format=formats[name],
                        p50_ms=None if emulated else entry.per_image_p50_ms,
                        us_per_mmac=None if emulated else entry.us_per_mmac,
                        threads=entry.threads,
                        runtime=entry.runtime,
                        emulated=emulated,
                    )
                )
            found = manifest.device_facts(device)
            if found is not None:
                facts.setdefault(device, found)
    return SweepView(folder, index, tuple(rows), facts, tuple(missing))


# -- the table ------------------------------------------------------------------------------------------
TABLE_COLUMNS = ["model", "format", "mult-adds", "MAC", "p50 ms", "images/s", "µs per M mult-adds", PAPER_COLUMN]
NUMERIC_COLUMNS = {2, 3, 4, 5, 6, 7}


def table_rows(view: SweepView, device: str) -> list[list[str]]:
    out = []
    for row in view.device_rows(device):
        model = row.model
        out.append(
            [
                model.name,
                row.format,
                f"{model.mult_adds / 1e6:.1f}M",
                f"{model.memory_access / 1e6:.2f}M",
                "emulated" if row.emulated else ("" if row.p50_ms is None else f"{row.p50_ms:.2f}"),
                "" if row.images_per_s is None else f"{row.images_per_s:.1f}",
                "" if row.us_per_mmac is None else f"{row.us_per_mmac:.1f}",
                "" if model.paper_ips is None else f"{model.paper_ips:.1f}",
            ]
        )
    return out


def device_caption(view: SweepView, device: str) -> str:
    facts = view.device_facts.get(device)
    rows = view.device_rows(device)
    threads = sorted({str(r.threads) for r in rows if r.threads is not None})
    parts = [f"{size_text(view.index.input_size)}, batch 1"]
    if threads:
        parts.append(f"{'/'.join(threads)} thread{'s' if threads != ['1'] else ''}")
    if facts is not None:
        cpu = facts.cpu_model or facts.machine
        if cpu:
            parts.append(cpu + (f", {facts.logical_cores} logical cores" if facts.logical_cores else ""))
        load = facts.extra.get("load_average")
        if isinstance(load, list) and load and all(isinstance(x, (int, float)) for x in load):
            parts.append("load average " + " / ".join(f"{x:.1f}" for x in load) + " (1/5/15 min, as measured)")
        if facts.emulated:
            parts.append(f"emulated by {facts.emulator or 'an emulator'}: its speed is not the device's")
    parts.append("images/s = 1000 / p50")
    parts.append(WEIGHTS_NOTE)
    return "; ".join(parts)


# -- the plot -------------------------------------------------------------------------------------------
_FORMAT_MARKERS = {"onnx": "o", "tflite": "s"}
_FORMAT_LINES = {"onnx": "-", "tflite": "--"}


def sweep_plot(view: SweepView) -> bytes | None:
    """One panel per device that measured speed: p50 latency per image against multiply-adds, one line per
    series of variants (and format); None when no device measured speed (only emulated ones)."""
    from .plots import _png, _pyplot

    devices = [d for d in view.devices if any(r.p50_ms is not None for r in view.device_rows(d))]
    if not devices:
        return None
    plt = _pyplot()
    columns = min(len(devices), 2)
    lines = (len(devices) + columns - 1) // columns
    fig, axes = plt.subplots(lines, columns, figsize=(6.4 * columns, 4.4 * lines), squeeze=False)
    for index, device in enumerate(devices):
        ax = axes[index // columns][index % columns]
        curves: dict[tuple[str, str], list[SweepRow]] = {}
        for row in view.device_rows(device):
            if row.p50_ms is not None:
                curves.setdefault((row.model.series, row.format), []).append(row)
        colours = {series: f"C{n % 10}" for n, series in enumerate(sorted({s for s, _ in curves}))}
        for (series, fmt), rows in sorted(curves.items()):
            rows.sort(key=lambda r: r.model.mult_adds)
            ax.plot(
                [r.model.mult_adds / 1e6 for r in rows],
                [r.p50_ms for r in rows],
                color=colours[series],  # one colour per series, the format by line and marker
                marker=_FORMAT_MARKERS.get(fmt, "^"),
                linestyle=_FORMAT_LINES.get(fmt, ":"),
                label=f"{series.removeprefix('shufflenet_').replace('_', ' ')} {fmt}",
            )
            for r in rows:
                ax.annotate(f"{r.model.width:g}x", (r.model.mult_adds / 1e6, r.p50_ms), fontsize=7, alpha=0.7)
        ax.set_xlabel("multiply-adds (M, torch's counter)")
        ax.set_ylabel("p50 latency per image (ms)")
        ax.set_title(device, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for index in range(len(devices), lines * columns):
        axes[index // columns][index % columns].set_visible(False)
    fig.suptitle(f"Speed against FLOPs at {size_text(view.index.input_size)} (ShuffleNet v2 paper, Figure 1 c/d)")
    return _png(fig)


# -- report.html ----------------------------------------------------------------------------------------
def sweep_section(view: SweepView, plot: bytes | None) -> str:
    """The sweep's plot and one table per device, as a report.html section."""
    from .html import _e, _figure, _table

    parts = [
        "<h2>Speed against FLOPs</h2>",
        _figure(
            plot,
            "latency against multiply-adds",
            "Like Figure 1(c)(d) of the ShuffleNet v2 paper, measured on these devices: at equal FLOPs the "
            "variants do not run equally fast.",
        ),
    ]
    for device in view.devices:
        parts.append(f'<h3 style="font-size:15px">{_e(device)}</h3>')
        parts.append(_table(TABLE_COLUMNS, table_rows(view, device), NUMERIC_COLUMNS))
        parts.append(f'<p class="note">{_e(device_caption(view, device))}</p>')
    if not view.devices:
        parts.append('<p class="note">No latency measured yet.</p>')
    parts.append(
        f"<p class=\"note\">{_e(MAC_NOTE)}. Multiply-adds: torch's flop counter (the papers' FLOPs). "
        f"{_e(PAPER_COLUMN)}: the paper's Table 8 ARM figure (single thread, batch 1, 224x224), a reference "
        "measured on the paper's device, not here.</p>"
    )
    if view.missing:
        parts.append('<ul class="note">' + "".join(f"<li>{_e(m)}</li>" for m in view.missing) + "</ul>")
    return "\n".join(parts)


def sweep_html(view: SweepView, plot: bytes | None) -> str:
    from .html import _CSS, _e

    title = f"ShuffleNet sweep at {size_text(view.index.input_size)}"
    folders = ", ".join(m.folder for m in view.index.models)
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{len(view.index.models)} variants ({_e(", ".join(view.index.formats))}, fp32, '
        f"{_e(WEIGHTS_NOTE)}), each an export folder of its own: {_e(folders)}.</p>",
        sweep_section(view, plot),
        '<p class="note">Written from <code>sweep.json</code> and each variant\'s <code>manifest.json</code>; '
        "<code>shufflekit report &lt;folder&gt;</code> rebuilds this page.</p>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )


def check_sweep_files(folder: Path, index: SweepIndex | None, names: Sequence[str] = SWEEP_FILES) -> None:
    """Refuse to write over a same-named file the sweep did not write (a user's report.html)."""
    owned = set(index.files) if index is not None else set()
    for name in names:
        path = folder / name
        if (path.exists() or path.is_symlink()) and name not in owned:
            raise UsageError(
                f"{path} is not a file shufflekit sweep wrote (refusing to replace it)",
                hint="move it away or choose another --out",
            )


def write_sweep_report(folder: str | Path) -> dict[str, str]:
    """Write report.html and sweep.png of a sweep folder from its index and manifests; record them in
    the index. Returns name -> sha256 of what was written (the plot only where a device measured speed)."""
    folder = Path(folder)
    with ReleaseFolder(folder).lock():  # one writer of the index at a time (a sweep, a report)
        view = load_sweep(folder)
        check_sweep_files(folder, view.index)
        plot = sweep_plot(view)
        return _write_files(folder, view, plot)


def _write_files(folder: Path, view: SweepView, plot: bytes | None) -> dict[str, str]:
    written: dict[str, str] = {}
    files = dict(view.index.files)
    if plot is not None:
        atomic_write_bytes(folder / SWEEP_PLOT, plot)
        written[SWEEP_PLOT] = sha256_file(folder / SWEEP_PLOT)
    elif files.pop(SWEEP_PLOT, None) is not None:  # an earlier plot no longer shows what was measured
        (folder / SWEEP_PLOT).unlink(missing_ok=True)
    atomic_write_text(folder / SWEEP_HTML, sweep_html(view, plot))
    written[SWEEP_HTML] = sha256_file(folder / SWEEP_HTML)
    save_index(folder, replace(view.index, files={**files, **written}, updated_at=utc_now()))
    return written
