"""PNG plots of a profile (matplotlib, Agg: no display needed): the latency distribution of every
artifact, and the runtime breakdown by operator category (the ShuffleNet v2 paper's Figure 2)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BackendMissingError, UsageError
from ..files import atomic_path, check_writable
from . import opcategories

if TYPE_CHECKING:
    from .profile import ProfileReport


def _pyplot():  # noqa: ANN202 - matplotlib is optional and imported lazily
    try:
        import matplotlib
    except ImportError:
        raise BackendMissingError(
            "matplotlib is not installed, so no plots can be drawn",
            hint="install it with: pip install 'shufflekit[report]'",
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


LATENCY_PNG = "latency.png"
BREAKDOWN_PNG = "op_breakdown.png"


def check_plot_folder(folder: str | Path) -> None:
    """Refuse, before anything is measured, a ``--plot`` folder the plots could not be written into: a
    file (or a path through one), a plot name taken by a folder, or a read-only place."""
    folder = Path(folder)
    shown = str(folder)
    hint = "name a folder for the PNG plots (it is made when missing)"
    existing = folder
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "is a file" if existing == folder else f"lies under {existing}, which is a file"
        raise UsageError(f"--plot {shown} {where}, not a folder", hint=hint)
    for name in (LATENCY_PNG, BREAKDOWN_PNG):
        if (folder / name).is_dir():
            raise UsageError(f"--plot {shown} holds a folder named {name}", hint="move it, or name another folder")
    check_writable(existing, f"profile writes its plots into {shown}")


def write_plots(report: ProfileReport, folder: str | Path) -> list[Path]:
    """Write latency.png (and op_breakdown.png when operators were profiled) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [_latency(report, folder / LATENCY_PNG)]
    if any(p.breakdown for p in report.profiles):
        written.append(_breakdown(report, folder / BREAKDOWN_PNG))
    return written


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path


def _latency(report: ProfileReport, path: Path) -> Path:
    plt = _pyplot()
    profiles = report.profiles
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.55 * len(profiles)))
    labels = [p.artifact.name for p in profiles]
    series = [
        p.result.get("times_ms")
        or [
            v for v in (p.latency["min_ms"], p.latency["p50_ms"], p.latency["max_ms"]) if v is not None
        ]  # a native tool may print no p50
        for p in profiles
    ]
    ax.boxplot(series, vert=False, showfliers=True, whis=(1, 99), flierprops={"markersize": 2})
    ax.set_yticks(range(1, len(labels) + 1), labels=labels)
    ax.invert_yaxis()  # the table's order, top to bottom
    low = min(min(s) for s in series) if series else 1.0
    high = max(max(s) for s in series) if series else 1.0
    if low > 0 and high / low > 20:
        ax.set_xscale("log")  # one slow artifact (or a stall) must not squash the others to a line
    for row, p in enumerate(profiles, start=1):
        if p.latency["p50_ms"] is not None:
            ax.annotate(f"p50 {p.latency['p50_ms']:.2f} ms", (p.latency["p50_ms"], row - 0.3), fontsize=7)
    batch = profiles[0].result["batch"] if profiles else 1
    ax.set_xlabel(f"latency per batch of {batch} (ms); whiskers p1..p99")
    ax.set_title(f"Latency on {report.device} ({report.host.get('cpu_model') or '?'})")
    ax.grid(axis="x", alpha=0.3)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def _breakdown(report: ProfileReport, path: Path) -> Path:
    plt = _pyplot()
    with_breakdown = [(p, b) for p in report.profiles if (b := p.breakdown)]
    profiles = [p for p, _ in with_breakdown]
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.55 * len(profiles)))
    used = [
        c
        for c in opcategories.CATEGORIES
        if any(e["category"] == c for _, b in with_breakdown for e in b["categories"])
    ]
    for row, (_, breakdown) in enumerate(with_breakdown):
        shares = {e["category"]: e["share"] for e in breakdown["categories"]}
        left = 0.0
        for category in used:
            share = shares.get(category, 0.0) * 100
            ax.barh(row, share, left=left, color=opcategories.COLORS[category], label=category if row == 0 else None)
            if share >= 6:
                ax.text(left + share / 2, row, f"{share:.0f}%", ha="center", va="center", fontsize=7)
            left += share
    ax.set_yticks(range(len(profiles)), labels=[p.artifact.name for p in profiles])
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("share of operator time (%)")
    ax.set_title(f"Runtime decomposition by operator category on {report.device}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4, fontsize=7, frameon=False)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
