"""report.html's section for a folder of guideline benchmarks (`shufflekit guidelines`): the paper's
Tables 1-4 as measured on each device, from the manifest alone (``guidelines.tables``); empty for a
folder without guideline networks."""

from __future__ import annotations

import html
from typing import Any

from ..artifacts import Manifest


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def guidelines_html(manifest: Manifest) -> str:
    """The section's HTML, or "" when the manifest has no guideline results."""
    from ..guidelines.tables import NOT_REPRODUCED, REPRODUCED, guideline_tables

    tables = guideline_tables(manifest)
    if not tables:
        return ""
    parts = [
        "<h2>The paper's guidelines on these devices</h2>",
        '<p class="note">Tables 1-4 of the ShuffleNet V2 paper (seed 000): ten stacked blocks per network at equal '
        "FLOPs per table. Ours: images/s (1000 / median ms, batch 1) of each file's latest measurement; the paper's "
        "ARM (Snapdragon 810, 1 thread, images/s) and GPU (GTX 1080Ti, batches/s) figures beside. Reproduced: the "
        "guideline's direction holds against the first row at every scale.</p>",
    ]
    for table in tables:
        scales = "/".join(f"x{s}" for s in table.scales)
        threads = f", {table.threads} thread(s)" if table.threads else ""
        parts.append(
            f"<h3>{_e(table.guideline)} on {_e(table.device)}, {_e(table.format)} "
            f"({_e(table.runtime or table.format)}{_e(threads)}), {table.size}x{table.size}</h3>"
        )
        head = ["row", f"channels {scales}", "M mult-adds", *(f"ours x{s}" for s in table.scales), "verdict"]
        head += [f"paper ARM {scales}", f"paper GPU {scales}"]
        body = []
        for row in table.rows:
            speeds = table.speeds(row)
            cls = {REPRODUCED: "pass", NOT_REPRODUCED: "fail"}.get(row.verdict, "")
            cells = [
                _e(row.label),
                _e("/".join(c.channels for c in row.cells)),
                _e("/".join(f"{c.mult_adds / 1e6:.1f}" for c in row.cells)),
                *(_e(s) for s in speeds),
            ]
            tds = "".join(f"<td>{c}</td>" for c in cells)
            verdict = row.verdict + (
                " (" + ", ".join(f"x{s}" for s in row.failing_scales) + ")" if row.failing_scales else ""
            )
            tds += f'<td class="{cls}">{_e(verdict)}</td>' if cls else f"<td>{_e(verdict)}</td>"
            for figures in (row.paper_arm, row.paper_gpu):
                tds += "<td>" + _e("/".join("-" if f is None else f"{f:g}" for f in figures)) + "</td>"
            body.append(f"<tr>{tds}</tr>")
        heads = "".join(f"<th>{_e(h)}</th>" for h in head)
        parts.append(f"<table><thead><tr>{heads}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        note = f"{table.claim}." + "".join(f" {n}." for n in table.notes)
        if table.emulated:
            note += " Emulated device: no speed and no verdict (structure and FLOPs only)."
        parts.append(f'<p class="note">{_e(note)}</p>')
    return "\n".join(parts)
