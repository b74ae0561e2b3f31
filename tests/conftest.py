"""Shared fixtures. Tests use small models (0.5x, 64x64 inputs) so the suite stays fast on 2 cores."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from build_once import build_once, shared_root, worker

# Keep TensorFlow's C++ logging quiet and make runs repeatable on a small CI machine.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")
# pytest-xdist's workers run with COLUMNS=80 (a plain pytest run has none), and the CLI's tables fit
# COLUMNS: every test sees the tables as a pipe does (240 columns) whichever way the suite runs; the
# 80-column behaviour has its own tests (tests/cli/test_tables_80_columns.py), which set COLUMNS.
os.environ.pop("COLUMNS", None)

# The real sshd, ssh client config, lean device Pythons and emulated boards: one place for every test.
pytest_plugins = ["device_fixtures"]

SMALL_V2 = "shufflenet_v2_x0_5"
SMALL_V1 = "shufflenet_v1_g3_x0_5"
SMALL_SIZE = 64
SMALL_CLASSES = 10


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


# A test that uses one of these (directly or through another fixture) is slow (it converts with onnx2tf or
# trains) or needs the sshd and device Pythons `make test-deps` sets up: marked so, `make test-fast` leaves it out.
_SLOW_FIXTURES = {"small_release", "trained_release", "quantized", "tiny_models", "full_release", "released"}
_SSH_FIXTURES = {"sshd_server", "ssh_client", "device_python", "bare_device_python", "arm64_python", "avx2_python"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & _SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if used & _SSH_FIXTURES:
            item.add_marker(pytest.mark.ssh)
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# -- every manifest a test leaves behind validates against schemas/manifest.schema.json -------------------
_SCHEMA_FILE = Path(__file__).parent.parent / "schemas" / "manifest.schema.json"
_validator = None


def _schema_errors(root: Path) -> list[str]:
    """Manifests under ``root`` the published schema refuses though the loader reads them (a folder a test
    damaged on purpose is refused by both, and is fine). Cheap: one cached validator, the loader only on
    a refusal."""
    global _validator
    try:
        import jsonschema
    except ImportError:  # the dev extra is not installed: nothing to check with
        return []
    if _validator is None:
        _validator = jsonschema.Draft202012Validator(json.loads(_SCHEMA_FILE.read_text()))
    found = []
    from shufflekit.artifacts import MAX_DEPTH, MAX_MANIFEST_BYTES, json_depth

    for path in root.rglob("manifest.json"):
        if not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES:
            continue  # a FIFO a test made would block the read; a huge one is the loader's to refuse
        try:
            text = path.read_text()
            if json_depth(text) > MAX_DEPTH:
                continue  # json's C decoder overflows the C stack on deep nesting (the loader refuses it)
            data = json.loads(text)
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("schema") != "shufflekit.manifest/2":
            continue  # not one this version writes (a v1 fixture, a damaged file)
        error = next(iter(_validator.iter_errors(data)), None)
        if error is None:
            continue
        from shufflekit.artifacts import Manifest
        from shufflekit.errors import ShufflekitError

        try:
            Manifest.load(path.parent)
        except ShufflekitError:
            continue
        found.append(f"{path}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
    return found


@pytest.fixture(autouse=True)
def _manifests_match_the_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    tmp = request.node.funcargs.get("tmp_path") if "tmp_path" in request.fixturenames else None
    if isinstance(tmp, Path) and tmp.is_dir():
        errors = _schema_errors(tmp)
        assert not errors, "manifest.json not valid against schemas/manifest.schema.json:\n" + "\n".join(errors)


@pytest.fixture(scope="session", autouse=True)
def _session_manifests_match_the_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The session-wide folders (small_release, trained_release, quantized...) checked once at the end."""
    yield
    errors = _schema_errors(tmp_path_factory.getbasetemp())
    shared = shared_root(tmp_path_factory)  # what the xdist workers built once for all (build_once.py)
    if shared is not None and shared.is_dir():
        errors += _schema_errors(shared)
    assert not errors, "manifest.json not valid against schemas/manifest.schema.json:\n" + "\n".join(errors)


@pytest.fixture(scope="session", autouse=True)
def _demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo data set is written once per test session into a private cache, not the user's."""
    folder = tmp_path_factory.mktemp("shufflekit-cache")
    os.environ["SHUFFLEKIT_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session", autouse=True)
def _worker_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Under pytest-xdist, each worker's own $TMPDIR (children inherit it): a test that checks it left
    nothing in the temporary folder sees its own worker's files only, not another test's running beside it."""
    if worker() is not None:
        os.environ["TMPDIR"] = str(tmp_path_factory.mktemp("tmp"))
        tempfile.tempdir = None  # tempfile caches the folder on first use


@pytest.fixture(scope="session")
def small_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release folder exported once per test session, for every test that needs real artifacts:
    SMALL_V2 (v2 0.5x), 64x64, 10 classes, seeded weights with non-trivial BatchNorm, batch 1;
    shufflenet_v2_x0_5_fp32.onnx (NCHW) and shufflenet_v2_x0_5_fp32.tflite (NHWC), reference.npz
    (16 inputs and PyTorch's logits) and manifest.json. Treat it as read-only: a test that writes to
    the folder (validate records results, quantize adds artifacts) uses ``small_release_copy``."""
    from shufflekit.export import export_model

    def build(root: Path) -> Path:
        export_model(root / "release", model=SMALL_V2, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE)
        return root / "release"

    return build_once(tmp_path_factory, "small-release", build)


@pytest.fixture()
def small_release_copy(small_release: Path, tmp_path: Path) -> Path:
    """A private copy of ``small_release`` that a test may change."""
    target = tmp_path / "release"
    shutil.copytree(small_release, target)
    return target


TRAINED_EPOCHS = 4  # about 85 % on the demo set's val split: a model whose accuracy quantization can lose


@pytest.fixture(scope="session")
def trained_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained model's release folder, built once per test session: SMALL_V2 trained on the
    demo set (32x32, 10 digit classes, TRAINED_EPOCHS epochs) to ``model.pt`` beside the folder, then
    exported from that checkpoint to shufflenet_v2_x0_5_fp32.onnx and .tflite (NHWC) with reference.npz
    and manifest.json (source: the checkpoint, by path and sha256). Read-only; tests that write use
    ``trained_release_copy`` (the copy still points at the same checkpoint)."""
    from shufflekit.export import export_model
    from shufflekit.train import TrainConfig, train

    def build(root: Path) -> Path:
        checkpoint = root / "model.pt"
        train(TrainConfig(model=SMALL_V2, data="demo", epochs=TRAINED_EPOCHS), checkpoint)
        export_model(root / "release", checkpoint=checkpoint)
        return root / "release"

    return build_once(tmp_path_factory, "trained-release", build)


@pytest.fixture()
def trained_release_copy(trained_release: Path, tmp_path: Path) -> Path:
    """A private copy of ``trained_release`` that a test may change."""
    target = tmp_path / "trained"
    shutil.copytree(trained_release, target)
    return target


# -- the trained release quantized once per test session to every precision, ONNX and TFLite ----------
@dataclass(frozen=True)
class Quantized:
    folder: Path  # read-only: tests that write use ``quantized_copy``
    report: object  # the QuantizeReport
    onnx2tf_conversions: int  # onnx2tf.convert calls made by the quantize run


@pytest.fixture(scope="session")
def quantized(trained_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Quantized:
    """``trained_release`` plus ONNX fp16/dynamic/int8 and TFLite fp16/dynamic/int8 (float I/O),
    calibrated on 256 demo images, per-channel, min/max."""
    import onnx2tf

    from shufflekit.export.quantize import QuantizeOptions, quantize_release

    def build(root: Path) -> tuple[Path, object, int]:
        folder = root / "release"
        shutil.copytree(trained_release, folder)
        calls = []
        real = onnx2tf.convert
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(onnx2tf, "convert", lambda *a, **k: calls.append(1) or real(*a, **k))
            report = quantize_release(folder, QuantizeOptions(precisions=("fp16", "dynamic", "int8"), calib="demo"))
        return folder, report, len(calls)

    return Quantized(*build_once(tmp_path_factory, "quantized", build))


@pytest.fixture()
def quantized_copy(quantized: Quantized, tmp_path: Path) -> Path:
    target = tmp_path / "quantized"
    shutil.copytree(quantized.folder, target)
    return target
