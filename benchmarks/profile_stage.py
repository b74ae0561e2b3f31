"""The release's profile stage (issue 15, goal 3's share): seconds per file and in all, and each file's
fraction of this computer's dense-convolution peak (goal 4).

Takes a release folder made by `shufflekit release` (e.g. v2 1.0x at 224 with every format and
precision and --data demo), and re-runs only its profile stage in fresh copies: the copy's profile units
are dropped from the manifest, so `shufflekit release` with the same arguments skips every other stage.
With ``--baseline SRC`` (a source tree of another revision, e.g. ``git archive main | tar -x -C SRC``)
the two trees run alternately, A B A B..., so machine load hits both alike; the figures are medians over
the rounds, with the load average of each round. Nothing here is a test: it prints.

    .venv/bin/python benchmarks/profile_stage.py --folder DIR --model shufflenet_v2_x1_0 \\
        --input-size 224 --num-classes 10 --data demo [--baseline SRC] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _fresh_copy(folder: Path, target: Path) -> None:
    """The folder with its profile figures and units dropped: the release measures every file again."""
    shutil.copytree(folder, target)
    path = target / "manifest.json"
    data = json.loads(path.read_text())
    results = data.get("results", {})
    stages = results.get("release_stages", {})
    for key in [k for k in stages if k.startswith("profile ")]:
        del stages[key]
    for kind in ("latency", "latency_times", "op_profile", "device_parity", "device_accuracy", "conv_peak"):
        results.pop(kind, None)
    path.write_text(json.dumps(data, indent=2))


def _run(src: Path, folder: Path, args: argparse.Namespace) -> tuple[float, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "shufflekit", "release", "--model", args.model, "--out", str(folder)]
    command += ["--num-classes", str(args.num_classes), "--input-size", str(args.input_size), "--data", args.data]
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, text=True, capture_output=True, cwd=src)
    wall = time.perf_counter() - started
    manifest = json.loads((folder / "manifest.json").read_text())
    units = manifest["results"].get("release_stages", {})
    per_file = {k.split(" ", 2)[2]: float(v.get("seconds", 0.0)) for k, v in units.items() if k.startswith("profile ")}
    if not per_file:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise SystemExit(f"no profile units ran with {src}")
    return wall, per_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, required=True, help="A release folder to re-profile (copies).")
    parser.add_argument("--model", default="shufflenet_v2_x1_0")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--data", default="demo")
    parser.add_argument("--baseline", type=Path, help="Source tree of the revision to compare with.")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    trees = {"this": REPO} if args.baseline is None else {"baseline": args.baseline.resolve(), "this": REPO}
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = sorted({f for f in ("avx2", "avx512f", "avx512_vnni") if f" {f}" in cpu})
    print(f"{os.cpu_count()} cores, flags {', '.join(flags) or '?'}; load before: {_load()}")
    seconds: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    last: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="shufflekit-profile-stage-") as work:
        for round_ in range(args.rounds):
            for name, src in trees.items():
                target = Path(work) / f"{name}-{round_}"
                _fresh_copy(args.folder, target)
                wall, per_file = _run(src, target, args)
                seconds[name].append(per_file)
                last[name] = target
                print(
                    f"round {round_ + 1} {name:8s}: profile stage {sum(per_file.values()):6.1f} s "
                    f"(release command {wall:.1f} s), load {_load()}",
                    flush=True,
                )
        files = sorted({f for rounds in seconds.values() for r in rounds for f in r})
        print(f"\n{'file':40s} " + " ".join(f"{n:>10s}" for n in trees) + "   (median seconds per file)")
        for f in files:
            cells = [statistics.median(r.get(f, 0.0) for r in seconds[n]) for n in trees]
            print(f"{f:40s} " + " ".join(f"{c:10.1f}" for c in cells))
        totals = [statistics.median(sum(r.values()) for r in seconds[n]) for n in trees]
        print(f"{'profile stage':40s} " + " ".join(f"{t:10.1f}" for t in totals))
        manifest = json.loads((last["this"] / "manifest.json").read_text())
    peaks = manifest["results"].get("conv_peak", {}).get("local", {})
    print("\ndense-convolution peak on local (this tree's last round):")
    for name, peak in peaks.items():
        print(f"  {name}: {peak['gmacs']:.1f} GMAC/s (p50 {peak['p50_ms']:.2f} ms, {peak['iters']} runs)")
    for name, entry in sorted(manifest["results"].get("latency", {}).get("local", {}).items()):
        fraction = entry.get("peak_fraction")
        shown = f"{fraction * 100:.0f}% of peak" if fraction is not None else "no fraction"
        print(f"  {name:40s} p50 {entry['per_image_p50_ms']:7.3f} ms, {shown}")
    print(f"load after: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
