"""Bad input to `shufflekit sweep`: refused in one line before anything is exported or measured."""

from __future__ import annotations

from .harness import Case, Workspace


def _sweep(*extra: str):
    return lambda ws: ["sweep", "--input-size", "64", "--formats", "onnx", *extra, "--out", str(ws.out)]


def _users_report(ws: Workspace) -> None:
    ws.out.mkdir()
    (ws.out / "report.html").write_text("<p>my own notes</p>\n")


def _a_release(ws: Workspace) -> None:
    ws.out.mkdir()
    (ws.out / "manifest.json").write_text("{}\n")


CASES: list[Case] = [
    Case("sweep-unknown-family", _sweep("--family", "v3"), r"^unknown family v3; use --family with v1, v2"),
    Case(
        "sweep-unknown-width",
        _sweep("--family", "v2", "--width", "0.5,0.3"),
        r"^no v2 variant has width 0\.3; widths: 0\.5, 1, 1\.5, 2$",
    ),
    Case("sweep-bad-width", _sweep("--width", "half"), r"^--width takes multipliers like 0\.5,1\.0, not 'half'$"),
    Case("sweep-unknown-groups", _sweep("--family", "v1", "--groups", "5"), r"^no selected variant has 5 groups"),
    Case("sweep-groups-of-v2", _sweep("--family", "v2", "--groups", "3"), r"only ShuffleNet v1 has --groups$"),
    Case(
        "sweep-unknown-format",
        _sweep("--family", "v2", "--width", "0.5", "--formats", "onnx,coreml"),
        r"^unknown format coreml",
    ),
    Case(
        "sweep-over-users-report",
        _sweep("--family", "v2", "--width", "0.5"),
        r"report\.html is not a file shufflekit sweep wrote \(refusing to replace it\); move it away",
        setup=_users_report,
    ),
    Case(
        "sweep-into-a-release-folder",
        _sweep("--family", "v2", "--width", "0.5"),
        r"is a release folder \(it has a manifest\.json\); a sweep writes one folder per variant",
        setup=_a_release,
    ),
]
