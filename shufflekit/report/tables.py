"""The artifact table the model card, the HTML report and the CLI summary share, as plain strings."""

from __future__ import annotations

from ..records import ConvPeak, DeviceFacts
from .view import ArtifactRow, ReleaseView, human_size


def parity_cell(row: ArtifactRow) -> str:
    if row.file_problem:
        return "FILE CHANGED" if "changed" in row.file_problem else "FILE MISSING"
    parity = row.parity
    if parity is None:
        return "not run"
    metrics = parity.metrics or {}
    detail = []
    if "top1" in metrics:
        detail.append(f"top-1 agree {metrics['top1'] * 100:.0f}%")
    if "max_abs" in metrics:
        detail.append(f"max abs {metrics['max_abs']:.1e}")
    verdict = "pass" if parity.passed else "FAIL"
    return f"{verdict} ({', '.join(detail)})" if detail else verdict


def accuracy_cell(row: ArtifactRow) -> str:
    top1 = row.top1
    if top1 is None:
        return "n/a"
    delta = row.top1_delta
    text = f"{top1:.1f}%"
    if delta is not None:
        text += f" ({delta:+.1f})"
    if row.accuracy_passed is False:
        text += " FAIL"
    return text


def latency_cell(view: ReleaseView, row: ArtifactRow, device: str) -> str:
    if view.profile_failure(device, row.name) and device not in row.latency:
        return "did not run (see notes)"
    if device in view.emulated:  # parity and accuracy are the device's; the speed is the emulator's
        checks = []
        if device in row.device_parity:
            checks.append(f"parity {'ok' if row.device_parity[device].passed else 'FAIL'}")
        if device in row.device_accuracy:
            entry = row.device_accuracy[device]
            checks.append(f"top-1 {entry.top1}%{'' if entry.passed else ' FAIL'}")
        return f"emulated ({', '.join(checks)})" if checks else "emulated"
    value = row.p50_ms(device)
    if value is not None:
        timed = row.latency.get(device)
        fraction = timed.peak_fraction if timed is not None else None
        shown = f"{value:.3f}" + (f", {fraction * 100:.0f}% of peak" if fraction is not None else "")
        checks = []
        checked = row.device_parity.get(device)  # the device's own outputs against PyTorch
        if checked is not None:
            checks.append(f"parity {'ok' if checked.passed else 'FAIL'}")
        accuracy = row.device_accuracy.get(device)
        if accuracy is not None:
            checks.append(f"top-1 {accuracy.top1}%{'' if accuracy.passed else ' FAIL'}")
        return f"{shown} ({', '.join(checks)})" if checks else shown
    return "did not run (see notes)" if view.profile_failure(device, row.name) else ""


def peak_lines(view: ReleaseView) -> list[str]:
    """Each measured device's dense-convolution peak per runtime, provider and threads: what the
    latency cells' "% of peak" is set against (none for an emulated device)."""
    lines = []
    for device in view.devices:
        if device in view.emulated:
            continue
        for peak in view.manifest.results(ConvPeak, group=device).values():
            threads = f"{peak.threads} threads" if peak.threads else "default threads"
            lines.append(
                f"{device}: {peak.runtime} {peak.provider}, {threads}: {peak.gmacs:.1f} GMAC/s "
                f"({peak.benchmark}; p50 {peak.p50_ms:.2f} ms over {peak.iters} runs)"
            )
    return lines


PEAK_NOTE = (
    "% of peak: the file's multiply-adds per second against the device's measured dense-convolution peak in the "
    "same runtime and threads (a float32 1x1-convolution micro-benchmark; int8 kernels can pass 100%)"
)


def artifact_table(view: ReleaseView, *, full_sha: bool = False) -> tuple[list[str], list[list[str]]]:
    """Columns and rows: artifact, kind, size, sha256, parity, top-1 (delta vs PyTorch), p50 ms per device."""
    columns = ["artifact", "kind", "size", "sha256", "parity vs PyTorch", "top-1 (Δ pts)"]
    columns += [f"p50 ms @ {d}" if d not in view.emulated else f"checks @ {d} (emulated)" for d in view.devices]
    rows = []
    for row in view.rows:
        sha = row.artifact.sha256 if full_sha else row.artifact.sha256[:12]
        cells = [row.name, row.key, human_size(row.artifact.size_bytes), sha, parity_cell(row), accuracy_cell(row)]
        cells += [latency_cell(view, row, d) for d in view.devices]
        rows.append(cells)
    if view.pytorch_accuracy is not None:
        top1 = view.pytorch_accuracy.top1
        rows.append(["PyTorch (reference)", "torch:fp32", "", "", "", f"{top1:.1f}%"] + ["" for _ in view.devices])
    return columns, rows


def device_rows(view: ReleaseView) -> list[list[str]]:
    rows = []
    for device in view.devices:
        facts = view.device_facts.get(device) or DeviceFacts()
        runtimes = facts.runtimes
        if isinstance(runtimes, dict):
            runtimes = ", ".join(
                f"{k} {v.get('version', '') if isinstance(v, dict) else v}".strip() for k, v in runtimes.items()
            )
        cpu = facts.cpu_model or facts.android_model or "?"
        if device in view.emulated:
            cpu = f"emulated {facts.machine or ''}: {view.emulated[device]}"
        loads = [r.latency[device].load_average for r in view.rows if device in r.latency]
        load = max((v for v in loads if v is not None), default=None)
        rows.append(
            [
                device,
                str(cpu),
                str(facts.logical_cores or "?"),
                facts.governor or "",
                "" if load is None else f"{load:.2f}",
                facts.os or "",
                facts.python or "",
                str(runtimes or ""),
            ]
        )
    return rows


DEVICE_COLUMNS = ["device", "CPU", "cores", "governor", "load while measured", "OS", "Python", "runtimes"]
NOISE_NOTE = "Unreliable figures (measured anyway; profile again on a quiet device)"


def noise_lines(view: ReleaseView) -> list[str]:
    """Each latency figure whose spread or whose busy device says it cannot be trusted, and why."""
    return [
        f"{row.name} on {device}: {entry.noise}"
        for device in view.devices
        for row in view.rows
        if (entry := row.latency.get(device)) is not None and entry.noise
    ]


def verdict_lines(view: ReleaseView) -> list[str]:
    """The per-device verdict, headline first, then why each failing file fails."""
    lines = []
    for verdict in view.verdicts():
        lines.append(verdict.headline())
        lines += [f"  {reason}" for reason in verdict.reasons()]
    return lines
