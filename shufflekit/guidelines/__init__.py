"""The paper's four guidelines on your own device (seed 000, section 2, Tables 1-4): the benchmark
networks in torch, the paper's figures as data, a folder of their ONNX/TFLite files with a manifest, and
the tables with a direction verdict per row. ``run_guidelines`` is what `shufflekit guidelines` calls.

Importing this package imports neither torch nor a runtime (``tables`` and ``paper`` are what the report
reads)."""

from __future__ import annotations

from .networks import BLOCKS, BenchNet, NetComplexity, complexity, network, networks
from .paper import ARM_DEVICE, GPU_DEVICE, PAPER_SCALES, TABLES, PaperRow, PaperTable, paper_table
from .run import GuidelineOptions, GuidelineRun, run_guidelines
from .tables import GuidelineTable, TableRow, guideline_tables

__all__ = [
    "ARM_DEVICE",
    "BLOCKS",
    "GPU_DEVICE",
    "PAPER_SCALES",
    "TABLES",
    "BenchNet",
    "GuidelineOptions",
    "GuidelineRun",
    "GuidelineTable",
    "NetComplexity",
    "PaperRow",
    "PaperTable",
    "TableRow",
    "complexity",
    "guideline_tables",
    "network",
    "networks",
    "paper_table",
    "run_guidelines",
]
