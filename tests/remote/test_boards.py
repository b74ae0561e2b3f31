"""Emulated boards (shufflekit board build): the arm64 one and the x86-64 one without AVX-512/VNNI that
`make test-deps` builds into .board-arm64 and .board-avx2 run real onnxruntime and TFLite kernels of
their architecture, and the build refuses folders it must not touch and keeps a board that is up to
date. Emulation is slow (~250x): each board run here is a tiny model or a bare interpreter."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from shufflekit.cli import main
from shufflekit.errors import UsageError
from shufflekit.runtimes.remote import boards
from shufflekit.runtimes.remote.boards import build_board, load_board

ROOT = Path(__file__).resolve().parents[2]
ARM64 = ROOT / ".board-arm64"  # the folders the arm64_python / avx2_python fixtures (conftest.py) launch
AVX2 = ROOT / ".board-avx2"
TIMEOUT = 300  # seconds; emulated runs take a few


def _run(python: str, code: str, *args: str, cwd: Path | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "-c", code, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT
    )


# --- a Conv+Relu model, its NumPy reference and (with TensorFlow) the same model as TFLite -----------

RNG = np.random.default_rng(7)
WEIGHTS = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)  # OIHW
BIAS = RNG.standard_normal(4).astype(np.float32)
IMAGE = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)


def _reference(image: np.ndarray) -> np.ndarray:
    padded = np.pad(image, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # N C H W 3 3
    return np.maximum(np.einsum("nchwij,ocij->nohw", windows, WEIGHTS) + BIAS[None, :, None, None], 0)


@pytest.fixture(scope="session")
def conv_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        "conv_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [numpy_helper.from_array(WEIGHTS, "w"), numpy_helper.from_array(BIAS, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # onnxruntime 1.22 on the arm64 board reads it
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("boards") / "conv.onnx"
    onnx.save(model, str(path))
    np.save(path.with_name("image.npy"), IMAGE)
    return path


@pytest.fixture(scope="session")
def conv_tflite(conv_onnx: Path) -> Path:
    """The same convolution as TFLite (NHWC), converted by TensorFlow's own converter."""
    tf = pytest.importorskip("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def conv(x):
        return tf.nn.relu(tf.nn.conv2d(x, WEIGHTS.transpose(2, 3, 1, 0), 1, "SAME") + BIAS)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([conv.get_concrete_function()], conv)
    path = conv_onnx.with_name("conv.tflite")
    path.write_bytes(converter.convert())
    return path


_RUN_ONNX = """
import platform, sys, numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
np.save(sys.argv[3], session.run(None, {"x": np.load(sys.argv[2])})[0])
print(platform.machine())
"""

_RUN_TFLITE = """
import platform, sys, numpy as np
try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    from tflite_runtime.interpreter import Interpreter
interpreter = Interpreter(model_path=sys.argv[1])
interpreter.allocate_tensors()
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.load(sys.argv[2]).transpose(0, 2, 3, 1).copy())
interpreter.invoke()
np.save(sys.argv[3], interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).transpose(0, 3, 1, 2))
print(platform.machine())
"""


def _on_board(python: str, code: str, model: Path) -> tuple[str, np.ndarray]:
    out = model.with_name(f"out-{model.suffix[1:]}-{Path(python).parent.name}.npy")
    out.unlink(missing_ok=True)
    result = _run(python, code, str(model), str(model.with_name("image.npy")), str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1], np.load(out)


# --- the arm64 board ------------------------------------------------------------------------------------


def test_arm64_board_runs_onnxruntime_as_aarch64(arm64_python, conv_onnx):
    machine, output = _on_board(arm64_python, _RUN_ONNX, conv_onnx)
    assert machine == "aarch64"
    np.testing.assert_allclose(output, _reference(IMAGE), rtol=1e-4, atol=1e-4)


def test_arm64_board_runs_tflite_as_aarch64(arm64_python, conv_tflite):
    machine, output = _on_board(arm64_python, _RUN_TFLITE, conv_tflite)
    assert machine == "aarch64"
    np.testing.assert_allclose(output, _reference(IMAGE), rtol=1e-4, atol=1e-4)


def test_arm64_board_says_it_is_emulated_and_sees_none_of_the_hosts_packages(arm64_python, tmp_path):
    code = (
        "import json, os, sys, importlib.util as u; print(json.dumps({'emulator': os.environ.get("
        "'SHUFFLEKIT_EMULATOR'), 'torch': u.find_spec('torch') is not None, 'path': sys.path}))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / ".venv" / "lib")}  # a host path must not leak in
    result = subprocess.run([arm64_python, "-c", code], capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["emulator"].startswith("qemu-aarch64-static ") and "aarch64" in facts["emulator"]
    assert not facts["torch"]
    assert all(str(ROOT / ".venv") not in p for p in facts["path"])


def test_arm64_board_is_a_device_shufflekit_can_use(arm64_python):
    result = CliRunner().invoke(main, ["devices", "--json", f"local?python={arm64_python}"])
    assert result.exit_code == 0, result.output
    (device,) = json.loads(result.stdout)["results"]
    assert device["ok"] and device["machine"] == "aarch64"
    assert {"onnxruntime", "ai_edge_litert"} <= set(device["runtimes"])


@pytest.mark.ssh
def test_boards_are_devices_over_ssh_with_a_plain_path(ssh_client, arm64_python, avx2_python):
    addresses = [ssh_client.url(python=arm64_python), ssh_client.url(python=avx2_python)]
    result = CliRunner().invoke(main, ["devices", "--json", "--ssh-config", str(ssh_client.config), *addresses])
    assert result.exit_code == 0, result.output
    rows = {row["address"]: row for row in json.loads(result.stdout)["results"]}
    arm64, avx2 = rows[addresses[0]], rows[addresses[1]]
    assert arm64["ok"] and arm64["machine"] == "aarch64" and arm64["python"] == "3.11.2"  # Debian 12's arm64 one
    assert avx2["ok"] and avx2["machine"] == "x86_64"
    assert set(avx2["runtimes"]) == {"onnxruntime", "tflite_runtime"}


# --- the x86-avx2 board -----------------------------------------------------------------------------------


def test_avx2_board_has_avx2_and_neither_avx512_nor_vnni(avx2_python):
    # /proc/cpuinfo on the board is the host's; the CPUID the board's code sees is qemu's Haswell.
    code = (
        "import json, os; from numpy.core._multiarray_umath import __cpu_features__ as f; "
        "print(json.dumps({'emulator': os.environ.get('SHUFFLEKIT_EMULATOR'), 'features': f}))"
    )
    result = _run(avx2_python, code)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr  # qemu's TCG warnings are silenced in the launcher
    facts = json.loads(result.stdout)
    assert "Haswell" in facts["emulator"] and facts["emulator"].startswith("qemu-x86_64-static ")
    features = facts["features"]
    assert features["AVX2"] and features["FMA3"]
    assert not any(on for name, on in features.items() if name.startswith("AVX512") or "VNNI" in name)


def test_avx2_board_runs_onnxruntime_and_tflite_runtime(avx2_python, conv_onnx, conv_tflite):
    machine, output = _on_board(avx2_python, _RUN_ONNX, conv_onnx)
    assert machine == "x86_64"
    np.testing.assert_allclose(output, _reference(IMAGE), rtol=1e-4, atol=1e-4)
    _, output = _on_board(avx2_python, _RUN_TFLITE, conv_tflite)
    np.testing.assert_allclose(output, _reference(IMAGE), rtol=1e-4, atol=1e-4)


def test_avx2_board_holds_the_device_requirements_pins(avx2_python):
    pins = [
        line.strip()
        for line in (ROOT / "scripts" / "device-requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert list(boards.X86_REQUIREMENTS) == pins
    board = load_board(AVX2)
    assert board.kind == "x86-avx2" and board.arch == "x86_64" and board.cpu == "Haswell"
    assert board.packages == dict(pin.split("==") for pin in pins)


# --- the launcher as a device's Python: arguments, stdin, stdout, stderr and exit code pass through ------


@pytest.mark.parametrize("board", ["arm64_python", "avx2_python"], ids=["arm64", "x86-avx2"])
def test_launcher_passes_arguments_streams_and_exit_code(board, request, tmp_path):
    python = request.getfixturevalue(board)
    script = tmp_path / "echo.py"
    script.write_text(
        "import sys\ndata = sys.stdin.read()\nprint(sys.argv[1:], data.upper())\n"
        "print('to stderr', file=sys.stderr)\nsys.exit(len(data))\n"
    )
    result = subprocess.run(
        [python, str(script), "a b", "--flag"],
        input="hello",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=TIMEOUT,
    )
    assert result.stdout == "['a b', '--flag'] HELLO\n"
    assert "to stderr" in result.stderr
    assert result.returncode == 5


# --- build_board: what it refuses and what it keeps (no emulator runs) --------------------------------------


def test_a_folder_not_made_by_shufflekit_is_refused_and_left_untouched(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    (folder / "board.json").write_text(json.dumps({"made_by": "someone else", "kind": "arm64"}))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    for force in (False, True):
        with pytest.raises(UsageError, match="not empty and holds no shufflekit board"):
            build_board("arm64", folder, force=force)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary folder left beside it


def test_the_cli_refuses_with_one_line_and_exit_2(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    result = CliRunner().invoke(main, ["board", "build", "--kind", "x86-avx2", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert (tmp_path / "file.txt").read_text() == "x"


def test_an_up_to_date_board_is_not_rebuilt(arm64_python):
    before = {p: p.stat().st_mtime_ns for p in (ARM64 / "board.json", ARM64 / "python", ARM64 / "root")}
    lines: list[str] = []
    board = build_board("arm64", ARM64, force=True, progress=lines.append)  # a rebuild would swap in new files
    assert lines and "up to date" in lines[-1]
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert board.python == ARM64 / "python" and board.arch == "aarch64" and board.packages["onnxruntime"]
    assert not list(ROOT.glob(".board-arm64.partial-*"))


def test_a_board_of_another_kind_is_replaced_only_with_force(tmp_path):
    folder = tmp_path / "board"
    folder.mkdir()
    manifest = {
        "made_by": "shufflekit",
        "format": boards.FORMAT,
        "kind": "arm64",
        "arch": "aarch64",
        "emulator": "qemu-aarch64-static 7.2.22 (user-mode), aarch64",
        "qemu": "/usr/bin/qemu-aarch64-static",
        "cpu": None,
        "python": "3.11.2",
        "packages": {},
        "requirements": list(boards.ARM64_REQUIREMENTS),
    }
    (folder / "board.json").write_text(json.dumps(manifest))
    (folder / "python").write_text("#!/bin/sh\n")
    with pytest.raises(UsageError, match="add --force"):
        build_board("x86-avx2", folder)
    assert sorted(p.name for p in folder.iterdir()) == ["board.json", "python"]


def test_load_board_names_a_folder_that_is_no_board(tmp_path):
    with pytest.raises(UsageError, match="is not a board"):
        load_board(tmp_path)
    result = CliRunner().invoke(main, ["board", "list", str(tmp_path)])
    assert result.exit_code == 2 and "is not a board" in result.stderr


def test_board_list_gives_the_address_to_use(arm64_python, avx2_python):
    result = CliRunner().invoke(main, ["board", "list", "--json", str(ARM64), str(AVX2)])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)["results"]
    assert [b["address"] for b in listed] == [
        f"local?python={arm64_python}&name=board-arm64",
        f"local?python={avx2_python}&name=board-avx2",
    ]
    assert [b["kind"] for b in listed] == ["arm64", "x86-avx2"]


def test_a_board_label_is_always_an_address_the_tool_accepts(tmp_path):
    from shufflekit.runtimes.remote import parse_address
    from shufflekit.runtimes.remote.boards import Board

    for name in ("local", ".board-arm64", "x" * 80, "my board (2)"):
        board = Board(
            folder=tmp_path / name,
            kind="arm64",
            arch="aarch64",
            emulator="qemu",
            python=tmp_path / name / "python",
            packages={},
        )
        assert parse_address(board.address).key == board.label != "local"
    with pytest.raises(UsageError, match="device address cannot carry"):
        build_board("x86-avx2", tmp_path / "a&b")
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(UsageError, match="cannot make the board folder"):
        build_board("x86-avx2", tmp_path / "afile" / "board")
