"""Runs ON THE DEVICE (sent as `python3 -c SOURCE`): prints one JSON object with the Python version,
numpy, the inference runtimes installed, the OS and the CPU. It is the check made before a job: the
runner itself needs numpy to start, so it cannot say that numpy is missing; the full device facts filed
with every measurement come from the device package (``shufflekit.device.facts.host_facts``).

It is sent after the source of ``shufflekit/device/procfs.py`` (``probe.probe_source``): ``read``,
``cpu_model``, ``emulator`` and ``emulated_cpu`` are that shared parser's, not copies.

Standard library only, and written for any Python 3 so that an old one on a board still reports its
version instead of a syntax error. A runtime is looked up without importing heavy packages
(tensorflow is only located, never imported).
"""

import json
import os
import platform
import sys

if "cpu_model" not in globals():  # run alone, not after procfs.py's source as probe.probe_source sends it
    from shufflekit.device.procfs import cpu_model, emulated_cpu, emulator, read


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
    for module, distribution, submodule in (
        ("ai_edge_litert", "ai-edge-litert", "ai_edge_litert.interpreter"),
        ("tflite_runtime", "tflite-runtime", "tflite_runtime.interpreter"),
        ("tensorflow", "tensorflow", None),
    ):
        if not _has_module(module):
            continue
        entry = {
            "version": _version(distribution)
            or _version(distribution.replace("-", "_"))
            or (_version("tensorflow-cpu") if module == "tensorflow" else None)
        }
        if submodule:  # the light interpreters are imported: one built for another numpy fails here
            try:
                __import__(submodule)
            except Exception as exc:
                entry["error"] = _short(exc)
        found[module] = entry
    return found


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
        "cpu_model": cpu_model(read("/proc/cpuinfo") or "") or platform.processor() or None,
        "logical_cores": os.cpu_count(),
        "emulator": emulator(platform.machine(), read("/proc/cpuinfo") or ""),
        "emulated_cpu": emulated_cpu(),
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(probe()) + "\n")
