"""runner.py is pushed alone to phones and boards: it must parse as Python 3.8 and import nothing but the
standard library and numpy at module level."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from shufflekit.runtimes import runner

RUNNER = Path(runner.__file__)


def test_runner_parses_as_python_3_8() -> None:
    ast.parse(RUNNER.read_text(), feature_version=(3, 8))


def test_runner_imports_only_stdlib_and_numpy_at_module_level() -> None:
    tree = ast.parse(RUNNER.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "runner.py must not use relative imports"
            names.add((node.module or "").split(".")[0])
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    assert names - stdlib == {"numpy"}


def test_runner_uses_no_syntax_newer_than_3_8() -> None:
    """feature_version does not catch everything (e.g. PEP 604 unions evaluated at runtime in a default
    or a cast); annotations are strings here, so only look outside them."""
    tree = ast.parse(RUNNER.read_text())
    for node in ast.walk(tree):
        assert not isinstance(node, ast.Match), "match statements need Python 3.10"
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in {"removeprefix", "removesuffix"}:
            raise AssertionError("str.removeprefix needs Python 3.9")


def test_an_emulated_cpu_is_reported_with_the_kernel_family_it_presents(monkeypatch):
    """A board built by `shufflekit board build` declares its emulator; /proc/cpuinfo under user-mode qemu is
    the host's, so the emulated CPU, not the host's flags, decides the int8 kernel family."""
    from shufflekit.runtimes import runner

    monkeypatch.setenv("SHUFFLEKIT_EMULATOR", "qemu-x86_64-static 7.2 -cpu Haswell (user-mode), x86_64")
    monkeypatch.setenv("SHUFFLEKIT_EMULATED_CPU", "Haswell")
    facts = runner.host_facts(with_runtimes=False)
    assert facts["emulated"] is True and "Haswell" in facts["emulator"]
    assert facts["kernel_family"] == ("x86-avx2" if facts["machine"] == "x86_64" else "arm64")
    assert facts["cpu_model"].startswith("emulated")  # never the host's model as the device's
    monkeypatch.delenv("SHUFFLEKIT_EMULATOR")
    monkeypatch.delenv("SHUFFLEKIT_EMULATED_CPU")
    native = runner.host_facts(with_runtimes=False)
    assert native["emulated"] is False and native["emulator"] is None
    assert native["kernel_family"] in ("x86-avx2", "x86-vnni", "arm64", None)
