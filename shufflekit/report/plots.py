"""The report's figures as PNG bytes (matplotlib, Agg): accuracy against latency per device (the
ShuffleNet v2 paper's Figure 1, on the user's own devices), time per operator category (its Figure 2)
and the latency distribution of every artifact on every device. PNG, not SVG: an SVG carries a namespace
URL, and the report must not name any address; the PNG's metadata (matplotlib writes its web address
there) is dropped too.

Readable as a device engineer wants them: every point labelled with its file's kind (markers that would
cover each other are set side by side and share one label), tick labels as plain numbers that never run
into each other, a file that failed the accuracy gate drawn in a band below the axis with its value
instead of stretching the axis down to it, and one panel per device so a slow board does not squash a
fast phone."""

from __future__ import annotations

import io
from typing import Any

from ..errors import BackendMissingError
from ..formats import get_format, get_precision
from ..records import DeviceFacts
from ..runtimes import opcategories
from .plotlayout import FAIL_COLOR, Marker, draw_markers, latency_axis, plain_ticks, value_window
from .view import ArtifactRow, ReleaseView, device_label

DPI = 110


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
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _precision_legend(fig: Any, rows: list[ArtifactRow], extra: list[Any]) -> Any:
    from matplotlib.lines import Line2D

    handles = []
    for precision in dict.fromkeys(r.artifact.precision for r in rows):
        color = get_precision(precision).color
        handles.append(Line2D([], [], linestyle="", marker="o", color=color, markersize=7, label=precision))
    for fmt in dict.fromkeys(r.artifact.format for r in rows):
        marker = get_format(fmt).marker
        handles.append(Line2D([], [], linestyle="", marker=marker, color="#777777", markersize=7, label=fmt))
    handles += extra
    return fig.legend(
        handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False, borderaxespad=0.2
    )


# -- the figures ----------------------------------------------------------------------------------------
def _accuracy_points(view: ReleaseView, device: str, with_accuracy: bool) -> list[tuple[ArtifactRow, float, float]]:
    found = []
    for row in view.rows:
        x = row.p50_ms(device)
        y = row.top1 if with_accuracy else row.artifact.size_bytes / 1e6
        if x is not None and y is not None:
            found.append((row, x, y))
    return found


def accuracy_vs_latency(view: ReleaseView) -> bytes | None:
    """One panel per device: top-1 accuracy (or, without accuracy figures, the file size) against p50
    latency per image; one labelled point per artifact, colour by precision, marker by format."""
    fig = accuracy_figure(view)
    return None if fig is None else _png(fig)


def accuracy_figure(view: ReleaseView) -> Any:
    """The figure of ``accuracy_vs_latency`` (None without latency figures), for tests to measure."""
    devices = [d for d in view.devices if any(r.p50_ms(d) is not None for r in view.rows)]
    if not devices:
        return None
    plt = _pyplot()
    from matplotlib.lines import Line2D

    with_accuracy = view.has_accuracy
    reference = view.pytorch_accuracy.top1 if with_accuracy and view.pytorch_accuracy is not None else None
    columns = min(len(devices), 2)
    rows = (len(devices) + columns - 1) // columns
    width, height = 6.0 * columns, 4.3 * rows + 0.9
    fig, axes = plt.subplots(rows, columns, figsize=(width, height), squeeze=False, dpi=DPI)
    panels = []
    any_off_scale = False
    for index, device in enumerate(devices):
        ax = axes[index // columns][index % columns]
        found = _accuracy_points(view, device, with_accuracy)
        failing = [(r, x, y) for r, x, y in found if with_accuracy and r.accuracy_passed is False]
        holding = [(r, x, y) for r, x, y in found if not (with_accuracy and r.accuracy_passed is False)]
        # the scale is the holding files' and PyTorch's; when none holds, nothing is squashed by the failing ones
        scale = [y for _, _, y in holding] if holding else [y for _, _, y in failing]
        window = value_window(
            scale + ([reference] if reference is not None else []),
            [y for _, _, y in failing] if holding else [],
            min_span=1.0 if with_accuracy else 0.2,
        )
        ax.set_ylim(*window.limits)
        latency_axis(ax, [x for _, x, _ in found], log_above=8, pad=1.35)
        if reference is not None:
            ax.axhline(reference, color="#888888", linestyle="--", linewidth=1, zorder=1)
        for band in (window.below, window.above):
            if band is not None:  # the break between the scale and the band of files off it
                edge = window.low if band < window.low else window.high
                ax.axhline(edge, color="#999999", linestyle=(0, (2, 2)), linewidth=0.8)
                ax.axhspan(
                    *sorted((edge, window.limits[0] if band < window.low else window.limits[1])), color="#fbecee"
                )
                any_off_scale = True
        ax.set_yticks([t for t in ax.get_yticks() if window.low <= t <= window.high])
        ax.set_ylim(*window.limits)
        ax.yaxis.set_major_formatter(plain_ticks())
        points = []
        for row, x, y in found:
            off = with_accuracy and window.outside(y)
            points.append(
                Marker(
                    row.key,
                    x,
                    window.shown_at(y),
                    get_precision(row.artifact.precision).color,
                    get_format(row.artifact.format).marker,
                    failing=with_accuracy and row.accuracy_passed is False,
                    note=f"{y:.1f}% (off the scale)" if off else "",
                )
            )
        panels.append((ax, points))
        ax.set_xlabel("p50 latency per image (ms)")
        ax.set_ylabel("top-1 accuracy (%)" if with_accuracy else "file size (MB)")
        ax.set_title(device_label(device, view.device_facts.get(device) or DeviceFacts()), fontsize=9)
        ax.grid(alpha=0.3, which="major")
    for index in range(len(devices), rows * columns):
        axes[index // columns][index % columns].axis("off")
    extra = []
    if reference is not None:
        extra.append(Line2D([], [], color="#888888", linestyle="--", label=f"PyTorch {reference:.1f}%"))
    if any(p.failing for _, points in panels for p in points):
        extra.append(
            Line2D(
                [], [], linestyle="", marker="o", color="#cccccc", markeredgecolor=FAIL_COLOR, label="failed accuracy"
            )
        )
    if any_off_scale:
        extra.append(Line2D([], [], linestyle="", marker="v", color="#cccccc", label="off the scale (value written)"))
    _precision_legend(fig, view.rows, extra)
    title = "Accuracy vs latency" if with_accuracy else "Size vs latency (no accuracy: released without --data)"
    fig.suptitle(f"{title}: {view.meta.model}, {view.meta.input_size}", fontsize=10)
    fig.tight_layout(rect=(0, 0.5 / height, 1, 1 - 0.1 / height))
    for ax, points in panels:
        draw_markers(fig, ax, points)
    return fig


def _horizontal() -> dict[str, Any]:
    """boxplot's keyword for horizontal boxes: ``orientation`` from matplotlib 3.10, ``vert`` before."""
    import matplotlib

    major, minor = (int(part) for part in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def _device_panels(
    per_device: dict[str, list[Any]], inches_per_row: float, legend: float
) -> tuple[Any, list[tuple[str, Any]], float]:
    """One panel per device, stacked, each as tall as its rows, sharing nothing but the figure."""
    plt = _pyplot()
    devices = [d for d in per_device if per_device[d]]
    heights = [1.1 + inches_per_row * len(per_device[d]) for d in devices]
    fig, axes = plt.subplots(
        len(devices),
        1,
        figsize=(9.6, sum(heights) + legend),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
        dpi=DPI,
    )
    return fig, [(d, axes[i][0]) for i, d in enumerate(devices)], sum(heights) + legend


def _load_while_measured(view: ReleaseView, device: str) -> str:
    loads = [r.latency[device].load_average for r in view.rows if device in r.latency]
    load = max((v for v in loads if v is not None), default=None)
    facts = view.device_facts.get(device) or DeviceFacts()
    cores = f" on {facts.logical_cores} cores" if facts.logical_cores else ""
    return "" if load is None else f"; load average up to {load:.2f}{cores} while measured"


def op_breakdown(view: ReleaseView) -> bytes | None:
    """Share of operator time per category, one bar per artifact, one panel per device, with the time
    the profiler measured per run beside each bar."""
    per_device: dict[str, list[Any]] = {}
    for row in view.rows:
        for device, entry in row.op_profile.items():
            if entry.categories:
                per_device.setdefault(device, []).append((row, entry))
    if not per_device:
        return None
    used = [
        c
        for c in opcategories.CATEGORIES
        if any(e["category"] == c for bars in per_device.values() for _, p in bars for e in p.categories)
    ]
    ordered = {d: per_device[d] for d in [*view.devices, *per_device] if d in per_device}
    legend = 0.25 + 0.17 * -(-len(used) // 6)  # inches: one line of legend per six categories
    fig, panels, height = _device_panels(ordered, 0.36, legend=legend)
    from matplotlib.patches import Patch
    from matplotlib.transforms import blended_transform_factory

    for device, ax in panels:
        bars = ordered[device]
        for index, (_, entry) in enumerate(bars):
            shares = {e["category"]: e["share"] for e in entry.categories}
            left = 0.0
            for category in used:
                share = shares.get(category, 0.0) * 100
                ax.barh(index, share, left=left, color=opcategories.COLORS.get(category, "#333333"), height=0.72)
                if share >= 7:
                    ax.text(left + share / 2, index, f"{share:.0f}%", ha="center", va="center", fontsize=7)
                left += share
        side = blended_transform_factory(ax.transAxes, ax.transData)
        ax.text(1.01, 1.01, "ms per run\n(profiler)", transform=ax.transAxes, fontsize=7, va="bottom", color="#555555")
        for index, (_, entry) in enumerate(bars):
            ax.text(1.01, index, f"{entry.node_sum_ms:.3g}", transform=side, fontsize=7, va="center")
        ax.set_yticks(range(len(bars)), labels=[row.name for row, _ in bars], fontsize=7)
        ax.set_ylim(len(bars) - 0.5, -0.5)
        ax.set_xlim(0, 100)
        ax.set_title(
            "Runtime decomposition by operator type: "
            + device_label(device, view.device_facts.get(device) or DeviceFacts()),
            fontsize=9,
        )
    panels[-1][1].set_xlabel("share of operator time (%)")
    handles = [Patch(color=opcategories.COLORS.get(c, "#333333"), label=c) for c in used]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, legend / height, 1, 1))
    return _png(fig)


def latency_distribution(view: ReleaseView) -> bytes | None:
    """Per-image latency of every artifact, one panel per device (each on its own scale) with the load
    the device carried while measured: a box (p1..p99 whiskers) from the recorded iteration times, or
    the recorded min / p50 / p90 / p99 / max when the times were not kept."""
    per_device: dict[str, list[ArtifactRow]] = {}
    for device in view.devices:
        measured = [row for row in view.rows if device in row.latency]
        if measured:
            per_device[device] = measured
    if not per_device:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    fig, panels, height = _device_panels(per_device, 0.36, legend=0.4)
    for device, ax in panels:
        rows = per_device[device]
        values: list[float] = []
        side = blended_transform_factory(ax.transAxes, ax.transData)
        ax.text(1.01, 1.01, "p50 ms", transform=ax.transAxes, fontsize=7, va="bottom", color="#555555")
        for index, row in enumerate(rows, start=1):
            entry = row.latency[device]
            scale = 1.0 / max(1, entry.batch or 1)
            lat = entry.latency_ms
            times = row.times_ms.get(device)
            color = get_precision(row.artifact.precision).color
            if times:
                data = [t * scale for t in times]
                ax.boxplot(
                    [data],
                    positions=[index],
                    **_horizontal(),
                    whis=(1, 99),
                    widths=0.6,
                    showfliers=True,
                    patch_artist=True,
                    boxprops={"facecolor": color, "alpha": 0.45},
                    medianprops={"color": "#111111"},
                    flierprops={"markersize": 2, "markeredgecolor": "#777777"},
                )
                values.extend(data)
            else:
                low, high = lat.get("min_ms"), lat.get("max_ms")
                if low is not None and high is not None:  # onnxruntime_perf_test may print no Min / Max Latency
                    ax.plot([low * scale, high * scale], [index, index], color="#555555", linewidth=1)
                    values.extend([low * scale, high * scale])
                for key, marker in (("p50_ms", "|"), ("p90_ms", "x"), ("p99_ms", "+")):
                    value = lat.get(key)
                    if value is not None:  # a native tool may print no percentiles
                        ax.plot([value * scale], [index], marker=marker, color=color, markersize=8)
                        values.append(value * scale)
            p50 = row.p50_ms(device)
            if p50 is not None:
                noisy = " (noisy)" if entry.noise else ""
                ax.text(1.01, index, f"{p50:.3g}{noisy}", transform=side, fontsize=7, va="center")
        ax.set_yticks(range(1, len(rows) + 1), labels=[row.name for row in rows], fontsize=7)
        ax.set_ylim(len(rows) + 0.6, 0.4)
        latency_axis(ax, values, log_above=20)
        ax.grid(axis="x", which="major", alpha=0.3)
        facts = view.device_facts.get(device) or DeviceFacts()
        ax.set_title("Latency: " + device_label(device, facts) + _load_while_measured(view, device), fontsize=9)
    panels[-1][1].set_xlabel("latency per image (ms); box: quartiles, whiskers: p1..p99, dots: beyond")
    handles = [
        Line2D([], [], linestyle="", marker="s", color=get_precision(p).color, alpha=0.6, label=p)
        for p in dict.fromkeys(r.artifact.precision for r in view.rows)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1))
    return _png(fig)
