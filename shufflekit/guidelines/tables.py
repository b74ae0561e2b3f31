"""The guideline tables from a folder's manifest alone (the CLI and the report read them the same way):
one table per guideline, device and format, rows as in the paper, our images/s at each scale beside
the measured multiply-adds, the paper's ARM and GPU figures beside, and a verdict per row.

Verdict: the guideline's direction at every scale measured. G1-G3 say the first row (1:1, g = 1,
1-fragment) is the fastest: another row is *reproduced* where it is slower than the first at each
scale. G4 says removing ReLU and/or the shortcut makes the unit faster: a row is *reproduced* where it
is faster than the full unit at each scale. The first row is the *reference*. On an emulated device no
speed is shown and no verdict given (an emulator's speed is not the device's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..artifacts import Artifact, Manifest
from ..records import Latency
from .networks import BenchNet
from .paper import ARM_DEVICE, GPU_DEVICE, PaperRow, PaperTable, paper_figure, paper_table

REFERENCE = "reference"
REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURED = "not measured"
EMULATED = "emulated: no speed"


@dataclass(frozen=True)
class Cell:
    """One network (a row at one scale) on one device in one format."""

    scale: int
    channels: str
    mult_adds: int
    memory_access: int
    images_per_s: float | None  # 1000 / per-image p50; None: not measured here, or emulated
    p50_ms: float | None
    artifact: str


@dataclass(frozen=True)
class TableRow:
    label: str
    cells: tuple[Cell, ...]  # one per scale, in the table's scale order
    paper_arm: tuple[float | None, ...]
    paper_gpu: tuple[float | None, ...]
    verdict: str
    failing_scales: tuple[int, ...] = ()
    paper_arm_holds: bool | None = None  # the paper's own figures in the guideline's direction (None: reference)
    paper_gpu_holds: bool | None = None


@dataclass(frozen=True)
class GuidelineTable:
    guideline: str
    source: str
    claim: str
    device: str
    format: str
    column: str  # whose channel set: arm / gpu
    size: int
    scales: tuple[int, ...]
    rows: tuple[TableRow, ...]
    emulated: bool = False
    threads: int | None = None
    runtime: str | None = None
    rounds: int = 1  # interleaved rounds the figures are the median of (1: the manifest's one measurement)
    paper_devices: tuple[str, str] = (ARM_DEVICE, GPU_DEVICE)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def reproduced(self) -> int:
        return sum(r.verdict == REPRODUCED for r in self.rows)

    @property
    def judged(self) -> int:
        return sum(r.verdict in (REPRODUCED, NOT_REPRODUCED) for r in self.rows)

    def speeds(self, row: TableRow) -> list[str]:
        """The row's images/s at each scale as the tables print them ("emulated" on an emulated device,
        empty where not measured): one wording for the terminal and report.html."""
        by_scale = {c.scale: c for c in row.cells}
        return [
            "emulated"
            if self.emulated
            else (
                "" if by_scale.get(s) is None or by_scale[s].images_per_s is None else f"{by_scale[s].images_per_s:.1f}"
            )
            for s in self.scales
        ]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reproduced"], data["judged"] = self.reproduced, self.judged
        return data


def guideline_artifacts(manifest: Manifest) -> list[tuple[Artifact, BenchNet]]:
    """The folder's artifacts that are guideline networks, with the network each one is."""
    found = []
    for art in manifest.artifacts:
        description = art.options.get("guideline")
        if isinstance(description, dict):
            try:
                found.append((art, BenchNet.from_dict(description)))
            except ValueError:
                continue
    return found


def guideline_tables(
    manifest: Manifest,
    *,
    devices: Sequence[str] | None = None,
    artifacts: Iterable[str] | None = None,
) -> list[GuidelineTable]:
    """Every table the manifest's measurements make, per device (those given, or every device with
    latency figures) and format; ``artifacts``: only these files (one run's), else all of them. A file
    measured in several interleaved rounds has its median round in the manifest (runtimes.rounds)."""
    wanted = set(artifacts) if artifacts is not None else None
    nets = [(a, n) for a, n in guideline_artifacts(manifest) if wanted is None or a.name in wanted]
    if not nets:
        return []
    devices = list(devices) if devices is not None else manifest.groups(Latency)
    tables = []
    for device in devices:
        latency = manifest.results(Latency, group=device)
        groups: dict[tuple[str, str, str, int], list[tuple[Artifact, BenchNet]]] = {}
        for art, net in nets:
            groups.setdefault((net.guideline, art.format, net.column, net.size), []).append((art, net))
        for (guideline, fmt, column, size), members in sorted(groups.items(), key=lambda kv: _order(kv[0])):
            tables.append(_table(paper_table(guideline), device, fmt, column, size, members, latency))
    return tables


def _order(key: tuple[str, str, str, int]) -> tuple[Any, ...]:
    guideline, fmt, column, size = key
    return (guideline, ("onnx", "tflite").index(fmt) if fmt in ("onnx", "tflite") else 9, column, size)


def _table(
    paper: PaperTable,
    device: str,
    fmt: str,
    column: str,
    size: int,
    members: list[tuple[Artifact, BenchNet]],
    latency: dict[str, Latency],
) -> GuidelineTable:
    scales = tuple(sorted({n.scale for _, n in members}))
    by_key = {(n.row, n.scale): (a, n) for a, n in members}
    measured = [latency[a.name] for a, _ in members if a.name in latency]
    emulated = any(m.emulated for m in measured)
    rows_cells: dict[str, list[Cell]] = {}
    for row in paper.rows:
        cells = []
        for scale in scales:
            if (row.label, scale) not in by_key:
                continue
            art, net = by_key[(row.label, scale)]
            counted = art.options.get("complexity") or {}
            entry = latency.get(art.name)
            p50 = entry.per_image_p50_ms if entry is not None and not entry.emulated else None
            cells.append(
                Cell(
                    scale=scale,
                    channels=net.channels_text,
                    mult_adds=int(counted.get("mult_adds", 0)),
                    memory_access=int(counted.get("memory_access", 0)),
                    images_per_s=1000.0 / p50 if p50 else None,
                    p50_ms=p50,
                    artifact=art.name,
                )
            )
        if cells:
            rows_cells[row.label] = cells
    reference = rows_cells.get(paper.reference.label, [])
    rows = tuple(
        _row(paper, row, rows_cells[row.label], reference, column, scales, emulated)
        for row in paper.rows
        if row.label in rows_cells
    )
    notes = []
    if not paper.size_stated:
        notes.append(f"{paper.source} gives no input size; measured at {size}x{size} like Tables 1-3")
    threads = next((m.threads for m in measured if m.threads is not None), None)
    runtime = next((m.runtime for m in measured if m.runtime), None)
    return GuidelineTable(
        guideline=paper.guideline,
        source=paper.source,
        claim=paper.claim,
        device=device,
        format=fmt,
        column=column,
        size=size,
        scales=scales,
        rows=rows,
        emulated=emulated,
        rounds=max((int(m.extra.get("rounds", 1)) for m in measured), default=1),
        threads=threads,
        runtime=runtime,
        notes=tuple(notes),
    )


def _faster_as_said(paper: PaperTable, speed: float, reference: float) -> bool:
    return speed < reference if paper.reference_fastest else speed > reference


def _row(
    paper: PaperTable,
    row: PaperRow,
    cells: list[Cell],
    reference: list[Cell],
    column: str,
    scales: tuple[int, ...],
    emulated: bool,
) -> TableRow:
    arm = tuple(paper_figure(row, "arm", s) for s in scales)
    gpu = tuple(paper_figure(row, "gpu", s) for s in scales)
    is_reference = row.label == paper.reference.label

    def holds(figures: tuple[float | None, ...], base: tuple[float | None, ...]) -> bool | None:
        pairs = [(f, b) for f, b in zip(figures, base) if f is not None and b is not None]
        if is_reference or not pairs:
            return None
        return all(_faster_as_said(paper, f, b) for f, b in pairs)

    ref_arm = tuple(paper_figure(paper.reference, "arm", s) for s in scales)
    ref_gpu = tuple(paper_figure(paper.reference, "gpu", s) for s in scales)
    base_row = TableRow(
        label=row.label,
        cells=tuple(cells),
        paper_arm=arm,
        paper_gpu=gpu,
        verdict=REFERENCE,
        paper_arm_holds=holds(arm, ref_arm),
        paper_gpu_holds=holds(gpu, ref_gpu),
    )
    if is_reference:
        return base_row
    if emulated:
        return replace(base_row, verdict=EMULATED)
    base = {c.scale: c.images_per_s for c in reference}
    compared = [
        (c.scale, c.images_per_s, base[c.scale])
        for c in cells
        if c.images_per_s is not None and base.get(c.scale) is not None
    ]
    if not compared:
        return replace(base_row, verdict=NOT_MEASURED)
    failing = tuple(s for s, v, b in compared if b is not None and not _faster_as_said(paper, v, b))
    return replace(base_row, verdict=NOT_REPRODUCED if failing else REPRODUCED, failing_scales=failing)
