"""The demo target: `shufflekit release --demo` (train v2 0.5x on the built-in digits, export, quantize
every format and precision, validate, evaluate, profile here, write the report) in <= 5 minutes on a
2-core CPU.

Runs the command exactly as `make demo` does, in a fresh process, into a temporary folder and from a
cold cache (the demo set is written inside the timed run), then runs it again (every stage skipped).
Prints the end-to-end wall time of both, the time per stage read from the manifest's stage records,
the demo's accuracy, and the machine's load (`uptime`): the cores are shared with anything else running.

    .venv/bin/python benchmarks/release_demo.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 300.0
STAGES = ("train", "export", "quantize", "validate", "evaluate", "profile", "report")


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def _run(shufflekit: Path, out: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(
        [str(shufflekit), "release", "--demo", "--out", str(out)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        print(proc.stdout[-6000:])
        raise SystemExit(f"shufflekit release --demo exited {proc.returncode}")
    return wall, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="Copy the release folder here afterwards.")
    args = parser.parse_args()
    shufflekit = Path(sys.executable).parent / "shufflekit"
    print(f"before: {_uptime()}  ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="shufflekit-release-demo-") as work:
        env = {**os.environ, "SHUFFLEKIT_CACHE": str(Path(work) / "cache")}  # cold: the demo set is written
        out = Path(work) / "demo-release"
        wall, _output = _run(shufflekit, out, env)
        print(f"after:  {_uptime()}")
        manifest = json.loads((out / "manifest.json").read_text())
        rerun, rerun_output = _run(shufflekit, out, env)
        if args.keep:
            shutil.copytree(out, args.keep, dirs_exist_ok=True)

    units = manifest["results"].get("release_stages", {})
    per_stage = dict.fromkeys(STAGES, 0.0)
    counts = dict.fromkeys(STAGES, 0)
    for key, entry in units.items():
        stage = key.split(" ")[0]
        per_stage[stage] = per_stage.get(stage, 0.0) + float(entry.get("seconds", 0.0))
        counts[stage] = counts.get(stage, 0) + 1
    print("\nstage       units  seconds")
    for stage in STAGES:
        print(f"{stage:<10} {counts[stage]:>6} {per_stage[stage]:8.1f}")
    accounted = sum(per_stage.values())
    print(f"{'other':<10} {'':>6} {wall - accounted:8.1f}   (process start, imports, checks, summary)")
    accuracy = manifest["results"].get("accuracy", {})
    top1 = {name: entry.get("top1") for name, entry in accuracy.items()}
    print(
        f"\naccuracy: PyTorch {top1.pop('pytorch', float('nan')):.1f}%; artifacts "
        + ", ".join(f"{v:.1f}%" for v in sorted(top1.values()))
    )
    ran_again = [line.strip() for line in rerun_output.splitlines() if line.split()[:1] == ["ran"]]
    skipped = "every stage skipped" if not ran_again else f"ran again: {'; '.join(ran_again)}"
    print(f"\nend to end  {wall:6.1f} s   (target <= {TARGET_SECONDS:.0f} s; cold demo cache)")
    print(f"rerun       {rerun:6.1f} s   ({skipped})")
    met = wall <= TARGET_SECONDS
    print("target met" if met else "target NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
