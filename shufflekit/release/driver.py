"""The stage driver: every stage plans its units (``Planned``: a unit, the thing it works on, and an
optional check that its result is still in the manifest); the driver skips the units done earlier,
times the rest, marks each one done in the manifest and reports its outcome, once. The stages hold only
what is their own: what a unit is, and how to make it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..artifacts import Manifest
from .state import StageLog, Unit, UnitOutcome, is_done, load_or_none, mark_done

if TYPE_CHECKING:
    from .options import ReleaseOptions

ProgressFn = Callable[[str, int, "int | None"], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Planned(Generic[T]):
    """One unit a stage would run, the item it works on, and what else must hold for a skip (a result
    recorded for the very file: a fingerprint alone does not see a manifest edited since)."""

    unit: Unit
    item: T
    still_valid: Callable[[], bool] | None = None


@dataclass
class Context:
    """What every stage needs: the folder, the options, and where to report what happened."""

    folder: Path
    options: ReleaseOptions
    progress: ProgressFn
    on_event: Callable[[UnitOutcome], None]
    log: StageLog = field(default_factory=StageLog)
    notes: list[str] = field(default_factory=list)  # what the release left out, and why
    device_errors: dict[str, str] = field(default_factory=dict)  # device -> why it cannot be used at all
    artifact_errors: dict[str, dict[str, str]] = field(default_factory=dict)  # device -> artifact -> error
    deferred: list[tuple[Unit, dict[str, str], float]] = field(default_factory=list)  # before a manifest exists
    device_accuracy: Any = None  # validate.accuracy.LabelledArrays every device classifies (with --data)
    labelled: bool | None = None  # whether --data has labels, once asked (data_has_labels)
    ran_ahead: set[Unit] = field(default_factory=set)  # units run before their stage (beside the conversions)

    @property
    def manifest(self) -> Manifest | None:
        return load_or_none(self.folder)

    def data_has_labels(self) -> bool:
        """Whether --data has labels (class folders, an .npz with labels, the demo), which the quantizer's
        accuracy gate needs. Asked once: the planning and the run ask about every unit."""
        if self.options.data is None:
            return False
        if self.labelled is None:
            from ..data import open_images
            from ..errors import DataError

            try:
                self.labelled = open_images(str(self.options.data), split="val").labels is not None
            except (DataError, OSError):
                self.labelled = False
        return self.labelled

    def outcome(self, unit: Unit, status: str, seconds: float = 0.0, note: str = "") -> None:
        self.on_event(self.log.add(UnitOutcome(unit, status, seconds, note)))

    def skip_if_done(
        self, unit: Unit, manifest: Manifest | None, extra_check: Callable[[], bool] | None = None
    ) -> bool:
        if is_done(self.folder, manifest, unit) and (extra_check is None or extra_check()):
            if unit in self.ran_ahead:  # run ahead of its stage in this run: reported once, as ran
                self.ran_ahead.discard(unit)
            else:
                self.outcome(unit, "skipped", note="unchanged")
            return True
        return False

    def pending(self, plans: Iterable[Planned[T]], manifest: Manifest | None = None) -> list[Planned[T]]:
        """The planned units not done earlier; each skipped one is reported."""
        manifest = self.manifest if manifest is None else manifest
        return [plan for plan in plans if not self.skip_if_done(plan.unit, manifest, plan.still_valid)]

    def finish(self, unit: Unit, seconds: float, outputs: Mapping[str, str] | None = None, note: str = "") -> None:
        """Mark ``unit`` done with the sha256 of the files it made, then report it."""
        if self.manifest is not None:
            mark_done(self.folder, unit, outputs or {}, seconds)
        else:  # no manifest to record into before the first export: the export records it
            self.deferred.append((unit, dict(outputs or {}), seconds))
        self.outcome(unit, "ran", seconds, note)

    def keep(self, unit: Unit, outputs: Mapping[str, str], note: str) -> None:
        """Mark ``unit`` done without running it: the folder already holds what it would make."""
        mark_done(self.folder, unit, outputs)
        self.outcome(unit, "skipped", note=note)

    def run(
        self,
        plans: list[Planned[T]],
        work: Callable[[], Any],
        outputs: Callable[[Planned[T], Any], Mapping[str, str]] | None = None,
        note: Callable[[Planned[T], Any], str] | None = None,
    ) -> Any:
        """Run the units ``plans`` by one call of ``work`` (one tool call makes them all), time it, and
        mark and report each unit with its share of the time. Returns what ``work`` returned."""
        if not plans:
            return None
        started = time.perf_counter()
        result = work()
        seconds = (time.perf_counter() - started) / len(plans)
        for plan in plans:
            self.finish(
                plan.unit, seconds, outputs(plan, result) if outputs else None, note(plan, result) if note else ""
            )
        return result

    def record_deferred(self) -> None:
        """Units finished before the folder had a manifest (the demo's training), recorded now."""
        for deferred in self.deferred:
            mark_done(self.folder, *deferred)
        self.deferred.clear()
