"""report.html: one self-contained page, readable offline and from an e-mail attachment: inline CSS,
plots as PNG data URIs, no script, no font, no address of anything outside the file."""

from __future__ import annotations

import base64
import html
from typing import Any

from ..records import StageRecord
from . import plots
from .card import GPU_NOTE, gpu_lines
from .guidelines import guidelines_html
from .tables import DEVICE_COLUMNS, NOISE_NOTE, PEAK_NOTE, artifact_table, device_rows, noise_lines, peak_lines
from .view import ReleaseView, human_size

_CSS = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d1d1f; margin: 0;
       background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 30px 0 10px; border-bottom: 1px solid #ddd; }
.sub { color: #555; margin: 0 0 14px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 12px Menlo, Consolas, monospace; background: #f3f3f3; padding: 1px 3px; }
.pass { color: #11772d; font-weight: 600; } .fail { color: #b00020; font-weight: 600; }
.note { color: #555; font-size: 13px; } figure { margin: 10px 0 22px; } figcaption { color: #555; font-size: 13px; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
details.ops { margin: 2px 0; } details.ops summary { cursor: pointer; font-size: 13px; padding: 2px 0; }
details.ops table { margin-left: 18px; }
.badges span { display: inline-block; margin: 0 8px 6px 0; padding: 3px 10px; border-radius: 12px; font-size: 13px;
               background: #eef2f7; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _peak_note(view: ReleaseView) -> str:
    """What the latency cells' "% of peak" is set against: each device's measured peak per runtime."""
    lines = peak_lines(view)
    if not lines:
        return ""
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    return f'<p class="note">{_e(PEAK_NOTE)}:</p><ul class="note">{items}</ul>'


def _table(
    columns: list[str],
    rows: list[list[str]],
    numeric: set[int] = frozenset(),  # type: ignore[assignment]
    failing: frozenset[str] = frozenset(),
) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            text = str(cell)
            cls = "num" if index in numeric else ""
            if text.startswith("pass"):
                cls = "pass"
            elif "FAIL" in text or text in failing:  # a failing file is red wherever it appears
                cls = "fail"
            cells.append(f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _gpu_note(view: ReleaseView) -> str:
    lines = gpu_lines(view)
    if not lines:
        return ""
    items = "".join(f"<li><code>{_e(name)}</code>: {_e(line)}</li>" for name, line in lines)
    return f'<p class="note">{_e(GPU_NOTE)}:</p><ul class="note">{items}</ul>'


def _figure(png: bytes | None, alt: str, caption: str) -> str:
    if png is None:
        return f'<p class="note">{_e(alt)}: no figures recorded.</p>'
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _noise_list(view: ReleaseView) -> str:
    noisy = noise_lines(view)
    if not noisy:
        return ""
    return f'<p class="note">{_e(NOISE_NOTE)}:</p><ul>' + "".join(f"<li>{_e(n)}</li>" for n in noisy) + "</ul>"


def _badges(view: ReleaseView) -> str:
    parity = [r.parity_passed for r in view.rows if r.parity_passed is not None]
    items = [
        f"{len(view.rows)} artifacts",
        f"parity: {sum(parity)}/{len(parity)} pass" if parity else "parity: not run",
    ]
    if view.has_accuracy:
        acc = [r.accuracy_passed for r in view.rows if r.accuracy_passed is not None]
        items.append(f"accuracy gate: {sum(acc)}/{len(acc)} pass" if acc else "accuracy measured")
    else:
        items.append("accuracy: not measured")
    items.append("devices: " + (", ".join(view.devices) or "none"))
    return '<div class="badges">' + "".join(f"<span>{_e(i)}</span>" for i in items) + "</div>"


def _op_types_table(view: ReleaseView) -> str:
    """Every op type of every file on every device, each file's table folded under a one-line summary
    (its op types, their profiled time, the three largest shares): nothing is cut, the page stays short."""
    parts = []
    order = {device: index for index, device in enumerate(view.devices)}
    for row in view.rows:
        for device, entry in sorted(row.op_profile.items(), key=lambda item: order.get(item[0], len(order))):
            types = entry.op_types
            if not types:
                continue
            rows = [
                [
                    t["op_type"],
                    t.get("category", ""),
                    str(t.get("count", "")),
                    f"{t['ms']:.4f}",
                    f"{t['share'] * 100:.1f}%",
                ]
                for t in types
            ]
            top = ", ".join(f"{t['op_type']} {t['share'] * 100:.0f}%" for t in types[:3])
            summary = (
                f"<strong>{_e(row.name)}</strong> @ {_e(device)}: {len(types)} op types, "
                f"{entry.node_sum_ms:.3g} ms per run under the profiler; largest: {_e(top)}"
            )
            parts.append(
                f'<details class="ops"><summary>{summary}</summary>'
                + _table(["op type", "category", "count", "ms per run", "share"], rows, {2, 3, 4})
                + "</details>"
            )
    if not parts:
        return '<p class="note">No operator profile recorded.</p>'
    return (
        '<p class="note">Every operator type per file and device (open a line for its table). The times are '
        "measured under the runtime's profiler, slower than the timed runs: compare shares here, and take speed "
        "from the latency figures. All of it is in <code>manifest.json</code> (<code>op_profile</code>).</p>"
        + "".join(parts)
    )


def _stages_table(view: ReleaseView) -> str:
    stages = view.manifest.results(StageRecord)
    if not stages:
        return '<p class="note">No release stages recorded (a folder made by single commands).</p>'
    totals: dict[str, list] = {}
    for name, entry in stages.items():
        total = totals.setdefault(name.split(" ")[0], [0, 0.0, ""])
        total[0] += 1
        total[1] += float(entry.seconds)
        total[2] = max(total[2], entry.finished_at)
    order = ["train", "export", "quantize", "validate", "evaluate", "profile", "report"]
    rows = [
        [stage, str(count), f"{seconds:.1f}", finished]
        for stage, (count, seconds, finished) in sorted(
            totals.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)
        )
    ]
    return (
        _table(["stage", "units", "seconds (when they ran)", "last finished"], rows, {1, 2})
        + '<p class="note">Each unit is recorded with the sha256 of its inputs and options; a rerun skips '
        "the units whose inputs are unchanged and whose files are intact.</p>"
    )


def _verdict(view: ReleaseView) -> str:
    """Ship or do not ship, per device, before anything else."""
    items = []
    for verdict in view.verdicts():
        cls = "pass" if verdict.ship else "fail"
        reasons = "".join(f"<li>{_e(r)}</li>" for r in verdict.reasons())
        items.append(
            f'<li class="{cls}"><strong>{verdict.word}</strong> {_e(verdict.headline())}'
            + (f"<ul>{reasons}</ul>" if reasons else "")
            + "</li>"
        )
    note = (
        '<p class="note">Emulated devices: parity and accuracy come from the device\'s own kernels; '
        "their latency is the emulator's and is never shown as the device's speed.</p>"
        if view.emulated
        else ""
    )
    return f'<ul class="verdict">{"".join(items)}</ul>{note}'


def write_html(view: ReleaseView) -> str:
    meta = view.meta
    pre = meta.preprocessing
    facts = view.model_facts
    columns, rows = artifact_table(view)
    numeric = {2} | set(range(6, len(columns)))
    failing = frozenset(name for verdict in view.verdicts() for name in verdict.fails)
    title = f"{meta.model} release report"
    complexity = []
    if facts is not None and facts.params:
        complexity.append(f"{facts.params / 1e6:.2f}M parameters")
    if facts is not None and facts.mult_adds:
        complexity.append(f"{facts.mult_adds / 1e6:.1f}M multiply-adds")
    total = sum(r.artifact.size_bytes for r in view.rows)
    notes = view.notes
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(meta.num_classes)} classes, RGB input {_e(pre.input_size.describe())}'
        + (f", {_e(', '.join(complexity))}" if complexity else "")
        + f"; {len(view.rows)} files, {human_size(total)}."
        + "</p>",
        "<h2>Verdict</h2>",
        _verdict(view),
        _badges(view),
        "<h2>Artifacts</h2>",
        _table(columns, rows, numeric, failing),
        '<p class="note">Parity: against PyTorch on the stored reference inputs. Top-1: accuracy on the evaluation '
        "data, Δ in points against PyTorch. p50: median latency per image on each device.</p>",
        _peak_note(view),
        _gpu_note(view),
        "<h2>Accuracy vs latency</h2>",
        _figure(
            plots.accuracy_vs_latency(view),
            "accuracy vs latency",
            "Like Figure 1 of the ShuffleNet V2 paper, measured on these devices: what matters is the speed on the "
            "target device, not FLOPs. Each point is labelled with its file's kind; markers that would cover each "
            "other sit side by side. A file that failed the accuracy gate is ringed in red, and one far below the "
            "others is drawn in the shaded band under the axis with its value, so the scale stays on the files "
            "that hold.",
        ),
        "<h2>Where the time goes</h2>",
        _figure(
            plots.op_breakdown(view),
            "operator breakdown",
            "Share of operator time per category (Figure 2 of the ShuffleNet V2 paper, on these devices), one panel "
            "per device, with the time the profiler measured per run on the right.",
        ),
        _op_types_table(view),
        "<h2>Latency distribution</h2>",
        _figure(
            plots.latency_distribution(view),
            "latency distribution",
            "Per-image latency over the timed runs of each artifact, one panel per device on its own scale, with "
            "the load the device carried while it was measured; the p50 of each file is written on the right.",
        ),
        "<h2>Devices</h2>",
        _table(DEVICE_COLUMNS, device_rows(view)) if view.devices else '<p class="note">No latency measured.</p>',
        _noise_list(view),
        "<h2>Preprocessing and labels</h2>",
        f"<p>Resize (aspect kept) to cover {pre.resize_size}, center-crop {pre.input_size} (width x height), "
        "scale to [0, 1], "
        f"normalize with mean {_e(list(pre.mean))} and std {_e(list(pre.std))}; ONNX NCHW, TFLite NHWC. "
        f"Labels ({meta.num_classes}): <code>labels.txt</code>.</p>",
    ]
    body.append(guidelines_html(view.manifest))  # the guideline tables, for a `shufflekit guidelines` folder
    if notes:
        body += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"]
    body += [
        "<h2>Release stages</h2>",
        _stages_table(view),
        '<p class="note">Written from <code>manifest.json</code>, the single source of truth; '
        "<code>shufflekit report &lt;folder&gt;</code> rebuilds this page and README.md.</p>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )
