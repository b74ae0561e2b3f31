"""`shufflekit guidelines`: build the chosen guideline networks into a folder, measure them on each
device with the profile machinery (``runtimes.profile.profile_devices``: local, ssh://, adb://,
emulated boards, concurrently), and read the tables back from the manifest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import Manifest
from ..errors import UsageError
from .build import FORMATS, BuiltNet, build_folder, check_formats
from .networks import BenchNet, networks
from .paper import COLUMNS, PAPER_SCALES, TABLES
from .tables import GuidelineTable, guideline_tables

ProgressFn = Callable[[str, int, "int | None"], None]
DEFAULT_THREADS = 1  # the paper's ARM column: "a single thread is used"


@dataclass(frozen=True)
class GuidelineOptions:
    guidelines: tuple[str, ...] = tuple(TABLES)
    scales: tuple[int, ...] = PAPER_SCALES
    size: int = 56
    column: str = "arm"
    formats: tuple[str, ...] = FORMATS
    threads: int = DEFAULT_THREADS
    warmup: int = 5
    iters: int = 50
    provider: str = "cpu"
    rounds: int = 1  # every file measured this many times in turn; each keeps its median round

    def checked(self) -> GuidelineOptions:
        chosen = tuple(dict.fromkeys(g.strip().upper() for g in self.guidelines if g.strip()))
        bad = [g for g in chosen if g not in TABLES]
        if bad or not chosen:
            raise UsageError(
                f"unknown guideline {', '.join(bad) or '(none)'}", hint=f"use --guideline with {','.join(TABLES)}"
            )
        scales = tuple(dict.fromkeys(self.scales))
        if not scales or any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 16 for s in scales):
            raise UsageError(f"scales {list(self.scales)} are not integers from 1 to 16", hint="use e.g. --scale 1,2,4")
        if self.column not in COLUMNS:
            raise UsageError(f"unknown channel column {self.column!r}", hint=f"use one of {', '.join(COLUMNS)}")
        if self.rounds < 1:
            raise UsageError(f"rounds must be at least 1, got {self.rounds}", hint="pass --rounds 1 or more")
        if self.threads < 1:
            raise UsageError(f"threads must be at least 1, got {self.threads}", hint="pass --threads 1 or more")
        return GuidelineOptions(
            guidelines=tuple(g for g in TABLES if g in chosen),
            scales=tuple(sorted(scales)),
            size=self.size,
            column=self.column,
            formats=check_formats(self.formats),
            threads=self.threads,
            warmup=self.warmup,
            iters=self.iters,
            provider=self.provider,
            rounds=self.rounds,
        )

    def nets(self) -> list[BenchNet]:
        return [n for g in self.guidelines for n in networks(g, scales=self.scales, size=self.size, column=self.column)]


@dataclass
class GuidelineRun:
    folder: Path
    options: GuidelineOptions
    built: list[BuiltNet]
    tables: list[GuidelineTable]
    devices: list[str] = field(default_factory=list)
    device_facts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self.options).items()},
            "devices": self.devices,
            "device_facts": self.device_facts,
            "networks": [
                {
                    "name": b.net.name,
                    **b.net.to_dict(),
                    "mult_adds": b.complexity.mult_adds,
                    "memory_access": b.complexity.memory_access,
                    "params": b.complexity.params,
                    "artifacts": [a.name for a in b.artifacts],
                    "reused": b.reused,
                }
                for b in self.built
            ],
            "tables": [t.to_dict() for t in self.tables],
        }


def run_guidelines(
    out: str | Path,
    options: GuidelineOptions | None = None,
    *,
    devices: Sequence[str] = ("local",),
    connect: Any = None,
    progress: ProgressFn | None = None,
) -> GuidelineRun:
    """Build (or reuse) the networks in ``out``, measure each file on each device, return the tables."""
    from ..runtimes import RuntimeOptions
    from ..runtimes.fanout import device_keys
    from ..runtimes.profile import ProfileReport, ProfileSettings, profile_devices
    from ..runtimes.rounds import keep_median_round

    options = (options or GuidelineOptions()).checked()
    runtime = RuntimeOptions(provider=options.provider, threads=options.threads)
    settings = ProfileSettings(warmup=options.warmup, iters=options.iters, parity=False)
    devices = list(dict.fromkeys(devices)) or ["local"]
    device_keys(devices, getattr(connect, "ssh_config", None))  # a bad address is named before any work
    built = build_folder(out, options.nets(), formats=options.formats, progress=progress)
    names = [a.name for b in built for a in b.artifacts]
    by_device: dict[str, list[ProfileReport]] = {}
    for _ in range(options.rounds):  # A, B, C... then A, B, C... again: a change of load hits every row alike
        reports = profile_devices(
            out, names, devices=devices, options=runtime, settings=settings, connect=connect, progress=progress
        )
        for report in reports:
            by_device.setdefault(report.device, []).append(report)
    keys = list(by_device)
    for rounds in by_device.values():
        keep_median_round(Path(out), rounds)  # the manifest, and so the tables and a later report, keep the median
    manifest = Manifest.load(out)
    facts = {k: (f.to_dict() if (f := manifest.device_facts(k)) is not None else {}) for k in keys}
    tables = guideline_tables(manifest, devices=keys, artifacts=names)
    return GuidelineRun(Path(out), options, built, tables, keys, facts)
