"""Bad-input cases of "never lose a user's file" (issue 12): a folder holding files shufflekit did not make
is refused naming the file (nothing replaced, nothing new), and an empty folder/output path (an unset
shell variable) is refused instead of meaning the current directory. The user's folder is ws.root/"mine"
(not ws.out), so the harness's byte-identical check covers it."""

from __future__ import annotations

from .harness import Case

SMALL_ARGS = ["--input-size", "64", "--num-classes", "10"]
NOT_OURS = r"exists and shufflekit did not make it; refusing to replace it; move it away"
EMPTY = r"is an empty path \(an unset shell variable\?\); pass a path for"


def _mine(*names: str):
    def setup(ws) -> None:
        folder = ws.root / "mine"
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).write_bytes(f"the user's own {name}\n".encode())

    return setup


def _in_release(name: str):
    def setup(ws) -> None:
        (ws.release / name).write_bytes(b"the user's own file\n")

    return setup


def _export(ws, *extra: str) -> list[str]:
    return ["export", "--model", ws.small, *SMALL_ARGS, "--formats", "onnx", *extra]


CASES: list[Case] = [
    Case(
        id="export-over-users-reference",
        setup=_mine("reference.npz", ".notes.partial"),
        argv=lambda ws: _export(ws, "--out", str(ws.root / "mine")),
        error=r"mine/reference\.npz " + NOT_OURS + r" or choose another --out",
    ),
    Case(
        id="export-over-users-same-named-onnx",
        setup=_mine("shufflenet_v2_x0_5_fp32.onnx", "README.md"),
        argv=lambda ws: _export(ws, "--out", str(ws.root / "mine")),
        error=r"shufflenet_v2_x0_5_fp32\.onnx " + NOT_OURS,
    ),
    Case(
        id="export-checkpoint-over-users-reference",
        setup=_mine("reference.npz"),
        argv=lambda ws: ["export", "--checkpoint", str(ws.checkpoint), "--formats", "onnx", "--out", "mine"],
        error=r"reference\.npz " + NOT_OURS,
    ),
    Case(
        id="release-over-users-readme-labels-reference",
        setup=_mine("README.md", "labels.txt", "reference.npz", ".notes.partial"),
        argv=lambda ws: ["release", "--model", ws.small, *SMALL_ARGS, "--out", str(ws.root / "mine")],
        error=r"(README\.md|labels\.txt|reference\.npz) " + NOT_OURS + r" or choose another --out",
    ),
    Case(
        id="release-checkpoint-over-users-readme",
        setup=_mine("README.md"),
        argv=lambda ws: ["release", "--checkpoint", str(ws.checkpoint), "--out", "mine"],
        error=r"README\.md " + NOT_OURS,
    ),
    Case(
        id="report-over-users-readme",
        needs_release=True,
        setup=_in_release("README.md"),
        argv=lambda ws: ["report", str(ws.release)],
        error=r"README\.md " + NOT_OURS + r" or choose another folder",
    ),
    Case(
        id="report-over-users-labels",
        needs_release=True,
        setup=_in_release("labels.txt"),
        argv=lambda ws: ["report", str(ws.release)],
        error=r"labels\.txt " + NOT_OURS,
    ),
    Case(
        id="quantize-over-users-same-named-file",
        needs_release=True,
        setup=_in_release("shufflenet_v2_x0_5_fp16.onnx"),
        argv=lambda ws: ["quantize", str(ws.release), "--precision", "fp16", "--formats", "onnx"],
        error=r"shufflenet_v2_x0_5_fp16\.onnx " + NOT_OURS,
    ),
    # an empty path: Path('') is the current directory (ws.root), where the release would land
    Case(id="export-out-empty-string", argv=lambda ws: _export(ws, "--out", ""), error=r"--out " + EMPTY),
    Case(id="export-out-blank", argv=lambda ws: _export(ws, "--out", "  "), error=r"--out " + EMPTY),
    Case(
        id="release-out-empty-string",
        argv=lambda ws: ["release", "--model", ws.small, "--out", ""],
        error=r"--out " + EMPTY,
    ),
    Case(
        id="train-out-empty-string",
        argv=lambda ws: ["train", "--model", ws.small, "--data", "demo", "--out", ""],
        error=r"--out " + EMPTY,
    ),
    Case(
        id="quantize-folder-empty-string",
        argv=lambda ws: ["quantize", "", "--precision", "fp16"],
        error=r"FOLDER " + EMPTY,
    ),
    Case(id="validate-folder-empty-string", argv=lambda ws: ["validate", ""], error=r"FOLDER " + EMPTY),
    Case(
        id="evaluate-folder-empty-string",
        argv=lambda ws: ["evaluate", "", "--data", "demo"],
        error=r"FOLDER " + EMPTY,
    ),
    Case(id="profile-folder-empty-string", argv=lambda ws: ["profile", ""], error=r"FOLDER " + EMPTY),
    Case(
        id="profile-plot-empty-string",
        needs_release=True,
        argv=lambda ws: ["profile", str(ws.release), "--plot", ""],
        error=r"--plot " + EMPTY,
    ),
    Case(id="report-folder-empty-string", argv=lambda ws: ["report", ""], error=r"FOLDER " + EMPTY),
    Case(
        id="board-build-folder-empty-string",
        argv=lambda ws: ["board", "build", "--kind", "x86-avx2", ""],
        error=r"FOLDER " + EMPTY,
    ),
    Case(id="board-list-folder-empty-string", argv=lambda ws: ["board", "list", ""], error=r"FOLDERS " + EMPTY),
]
