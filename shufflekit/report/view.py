"""What a report shows, read from a release folder's manifest alone: one row per artifact with its
parity, accuracy and latency per device (only results measured on the file as it is now, by sha256),
the devices' facts, and the release's own record (model complexity, data, stages, notes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import Artifact, Manifest, confined_path
from ..files import sha256_file
from ..formats import sort_key
from ..metadata import ModelMeta
from ..records import (
    Accuracy,
    DeviceAccuracy,
    DeviceFacts,
    DeviceParity,
    Latency,
    LatencyTimes,
    ModelFacts,
    OpProfile,
    Parity,
    ProfileFailures,
    RecipeFallback,
    ReleaseNotes,
    StageRecord,
)

# The kinds are the record classes' own (shufflekit.records); these names stay for the callers that import them.
RELEASE_KIND = RecipeFallback.kind  # the release's own records: model facts, notes, failures, recipe fallback
STAGES_KIND = StageRecord.kind
TIMES_KIND = LatencyTimes.kind
DEVICE_PARITY_KIND = DeviceParity.kind
DEVICE_ACCURACY_KIND = DeviceAccuracy.kind


@dataclass
class ArtifactRow:
    artifact: Artifact
    parity: Parity | None
    accuracy: Accuracy | None
    latency: dict[str, Latency] = field(default_factory=dict)  # device -> latency entry
    op_profile: dict[str, OpProfile] = field(default_factory=dict)  # device -> op profile entry
    device_parity: dict[str, DeviceParity] = field(default_factory=dict)  # device -> its outputs vs PyTorch
    device_accuracy: dict[str, DeviceAccuracy] = field(default_factory=dict)  # device -> its own top-1
    measured_on: set[str] = field(default_factory=set)  # devices with a latency entry, emulated ones included
    times_ms: dict[str, tuple[float, ...]] = field(default_factory=dict)  # device -> per-iteration times
    # Set when the bytes in the folder are not the ones measured (changed after the release, or gone): no
    # recorded verdict holds for them, whatever the manifest says.
    file_problem: str | None = None

    @property
    def name(self) -> str:
        return self.artifact.name

    @property
    def key(self) -> str:
        return self.artifact.key

    @property
    def parity_passed(self) -> bool | None:
        if self.file_problem:
            return False
        return None if self.parity is None else self.parity.passed

    @property
    def top1(self) -> float | None:
        return None if self.accuracy is None else float(self.accuracy.top1)

    @property
    def top1_delta(self) -> float | None:
        return None if self.accuracy is None or self.accuracy.delta_top1 is None else float(self.accuracy.delta_top1)

    @property
    def accuracy_passed(self) -> bool | None:
        return None if self.accuracy is None else self.accuracy.passed

    def problems(self, view: ReleaseView, device: str) -> list[str]:
        """Why this file must not ship to ``device`` (empty: it holds there)."""
        if self.file_problem:
            return [f"{self.file_problem}: no figure recorded for it holds; re-run the release"]
        found = []
        if self.parity_passed is False:
            first = (self.parity.failures if self.parity else ()) or ("?",)
            found.append(f"parity failed on this computer ({first[0]})")
        if self.accuracy_passed is False:
            found.append(
                f"top-1 {self.top1:.1f}% is {-(self.top1_delta or 0):.1f} points below PyTorch"
                if self.top1 is not None
                else "failed the accuracy gate"
            )
        checked = self.device_parity.get(device)
        if checked is not None and not checked.passed and self.parity_passed is not False:
            found.append(f"parity failed on the device ({(checked.failures or ('?',))[0]})")
        accuracy = self.device_accuracy.get(device)
        if accuracy is not None and not accuracy.passed:
            found.append(accuracy.failure or "failed the accuracy gate on the device")
        failure = view.profile_failure(device, self.name)
        unusable = view.device_failure(device)
        if unusable:
            found.append(f"the device could not be used: {unusable}")
        elif failure:
            found.append(f"did not run: {failure}")
        elif device not in self.measured_on and view.devices:
            found.append("not run on this device (profile it there)")
        return found

    def p50_ms(self, device: str) -> float | None:
        entry = self.latency.get(device)
        if not entry:
            return None
        value = entry.per_image_p50_ms
        if value is None:
            value = entry.latency_ms.get("p50_ms")  # None where a native tool prints no p50
        return None if value is None else float(value)


@dataclass
class ReleaseView:
    folder: Path
    manifest: Manifest
    rows: list[ArtifactRow]
    devices: list[str]  # devices with latency figures, "local" first
    device_facts: dict[str, DeviceFacts]
    pytorch_accuracy: Accuracy | None
    model_facts: ModelFacts | None = None  # the release's own records (RELEASE_KIND)
    notes: tuple[str, ...] = ()
    failures: ProfileFailures = field(default_factory=ProfileFailures)
    emulated: dict[str, str] = field(default_factory=dict)  # device -> its emulator: latency never shown as speed

    @property
    def meta(self) -> ModelMeta:
        return self.manifest.meta

    def device_failure(self, device: str) -> str | None:
        """Why ``device`` could not be used at all in the last release, if it could not."""
        return self.failures.devices.get(device)

    def profile_failure(self, device: str, artifact: str) -> str | None:
        """Why ``artifact`` did not run on ``device`` in the last release, if it did not."""
        return self.failures.artifacts.get(device, {}).get(artifact)

    @property
    def has_accuracy(self) -> bool:
        return any(r.top1 is not None for r in self.rows)

    def verdicts(self) -> list[DeviceVerdict]:
        """Ship or do not ship, per device: every file that holds there, and why the others do not."""
        found = []
        for device in self.devices or ["local"]:  # no device profiled yet: this computer's checks alone
            problems = {r.name: r.problems(self, device) for r in self.rows}
            found.append(
                DeviceVerdict(
                    device,
                    self.emulated.get(device),
                    [r.name for r in self.rows if not problems[r.name]],
                    {n: p for n, p in problems.items() if p},
                    parity_on_device=any(device in r.device_parity for r in self.rows),
                    accuracy_on_device=any(device in r.device_accuracy for r in self.rows),
                    profiled=bool(self.devices),
                    unusable=self.device_failure(device),
                )
            )
        return found


@dataclass(frozen=True)
class DeviceVerdict:
    device: str
    emulator: str | None
    holds: list[str]  # files that hold on the device
    fails: dict[str, list[str]]  # file -> why not
    parity_on_device: bool = False
    accuracy_on_device: bool = False
    profiled: bool = True
    unusable: str | None = None  # why the device could not be used at all

    @property
    def ship(self) -> bool:
        return not self.fails

    def headline(self) -> str:
        where = f"{self.device} (emulated)" if self.emulator else self.device
        total = len(self.holds) + len(self.fails)
        if self.ship:
            checks = [c for c, on in (("parity", self.parity_on_device), ("accuracy", self.accuracy_on_device)) if on]
            how = (
                " and ".join(checks) + " on the device"
                if checks
                else "ran there; parity and accuracy judged on this computer"
                if self.profiled
                else "checked on this computer; not profiled on any device"
            )
            return f"{where}: all {total} files hold ({how})"
        if self.unusable:
            return f"{where}: the device could not be used ({self.unusable})"
        if not self.holds:
            return f"{where}: none of the {total} files holds"
        return (
            f"{where}: {', '.join(self.fails)} {'fails' if len(self.fails) == 1 else 'fail'} "
            f"({len(self.holds)} of {total} hold)"
        )

    @property
    def word(self) -> str:
        return "SHIP" if self.ship else "DO NOT SHIP"

    def reasons(self) -> list[str]:
        if self.unusable:
            return []  # one reason for every file: said in the headline
        return [f"{name}: {'; '.join(why)}" for name, why in self.fails.items()]


def _sort_key(artifact: Artifact) -> tuple[int, int, str]:
    return (*sort_key(artifact.format, artifact.precision), artifact.name)


def load_view(folder: str | Path, manifest: Manifest | None = None) -> ReleaseView:
    manifest = manifest or Manifest.load(folder)
    parity = manifest.results(Parity)
    accuracy = manifest.results(Accuracy)
    devices = manifest.groups(Latency)
    devices.sort(key=lambda d: (d != "local", d))
    latency = {d: manifest.results(Latency, group=d) for d in devices}
    times = {
        d: {
            name: entry.times_ms
            for name, entry in manifest.results(LatencyTimes, group=d).items()
            if name in latency[d] and entry.sha256 == latency[d][name].sha256
        }
        for d in devices
    }
    ops = {d: manifest.results(OpProfile, group=d) for d in manifest.groups(OpProfile)}
    on_device = {d: manifest.results(DeviceParity, group=d) for d in manifest.groups(DeviceParity)}
    accuracy_on = {d: manifest.results(DeviceAccuracy, group=d) for d in manifest.groups(DeviceAccuracy)}
    emulated = {}
    for device in devices:
        facts = manifest.device_facts(device) or DeviceFacts()
        marked = [e for e in latency[device].values() if e.emulated]
        if facts.emulated or facts.emulator or marked:
            emulated[device] = str(facts.emulator or (marked[0].emulator if marked else "") or "emulated")
    rows = []
    for artifact in sorted(manifest.artifacts, key=_sort_key):
        name = artifact.name
        rows.append(
            ArtifactRow(
                artifact,
                parity.get(name),
                accuracy.get(name),
                # an emulator's speed is not the device's: its latency entries are kept out of every table and plot
                {d: latency[d][name] for d in devices if name in latency[d] and d not in emulated},
                {d: ops[d][name] for d in ops if name in ops[d] and d not in emulated},
                {d: on_device[d][name] for d in on_device if name in on_device[d]},
                {d: accuracy_on[d][name] for d in accuracy_on if name in accuracy_on[d]},
                {d for d in devices if name in latency[d]},
                {d: times[d][name] for d in devices if name in times[d] and d not in emulated},
                file_problem=file_problem(artifact, folder),
            )
        )
    failures = manifest.results(ProfileFailures).get(ProfileFailures.entry or "") or ProfileFailures()
    notes = manifest.results(ReleaseNotes).get(ReleaseNotes.entry or "")
    model = manifest.results(ModelFacts).get(ModelFacts.entry or "")
    measured = [d for d in devices if any(d in r.measured_on for r in rows)]
    devices = measured + [d for d in list(failures.artifacts) + list(failures.devices) if d not in measured]
    devices = list(dict.fromkeys(devices))
    device_facts = {d: manifest.device_facts(d) or DeviceFacts() for d in devices}
    return ReleaseView(
        Path(folder),
        manifest,
        rows,
        devices,
        device_facts,
        accuracy.get("pytorch"),
        model,
        notes.lines if notes else (),
        failures,
        emulated,
    )


def file_problem(artifact: Artifact, folder: str | Path) -> str | None:
    """What is wrong with the file in the folder, measured against the bytes the manifest recorded: None
    when it is the file that was made and measured (hashed again: the report never vouches for a file
    changed since)."""
    path = confined_path(folder, artifact.name, field=f"artifacts[{artifact.name}].name")
    if not path.is_file():
        return "the file is missing from the folder"
    if path.stat().st_size != artifact.size_bytes or sha256_file(path) != artifact.sha256:
        return "the file was changed after it was made and measured (sha256 mismatch)"
    return None


def human_size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size} B"


def device_label(device: str, facts: DeviceFacts) -> str:
    cpu = facts.cpu_model or facts.android_model or facts.machine or ""
    if facts.emulator:
        cpu = f"emulated {facts.machine or ''}: {facts.emulator}"
    return f"{device} ({cpu})" if cpu else device
