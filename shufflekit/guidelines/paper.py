"""The paper's micro-benchmarks as data: Tables 1-4 of seed 000 (ShuffleNet V2, Ma et al., ECCV 2018),
with each row's channel sets for the ARM and the GPU column and the figures the paper measured.

The paper's devices: a Qualcomm Snapdragon 810 with one thread (images/s; Tables 2-4 head that column
"CPU") and an NVIDIA GeForce GTX 1080Ti with cuDNN 7.0 (batches/s). Each table has columns x1, x2 and x4:
the channel numbers of the x1 column multiplied by 2 and 4 (Tables 3 and 4 name them: c = 64/128/256 on
ARM). The figures are the paper's, shown beside ours as the paper's devices; nothing here is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

SOURCE = "seed 000 (ShuffleNet V2 paper)"
PAPER_SCALES = (1, 2, 4)  # the paper's x1, x2, x4 columns
ARM_DEVICE = "paper ARM: Snapdragon 810, 1 thread (images/s)"
GPU_DEVICE = "paper GPU: GTX 1080Ti, cuDNN 7.0 (batches/s)"
COLUMNS = ("arm", "gpu")  # whose x1 channel set the networks are built with


@dataclass(frozen=True)
class PaperRow:
    """One row of a table: its label, the x1 channel numbers of each column, and the paper's figures at
    x1, x2, x4 (ARM in images/s, GPU in batches/s)."""

    label: str
    arm_channels: tuple[int, ...]
    gpu_channels: tuple[int, ...]
    arm: tuple[float, float, float]
    gpu: tuple[float, float, float]
    groups: int = 1  # G2
    fragments: int = 1  # G3: 1x1 convolutions per block
    parallel: bool = False  # G3: side by side (summed) rather than in series
    relu: bool = True  # G4
    shortcut: bool = False  # G4

    def channels(self, column: str) -> tuple[int, ...]:
        return self.arm_channels if column == "arm" else self.gpu_channels


@dataclass(frozen=True)
class PaperTable:
    """One guideline's validation experiment. ``reference_fastest``: the guideline says the first row is
    the fastest (G1-G3: balanced widths, no groups, one fragment); False: it is the slowest (G4: removing
    element-wise operations makes the unit faster)."""

    guideline: str
    source: str
    claim: str
    rows: tuple[PaperRow, ...]
    reference_fastest: bool = True
    size: int = 56  # the feature map's height and width the paper states
    size_stated: bool = True

    @property
    def reference(self) -> PaperRow:
        return self.rows[0]

    def row(self, label: str) -> PaperRow:
        for row in self.rows:
            if row.label == label:
                return row
        raise UsageError(
            f"{self.guideline} has no row {label!r}", hint=f"rows: {', '.join(r.label for r in self.rows)}"
        )


G1 = PaperTable(
    "G1",
    f"{SOURCE}, Table 1",
    "equal channel width minimizes memory access cost: c1:c2 = 1:1 is the fastest at equal FLOPs",
    (
        PaperRow("1:1", (32, 32), (128, 128), (76.2, 21.7, 5.3), (1480, 723, 232)),
        PaperRow("1:2", (22, 44), (90, 180), (72.9, 20.5, 5.1), (1296, 586, 206)),
        PaperRow("1:6", (13, 78), (52, 312), (69.1, 17.9, 4.6), (876, 489, 189)),
        PaperRow("1:12", (9, 108), (36, 432), (57.6, 15.1, 4.4), (748, 392, 163)),
    ),
)
G2 = PaperTable(
    "G2",
    f"{SOURCE}, Table 2",
    "excessive group convolution increases memory access cost: g = 1 is the fastest at equal FLOPs",
    (
        PaperRow("g=1", (64,), (128,), (40.0, 10.2, 2.3), (2451, 1289, 437), groups=1),
        PaperRow("g=2", (90,), (180,), (35.0, 9.5, 2.2), (1725, 873, 341), groups=2),
        PaperRow("g=4", (128,), (256,), (32.9, 8.7, 2.1), (1026, 644, 338), groups=4),
        PaperRow("g=8", (180,), (360,), (27.8, 7.5, 1.8), (634, 445, 230), groups=8),
    ),
)
G3 = PaperTable(
    "G3",
    f"{SOURCE}, Table 3 and Appendix Fig. 1",
    "network fragmentation reduces the degree of parallelism: one fragment is the fastest at equal FLOPs",
    (
        PaperRow("1-fragment", (64,), (128,), (40.2, 10.1, 2.3), (2446, 1274, 434)),
        PaperRow("2-fragment-series", (64,), (128,), (38.6, 10.1, 2.2), (1790, 909, 336), fragments=2),
        PaperRow("4-fragment-series", (64,), (128,), (38.4, 10.1, 2.3), (752, 745, 349), fragments=4),
        PaperRow("2-fragment-parallel", (64,), (128,), (33.4, 9.1, 2.2), (1537, 803, 320), fragments=2, parallel=True),
        PaperRow("4-fragment-parallel", (64,), (128,), (35.0, 8.4, 2.1), (691, 572, 292), fragments=4, parallel=True),
    ),
)
G4 = PaperTable(
    "G4",
    f"{SOURCE}, Table 4",
    "element-wise operations are non-negligible: the bottleneck unit without ReLU and/or shortcut is faster",
    (
        PaperRow(
            "ReLU yes, shortcut yes", (32,), (32,), (56.7, 16.9, 5.0), (2427, 2066, 1436), relu=True, shortcut=True
        ),
        PaperRow(
            "ReLU yes, shortcut no", (32,), (32,), (61.9, 18.8, 5.2), (2647, 2256, 1735), relu=True, shortcut=False
        ),
        PaperRow(
            "ReLU no, shortcut yes", (32,), (32,), (57.3, 18.2, 5.1), (2672, 2121, 1458), relu=False, shortcut=True
        ),
        PaperRow(
            "ReLU no, shortcut no", (32,), (32,), (66.3, 20.2, 5.4), (2842, 2376, 1782), relu=False, shortcut=False
        ),
    ),
    reference_fastest=False,
    size_stated=False,  # Table 4's caption gives no input size; the other three say 56x56
)

TABLES: dict[str, PaperTable] = {t.guideline: t for t in (G1, G2, G3, G4)}


def paper_table(guideline: str) -> PaperTable:
    key = guideline.strip().upper()
    if key not in TABLES:
        raise UsageError(f"unknown guideline {guideline!r}", hint=f"use one or more of {', '.join(TABLES)}")
    return TABLES[key]


def paper_figure(row: PaperRow, column: str, scale: int) -> float | None:
    """The paper's figure for ``row`` at ``scale`` in ``column`` (arm/gpu); None where it has no column."""
    if scale not in PAPER_SCALES:
        return None
    figures = row.arm if column == "arm" else row.gpu
    return figures[PAPER_SCALES.index(scale)]
