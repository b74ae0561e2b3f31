"""The device package is pushed alone to phones and boards as one zipapp file: every module must parse as
Python 3.8 and import nothing but the standard library and numpy at module level (the runtimes lazily);
the file runs standalone; it is rebuilt when a device source changes and reused otherwise."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from shufflekit.runtimes import device_file as packing
from shufflekit.runtimes.device_file import SOURCE, device_file

MODULES = packing.sources(SOURCE)
# What the backends may import inside their functions: the runtimes and what ships with them.
RUNTIMES = {"onnxruntime", "ai_edge_litert", "tflite_runtime", "tensorflow", "flatbuffers"}


def _ids(path: Path) -> str:
    return path.relative_to(SOURCE).as_posix()


def test_the_device_package_has_one_module_per_concern() -> None:
    names = {_ids(p) for p in MODULES}
    assert {
        "errors.py",
        "tensors.py",
        "bench.py",
        "facts.py",
        "procfs.py",
        "job.py",
        "__main__.py",
        "backends/__init__.py",
        "backends/onnxruntime.py",
        "backends/litert.py",
    } <= names


@pytest.mark.parametrize("path", MODULES, ids=_ids)
def test_every_device_module_parses_as_python_3_8(path: Path) -> None:
    ast.parse(path.read_text(), feature_version=(3, 8))


@pytest.mark.parametrize("path", MODULES, ids=_ids)
def test_device_modules_import_only_stdlib_and_numpy_at_module_level(path: Path) -> None:
    """Relative imports stay inside the package; absolute ones at module level are stdlib or numpy; the
    runtimes are imported only inside functions."""
    tree = ast.parse(path.read_text())
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    top: set[str] = set()
    lazy: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            into = top if node in tree.body else lazy
            if isinstance(node, ast.Import):
                into.update(alias.name.split(".")[0] for alias in node.names)
            elif node.level == 0:
                into.add((node.module or "").split(".")[0])
            else:  # relative: never above the package
                depth = len(path.relative_to(SOURCE).parts) - 1
                assert node.level <= depth + 1, f"{_ids(path)} imports from outside the device package"
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            lazy.add("__import__")
    assert top - stdlib <= {"numpy"}, f"{_ids(path)} imports {sorted(top - stdlib - {'numpy'})} at module level"
    assert lazy - stdlib - {"numpy", "__import__"} <= RUNTIMES, sorted(lazy - stdlib)


@pytest.mark.parametrize("path", MODULES, ids=_ids)
def test_device_modules_use_no_syntax_newer_than_3_8(path: Path) -> None:
    """feature_version does not catch everything (e.g. PEP 604 unions evaluated at runtime in a default
    or a cast); annotations are strings here, so only look outside them."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        assert not isinstance(node, ast.Match), "match statements need Python 3.10"
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in {"removeprefix", "removesuffix"}:
            raise AssertionError("str.removeprefix needs Python 3.9")
    if not any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body):
        # without postponed evaluation an annotation runs at import: only strings are safe on 3.8
        notes = [n.annotation for n in ast.walk(tree) if isinstance(n, (ast.arg, ast.AnnAssign)) and n.annotation]
        notes += [n.returns for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.returns]
        assert all(isinstance(n, ast.Constant) for n in notes), f"{_ids(path)}: annotations must be strings"


def test_the_device_package_imports_nothing_of_the_host_in_a_bare_python(tmp_path: Path) -> None:
    """The zipapp alone, with a Python whose path holds only the standard library and numpy: importing
    every module loads no shufflekit host code and no runtime."""
    pyz = device_file(cache=tmp_path / "cache")
    names = [
        f"shufflekit_device.{_ids(p)[:-3].replace('/', '.')}".removesuffix(".__init__")
        for p in MODULES
        if p.name != "__main__.py"
    ]
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import importlib\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "loaded = sorted(m.split('.')[0] for m in sys.modules)\n"
        "print(' '.join(sorted(set(loaded))))\n"
    )
    # -I: no PYTHONPATH, no user site, no current folder; only this Python's own packages
    done = subprocess.run([sys.executable, "-I", "-c", code, str(pyz)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "shufflekit" not in loaded
    assert not loaded & RUNTIMES, sorted(loaded & RUNTIMES)


def test_the_file_runs_standalone_in_the_lean_device_python(tmp_path: Path) -> None:
    """One file on the device: copied alone into an empty folder, it answers a probe job with the lean
    environment's numpy<2 (no shufflekit installed there)."""
    device_python = Path(__file__).resolve().parents[2] / ".venv-device" / "bin" / "python"
    python = str(device_python) if device_python.exists() else sys.executable
    alone = tmp_path / "device"
    alone.mkdir()
    shutil.copy(device_file(cache=tmp_path / "cache"), alone)
    (alone / "job.json").write_text(json.dumps({"mode": "probe"}))
    done = subprocess.run(
        [python, packing.FILE_NAME, "job.json"],
        cwd=alone,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    reply = json.loads(done.stdout.splitlines()[-1])
    assert done.returncode == 0 and reply["ok"] and reply["protocol"] == 1, done.stderr
    assert reply["result"]["host"]["logical_cores"] >= 1
    if device_python.exists():
        assert reply["result"]["host"]["numpy"].startswith("1.")


def test_the_zipapp_is_rebuilt_when_a_device_source_changes_and_reused_otherwise(tmp_path: Path) -> None:
    source = tmp_path / "device"
    shutil.copytree(SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    first = device_file(source, cache)
    stamp = first.stat().st_mtime_ns
    again = device_file(source, cache)
    assert again == first and again.stat().st_mtime_ns == stamp  # reused, not rebuilt
    with open(source / "bench.py", "a") as handle:
        handle.write("\n# a change\n")
    changed = device_file(source, cache)
    assert changed != first and changed.name == first.name == packing.FILE_NAME
    with zipfile.ZipFile(changed) as archive:
        assert archive.read("shufflekit_device/bench.py").endswith(b"# a change\n")
        assert "__main__.py" in archive.namelist()
    assert not [p for p in cache.rglob("*") if p.name.startswith(".build-")]  # no half-made leftovers


def test_an_emulated_cpu_is_reported_with_the_kernel_family_it_presents(monkeypatch):
    """A board built by `shufflekit board build` declares its emulator; /proc/cpuinfo under user-mode qemu is
    the host's, so the emulated CPU, not the host's flags, decides the int8 kernel family."""
    from shufflekit.device import facts as device_facts

    monkeypatch.setenv("SHUFFLEKIT_EMULATOR", "qemu-x86_64-static 7.2 -cpu Haswell (user-mode), x86_64")
    monkeypatch.setenv("SHUFFLEKIT_EMULATED_CPU", "Haswell")
    facts = device_facts.host_facts(with_runtimes=False)
    assert facts["emulated"] is True and "Haswell" in facts["emulator"]
    assert facts["kernel_family"] == ("x86-avx2" if facts["machine"] == "x86_64" else "arm64")
    assert facts["cpu_model"].startswith("emulated")  # never the host's model as the device's
    monkeypatch.delenv("SHUFFLEKIT_EMULATOR")
    monkeypatch.delenv("SHUFFLEKIT_EMULATED_CPU")
    native = device_facts.host_facts(with_runtimes=False)
    assert native["emulated"] is False and native["emulator"] is None
    assert native["kernel_family"] in ("x86-avx2", "x86-vnni", "arm64", None)


def test_one_facts_parser_for_the_runner_the_probe_and_the_native_tools() -> None:
    """The probe's and the native tools' cpu model and core count are the device package's parser."""
    from shufflekit.device import procfs
    from shufflekit.runtimes import native_facts
    from shufflekit.runtimes.remote import probe

    board = (
        "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd03\n\n"
        "processor\t: 1\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n"
    )
    assert procfs.cpu_model(board) == "ARM implementer 0x41 part 0xd03/0xd08" == native_facts.cpu_model(board)
    assert procfs.logical_cores(board) == 2
    assert probe.probe_source().startswith(Path(procfs.__file__).read_text())
    assert procfs.logical_cores_of({"cpu_count": 4}) == 4 and procfs.logical_cores_of({"logical_cores": 2}) == 2
