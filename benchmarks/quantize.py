"""Quantization figures for ShuffleNet v2 1.0x at 224x224, one thread: latency and file size of
TFLite fp32, fp16, dynamic, int8 (LiteRT, XNNPACK where it takes the file) and ONNX Runtime fp32, fp16,
dynamic, int8 (CPU provider), each measured by `shufflekit profile`'s machinery (a fresh runner
process per artifact, warm-up, then timed iterations).

Target: TFLite int8 at least 1.8x faster than TFLite fp32 on this machine. ONNX Runtime's int8 against
fp32 is printed as measured, faster or slower.

int8 is calibrated on the demo set (digits, resized to 224): accuracy is not the point here, speed is.
The model has seeded weights (1000 classes). The machine is shared: the load average is printed
before and after, and each artifact is measured in ``--rounds`` rounds interleaved over the artifacts
(median of the rounds' p50), so a burst of load hits every artifact alike. The best round (the
smallest p50) is printed too: on a loaded machine it is the closest to what the CPU can do.

    .venv/bin/python benchmarks/quantize.py [--model shufflenet_v2_x1_0] [--input-size 224] [--iters 100]
        [--rounds 3] [--threads 1] [--calib-samples 64] [--folder DIR (reuse, or keep, the release)]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_TFLITE_INT8_SPEEDUP = 1.8
ORDER = [("tflite", p) for p in ("fp32", "fp16", "dynamic", "int8")] + [
    ("onnx", p) for p in ("fp32", "fp16", "dynamic", "int8")
]


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"load average {_load()}"


def _prepare(folder: Path, args: argparse.Namespace) -> None:
    """Export and quantize in processes of their own: torch's and TensorFlow's idle thread pools must
    not share the cores with the timed loops."""
    cli = [sys.executable, "-m", "shufflekit"]
    if not (folder / "manifest.json").exists():
        t0 = time.perf_counter()
        subprocess.run(
            [
                *cli,
                "export",
                "--model",
                args.model,
                "--input-size",
                str(args.input_size),
                "--num-classes",
                "1000",
                "--out",
                str(folder),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"exported {args.model} at {args.input_size} in {time.perf_counter() - t0:.1f} s")
    from shufflekit.artifacts import Manifest

    have = {a.key for a in Manifest.load(folder).artifacts}
    missing = [p for p in ("fp16", "dynamic", "int8") if not {f"onnx:{p}", f"tflite:{p}"} <= have]
    if missing:
        t0 = time.perf_counter()
        subprocess.run(
            [
                *cli,
                "quantize",
                str(folder),
                "--precision",
                ",".join(missing),
                "--formats",
                "onnx,tflite",
                "--calib",
                "demo",
                "--calib-samples",
                str(args.calib_samples),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(
            f"quantized to {', '.join(missing)} (ONNX and TFLite, calibrated on {args.calib_samples} demo images) "
            f"in {time.perf_counter() - t0:.1f} s"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shufflenet_v2_x1_0")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calib-samples", type=int, default=64)
    parser.add_argument("--folder", type=Path, help="a release folder to reuse (made there when missing)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.ERROR)

    from shufflekit.artifacts import Manifest
    from shufflekit.runtimes import RuntimeOptions
    from shufflekit.runtimes.profile import ProfileSettings, profile_folder

    print(f"start: {_uptime()}  ({os.cpu_count()} cores, shared: other processes inflate latency)")
    tmp = tempfile.TemporaryDirectory(prefix="shufflekit-bench-quantize-") if args.folder is None else None
    folder = args.folder or Path(tmp.name) / "release"  # type: ignore[union-attr]
    _prepare(folder, args)
    manifest = Manifest.load(folder)
    by_key = {a.key: a for a in manifest.artifacts}
    chosen = [by_key[f"{fmt}:{p}"] for fmt, p in ORDER if f"{fmt}:{p}" in by_key]

    options = RuntimeOptions(threads=args.threads)
    settings = ProfileSettings(warmup=args.warmup, iters=args.iters)
    p50s: dict[str, list[float]] = {a.name: [] for a in chosen}
    providers: dict[str, str] = {}
    print(
        f"measuring {len(chosen)} artifacts, {args.rounds} rounds of {args.iters} iterations, "
        f"{args.threads} thread(s), batch 1"
    )
    for round_index in range(args.rounds):
        for art in chosen:
            report = profile_folder(folder, [art.name], options=options, settings=settings)
            profile = report.profiles[0]
            p50s[art.name].append(profile.per_image_p50_ms)
            providers[art.name] = ",".join(profile.result.get("providers", [])) or "?"
        print(f"  round {round_index + 1}/{args.rounds} done, load average {_load()}")

    p50 = {name: statistics.median(values) for name, values in p50s.items()}
    best = {name: min(values) for name, values in p50s.items()}
    fp32 = {fmt: by_key[f"{fmt}:fp32"].name for fmt in ("tflite", "onnx") if f"{fmt}:fp32" in by_key}
    print(
        f"\n{args.model} at {args.input_size}x{args.input_size}, {args.threads} thread(s): median of "
        f"{args.rounds} rounds' p50 per image"
    )
    header = (
        f"  {'artifact':34} {'providers':20} {'size MB':>8} {'p50 ms':>7} {'vs fp32':>8} {'best ms':>8} "
        f"{'vs fp32':>8}  rounds' p50 ms"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for art in chosen:
        base = fp32.get(art.format)
        speed = f"{p50[base] / p50[art.name]:.2f}x" if base else ""
        best_speed = f"{best[base] / best[art.name]:.2f}x" if base else ""
        rounds = " ".join(f"{v:.2f}" for v in p50s[art.name])
        print(
            f"  {art.name:34} {providers[art.name][:20]:20} {art.size_bytes / 1e6:8.2f} {p50[art.name]:7.2f} "
            f"{speed:>8} {best[art.name]:8.2f} {best_speed:>8}  {rounds}"
        )

    print()

    def ratio(fmt: str, precision: str) -> tuple[float, float] | None:
        if f"{fmt}:{precision}" not in by_key or fmt not in fp32:
            return None
        name = by_key[f"{fmt}:{precision}"].name
        return p50[fp32[fmt]] / p50[name], best[fp32[fmt]] / best[name]

    found = ratio("tflite", "int8")
    if found:
        verdict = "meets" if found[0] >= TARGET_TFLITE_INT8_SPEEDUP else "MISSES"
        print(
            f"TFLite int8 vs fp32: {found[0]:.2f}x faster (median; best rounds {found[1]:.2f}x): {verdict} the "
            f"target of >= {TARGET_TFLITE_INT8_SPEEDUP}x"
        )
    for precision, what in (("int8", "int8 (QDQ)"), ("dynamic", "dynamic int8"), ("fp16", "fp16")):
        found = ratio("onnx", precision)
        if found:
            print(
                f"ONNX Runtime {what} vs fp32: {found[0]:.2f}x (best rounds {found[1]:.2f}x), "
                f"{'faster' if found[0] > 1 else 'SLOWER'}, as measured"
            )
    print(f"end: {_uptime()}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
