"""Bad-input cases of `shufflekit guidelines`: refused in one line before any network is built."""

from __future__ import annotations

from .harness import Case, Workspace


def _release_manifest(ws: Workspace) -> None:
    from shufflekit.artifacts import Manifest
    from shufflekit.metadata import ModelMeta

    Manifest.new(ws.out, ModelMeta("shufflenet_v2_x0_5", 10)).save()


CASES: list[Case] = [
    Case(
        "guidelines-unknown-guideline",
        lambda ws: ["guidelines", "--guideline", "G1,G9", "--out", str(ws.out)],
        r"unknown guideline G9; use --guideline with G1,G2,G3,G4$",
    ),
    Case(
        "guidelines-bad-scale",
        lambda ws: ["guidelines", "--scale", "0", "--out", str(ws.out)],
        r"Invalid value for '--scale'.*from 1 to 16",
    ),
    Case(
        "guidelines-unknown-format",
        lambda ws: ["guidelines", "--formats", "onnx,coreml", "--out", str(ws.out)],
        r"unknown format coreml for the guideline benchmarks",
    ),
    Case(
        "guidelines-out-is-a-file",
        lambda ws: ["guidelines", "--guideline", "G1", "--out", str(ws.out)],
        r"output folder .* is a file",
        setup=lambda ws: ws.out.write_text("notes\n"),
    ),
    Case(
        "guidelines-out-is-a-release",
        lambda ws: ["guidelines", "--guideline", "G1", "--out", str(ws.out)],
        r"is a release of shufflenet_v2_x0_5, not a folder of guideline benchmarks",
        setup=_release_manifest,
    ),
]
