"""Runs ON THE DEVICE (sent as `python3 -c SOURCE`): prints one JSON object with the Python version,
numpy, the inference runtimes installed, the OS and the CPU. It is the check made before a job: the
runner itself needs numpy to start, so it cannot say that numpy is missing; the full device facts filed
with every measurement come from the runner (``runner.host_facts``).

Standard library only, and written for any Python 3 so that an old one on a board still reports its
version instead of a syntax error. A runtime is looked up without importing heavy packages
(tensorflow is only located, never imported).
"""

import json
import os
import platform
import sys


def _version(distribution):
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        return None
    try:
        return metadata.version(distribution)
    except Exception:
        return None


def _has_module(name):
    try:
        import importlib.util

        return importlib.util.find_spec(name) is not None
    except Exception:
        return False


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except Exception:
        return None


def _cpu_model():
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Model", "Processor", "cpu model"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _short(exc):
    text = str(exc).strip().splitlines()
    return "%s: %s" % (type(exc).__name__, text[0] if text else "")


def _runtimes():
    found = {}
    if _has_module("onnxruntime"):
        entry = {"version": _version("onnxruntime") or _version("onnxruntime-gpu")}
        try:
            import onnxruntime

            entry["version"] = onnxruntime.__version__
            entry["providers"] = onnxruntime.get_available_providers()
        except Exception as exc:  # installed but broken (e.g. a numpy it was not built for)
            entry["error"] = _short(exc)
        found["onnxruntime"] = entry
    for module, distribution, submodule in (("ai_edge_litert", "ai-edge-litert", "ai_edge_litert.interpreter"),
                                            ("tflite_runtime", "tflite-runtime", "tflite_runtime.interpreter"),
                                            ("tensorflow", "tensorflow", None)):
        if not _has_module(module):
            continue
        entry = {"version": _version(distribution) or _version(distribution.replace("-", "_"))
                 or (_version("tensorflow-cpu") if module == "tensorflow" else None)}
        if submodule:  # the light interpreters are imported: one built for another numpy fails here
            try:
                __import__(submodule)
            except Exception as exc:
                entry["error"] = _short(exc)
        found[module] = entry
    return found


def _emulator():
    """A board built by `shufflekit board build` says it is emulated; user-mode qemu otherwise shows as a
    machine whose /proc/cpuinfo is another architecture's (the host's)."""
    declared = os.environ.get("SHUFFLEKIT_EMULATOR")
    if declared:
        return declared
    machine = platform.machine().lower()
    text = _read("/proc/cpuinfo") or ""
    x86 = " avx2" in text or " sse2" in text
    if machine in ("aarch64", "arm64") and x86:
        return "user-mode emulation (this ARM Python sees an x86 host's /proc/cpuinfo)"
    if machine in ("x86_64", "amd64") and " asimd" in text:
        return "user-mode emulation (this x86 Python sees an ARM host's /proc/cpuinfo)"
    return None


def probe():
    numpy_version = None
    numpy_error = None
    try:
        import numpy

        numpy_version = numpy.__version__
    except Exception as exc:
        numpy_error = _short(exc)
    return {
        "python": platform.python_version(),
        "python_ok": sys.version_info >= (3, 8),
        "executable": sys.executable,
        "numpy": numpy_version,
        "numpy_error": numpy_error,
        "runtimes": _runtimes(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "emulator": _emulator(),
        "emulated_cpu": os.environ.get("SHUFFLEKIT_EMULATED_CPU") or None,
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(probe()) + "\n")
