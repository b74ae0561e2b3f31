"""Bad input that already gets one clear line on today's code, over every command: unknown names, bad
sizes and counts, missing or wrong paths, damaged manifests, hostile device addresses, checkpoints and
arrays that carry pickled code. Each fails before any model is built or converted, so the table stays fast."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .harness import SMALL, Case, Workspace

MARKER = "PWNED"  # a pickled os.system would create this beside the workspace; the snapshot would see it


# -- setups ------------------------------------------------------------------------------------------------
def _write(rel: str, data: bytes | str):
    def setup(ws: Workspace) -> None:
        path = ws.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)

    return setup


def _mkdir(*rels: str):
    def setup(ws: Workspace) -> None:
        for rel in rels:
            (ws.root / rel).mkdir(parents=True, exist_ok=True)

    return setup


def _manifest(data: object, folder: str = "rel"):
    """A folder whose manifest.json holds ``data`` (as JSON) or, for a str, exactly that text."""
    text = data if isinstance(data, str) else json.dumps(data)
    return _write(f"{folder}/manifest.json", text)


def _empty_release(ws: Workspace) -> None:
    """A valid manifest of SMALL at 64x64 with no artifacts (cheap: nothing to load)."""
    from shufflekit.artifacts import Manifest
    from shufflekit.metadata import ModelMeta, Preprocessing

    meta = ModelMeta(model=SMALL, num_classes=10, preprocessing=Preprocessing.for_size(64))
    Manifest.new(ws.root / "rel", meta).save()


def _mutated(**changes: object):
    def setup(ws: Workspace) -> None:
        from shufflekit.artifacts import Manifest
        from shufflekit.metadata import ModelMeta, Preprocessing

        meta = ModelMeta(model=SMALL, num_classes=10, preprocessing=Preprocessing.for_size(64))
        data = Manifest.new(ws.root / "rel", meta).to_dict()
        for key, value in changes.items():
            if value is _DROP:
                data.pop(key, None)
            else:
                data[key] = value
        _manifest(data)(ws)

    return setup


_DROP = object()


def _meta():
    from shufflekit.metadata import ModelMeta, Preprocessing

    return ModelMeta(model=SMALL, num_classes=10, preprocessing=Preprocessing.for_size(64))


def _artifact(**changes: object) -> dict:
    entry = {
        "name": "m.onnx",
        "format": "onnx",
        "precision": "fp32",
        "sha256": "0" * 64,
        "size_bytes": 1,
        "inputs": [{"name": "input", "shape": [1, 3, 64, 64], "dtype": "float32", "layout": "NCHW"}],
        "outputs": [{"name": "logits", "shape": [1, 10], "dtype": "float32", "layout": None}],
        "meta": _meta().to_dict(),
    }
    entry.update(changes)
    return entry


class _Exploit:
    """Unpickling this runs ``os.system``: a checkpoint that carries code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickled_code(rel: str):
    def setup(ws: Workspace) -> None:
        import torch

        torch.save({"state_dict": _Exploit(ws.root.parent / MARKER)}, ws.root / rel)

    return setup


def _torch_save(rel: str, payload: object):
    def setup(ws: Workspace) -> None:
        import torch

        torch.save(payload, ws.root / rel)

    return setup


def _npy(rel: str, array_factory):
    def setup(ws: Workspace) -> None:
        import numpy as np

        path = ws.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        array = array_factory(np, ws)
        if rel.endswith(".npz"):
            np.savez(path, **array)
        else:
            np.save(path, array, allow_pickle=True)

    return setup


def _object_array(np, ws: Workspace):
    return np.array([_Exploit(ws.root.parent / MARKER), 1], dtype=object)


def _class_folders_without_images(ws: Workspace) -> None:
    for name in ("cat", "dog"):
        (ws.root / "imgs" / name).mkdir(parents=True)
        (ws.root / "imgs" / name / "notes.txt").write_text("not an image\n")


def _user_folder(ws: Workspace) -> None:
    (ws.root / "mine").mkdir()
    (ws.root / "mine" / "notes.txt").write_text("my own notes\n")


def _bad_address_cases(prefix: str, argv_for) -> list[Case]:
    """One case per hostile or malformed device address through ``argv_for(ws, address)``."""
    addresses = {
        "shell-semicolon": ("local;rm -rf x", r"unknown device address"),
        "shell-subst": ("$(touch PWNED)", r"unknown device address"),
        "ssh-empty": ("ssh://", r"no host"),
        "ssh-shell-host": ("ssh://host;reboot", r"bad host"),
        "ssh-bad-port": ("ssh://host:99999", r"bad port"),
        "ssh-port-word": ("ssh://host:ssh", r"bad port"),
        "ssh-bad-user": ("ssh://us`id`er@host", r"bad (user|ssh address)"),
        "unknown-scheme": ("ftp://host", r"unknown device address scheme 'ftp'"),
        "adb-bad-serial": ("adb://a b;reboot", r"bad adb serial"),
        "unknown-option": ("local?foo=bar", r"unknown option 'foo'"),
        "option-dash": ("local?python=-c", r"bad value"),
        "tmp-relative": ("local?tmp=rel/dir", r"not an absolute path"),
        "bad-name": ("local?name=a;b", r"bad name"),
        "empty": ("", r"empty device address"),
    }
    return [
        Case(id=f"{prefix}-address-{key}", argv=lambda ws, a=address: argv_for(ws, a), error=error)
        for key, (address, error) in addresses.items()
    ]


# -- the cases ---------------------------------------------------------------------------------------------
_MODELS = [
    Case("models-input-size-31", lambda ws: ["models", "--input-size", "31"], r"31x31 has a side below 32 px"),
    Case("models-input-size-three-sides", lambda ws: ["models", "--input-size", "64x64x3"], r"WIDTHxHEIGHT"),
    Case("models-input-size-0", lambda ws: ["models", "--input-size", "0"], r"input.size"),
    Case("models-input-size-negative", lambda ws: ["models", "--input-size", "-64"], r"input.size"),
    Case("models-num-classes-0", lambda ws: ["models", "--num-classes", "0"], r"num.classes|classes"),
    Case("models-num-classes-negative", lambda ws: ["models", "--num-classes", "-3"], r"classes"),
]

_TRAIN_OUT = ["--out", "out/model.pt"]
_TRAIN = [
    Case(
        "train-unknown-model",
        lambda ws: ["train", "--model", "nope", "--data", "demo", *_TRAIN_OUT],
        r"unknown model 'nope'",
    ),
    Case(
        "train-data-missing",
        lambda ws: ["train", "--model", SMALL, "--data", "no-such-dir", *_TRAIN_OUT],
        r"no-such-dir does not exist",
    ),
    Case(
        "train-data-empty-folder",
        lambda ws: ["train", "--model", SMALL, "--data", "empty", *_TRAIN_OUT],
        r"no class subfolders",
        setup=_mkdir("empty"),
    ),
    Case(
        "train-data-class-folders-without-images",
        lambda ws: ["train", "--model", SMALL, "--data", "imgs", *_TRAIN_OUT],
        r"holds no images",
        setup=_class_folders_without_images,
    ),
    Case(
        "train-data-text-file",
        lambda ws: ["train", "--model", SMALL, "--data", "data.txt", *_TRAIN_OUT],
        r"neither a folder nor a \.npy/\.npz",
        setup=_write("data.txt", "hello\n"),
    ),
    Case(
        "train-data-object-npy",
        lambda ws: ["train", "--model", SMALL, "--data", "obj.npy", *_TRAIN_OUT],
        r"obj\.npy is not a readable numpy file",
        setup=_npy("obj.npy", _object_array),
    ),
    Case(
        "train-data-npz-without-images",
        lambda ws: ["train", "--model", SMALL, "--data", "d.npz", *_TRAIN_OUT],
        r"no 'images' array",
        setup=_npy("d.npz", lambda np, ws: {"pixels": np.zeros((2, 8, 8, 3), np.uint8)}),
    ),
    Case(
        "train-data-random-bytes-npy",
        lambda ws: ["train", "--model", SMALL, "--data", "r.npy", *_TRAIN_OUT],
        r"not a readable numpy file",
        setup=_write("r.npy", os.urandom(0) + b"\x93NUMPY garbage" * 10),
    ),
    Case(
        "train-epochs-0",
        lambda ws: ["train", "--model", SMALL, "--data", "demo", "--epochs", "0", *_TRAIN_OUT],
        r"epochs",
    ),
    Case(
        "train-batch-size-0",
        lambda ws: ["train", "--model", SMALL, "--data", "demo", "--batch-size", "0", *_TRAIN_OUT],
        r"batch",
    ),
    Case(
        "train-input-size-31",
        lambda ws: ["train", "--model", SMALL, "--data", "demo", "--input-size", "31", *_TRAIN_OUT],
        r"below 32 px",
    ),
    Case(
        "train-lr-negative",
        lambda ws: ["train", "--model", SMALL, "--data", "demo", "--lr", "-1", *_TRAIN_OUT],
        r"lr|learning rate",
    ),
    Case(
        "train-resume-without-checkpoint",
        lambda ws: ["train", "--model", SMALL, "--data", "demo", "--resume", *_TRAIN_OUT],
        r"resume|does not exist",
    ),
]

_EXPORT_OUT = ["--out", "out"]
_EXPORT = [
    Case("export-unknown-model", lambda ws: ["export", "--model", "nope", *_EXPORT_OUT], r"unknown model 'nope'"),
    Case(
        "export-input-size-64x31",
        lambda ws: ["export", "--model", SMALL, "--input-size", "64x31", *_EXPORT_OUT],
        r"64x31 has a side below 32 px: the nearest size the networks take is 64x32",
    ),
    Case(
        "export-input-size-0",
        lambda ws: ["export", "--model", SMALL, "--input-size", "0", *_EXPORT_OUT],
        r"input.size",
    ),
    Case(
        "export-input-size-negative",
        lambda ws: ["export", "--model", SMALL, "--input-size", "-32", *_EXPORT_OUT],
        r"input.size",
    ),
    Case("export-batch-0", lambda ws: ["export", "--model", SMALL, "--batch", "0", *_EXPORT_OUT], r"batch"),
    Case("export-batch-word", lambda ws: ["export", "--model", SMALL, "--batch", "many", *_EXPORT_OUT], r"batch"),
    Case(
        "export-unknown-format",
        lambda ws: ["export", "--model", SMALL, "--formats", "onnx,coreml", *_EXPORT_OUT],
        r"coreml",
    ),
    Case(
        "export-num-classes-0", lambda ws: ["export", "--model", SMALL, "--num-classes", "0", *_EXPORT_OUT], r"classes"
    ),
    Case(
        "export-checkpoint-missing",
        lambda ws: ["export", "--checkpoint", "gone.pt", *_EXPORT_OUT],
        r"checkpoint gone\.pt does not exist",
    ),
    Case(
        "export-checkpoint-dir",
        lambda ws: ["export", "--checkpoint", "ckdir", *_EXPORT_OUT],
        r"ckdir is (not a file|a folder, not a regular file)",
        setup=_mkdir("ckdir"),
    ),
    Case(
        "export-checkpoint-pickled-code",
        lambda ws: ["export", "--checkpoint", "evil.pt", *_EXPORT_OUT],
        r"pickled code.*not executed",
        setup=_pickled_code("evil.pt"),
    ),
    Case(
        "export-checkpoint-a-list",
        lambda ws: ["export", "--checkpoint", "list.pt", *_EXPORT_OUT],
        r"holds a list, not a state dict",
        setup=_torch_save("list.pt", [1, 2, 3]),
    ),
    Case(
        "export-checkpoint-no-tensors",
        lambda ws: ["export", "--checkpoint", "d.pt", *_EXPORT_OUT],
        r"no state dict of tensors",
        setup=_torch_save("d.pt", {"a": 1, "b": "two"}),
    ),
    Case(
        "export-checkpoint-truncated-zip",
        lambda ws: ["export", "--checkpoint", "cut.pt", *_EXPORT_OUT],
        r"damaged or truncated",
        setup=lambda ws: (ws.root / "cut.pt").write_bytes(ws.checkpoint.read_bytes()[:4096]),
    ),
]

_QUANTIZE = [
    Case(
        "quantize-folder-missing", lambda ws: ["quantize", "nowhere", "--precision", "fp16"], r"nowhere is not a folder"
    ),
    Case(
        "quantize-folder-without-manifest",
        lambda ws: ["quantize", "plain", "--precision", "fp16"],
        r"plain has no manifest\.json",
        setup=_mkdir("plain"),
    ),
    Case(
        "quantize-manifest-not-json",
        lambda ws: ["quantize", "rel", "--precision", "fp16"],
        r"not valid JSON",
        setup=_manifest("{not json"),
    ),
    Case(
        "quantize-unknown-precision",
        lambda ws: ["quantize", "rel", "--precision", "fp64"],
        r"fp64",
        setup=_empty_release,
    ),
    Case(
        "quantize-no-onnx-artifact",
        lambda ws: ["quantize", "rel", "--precision", "fp16"],
        r"rel has no fp32 ONNX artifact",
        setup=_empty_release,
    ),
    Case(
        "quantize-int8-without-calib",
        lambda ws: ["quantize", "release", "--precision", "int8"],
        r"calib",
        needs_release=True,
    ),
    Case(
        "quantize-unknown-format",
        lambda ws: ["quantize", "rel", "--precision", "fp16", "--formats", "coreml"],
        r"coreml",
        setup=_empty_release,
    ),
    Case(
        "quantize-calib-samples-0",
        lambda ws: ["quantize", "rel", "--precision", "int8", "--calib", "demo", "--calib-samples", "0"],
        r"calib",
        setup=_empty_release,
    ),
]

_VALIDATE = [
    Case("validate-folder-missing", lambda ws: ["validate", "nowhere"], r"nowhere is not a folder"),
    Case("validate-a-file", lambda ws: ["validate", "f.txt"], r"f\.txt is not a folder", setup=_write("f.txt", "x")),
    Case(
        "validate-no-manifest",
        lambda ws: ["validate", "plain"],
        r"has no manifest\.json",
        setup=_mkdir("plain"),
    ),
    Case("validate-manifest-not-json", lambda ws: ["validate", "rel"], r"not valid JSON", setup=_manifest("{]")),
    Case(
        "validate-manifest-binary",
        lambda ws: ["validate", "rel"],
        r"not valid JSON|not UTF-8 text",
        setup=_write("rel/manifest.json", b"\xff\xfe\x00garbage"),
    ),
    Case(
        "validate-manifest-a-list",
        lambda ws: ["validate", "rel"],
        r"not a shufflekit manifest",
        setup=_manifest([1, 2, 3]),
    ),
    Case(
        "validate-manifest-other-schema",
        lambda ws: ["validate", "rel"],
        r"not a shufflekit manifest",
        setup=_manifest({"schema": "someone.else/7"}),
    ),
    Case(
        "validate-manifest-no-model",
        lambda ws: ["validate", "rel"],
        r"field manifest\.model is missing",
        setup=_mutated(model=_DROP),
    ),
    Case(
        "validate-manifest-artifacts-not-list",
        lambda ws: ["validate", "rel"],
        r"field artifacts: .* is not a list",
        setup=_mutated(artifacts={"a": 1}),
    ),
    Case(
        "validate-manifest-artifact-path-escape",
        lambda ws: ["validate", "rel"],
        r"plain file name",
        setup=_mutated(artifacts=[_artifact(name="../outside.onnx")]),
    ),
    Case(
        "validate-manifest-artifact-unknown-format",
        lambda ws: ["validate", "rel"],
        r"format.*one of",
        setup=_mutated(artifacts=[_artifact(format="coreml")]),
    ),
    Case(
        "validate-manifest-artifact-bad-sha",
        lambda ws: ["validate", "rel"],
        r"sha256",
        setup=_mutated(artifacts=[_artifact(sha256="abc")]),
    ),
    Case(
        "validate-manifest-artifact-size-string",
        lambda ws: ["validate", "rel"],
        r"size_bytes",
        setup=_mutated(artifacts=[_artifact(size_bytes="12")]),
    ),
    Case(
        "validate-manifest-artifact-missing-file",
        lambda ws: ["validate", "rel"],
        r"m\.onnx is listed in the manifest but missing",
        setup=_mutated(artifacts=[_artifact()]),
    ),
    Case(
        "validate-manifest-unknown-result-kind",
        lambda ws: ["validate", "rel"],
        r"kind|unknown",
        setup=_mutated(results={"horoscope": {}}),
    ),
    Case(
        "validate-manifest-model-num-classes-string",
        lambda ws: ["validate", "rel"],
        r"num_classes",
        setup=_mutated(model={"model": SMALL, "num_classes": "10", "preprocessing": {"input_size": 64}}),
    ),
    Case(
        "validate-samples-0",
        lambda ws: ["validate", "release", "--samples", "0"],
        r"samples",
        needs_release=True,
    ),
    Case(
        "validate-checkpoint-missing",
        lambda ws: ["validate", "release", "--checkpoint", "gone.pt"],
        r"gone\.pt does not exist",
        needs_release=True,
    ),
]

_EVALUATE = [
    Case("evaluate-folder-missing", lambda ws: ["evaluate", "nowhere", "--data", "demo"], r"nowhere is not a folder"),
    Case(
        "evaluate-no-manifest",
        lambda ws: ["evaluate", "plain", "--data", "demo"],
        r"has no manifest\.json",
        setup=_mkdir("plain"),
    ),
    Case(
        "evaluate-manifest-other-schema",
        lambda ws: ["evaluate", "rel", "--data", "demo"],
        r"not a shufflekit manifest",
        setup=_manifest({"schema": 2}),
    ),
    Case(
        "evaluate-limit-0",
        lambda ws: ["evaluate", "release", "--data", "demo", "--limit", "0"],
        r"limit",
        needs_release=True,
    ),
    Case(
        "evaluate-data-missing",
        lambda ws: ["evaluate", "release", "--data", "no-such-dir"],
        r"no-such-dir does not exist",
        needs_release=True,
    ),
    Case(
        "evaluate-unknown-artifact",
        lambda ws: ["evaluate", "release", "coreml", "--data", "demo"],
        r"coreml",
        needs_release=True,
    ),
]

_PROFILE = [
    Case("profile-folder-missing", lambda ws: ["profile", "nowhere"], r"nowhere is not a folder"),
    Case("profile-no-manifest", lambda ws: ["profile", "plain"], r"has no manifest\.json", setup=_mkdir("plain")),
    Case("profile-manifest-not-json", lambda ws: ["profile", "rel"], r"not valid JSON", setup=_manifest("")),
    Case("profile-iters-0", lambda ws: ["profile", "rel", "--iters", "0"], r"iters", setup=_empty_release),
    Case(
        "profile-warmup-negative-no-artifacts",
        lambda ws: ["profile", "rel", "--warmup", "-1"],
        r"warmup",
        setup=_empty_release,
    ),
    Case("profile-batch-0", lambda ws: ["profile", "rel", "--batch", "0"], r"batch", setup=_empty_release),
    Case("profile-threads-0", lambda ws: ["profile", "rel", "--threads", "0"], r"threads", setup=_empty_release),
    Case(
        "profile-seconds-negative", lambda ws: ["profile", "rel", "--seconds", "-1"], r"seconds", setup=_empty_release
    ),
    Case(
        "profile-unknown-runtime",
        lambda ws: ["profile", "rel", "--runtime", "tensorflow"],
        r"tensorflow",
        setup=_empty_release,
    ),
    Case("profile-no-artifacts", lambda ws: ["profile", "rel"], r"rel lists no artifacts", setup=_empty_release),
    Case(
        "profile-unknown-provider",
        lambda ws: ["profile", "release", "--provider", "warp", "--no-parity", "--iters", "1", "--warmup", "0"],
        r"warp",
        needs_release=True,
    ),
    Case(
        "profile-accuracy-samples-0",
        lambda ws: ["profile", "release", "--accuracy-samples", "0", "--data", "demo"],
        r"accuracy.samples",
        needs_release=True,
    ),
    *_bad_address_cases("profile", lambda ws, a: ["profile", "plain", "--device", a]),
]

_RELEASE_OUT = ["--out", "out"]
_RELEASE = [
    Case("release-unknown-model", lambda ws: ["release", "--model", "nope", *_RELEASE_OUT], r"unknown model 'nope'"),
    Case(
        "release-input-size-31",
        lambda ws: ["release", "--model", SMALL, "--input-size", "31", *_RELEASE_OUT],
        r"below 32 px",
    ),
    Case(
        "release-unknown-precision",
        lambda ws: ["release", "--model", SMALL, "--precisions", "fp64", *_RELEASE_OUT],
        r"fp64",
    ),
    Case(
        "release-unknown-format",
        lambda ws: ["release", "--model", SMALL, "--formats", "coreml", *_RELEASE_OUT],
        r"coreml",
    ),
    Case(
        "release-checkpoint-missing",
        lambda ws: ["release", "--checkpoint", "gone.pt", *_RELEASE_OUT],
        r"gone\.pt does not exist",
    ),
    Case(
        "release-checkpoint-pickled-code",
        lambda ws: ["release", "--checkpoint", "evil.pt", *_RELEASE_OUT],
        r"pickled code",
        setup=_pickled_code("evil.pt"),
    ),
    Case(
        "release-data-missing",
        lambda ws: ["release", "--model", SMALL, "--data", "no-such-dir", *_RELEASE_OUT],
        r"no-such-dir does not exist",
    ),
    Case("release-iters-0", lambda ws: ["release", "--model", SMALL, "--iters", "0", *_RELEASE_OUT], r"iters"),
    Case(
        "release-calib-samples-0",
        lambda ws: ["release", "--model", SMALL, "--calib-samples", "0", *_RELEASE_OUT],
        r"calib",
    ),
    Case(
        "release-device-shell",
        lambda ws: ["release", "--model", SMALL, "--device", "local;rm -rf x", *_RELEASE_OUT],
        r"unknown device address",
    ),
    Case(
        "release-device-unknown-scheme",
        lambda ws: ["release", "--model", SMALL, "--device", "telnet://box", *_RELEASE_OUT],
        r"scheme 'telnet'",
    ),
]

_REPORT = [
    Case("report-folder-missing", lambda ws: ["report", "nowhere"], r"nowhere is not a folder"),
    Case("report-a-file", lambda ws: ["report", "f.txt"], r"is not a folder", setup=_write("f.txt", "x")),
    Case("report-no-manifest", lambda ws: ["report", "plain"], r"has no manifest\.json", setup=_mkdir("plain")),
    Case("report-manifest-not-json", lambda ws: ["report", "rel"], r"not valid JSON", setup=_manifest("nope")),
    Case(
        "report-manifest-results-not-object",
        lambda ws: ["report", "rel"],
        r"results",
        setup=_mutated(results=[1]),
    ),
    Case(
        "report-manifest-source-not-object",
        lambda ws: ["report", "rel"],
        r"source",
        setup=_mutated(source="hand-made"),
    ),
]

_DEVICES = [
    *_bad_address_cases("devices", lambda ws, a: ["devices", a]),
    Case("devices-unknown-alias", lambda ws: ["devices", "myboard"], r"unknown device address 'myboard'"),
    *(  # where adb is installed the answer depends on what is attached: only where it is not
        [Case("devices-adb-not-installed", lambda ws: ["devices", "adb://"], r"`adb` is not installed")]
        if shutil.which("adb") is None
        else []
    ),
]

_BOARD = [
    Case(
        "board-build-into-user-folder",
        lambda ws: ["board", "build", "mine", "--kind", "arm64"],
        r"mine",
        setup=_user_folder,
    ),
    Case("board-list-missing", lambda ws: ["board", "list", "nowhere"], r"nowhere"),
    Case("board-list-not-a-board", lambda ws: ["board", "list", "mine"], r"mine", setup=_user_folder),
]

CASES: list[Case] = [
    *_MODELS,
    *_TRAIN,
    *_EXPORT,
    *_QUANTIZE,
    *_VALIDATE,
    *_EVALUATE,
    *_PROFILE,
    *_RELEASE,
    *_REPORT,
    *_DEVICES,
    *_BOARD,
]
