"""Device facts without Python: what an `adb shell` (or any POSIX shell) can read from /proc and /sys,
so a result measured with a native tool on a phone carries the same facts the runner records on a
board: CPU model, cores, governor and frequencies, thermal state, OS, memory, Android model. The /proc
text is read by the device package's parser (``shufflekit.device.procfs``), the runner's own.

The script is a constant of ours (no user text in it); every read is allowed to fail.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..device import procfs
from ..device.procfs import cpu_model
from ..errors import DeviceError

FACTS_SCRIPT = r"""
echo '@@hostname'; hostname 2>/dev/null || cat /proc/sys/kernel/hostname 2>/dev/null
echo '@@uname'; uname -s 2>/dev/null; uname -r 2>/dev/null; uname -m 2>/dev/null
echo '@@cpuinfo'; cat /proc/cpuinfo 2>/dev/null
echo '@@meminfo'; cat /proc/meminfo 2>/dev/null
echo '@@loadavg'; cat /proc/loadavg 2>/dev/null
echo '@@cpus'; ls -d /sys/devices/system/cpu/cpu[0-9]* 2>/dev/null
echo '@@cpufreq'
for d in /sys/devices/system/cpu/cpu[0-9]*/cpufreq; do
  [ -d "$d" ] || continue
  g=$(cat "$d/scaling_governor" 2>/dev/null); f=$(cat "$d/scaling_cur_freq" 2>/dev/null)
  echo "$g|$f|$(cat "$d/cpuinfo_max_freq" 2>/dev/null)"
done
echo '@@thermal'
for z in /sys/class/thermal/thermal_zone*; do
  [ -r "$z/temp" ] || continue
  echo "$(cat "$z/type" 2>/dev/null)|$(cat "$z/temp" 2>/dev/null)"
done
echo '@@os'; grep '^PRETTY_NAME=' /etc/os-release 2>/dev/null
echo '@@android'
if command -v getprop >/dev/null 2>&1; then
  for p in ro.product.manufacturer ro.product.model ro.build.version.release ro.build.version.sdk \
           ro.soc.model ro.board.platform; do
    echo "$p=$(getprop $p 2>/dev/null)"
  done
fi
echo '@@end'
"""


def collect(transport: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Run the facts script through ``transport`` (sh must exist there) and read its sections."""
    result = transport.run(["sh", "-c", FACTS_SCRIPT], timeout=timeout)
    if "@@end" not in result.stdout:
        raise DeviceError(
            f"{transport.address}: the device's shell could not report its facts ({result.last_error_line()})",
            hint="check that the device has a POSIX sh",
        )
    return parse_facts(result.stdout)


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = line[2:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line.rstrip("\r"))
    return sections


def parse_facts(text: str) -> dict[str, Any]:
    s = _sections(text)
    facts: dict[str, Any] = {"facts_from": "device shell (no Python needed)"}
    hostname = [line for line in s.get("hostname", []) if line.strip()]
    facts["hostname"] = hostname[0].strip() if hostname else None
    uname = [line.strip() for line in s.get("uname", []) if line.strip()]
    if len(uname) == 3:
        facts["os"], facts["machine"] = f"{uname[0]} {uname[1]}", uname[2]
    cpuinfo = "\n".join(s.get("cpuinfo", []))
    facts["cpu_model"] = cpu_model(cpuinfo)
    cpus = [line for line in s.get("cpus", []) if line.strip()]
    facts["logical_cores"] = procfs.logical_cores(cpuinfo) or len(cpus) or None
    facts["memory_bytes"] = procfs.memory_bytes("\n".join(s.get("meminfo", [])))
    load = (s.get("loadavg") or [""])[0].split()
    if len(load) >= 3:
        with contextlib.suppress(ValueError):
            facts["load_average"] = [float(v) for v in load[:3]]
    governors: dict[str, int] = {}
    cur, limit = [], []
    for line in s.get("cpufreq", []):
        gov, _, rest = line.partition("|")
        now, _, top = rest.partition("|")
        if gov.strip():
            governors[gov.strip()] = governors.get(gov.strip(), 0) + 1
        if now.strip().isdigit():
            cur.append(int(now) / 1e3)
        if top.strip().isdigit():
            limit.append(int(top) / 1e3)
    if governors:
        facts["governor"] = ",".join(sorted(governors))
    if cur:
        facts["freq_mhz_min"], facts["freq_mhz_max"] = min(cur), max(cur)
    if limit:
        facts["freq_mhz_limit"] = max(limit)
    thermal = []
    for line in s.get("thermal", []):
        zone, _, temp = line.partition("|")
        if temp.strip().lstrip("-").isdigit():
            thermal.append({"zone": zone.strip() or "?", "celsius": int(temp) / 1e3})
    if thermal:
        facts["thermal"] = thermal
    pretty = next((line for line in s.get("os", []) if line.startswith("PRETTY_NAME=")), None)
    if pretty:
        facts["os"] = pretty.split("=", 1)[1].strip().strip('"') + (f" ({facts['os']})" if facts.get("os") else "")
    props = dict(line.split("=", 1) for line in s.get("android", []) if "=" in line)
    props = {k: v.strip() for k, v in props.items() if v.strip()}
    if props:
        facts["android_model"] = (
            " ".join(filter(None, (props.get("ro.product.manufacturer"), props.get("ro.product.model")))) or None
        )
        if props.get("ro.build.version.release"):
            facts["os"] = (
                f"Android {props['ro.build.version.release']}"
                + (f" (API {props['ro.build.version.sdk']})" if props.get("ro.build.version.sdk") else "")
                + (f", {facts['os']}" if facts.get("os") else "")
            )
        facts["soc"] = props.get("ro.soc.model") or props.get("ro.board.platform")
    return facts
