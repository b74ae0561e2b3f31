"""Bad-input cases for checkpoints, numbers, labels, images and data files (issue 12, "inputs").

Every case fails while parsing options or while opening the input, before a model is converted. FIFO
cases put a FIFO under ws.root: the harness snapshots regular files only (a FIFO is not is_file()), so it
is never opened by the snapshot either.
"""

from __future__ import annotations

import io
import os
import random
import struct
import zipfile
import zlib
from pathlib import Path

from .harness import Case, Workspace

# ----------------------------------------------------------------------------------------- helpers


def _text_file(name: str, text: str = "hello, this is not a checkpoint\n"):
    def setup(ws: Workspace) -> None:
        (ws.root / name).write_text(text)

    return setup


def _bytes_file(name: str, data: bytes):
    def setup(ws: Workspace) -> None:
        (ws.root / name).write_bytes(data)

    return setup


def _fifo(name: str):
    def setup(ws: Workspace) -> None:
        os.mkfifo(ws.root / name)

    return setup


def _edited_checkpoint(name: str, edit):
    """ws.checkpoint (a shufflekit checkpoint of v2 0.5x, 10 classes) with its state dict edited."""

    def setup(ws: Workspace) -> None:
        import torch

        payload = torch.load(ws.checkpoint, map_location="cpu", weights_only=True)
        payload["state_dict"] = edit({k: v.clone() for k, v in payload["state_dict"].items()})
        torch.save(payload, ws.root / name)

    return setup


def _without(key: str):
    return lambda state: {k: v for k, v in state.items() if k != key}


def _poisoned(value: float):
    def edit(state: dict) -> dict:
        state["stage2.0.branch2.0.weight"].view(-1)[0] = value
        return state

    return edit


def _meta_edited(name: str, **changes: object):
    def setup(ws: Workspace) -> None:
        import torch

        payload = torch.load(ws.checkpoint, map_location="cpu", weights_only=True)
        payload["meta"] = {**payload["meta"], **changes}
        torch.save(payload, ws.root / name)

    return setup


def _other_variant(name: str):
    def setup(ws: Workspace) -> None:
        import torch

        from shufflekit.models import get_model

        torch.save(get_model("shufflenet_v2_x1_0", num_classes=10).state_dict(), ws.root / name)

    return setup


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _small_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def _data_folder(classes: dict[str, dict[str, bytes | None]]):
    """A class-per-folder data set under ws.root/data; a None file is made a FIFO."""

    def setup(ws: Workspace) -> None:
        for label, files in classes.items():
            folder = ws.root / "data" / label
            folder.mkdir(parents=True)
            for name, data in files.items():
                if data is None:
                    os.mkfifo(folder / name)
                else:
                    (folder / name).write_bytes(data)

    return setup


def _npz_bomb(name: str):
    """An .npz whose images.npy header declares 3 TB of pixels in a few kilobytes."""

    def setup(ws: Workspace) -> None:
        import numpy as np

        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "|u1", "fortran_order": False, "shape": (1_000_000, 1000, 1000, 3)}
        )
        with zipfile.ZipFile(ws.root / name, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("images.npy", header.getvalue() + b"\0" * 1024)

    return setup


def _npz_classes(name: str, classes: list[str]):
    def setup(ws: Workspace) -> None:
        import numpy as np

        images = np.zeros((len(classes), 8, 8, 3), np.uint8)
        np.savez(ws.root / name, images=images, labels=np.arange(len(classes)), classes=np.array(classes))

    return setup


def _export(*args: str):
    return lambda ws: ["export", *args, "--out", str(ws.out)]


def _export_checkpoint(name: str):
    return lambda ws: ["export", "--checkpoint", name, "--formats", "onnx", "--out", str(ws.out)]


def _train(data: str, *args: str):
    return lambda ws: ["train", "--model", ws.small, "--data", data, *args, "--out", str(Path(ws.out) / "m.pt")]


# ------------------------------------------------------------------------------------------- cases

CASES: list[Case] = [
    # checkpoints: each refused in one line before a model is built
    Case(
        "export-checkpoint-text-file",
        _export_checkpoint("notes.pt"),
        r"checkpoint notes\.pt is not a PyTorch checkpoint",
        setup=_text_file("notes.pt"),
    ),
    Case(
        "export-checkpoint-random-bytes",
        _export_checkpoint("noise.pt"),
        r"checkpoint noise\.pt is not a PyTorch checkpoint",
        setup=_bytes_file("noise.pt", random.Random(0).randbytes(4096)),
    ),
    Case(
        "export-checkpoint-random-bytes-pickle-head",
        _export_checkpoint("noise.pt"),
        r"noise\.pt is damaged or not a checkpoint",
        setup=_bytes_file("noise.pt", b"\x80\x02" + random.Random(1).randbytes(4096)),
    ),
    Case(
        "export-checkpoint-empty",
        _export_checkpoint("empty.pt"),
        r"empty\.pt is empty",
        setup=_bytes_file("empty.pt", b""),
    ),
    Case(
        "export-checkpoint-fifo",
        _export_checkpoint("pipe.pt"),
        r"pipe\.pt is a FIFO, not a regular file",
        setup=_fifo("pipe.pt"),
    ),
    Case(
        "export-checkpoint-folder",
        _export_checkpoint("weights"),
        r"weights is a folder, not a regular file",
        setup=lambda ws: (ws.root / "weights").mkdir(),
    ),
    Case(
        "export-checkpoint-missing-fc-bias",
        _export_checkpoint("nobias.pt"),
        r"does not fit shufflenet_v2_x0_5: 1 missing \(fc\.bias\)",
        setup=_edited_checkpoint("nobias.pt", _without("fc.bias")),
    ),
    Case(
        "export-checkpoint-nan-weights",
        _export_checkpoint("nan.pt"),
        r"NaN or infinite weights in stage2\.0\.branch2\.0\.weight",
        setup=_edited_checkpoint("nan.pt", _poisoned(float("nan"))),
    ),
    Case(
        "export-checkpoint-inf-weights",
        _export_checkpoint("inf.pt"),
        r"NaN or infinite weights in stage2\.0\.branch2\.0\.weight",
        setup=_edited_checkpoint("inf.pt", _poisoned(float("-inf"))),
    ),
    Case(
        "export-checkpoint-label-with-newline",
        _export_checkpoint("labels.pt"),
        r"label 9 .* holds the control character '\\n'",
        setup=_meta_edited("labels.pt", labels=[f"c{i}" for i in range(9)] + ["cat\nInjected"]),
    ),
    Case(
        "export-checkpoint-label-with-escape",
        _export_checkpoint("labels.pt"),
        r"holds the control character '\\x1b'",
        setup=_meta_edited("labels.pt", labels=[f"c{i}" for i in range(9)] + ["red\x1b[31m"]),
    ),
    Case(
        "export-checkpoint-absurd-class-count",
        _export_checkpoint("huge.pt"),
        r"num_classes must be an integer from 1 to 100,000",
        setup=_meta_edited("huge.pt", num_classes=10_000_000_000),
    ),
    Case(
        "validate-checkpoint-other-variant-names-no-missing-option",
        lambda ws: ["validate", str(ws.release), "--checkpoint", "x1.pt"],
        r"holds shufflenet_v2_x1_0 with 10 classes, but this folder was exported from shufflenet_v2_x0_5"
        r"(?!.*--model)",
        setup=_other_variant("x1.pt"),
        needs_release=True,
    ),
    # numbers: refused while parsing, before any file is read
    Case(
        "export-num-classes-huge",
        _export("--model", "shufflenet_v2_x0_5", "--num-classes", "10000000000"),
        r"--num-classes must be an integer from 1 to 100,000",
    ),
    Case(
        "export-num-classes-zero",
        _export("--model", "shufflenet_v2_x0_5", "--num-classes", "0"),
        r"--num-classes must be an integer from 1",
    ),
    Case(
        "export-input-size-huge",
        _export("--model", "shufflenet_v2_x0_5", "--input-size", "99999"),
        r"--input-size: input size 99999x99999 has a side above 2048 px",
    ),
    Case(
        "models-input-size-huge",
        lambda ws: ["models", "--input-size", "99999"],
        r"--input-size: input size 99999x99999 has a side above 2048 px",
    ),
    Case("models-num-classes-nan", lambda ws: ["models", "--num-classes", "nan"], r"--num-classes must be an integer"),
    Case(
        "profile-seconds-inf",
        lambda ws: ["profile", "release", "--seconds", "inf"],
        r"--seconds must be a number above 0",
    ),
    Case(
        "profile-seconds-nan",
        lambda ws: ["profile", "release", "--seconds", "nan"],
        r"--seconds must be a number above 0",
    ),
    Case(
        "profile-iters-absurd",
        lambda ws: ["profile", "release", "--iters", "100000000000000"],
        r"--iters must be an integer from 1 to 1,000,000",
    ),
    Case(
        "profile-threads-absurd",
        lambda ws: ["profile", "release", "--threads", "100000"],
        r"--threads must be an integer from 1 to 1,024",
    ),
    Case(
        "profile-warmup-negative",
        lambda ws: ["profile", "release", "--warmup", "-1"],
        r"--warmup must be an integer from 0",
    ),
    Case("profile-batch-zero", lambda ws: ["profile", "release", "--batch", "0"], r"--batch must be an integer from 1"),
    Case(
        "profile-max-drop-nan",
        lambda ws: ["profile", "release", "--max-drop", "nan"],
        r"--max-drop must be a number from 0 to 100",
    ),
    Case(
        "profile-accuracy-samples-zero",
        lambda ws: ["profile", "release", "--accuracy-samples", "0"],
        r"--accuracy-samples must be an integer",
    ),
    Case(
        "profile-connect-timeout-inf",
        lambda ws: ["profile", "release", "--connect-timeout", "inf"],
        r"--connect-timeout must be a number from 1",
    ),
    Case(
        "evaluate-limit-negative",
        lambda ws: ["evaluate", "release", "--data", "demo", "--limit", "-5"],
        r"--limit must be an integer from 1",
    ),
    Case(
        "evaluate-max-drop-inf",
        lambda ws: ["evaluate", "release", "--data", "demo", "--max-drop", "inf"],
        r"--max-drop must be a number from 0 to 100",
    ),
    Case(
        "quantize-max-drop-nan",
        lambda ws: ["quantize", "release", "--precision", "int8", "--max-drop", "nan"],
        r"--max-drop must be a number from 0 to 100",
    ),
    Case(
        "quantize-calib-samples-zero",
        lambda ws: ["quantize", "release", "--precision", "int8", "--calib-samples", "0"],
        r"--calib-samples must be an integer from 1",
    ),
    Case(
        "quantize-limit-float",
        lambda ws: ["quantize", "release", "--precision", "int8", "--limit", "2.5"],
        r"--limit must be an integer",
    ),
    Case(
        "validate-samples-zero",
        lambda ws: ["validate", "release", "--samples", "0"],
        r"--samples must be an integer from 1",
    ),
    Case(
        "validate-threshold-db-nan",
        lambda ws: ["validate", "release", "--threshold-db", "nan"],
        r"--threshold-db must be a number",
    ),
    Case(
        "release-iters-zero",
        lambda ws: ["release", "--demo", "--iters", "0", "--out", str(ws.out)],
        r"--iters must be an integer from 1",
    ),
    Case(
        "release-num-classes-huge",
        lambda ws: ["release", "--model", ws.small, "--num-classes", "1e10", "--out", str(ws.out)],
        r"--num-classes must be an integer",
    ),
    Case(
        "release-max-drop-negative",
        lambda ws: ["release", "--demo", "--max-drop", "-1", "--out", str(ws.out)],
        r"--max-drop must be a number from 0 to 100",
    ),
    Case(
        "release-calib-samples-huge",
        lambda ws: ["release", "--demo", "--calib-samples", "10000000", "--out", str(ws.out)],
        r"--calib-samples must be an integer from 1 to 100,000",
    ),
    Case(
        "release-device-accuracy-samples-zero",
        lambda ws: ["release", "--demo", "--device-accuracy-samples", "0", "--out", str(ws.out)],
        r"--device-accuracy-samples must be an integer",
    ),
    Case("train-epochs-zero", _train("demo", "--epochs", "0"), r"--epochs must be an integer from 1"),
    Case("train-lr-nan", _train("demo", "--lr", "nan"), r"--lr must be a number above 0"),
    Case("train-lr-inf", _train("demo", "--lr", "inf"), r"--lr must be a number above 0"),
    Case("train-batch-size-zero", _train("demo", "--batch-size", "0"), r"--batch-size must be an integer from 1"),
    Case("train-seed-negative", _train("demo", "--seed", "-1"), r"--seed must be an integer from 0"),
    Case(
        "devices-connect-timeout-inf",
        lambda ws: ["devices", "--connect-timeout", "inf"],
        r"--connect-timeout must be a number from 1 to 3,600",
    ),
    Case(
        "devices-connect-timeout-text",
        lambda ws: ["devices", "--connect-timeout", "soon"],
        r"--connect-timeout must be a number",
    ),
    # data files and folders
    Case(
        "quantize-calib-fifo",
        lambda ws: ["quantize", str(ws.release), "--precision", "int8", "--formats", "onnx", "--calib", "calib.npy"],
        r"calib\.npy is a FIFO, not a regular file",
        setup=_fifo("calib.npy"),
        needs_release=True,
    ),
    Case("train-data-fifo-npz", _train("set.npz"), r"set\.npz is a FIFO, not a regular file", setup=_fifo("set.npz")),
    Case(
        "train-data-folder-holds-fifo",
        _train("data"),
        r"holds .*stream\.png, which is a FIFO, not a regular file",
        setup=_data_folder({"cat": {"0.png": _small_png(), "stream.png": None}, "dog": {"0.png": _small_png()}}),
    ),
    Case(
        "train-class-folder-with-newline",
        _train("data"),
        r"class folder 'two\\nlines' holds the control character",
        setup=_data_folder({"ok": {"0.png": _small_png()}, "two\nlines": {"0.png": _small_png()}}),
    ),
    Case(
        "train-class-folder-with-tab",
        _train("data"),
        r"class folder 'a\\tb' holds the control character",
        setup=_data_folder({"ok": {"0.png": _small_png()}, "a\tb": {"0.png": _small_png()}}),
    ),
    Case(
        "train-npz-class-name-with-escape",
        _train("set.npz"),
        r"class name .* holds the control character '\\x1b'",
        setup=_npz_classes("set.npz", ["fine", "evil\x1b[2J"]),
    ),
    Case(
        "train-data-only-decompression-bombs",
        _train("data"),
        r"holds no images \(1 unreadable file\(s\) skipped, e\.g\. huge\.png: too large to decode safely",
        setup=_data_folder({"cat": {"huge.png": _png_header(100_000, 100_000)}}),
    ),
    Case(
        "train-npz-declaring-terabytes",
        _train("bomb.npz"),
        r"'images' declares [\d,.]+ GiB",
        setup=_npz_bomb("bomb.npz"),
    ),
]
