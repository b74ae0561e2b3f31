"""What a measurement ran on: CPU model, cores, frequency governor and frequencies, thermal zones,
memory, OS, Python, numpy and runtime versions, and whether the CPU is emulated (and which int8 kernel
family it follows). The text parsing is ``procfs``'s, shared with the probe and the native tools."""

from __future__ import annotations

import os
import platform
import re
import sys
from typing import Any, Dict, List, Optional

from . import backends, procfs
from .errors import RunnerError, first_line

_read = procfs.read


def _cpu_model() -> Optional[str]:
    model = procfs.cpu_model(_read("/proc/cpuinfo") or "")
    if model:
        return model
    if sys.platform == "darwin":
        try:
            import subprocess

            return subprocess.check_output(["sysctl", "-n", "machdep.cpu.brand_string"], timeout=5).decode().strip()
        except Exception:
            pass
    return platform.processor() or platform.machine() or None


def _cpufreq() -> Dict[str, Any]:
    base = "/sys/devices/system/cpu"
    facts: Dict[str, Any] = {}
    try:
        cpus = sorted(n for n in os.listdir(base) if re.match(r"^cpu\d+$", n))
    except OSError:
        return facts
    governors: Dict[str, int] = {}
    cur: List[float] = []
    maxf: List[float] = []
    for cpu in cpus:
        folder = os.path.join(base, cpu, "cpufreq")
        gov = _read(os.path.join(folder, "scaling_governor"))
        if gov:
            governors[gov] = governors.get(gov, 0) + 1
        for name, into in (("scaling_cur_freq", cur), ("cpuinfo_max_freq", maxf)):
            value = _read(os.path.join(folder, name))
            if value and value.isdigit():
                into.append(int(value) / 1e3)
    if governors:
        facts["governor"] = ",".join(sorted(governors))
    if cur:
        facts["freq_mhz_min"], facts["freq_mhz_max"] = min(cur), max(cur)
    if maxf:
        facts["freq_mhz_limit"] = max(maxf)
    return facts


def _thermal() -> List[Dict[str, Any]]:
    base = "/sys/class/thermal"
    zones: List[Dict[str, Any]] = []
    try:
        names = sorted(n for n in os.listdir(base) if n.startswith("thermal_zone"))
    except OSError:
        return zones
    for name in names:
        temp = _read(os.path.join(base, name, "temp"))
        if temp and temp.lstrip("-").isdigit():
            zones.append({"zone": _read(os.path.join(base, name, "type")) or name, "celsius": int(temp) / 1e3})
    return zones


# x86 CPU models (qemu -cpu names) whose int8 dot products accumulate in 32 bits (AVX512-VNNI, AVX-VNNI)
_VNNI_CPU_MODELS = (
    "cascadelake",
    "cooperlake",
    "icelake",
    "sapphirerapids",
    "graniterapids",
    "alderlake",
    "epyc-genoa",
    "epyc-turin",
)


def emulation_facts() -> Dict[str, Any]:
    """Whether this Python runs on an emulated CPU, and the kernel family its int8 arithmetic follows.
    A board built by `shufflekit board build` declares its emulator (SHUFFLEKIT_EMULATOR, and
    SHUFFLEKIT_EMULATED_CPU for an x86 model); user-mode qemu otherwise shows as a machine whose
    /proc/cpuinfo describes another architecture (the host's). Under emulation /proc/cpuinfo is the
    host's, so the kernel family comes from the declared CPU, not from its flags."""
    machine = platform.machine().lower()
    text = _read("/proc/cpuinfo") or ""
    flags = procfs.cpu_flags(text)
    emulator = procfs.emulator(machine, text)
    cpu = procfs.emulated_cpu()
    arm = procfs.is_arm(machine)
    family: Optional[str]
    vnni: Optional[bool]
    if arm:
        family = "arm64"
    elif machine in ("x86_64", "amd64"):
        if cpu:
            vnni = any(cpu.lower().startswith(m) for m in _VNNI_CPU_MODELS)
        elif emulator:
            vnni = None  # an emulator that does not say which CPU it presents
        else:
            vnni = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
        family = None if vnni is None else ("x86-vnni" if vnni else "x86-avx2")
    else:
        family = None
    return {"emulated": emulator is not None, "emulator": emulator, "emulated_cpu": cpu, "kernel_family": family}


def host_facts(with_runtimes: bool = True) -> Dict[str, Any]:
    """CPU model, cores, frequency governor and frequencies, thermal zones, OS, Python, numpy and runtimes,
    and whether the CPU is emulated."""
    facts: Dict[str, Any] = {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": procfs.physical_cores(_read("/proc/cpuinfo") or ""),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": _numpy_version(),
        "memory_bytes": procfs.memory_bytes(_read("/proc/meminfo") or ""),
    }
    if hasattr(os, "sched_getaffinity"):
        facts["usable_cores"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        facts["load_average"] = [round(v, 2) for v in os.getloadavg()]
    facts.update(_cpufreq())
    thermal = _thermal()
    if thermal:
        facts["thermal"] = thermal
    android = _read("/system/build.prop")
    if android:
        match = re.search(r"^ro.product.model=(.+)$", android, re.MULTILINE)
        facts["android_model"] = match.group(1) if match else None
    facts.update(emulation_facts())
    if facts["emulated"]:  # /proc/cpuinfo is the host's: its model is not this device's
        facts["cpu_model"] = "emulated %s%s" % (
            facts["machine"],
            " (%s)" % facts["emulated_cpu"] if facts["emulated_cpu"] else "",
        )
    if with_runtimes:
        facts["runtimes"] = runtime_versions()
    return facts


def _status_kb(field: str) -> Optional[int]:
    text = _read("/proc/self/status") or ""
    match = re.search(r"^%s:\s*(\d+) kB" % field, text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def _numpy_version() -> Optional[str]:
    import numpy  # imported here: the facts parsing itself is stdlib-only (the probe shares procfs)

    return str(numpy.__version__)


def runtime_versions() -> Dict[str, Any]:
    """What runtimes this Python can import, with versions (never raising)."""
    found: Dict[str, Any] = {}
    for backend in backends.all_backends():
        try:
            found[backend.name] = backend.versions()
        except RunnerError:
            pass
        except Exception as exc:  # a broken install is a fact worth reporting, not a crash
            found[backend.name] = {"error": first_line(exc)}
    return found


def rss_bytes() -> Optional[int]:
    return _status_kb("VmRSS")


def peak_rss_bytes() -> Optional[int]:
    """The process's resident-memory high-water mark."""
    peak = _status_kb("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource

        value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(value) if sys.platform == "darwin" else int(value) * 1024
    except (ImportError, OSError):
        return None
