"""The package layers hold: every import in shufflekit/ (at the top of a module or inside a function, the
lazy ones included) points down the layers or within its own layer, and neither the package graph nor the
module graph has a cycle. Read from the source with ``ast``, so nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "shufflekit"

# cli -> release -> export/validate/runtimes/report -> models/records/artifacts/formats/folder -> errors/files.
# A package may import its own layer or any lower one, without a cycle (in the middle layer: validate ->
# export, the files it judges; validate -> runtimes, the sessions it judges them with; report -> runtimes,
# the operator table). A new package is added here (the test says so).
LAYERS: dict[str, int] = {
    "__main__": 5,
    "cli": 5,
    "release": 4,
    "predict": 4,
    "sweep": 4,
    "export": 3,
    "validate": 3,
    "runtimes": 3,
    "report": 3,
    "guidelines": 3,
    "train": 3,
    "models": 2,
    "data": 2,
    "data_demo": 2,
    "artifacts": 1,
    "records": 1,
    "formats": 1,
    "folder": 1,
    "metadata": 1,
    "errors": 0,
    "files": 0,
    "gc_tuning": 0,
    "splits": 0,
    "": 0,  # "": shufflekit/__init__.py (the version)
}
DEVICE = "device"  # runs on the phone or board: imports nothing of shufflekit outside itself

# Known edges that break the rule, each with why ("a -> b" for packages, "module -> module" for modules).
# Empty now; never grow it without saying why in a comment.
ALLOWED: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    """The shufflekit modules ``module`` imports anywhere in its body."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names if alias.name.split(".")[0] == "shufflekit"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] != "shufflekit":
                continue
            for alias in node.names:  # `from . import quantize_onnx` imports a module, not a name
                full = f"{name}.{alias.name}"
                targets.add(full if full in MODULES else name)
    return {t for t in targets if t != module}


MODULE_GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, targets in MODULE_GRAPH.items():
        own = _package(module)
        graph.setdefault(own, set()).update(_package(t) for t in targets if _package(t) != own)
    return graph


def _cycles(graph: dict[str, set[str]], allowed: dict[str, str]) -> list[list[str]]:
    """Every cycle through the graph's edges, less the allowed ones (one cycle per back edge found)."""
    edges = {a: {b for b in targets if f"{a} -> {b}" not in allowed} for a, targets in graph.items()}
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                found.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def _importers(edge: str) -> list[str]:
    """The modules of package a that import package b."""
    a, b = edge.split(" -> ")
    return sorted(
        m for m, targets in MODULE_GRAPH.items() if _package(m) == a and any(_package(t) == b for t in targets)
    )


def test_every_package_has_a_layer():
    unknown = sorted({_package(m) for m in MODULES} - set(LAYERS) - {DEVICE})
    assert not unknown, f"add {unknown} to LAYERS in {Path(__file__).name} (which layer does it belong to?)"


def test_packages_depend_downwards_only():
    upward = [
        f"{a} -> {b}"
        for a, targets in sorted(_package_graph().items())
        for b in sorted(targets)
        if a in LAYERS and b in LAYERS and LAYERS[b] > LAYERS[a] and f"{a} -> {b}" not in ALLOWED
    ]
    assert not upward, "imports up the layers: " + "; ".join(
        f"{edge} (in {', '.join(_importers(edge))})" for edge in upward
    )


def test_the_device_package_imports_nothing_of_shufflekit_outside_itself():
    outside = sorted(
        f"{m} -> {t}"
        for m, targets in MODULE_GRAPH.items()
        if _package(m) == DEVICE
        for t in targets
        if _package(t) != DEVICE
    )
    assert not outside, f"the device package must stand alone: {outside}"
    users = [m for m, targets in MODULE_GRAPH.items() if _package(m) != DEVICE and _package(m) not in LAYERS]
    assert not users


def test_no_package_cycle():
    cycles = _cycles(_package_graph(), ALLOWED)
    assert not cycles, "package cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_cycle():
    cycles = _cycles(MODULE_GRAPH, ALLOWED)
    assert not cycles, "module cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("edge", sorted(ALLOWED))
def test_every_allowed_edge_still_exists(edge):
    """An allowed edge that is gone is removed from the list, so the list only shrinks."""
    a, b = edge.split(" -> ")
    graph = MODULE_GRAPH if a in MODULE_GRAPH and "." in a else _package_graph()
    assert b in graph.get(a, set()), f"{edge} no longer exists: remove it from ALLOWED"


def test_the_release_and_export_do_not_import_each_other_upwards():
    """The release drives export, quantize, validate and profile; none of them imports the release."""
    assert "release" not in {
        _package(t)
        for m, targets in MODULE_GRAPH.items()
        if _package(m) in ("export", "validate", "runtimes", "report")
        for t in targets
    }
