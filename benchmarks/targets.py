"""Quantization recipes per CPU kernel family, and whether int8 pays on each native device.

1. Accuracy: the demo model (v2 0.5x trained on the built-in digits, as `make demo` does) is quantized
   with every ONNX recipe of ``shufflekit.export.recipes`` (static int8 and dynamic), and each file
   classifies the demo validation images (359) on three kernel families:
   - this computer, natively (its family, x86-vnni or x86-avx2, read from /proc/cpuinfo);
   - x86 without VNNI: the emulated board `make test-deps` builds (.board-avx2, qemu -cpu Haswell);
   - ARM64: the emulated ARM64 board (.board-arm64, Debian arm64 userland under qemu-aarch64).
   A file that does not load on a family says so. Emulation gives the real kernels' results, slowly.
2. Latency: on each native device (this computer, and every --device given that is not emulated), the
   int8/fp32 latency ratio of TFLite and ONNX Runtime with the release's default recipes, v2 1.0x at
   224 (seeded weights: speed does not depend on them), one thread, interleaved rounds, median p50.

    .venv/bin/python benchmarks/targets.py [--epochs 8] [--rounds 3] [--iters 50] [--device ADDRESS ...]
        [--skip-latency] [--folder DIR (keep the work)]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/profile.py would shadow the standard library's profile module that torch imports
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
BOARDS = {"x86-avx2 (emulated)": ROOT / ".board-avx2" / "python", "arm64 (emulated)": ROOT / ".board-arm64" / "python"}
DEVICE_PYTHON = ROOT / ".venv-device" / "bin" / "python"  # this computer's kernels, in the device requirements

# Runs on each kernel family's Python: numpy and onnxruntime only. Prints {file: top-1 or error}.
_EVALUATE = r"""
import json, sys
import numpy as np
import onnxruntime as ort
data = np.load(sys.argv[1])
x, y = data["x"], data["y"]
found = {}
for path in sys.argv[2:]:
    try:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as exc:
        text = str(exc).split("\n")[0]
        op = text.split("implementation for ")[1].split("(")[0] if "implementation for " in text else "error"
        found[path] = "does not load: no " + op
        continue
    name = session.get_inputs()[0].name
    right = sum(int(session.run(None, {name: x[i:i + 1]})[0].argmax() == y[i]) for i in range(len(x)))
    found[path] = 100.0 * right / len(x)
print(json.dumps(found))
"""


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _cpu() -> str:
    from shufflekit.export.quantize_onnx import cpu_flags
    from shufflekit.export.recipes import kernel_family

    text = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = cpu_flags()
    family = kernel_family({"machine": os.uname().machine, "cpu_flags": sorted(flags)}) or "?"
    shown = " ".join(sorted(f for f in flags if f.startswith(("avx", "fma", "amx")) or "vnni" in f))
    return f"{model}, {os.cpu_count()} cores, kernel family {family}; flags: {shown}", family


def _accuracy(work: Path, epochs: int, family: str) -> None:
    import numpy as np

    from shufflekit.artifacts import Manifest
    from shufflekit.export import export_model
    from shufflekit.export import quantize_onnx as q
    from shufflekit.export.quantize import collect_calibration
    from shufflekit.export.recipes import DYNAMIC_RECIPES, STATIC_RECIPES
    from shufflekit.train import TrainConfig, train
    from shufflekit.validate.accuracy import labelled_arrays

    release = work / "demo-release"
    if not (release / "manifest.json").exists():
        t0 = time.perf_counter()
        train(TrainConfig(model="shufflenet_v2_x0_5", data="demo", epochs=epochs, seed=0), work / "demo.pt")
        export_model(release, checkpoint=work / "demo.pt")
        print(f"trained the demo model ({epochs} epochs) and exported it in {time.perf_counter() - t0:.0f} s")
    manifest = Manifest.load(release)
    arrays = labelled_arrays("demo", manifest)
    np.savez(work / "data.npz", x=arrays.images, y=arrays.labels)
    parent = next(a for a in manifest.artifacts if a.key == "onnx:fp32")
    prepared = work / "pre-processed.onnx"
    q.pre_process(release / parent.name, prepared)
    calibration = collect_calibration("demo", manifest.meta.preprocessing, 256)
    files = {}
    for recipe in STATIC_RECIPES:
        path = work / f"int8-{recipe.name}.onnx"
        q.quantize_static(
            prepared, path, calibration.images, input_name=parent.input.name, batch=1, recipe=recipe, method="minmax"
        )
        files[path] = recipe
    for recipe in DYNAMIC_RECIPES:
        path = work / f"dynamic-{recipe.name}.onnx"
        q.quantize_dynamic(prepared, path, recipe)
        files[path] = recipe
    pythons = {f"{family} (this computer)": DEVICE_PYTHON if DEVICE_PYTHON.exists() else Path(sys.executable)}
    pythons.update({name: path for name, path in BOARDS.items() if path.exists()})
    missing = [name for name, path in BOARDS.items() if not path.exists()]
    results: dict[str, dict[str, object]] = {}
    for name, python in pythons.items():
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(python), "-c", _EVALUATE, str(work / "data.npz"), *map(str, files)],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        lines = proc.stdout.strip().splitlines()
        results[name] = json.loads(lines[-1]) if proc.returncode == 0 and lines else {}
        print(
            f"  {name}: {len(files)} files classified in {time.perf_counter() - t0:.0f} s"
            + ("" if results[name] else f" FAILED: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        )
    print(
        f"\nONNX recipes, top-1 on the demo validation images ({len(arrays.labels)}); PyTorch "
        f"{arrays.pytorch_top1:.1f}%; * = the default (target any)"
    )
    columns = list(results)
    print(f"  {'recipe':28} {'holds on (by design)':28} " + " ".join(f"{c:>30}" for c in columns))
    for path, recipe in files.items():
        default = "*" if recipe.name == "portable" else " "
        cells = []
        for column in columns:
            value = results[column].get(str(path))
            cells.append(f"{value:29.1f}%" if isinstance(value, float) else f"{str(value or '?')[:30]:>30}")
        label = f"{recipe.precision} {recipe.name}{default}"
        print(f"  {label:28} {','.join(recipe.holds_on):28} " + " ".join(cells))
    if missing:
        print(f"  (not measured: {', '.join(missing)}: run `make test-deps` to build the emulated boards)")


def _latency(work: Path, args: argparse.Namespace) -> None:
    from shufflekit.artifacts import Manifest
    from shufflekit.runtimes import RuntimeOptions
    from shufflekit.runtimes.profile import ProfileSettings, profile_folder

    folder = work / "latency-release"
    cli = [sys.executable, "-m", "shufflekit"]
    if not (folder / "manifest.json").exists():
        t0 = time.perf_counter()
        subprocess.run(
            [
                *cli,
                "export",
                "--model",
                "shufflenet_v2_x1_0",
                "--input-size",
                "224",
                "--num-classes",
                "1000",
                "--out",
                str(folder),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [
                *cli,
                "quantize",
                str(folder),
                "--precision",
                "int8",
                "--formats",
                "onnx,tflite",
                "--calib",
                "demo",
                "--calib-samples",
                "64",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"exported v2 1.0x at 224 and quantized it to int8 (default recipes) in {time.perf_counter() - t0:.0f} s")
    manifest = Manifest.load(folder)
    by_key = {a.key: a for a in manifest.artifacts}
    chosen = [by_key[k] for k in ("tflite:fp32", "tflite:int8", "onnx:fp32", "onnx:int8")]
    devices = ["local", *args.device]
    options = RuntimeOptions(threads=1)
    settings = ProfileSettings(warmup=5, iters=args.iters, parity=False)
    print(f"\nint8 / fp32 latency, v2 1.0x at 224, 1 thread, median of {args.rounds} rounds' p50 per image")
    for device in devices:
        if device != "local" and _emulator(device):
            print(
                f"  {device}: emulated ({_emulator(device)}): its latency is the emulator's, not a device's; "
                "not measured"
            )
            continue
        p50: dict[str, list[float]] = {a.name: [] for a in chosen}
        emulated = False
        for _ in range(args.rounds):
            for art in chosen:
                report = profile_folder(folder, [art.name], options=options, settings=settings, device=device)
                emulated = emulated or bool(report.host.get("emulated"))
                p50[art.name].append(report.profiles[0].per_image_p50_ms)
        if emulated:
            print(f"  {device}: emulated: its latency is the emulator's, not a device's; not shown")
            continue
        med = {name: statistics.median(values) for name, values in p50.items()}
        cpu = report.host.get("cpu_model") or "?"
        parts = []
        for fmt in ("tflite", "onnx"):
            fp32, int8 = by_key[f"{fmt}:fp32"].name, by_key[f"{fmt}:int8"].name
            parts.append(
                f"{fmt} fp32 {med[fp32]:.2f} ms, int8 {med[int8]:.2f} ms: int8 is "
                f"{med[fp32] / med[int8]:.2f}x {'faster' if med[int8] < med[fp32] else 'SLOWER'}"
            )
        print(f"  {device} ({cpu}): " + "; ".join(parts))


def _emulator(device: str) -> str | None:
    from shufflekit.runtimes.remote import parse_address
    from shufflekit.runtimes.remote.probe import check_device

    return check_device(parse_address(device)).facts.get("emulator")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8, help="demo training epochs (make demo trains 8)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--device", action="append", default=[], help="another native device to time")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--folder", type=Path, help="keep (and reuse) the work here")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.ERROR)
    description, family = _cpu()
    print(f"this computer: {description}")
    print(f"start: {_uptime()}")
    tmp = tempfile.TemporaryDirectory(prefix="shufflekit-bench-targets-") if args.folder is None else None
    work = args.folder or Path(tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    _accuracy(work, args.epochs, family)
    if not args.skip_latency:
        _latency(work, args)
    print(f"end: {_uptime()}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
