"""The artifact table the model card, the HTML report and the CLI summary share, as plain strings."""

from __future__ import annotations

from typing import Any

from .view import ArtifactRow, ReleaseView, human_size


def parity_cell(row: ArtifactRow) -> str:
    parity = row.parity
    if parity is None:
        return "not run"
    metrics = parity.get("metrics") or {}
    detail = []
    if "top1" in metrics:
        detail.append(f"top-1 agree {metrics['top1'] * 100:.0f}%")
    if "max_abs" in metrics:
        detail.append(f"max abs {metrics['max_abs']:.1e}")
    verdict = "pass" if parity.get("passed") else "FAIL"
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
    value = row.p50_ms(device)
    if value is not None:
        checked = row.device_parity.get(device)  # the device's own outputs against PyTorch
        if checked is None:
            return f"{value:.3f}"
        return f"{value:.3f} (parity {'ok' if checked.get('passed') else 'FAIL'})"
    return "did not run (see notes)" if view.profile_failure(device, row.name) else ""


def artifact_table(view: ReleaseView, *, full_sha: bool = False) -> tuple[list[str], list[list[str]]]:
    """Columns and rows: artifact, kind, size, sha256, parity, top-1 (delta vs PyTorch), p50 ms per device."""
    columns = ["artifact", "kind", "size", "sha256", "parity vs PyTorch", "top-1 (Δ pts)"]
    columns += [f"p50 ms @ {d}" for d in view.devices]
    rows = []
    for row in view.rows:
        sha = row.artifact.sha256 if full_sha else row.artifact.sha256[:12]
        cells = [row.name, row.key, human_size(row.artifact.size_bytes), sha, parity_cell(row), accuracy_cell(row)]
        cells += [latency_cell(view, row, d) for d in view.devices]
        rows.append(cells)
    if view.pytorch_accuracy is not None:
        top1 = view.pytorch_accuracy.get("top1")
        rows.append(["PyTorch (reference)", "torch:fp32", "", "", "", f"{top1:.1f}%" if isinstance(top1, (int, float)) else ""]
                    + ["" for _ in view.devices])
    return columns, rows


def device_rows(view: ReleaseView) -> list[list[str]]:
    rows = []
    for device in view.devices:
        facts: dict[str, Any] = view.device_facts.get(device, {})
        runtimes = facts.get("runtimes")
        if isinstance(runtimes, dict):
            runtimes = ", ".join(f"{k} {v.get('version', '') if isinstance(v, dict) else v}".strip()
                                 for k, v in runtimes.items())
        rows.append([device, str(facts.get("cpu_model") or facts.get("android_model") or "?"),
                     str(facts.get("logical_cores") or facts.get("cpu_count") or "?"),
                     str(facts.get("governor") or ""), str(facts.get("os") or ""),
                     str(facts.get("python") or ""), str(runtimes or "")])
    return rows


DEVICE_COLUMNS = ["device", "CPU", "cores", "governor", "OS", "Python", "runtimes"]
