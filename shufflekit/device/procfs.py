"""Reading a Linux device's own description (/proc/cpuinfo, /proc/meminfo, the environment a board
declares): the one parser of these facts, used by the device package (``facts``), by the probe sent
before every job (``runtimes/remote/device_probe.py`` is sent with this file's source in front of it)
and by the native tools' shell facts (``runtimes/native_facts.py``).

Standard library only, no imports from the package, and written for any Python 3 (annotations are
strings, no f-strings) so that an old Python on a board still reports its version.
"""

import os
import re

try:  # noqa: SIM105 - contextlib.suppress would be one more import on the oldest Pythons
    from typing import Mapping
except ImportError:  # a Python 3 without typing still reports its version
    pass

# The fields of /proc/cpuinfo that name a CPU, in the order they are trusted.
_MODEL_KEYS = ("model name", "Hardware", "Model", "cpu model", "Processor")


def read(path: "str") -> "str | None":
    """A small text file's stripped contents, or None when it cannot be read."""
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def cpu_model(cpuinfo: "str") -> "str | None":
    """The CPU's name from /proc/cpuinfo (x86 'model name', ARM 'Hardware'/'Model', or the part ids of
    every core type of an ARM board that names no model)."""
    for key in _MODEL_KEYS:
        match = re.search(r"^%s\s*:\s*(.+)$" % re.escape(key), cpuinfo, re.MULTILINE)
        if match and match.group(1).strip():
            return match.group(1).strip()
    parts = sorted(set(re.findall(r"^CPU part\s*:\s*(\S+)", cpuinfo, re.MULTILINE)))
    if parts:
        impl = re.search(r"^CPU implementer\s*:\s*(\S+)", cpuinfo, re.MULTILINE)
        return "ARM implementer %s part %s" % (impl.group(1) if impl else "?", "/".join(parts))
    return None


def logical_cores(cpuinfo: "str") -> "int | None":
    """Processors listed in /proc/cpuinfo (None when it lists none)."""
    return len(re.findall(r"^processor\s*:", cpuinfo, re.MULTILINE)) or None


def physical_cores(cpuinfo: "str") -> "int | None":
    """Distinct (physical id, core id) pairs; None where /proc/cpuinfo has no topology (most ARM boards)."""
    pairs = set(re.findall(r"^physical id\s*:\s*(\d+)\s*$.*?^core id\s*:\s*(\d+)", cpuinfo, re.MULTILINE | re.DOTALL))
    return len(pairs) or None


def memory_bytes(meminfo: "str") -> "int | None":
    match = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def cpu_flags(cpuinfo: "str") -> "set":
    """x86 'flags' or ARM 'Features' of the first processor."""
    line = re.search(r"^(flags|Features)\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    return set(line.group(2).split()) if line else set()


def is_arm(machine: "str") -> "bool":
    machine = machine.lower()
    return machine in ("aarch64", "arm64") or machine.startswith("armv8")


def emulator(machine: "str", cpuinfo: "str", environ: "Mapping[str, str] | None" = None) -> "str | None":
    """What emulates this CPU, or None. A board built by `shufflekit board build` declares its emulator
    (SHUFFLEKIT_EMULATOR); user-mode qemu otherwise shows as a machine whose /proc/cpuinfo describes
    another architecture (the host's)."""
    env = os.environ if environ is None else environ
    declared = env.get("SHUFFLEKIT_EMULATOR") or None
    if declared:
        return declared
    flags = cpu_flags(cpuinfo)
    if is_arm(machine) and ({"sse2", "avx2"} & flags):
        return "user-mode emulation (this ARM Python sees an x86 host's /proc/cpuinfo)"
    if machine.lower() in ("x86_64", "amd64") and "asimd" in flags:
        return "user-mode emulation (this x86 Python sees an ARM host's /proc/cpuinfo)"
    return None


def emulated_cpu(environ: "Mapping[str, str] | None" = None) -> "str | None":
    """The CPU model an emulated x86 board declares (SHUFFLEKIT_EMULATED_CPU, a qemu -cpu name)."""
    env = os.environ if environ is None else environ
    return env.get("SHUFFLEKIT_EMULATED_CPU") or None


def logical_cores_of(facts: "dict") -> "int | None":
    """A stored fact set's logical core count; probes before the rename wrote it as ``cpu_count``."""
    value = facts.get("logical_cores")
    return value if value is not None else facts.get("cpu_count")


def cpu_busy_ticks(stat: "str | None") -> "int | None":
    """Clock ticks every CPU has spent busy since boot (the 'cpu' line of /proc/stat less idle and iowait),
    None where there is no /proc/stat."""
    if not stat:
        return None
    for line in stat.splitlines():
        words = line.split()
        if words and words[0] == "cpu" and len(words) >= 6:
            ticks = [int(w) for w in words[1:9] if w.isdigit()]
            return sum(ticks) - ticks[3] - ticks[4]  # user nice system idle iowait irq softirq steal
    return None


class Contention:
    """How busy the rest of the machine kept its CPUs while something was timed: the machine's busy ticks
    over the interval, less this process's own (all its threads), in cores. 0.0 on an idle machine."""

    def __init__(self) -> "None":
        self.ticks_per_s = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start_busy = cpu_busy_ticks(read("/proc/stat"))
        self.start_own = sum(os.times()[:2])
        self.start_wall = os.times()[4]

    def other_cores(self) -> "float | None":
        busy = cpu_busy_ticks(read("/proc/stat"))
        if busy is None or self.start_busy is None:
            return None
        times = os.times()
        wall = times[4] - self.start_wall
        if wall <= 0:
            return None
        own = (sum(times[:2]) - self.start_own) * self.ticks_per_s
        return max(0.0, round(((busy - self.start_busy) - own) / (wall * self.ticks_per_s), 2))
