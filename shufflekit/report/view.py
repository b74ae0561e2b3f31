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

    @property
    def meta(self):  # noqa: ANN201 - ModelMeta
        return self.manifest.meta

    @property
    def model_facts(self) -> dict[str, Any]:
        return self.record.get("model", {})

    def profile_failure(self, device: str, artifact: str) -> str | None:
        """Why ``artifact`` did not run on ``device`` in the last release, if it did not."""
        return ((self.record.get("profile_failures") or {}).get("artifacts") or {}).get(device, {}).get(artifact)

    @property
    def has_accuracy(self) -> bool:
        return any(r.top1 is not None for r in self.rows)


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
    rows = []
    for artifact in sorted(manifest.artifacts, key=_sort_key):
        rows.append(ArtifactRow(
            artifact, parity.get(artifact.name), accuracy.get(artifact.name),
            {d: latency[d][artifact.name] for d in devices if artifact.name in latency[d]},
            {d: ops[d][artifact.name] for d in ops if artifact.name in ops[d]},
            {d: on_device[d][artifact.name] for d in on_device if artifact.name in on_device[d]}))
    record = manifest.results(RELEASE_KIND)
    failed = ((record.get("profile_failures") or {}).get("artifacts") or {})
    measured = [d for d in devices if any(d in r.latency for r in rows)]
    devices = measured + [d for d in failed if d not in measured]
    facts = {d: manifest.group_info("latency", d) for d in devices}
    pytorch = accuracy.get("pytorch")
    return ReleaseView(Path(folder), manifest, rows, devices, facts, pytorch, record)


def human_size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size} B"


def device_label(device: str, facts: dict[str, Any]) -> str:
    cpu = facts.get("cpu_model") or facts.get("android_model") or facts.get("machine") or ""
    return f"{device} ({cpu})" if cpu else device
