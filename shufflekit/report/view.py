"""What a report shows, read from a release folder's manifest alone: one row per artifact with its
parity, accuracy and latency per device (only results measured on the file as it is now, by sha256),
the devices' facts, and the release's own record (model complexity, data, stages, notes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import Artifact, Manifest

RELEASE_KIND = "release"  # the release's own records: model facts, data, devices, notes
STAGES_KIND = "release_stages"  # one record per finished stage unit (fingerprint, outputs)
TIMES_KIND = "latency_times"  # per-iteration times of a latency entry (the distribution plot)
DEVICE_PARITY_KIND = "device_parity"  # validate.device_parity: each device's outputs against PyTorch
DEVICE_ACCURACY_KIND = "device_accuracy"  # validate.device_parity: labelled images classified on each device
FORMAT_ORDER = {"onnx": 0, "tflite": 1}
PRECISION_ORDER = {"fp32": 0, "fp16": 1, "dynamic": 2, "int8": 3}


@dataclass
class ArtifactRow:
    artifact: Artifact
    parity: dict[str, Any] | None
    accuracy: dict[str, Any] | None
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)  # device -> latency entry
    op_profile: dict[str, dict[str, Any]] = field(default_factory=dict)  # device -> op profile entry
    device_parity: dict[str, dict[str, Any]] = field(default_factory=dict)  # device -> its outputs vs PyTorch
    device_accuracy: dict[str, dict[str, Any]] = field(default_factory=dict)  # device -> its own top-1
    measured_on: set[str] = field(default_factory=set)  # devices with a latency entry, emulated ones included

    @property
    def name(self) -> str:
        return self.artifact.name

    @property
    def key(self) -> str:
        return self.artifact.key

    @property
    def parity_passed(self) -> bool | None:
        return None if self.parity is None else bool(self.parity.get("passed"))

    @property
    def top1(self) -> float | None:
        return accuracy_value(self.accuracy, "top1")

    @property
    def top1_delta(self) -> float | None:
        return accuracy_value(self.accuracy, "delta")

    @property
    def accuracy_passed(self) -> bool | None:
        if self.accuracy is None or "passed" not in self.accuracy:
            return None
        return bool(self.accuracy["passed"])

    def problems(self, view: "ReleaseView", device: str) -> list[str]:
        """Why this file must not ship to ``device`` (empty: it holds there)."""
        found = []
        if self.parity_passed is False:
            found.append(f"parity failed on this computer ({((self.parity or {}).get('failures') or ['?'])[0]})")
        if self.accuracy_passed is False:
            found.append(f"top-1 {self.top1:.1f}% is {-(self.top1_delta or 0):.1f} points below PyTorch"
                         if self.top1 is not None else "failed the accuracy gate")
        checked = self.device_parity.get(device)
        if checked is not None and not checked.get("passed") and self.parity_passed is not False:
            found.append(f"parity failed on the device ({(checked.get('failures') or ['?'])[0]})")
        accuracy = self.device_accuracy.get(device)
        if accuracy is not None and not accuracy.get("passed"):
            found.append(str(accuracy.get("failure") or "failed the accuracy gate on the device"))
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
        value = entry.get("per_image_p50_ms")
        if value is None:
            value = entry["latency_ms"].get("p50_ms")  # None where a native tool prints no p50
        return None if value is None else float(value)


@dataclass
class ReleaseView:
    folder: Path
    manifest: Manifest
    rows: list[ArtifactRow]
    devices: list[str]  # devices with latency figures, "local" first
    device_facts: dict[str, dict[str, Any]]
    pytorch_accuracy: dict[str, Any] | None
    record: dict[str, dict[str, Any]]  # the release's own records (RELEASE_KIND)
    emulated: dict[str, str] = field(default_factory=dict)  # device -> its emulator: latency never shown as speed

    @property
    def meta(self):  # noqa: ANN201 - ModelMeta
        return self.manifest.meta

    @property
    def model_facts(self) -> dict[str, Any]:
        return self.record.get("model", {})

    def device_failure(self, device: str) -> str | None:
        """Why ``device`` could not be used at all in the last release, if it could not."""
        return ((self.record.get("profile_failures") or {}).get("devices") or {}).get(device)

    def profile_failure(self, device: str, artifact: str) -> str | None:
        """Why ``artifact`` did not run on ``device`` in the last release, if it did not."""
        return ((self.record.get("profile_failures") or {}).get("artifacts") or {}).get(device, {}).get(artifact)

    @property
    def has_accuracy(self) -> bool:
        return any(r.top1 is not None for r in self.rows)

    def verdicts(self) -> list["DeviceVerdict"]:
        """Ship or do not ship, per device: every file that holds there, and why the others do not."""
        found = []
        for device in self.devices or ["local"]:  # no device profiled yet: this computer's checks alone
            problems = {r.name: r.problems(self, device) for r in self.rows}
            found.append(DeviceVerdict(device, self.emulated.get(device),
                                       [r.name for r in self.rows if not problems[r.name]],
                                       {n: p for n, p in problems.items() if p},
                                       parity_on_device=any(device in r.device_parity for r in self.rows),
                                       accuracy_on_device=any(device in r.device_accuracy for r in self.rows),
                                       profiled=bool(self.devices), unusable=self.device_failure(device)))
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
            how = (" and ".join(checks) + " on the device" if checks else
                   "ran there; parity and accuracy judged on this computer" if self.profiled else
                   "checked on this computer; not profiled on any device")
            return f"{where}: all {total} files hold ({how})"
        if self.unusable:
            return f"{where}: the device could not be used ({self.unusable})"
        if not self.holds:
            return f"{where}: none of the {total} files holds"
        return f"{where}: {', '.join(self.fails)} {'fails' if len(self.fails) == 1 else 'fail'} " \
               f"({len(self.holds)} of {total} hold)"

    @property
    def word(self) -> str:
        return "SHIP" if self.ship else "DO NOT SHIP"

    def reasons(self) -> list[str]:
        if self.unusable:
            return []  # one reason for every file: said in the headline
        return [f"{name}: {'; '.join(why)}" for name, why in self.fails.items()]


def accuracy_value(entry: dict[str, Any] | None, what: str) -> float | None:
    """top-1 / top-5 in percent, or the top-1 delta against PyTorch in points, from an accuracy entry
    (the evaluate command writes ``top1``/``top5`` as percentages and ``top1_delta``)."""
    if not entry:
        return None
    keys = {"top1": ("top1", "top1_percent"), "top5": ("top5", "top5_percent"),
            "delta": ("top1_delta", "delta_top1", "delta")}[what]
    for key in keys:
        value = entry.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def _sort_key(artifact: Artifact) -> tuple[int, int, str]:
    return (FORMAT_ORDER.get(artifact.format, 9), PRECISION_ORDER.get(artifact.precision, 9), artifact.name)


def load_view(folder: str | Path, manifest: Manifest | None = None) -> ReleaseView:
    manifest = manifest or Manifest.load(folder)
    parity = manifest.results("parity")
    accuracy = manifest.results("accuracy")
    devices = manifest.groups("latency")
    devices.sort(key=lambda d: (d != "local", d))
    latency = {d: manifest.results("latency", group=d) for d in devices}
    for device, entries in latency.items():  # the release keeps per-iteration times beside the figures
        times = manifest.results(TIMES_KIND, group=device)
        for name, entry in entries.items():
            if name in times and times[name].get("sha256") == entry.get("sha256"):
                entry["times_ms"] = times[name].get("times_ms")
    ops = {d: manifest.results("op_profile", group=d) for d in manifest.groups("op_profile")}
    on_device = {d: manifest.results(DEVICE_PARITY_KIND, group=d) for d in manifest.groups(DEVICE_PARITY_KIND)}
    accuracy_on = {d: manifest.results(DEVICE_ACCURACY_KIND, group=d) for d in manifest.groups(DEVICE_ACCURACY_KIND)}
    emulated = {}
    for device in devices:
        facts = manifest.group_info("latency", device)
        marked = [e for e in latency[device].values() if e.get("emulated")]
        if facts.get("emulated") or facts.get("emulator") or marked:
            emulated[device] = str(facts.get("emulator") or (marked[0].get("emulator") if marked else "") or "emulated")
    rows = []
    for artifact in sorted(manifest.artifacts, key=_sort_key):
        rows.append(ArtifactRow(
            artifact, parity.get(artifact.name), accuracy.get(artifact.name),
            # an emulator's speed is not the device's: its latency entries are kept out of every table and plot
            {d: latency[d][artifact.name] for d in devices if artifact.name in latency[d] and d not in emulated},
            {d: ops[d][artifact.name] for d in ops if artifact.name in ops[d] and d not in emulated},
            {d: on_device[d][artifact.name] for d in on_device if artifact.name in on_device[d]},
            {d: accuracy_on[d][artifact.name] for d in accuracy_on if artifact.name in accuracy_on[d]},
            {d for d in devices if artifact.name in latency[d]}))
    record = manifest.results(RELEASE_KIND)
    failed = ((record.get("profile_failures") or {}).get("artifacts") or {})
    measured = [d for d in devices if any(d in r.measured_on for r in rows)]
    unusable = ((record.get("profile_failures") or {}).get("devices") or {})
    devices = measured + [d for d in list(failed) + list(unusable) if d not in measured]
    devices = list(dict.fromkeys(devices))
    facts = {d: manifest.group_info("latency", d) for d in devices}
    pytorch = accuracy.get("pytorch")
    return ReleaseView(Path(folder), manifest, rows, devices, facts, pytorch, record, emulated)


def human_size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size} B"


def device_label(device: str, facts: dict[str, Any]) -> str:
    cpu = facts.get("cpu_model") or facts.get("android_model") or facts.get("machine") or ""
    if facts.get("emulator"):
        cpu = f"emulated {facts.get('machine') or ''}: {facts['emulator']}"
    return f"{device} ({cpu})" if cpu else device
