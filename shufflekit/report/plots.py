"""The report's figures as PNG bytes (matplotlib, Agg): accuracy against latency per device (the
ShuffleNet v2 paper's Figure 1, on the user's own devices), time per operator category (its Figure 2)
and the latency distribution of every artifact. PNG, not SVG: an SVG carries a namespace URL, and the
report must not name any address; the PNG's metadata (matplotlib writes its web address there) is
dropped too."""

from __future__ import annotations

import io
from typing import Any

from ..errors import BackendMissingError
from ..formats import get_format, get_precision
from ..records import DeviceFacts
from ..runtimes import opcategories
from .view import ReleaseView, device_label


def _pyplot():  # noqa: ANN202 - matplotlib is optional and imported lazily
    try:
        import matplotlib
    except ImportError:
        raise BackendMissingError(
            "the report's plots need matplotlib", hint="install it with: pip install 'shufflekit[report]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return buffer.getvalue()


def accuracy_vs_latency(view: ReleaseView) -> bytes | None:
    """One panel per device: top-1 accuracy (or, without accuracy figures, the file size) against p50
    latency per image; one point per artifact, colour by precision, marker by format."""
    devices = [d for d in view.devices if any(r.p50_ms(d) is not None for r in view.rows)]
    if not devices:
        return None
    plt = _pyplot()
    with_accuracy = view.has_accuracy
    columns = min(len(devices), 3)
    rows = (len(devices) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(6.4 * columns, 4.2 * rows), squeeze=False)
    for index, device in enumerate(devices):
        ax = axes[index // columns][index % columns]
        xs: list[float] = []
        for row in view.rows:
            x = row.p50_ms(device)
            y = row.top1 if with_accuracy else row.artifact.size_bytes / 1e6
            if x is None or y is None:
                continue
            ax.scatter(
                [x],
                [y],
                s=46,
                color=get_precision(row.artifact.precision).color,
                marker=get_format(row.artifact.format).marker,
                zorder=3,
                label=row.key,
            )
            xs.append(x)
        if with_accuracy and view.pytorch_accuracy is not None:
            top1 = view.pytorch_accuracy.top1
            if top1 is not None:
                ax.axhline(top1, color="#888888", linestyle="--", linewidth=1, label=f"PyTorch {top1:.1f}%")
        if xs and min(xs) > 0 and max(xs) / min(xs) > 8:
            ax.set_xscale("log")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
        ax.set_xlabel("p50 latency per image (ms)")
        ax.set_ylabel("top-1 accuracy (%)" if with_accuracy else "file size (MB)")
        ax.set_title(device_label(device, view.device_facts.get(device) or DeviceFacts()), fontsize=9)
        ax.grid(alpha=0.3)
    for index in range(len(devices), rows * columns):
        axes[index // columns][index % columns].axis("off")
    title = "Accuracy vs latency" if with_accuracy else "Size vs latency (no accuracy: released without --data)"
    fig.suptitle(
        f"{title}: {view.meta.model}, {view.meta.input_size} (circle = ONNX, square = TFLite)",
        fontsize=10,
    )
    fig.tight_layout()
    return _png(fig)


def op_breakdown(view: ReleaseView) -> bytes | None:
    """Share of operator time per category, one bar per artifact and device."""
    bars = [
        (f"{row.name} @ {device}", entry)
        for row in view.rows
        for device, entry in row.op_profile.items()
        if entry.categories
    ]
    if not bars:
        return None
    plt = _pyplot()
    used = [c for c in opcategories.CATEGORIES if any(e["category"] == c for _, p in bars for e in p.categories)]
    fig, ax = plt.subplots(figsize=(9, 1.5 + 0.42 * len(bars)))
    for index, (_, entry) in enumerate(bars):
        shares = {e["category"]: e["share"] for e in entry.categories}
        left = 0.0
        for category in used:
            share = shares.get(category, 0.0) * 100
            ax.barh(
                index,
                share,
                left=left,
                color=opcategories.COLORS.get(category, "#333333"),
                label=category if index == 0 else None,
            )
            if share >= 7:
                ax.text(left + share / 2, index, f"{share:.0f}%", ha="center", va="center", fontsize=7)
            left += share
    ax.set_yticks(range(len(bars)), labels=[label for label, _ in bars], fontsize=7)
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("share of operator time (%)")
    ax.set_title("Runtime decomposition by operator type")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.6 / max(1, len(bars)) - 0.08),
        ncol=4,
        fontsize=7,
        frameon=False,
    )
    return _png(fig)


def latency_distribution(view: ReleaseView) -> bytes | None:
    """Per-image latency of every artifact on every device: a box (p1..p99 whiskers) from the recorded
    iteration times, or the recorded min / p50 / p90 / p99 / max when the times were not kept."""
    series = []
    for row in view.rows:
        for device, entry in row.latency.items():
            series.append((f"{row.name} @ {device}", entry, row.times_ms.get(device)))
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 1.3 + 0.42 * len(series)))
    values: list[float] = []
    for index, (_, entry, times) in enumerate(series, start=1):
        scale = 1.0 / max(1, entry.batch or 1)
        lat = entry.latency_ms
        if times:
            data = [t * scale for t in times]
            ax.boxplot(
                [data],
                positions=[index],
                vert=False,
                whis=(1, 99),
                widths=0.6,
                showfliers=True,
                flierprops={"markersize": 2},
            )
            values.extend(data)
        else:
            low, high = lat.get("min_ms"), lat.get("max_ms")
            if low is not None and high is not None:  # onnxruntime_perf_test may print no Min / Max Latency
                low, high = low * scale, high * scale
                ax.plot([low, high], [index, index], color="#555555", linewidth=1)
                values.extend([low, high])
            for key, marker in (("p50_ms", "|"), ("p90_ms", "x"), ("p99_ms", "+")):
                value = lat.get(key)
                if value is not None:  # a native tool may print no percentiles
                    ax.plot([value * scale], [index], marker=marker, color="#d62728", markersize=8)
        p50 = lat.get("p50_ms")
        if p50 is not None:
            ax.annotate(f"p50 {p50 * scale:.3g} ms", (p50 * scale, index - 0.32), fontsize=6)
    ax.set_yticks(range(1, len(series) + 1), labels=[label for label, _, _ in series], fontsize=7)
    ax.set_ylim(len(series) + 0.7, 0.3)
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 20:
        ax.set_xscale("log")  # one slow artifact must not squash the others into a line
    ax.set_xlabel("latency per image (ms); box: quartiles, whiskers: p1..p99")
    ax.set_title("Latency distribution")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)
