"""Export figures for ShuffleNet v2 1.0x at 224x224 (targets on the 2-core CI machine):

- ONNX export time <= 5 s: ``export_onnx`` (torch.onnx.export + onnxslim + onnx.checker full check),
  the model already built; for the record, also the same export with ``dynamo=True``;
- TFLite conversion time <= 30 s: ``convert_to_tflite`` fp32 (TensorFlow/onnx2tf import, onnx2tf's
  ONNX -> Keras step, TFLiteConverter), from the ONNX file;
- peak memory (RSS) <= 3 GiB: the high-water mark of each stage, each run in its own fresh process,
  and of a whole ``export_model`` (ONNX + TFLite + parity reference) in one process.

Each stage runs in a child process so imports are paid as a user pays them and one stage's memory
does not hide another's. The machine's load average is printed: other processes on the 2 cores slow
every figure down.

    .venv/bin/python benchmarks/export.py [--model shufflenet_v2_x1_0] [--input-size 224] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/profile.py would shadow the standard library's `profile` (torch.export imports cProfile):
# keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

TARGETS = {"onnx_s": 5.0, "tflite_s": 30.0, "rss_gib": 3.0}


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)  # Linux: KiB


def _stage(name: str, model: str, size: int, folder: Path) -> dict:
    """Runs in the child process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    result: dict = {}
    if name in ("onnx", "onnx-dynamo"):
        from shufflekit.export.onnx import export_onnx
        from shufflekit.export.source import load_source

        source = load_source(model=model, input_size=size)
        result["import_and_build_s"] = time.perf_counter() - started
        t0 = time.perf_counter()
        dynamo = name == "onnx-dynamo"
        export_onnx(
            source.model,
            source.meta,
            folder / ("dynamo.onnx" if dynamo else "model.onnx"),
            source=source.record,
            exporter="dynamo" if dynamo else "torchscript",
            opset=18 if dynamo else 17,
        )
        result["seconds"] = time.perf_counter() - t0
    elif name == "tflite":
        from shufflekit.export.tflite import TFLiteTarget, convert_to_tflite

        conversion = convert_to_tflite(folder / "model.onnx", [TFLiteTarget("fp32", folder / "model.tflite")])
        result["seconds"] = time.perf_counter() - started  # imports included: they are part of the cost
        result["onnx2tf_s"] = conversion.onnx2tf_seconds
        result["converter_s"] = conversion.results[0].seconds
    elif name == "export":
        from shufflekit.export import export_model

        report = export_model(folder / "release", model=model, input_size=size)
        result["seconds"] = time.perf_counter() - started
        result["timings"] = report.timings
    result["peak_rss_gib"] = _peak_rss_gib()
    return result


def _run_child(name: str, model: str, size: int, folder: Path) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            name,
            "--model",
            model,
            "--input-size",
            str(size),
            "--folder",
            str(folder),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"stage {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shufflenet_v2_x1_0")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each stage (the median is reported)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_stage(args.child, args.model, args.input_size, args.folder)))
        return

    print(f"{args.model} at {args.input_size}x{args.input_size}; {os.cpu_count()} CPUs; load average {_load()}")
    runs: dict[str, list[dict]] = {"onnx": [], "onnx-dynamo": [], "tflite": [], "export": []}
    with tempfile.TemporaryDirectory(prefix="shufflekit-bench-export-") as tmp:
        folder = Path(tmp)
        for _ in range(args.repeats):
            for stage in ("onnx", "onnx-dynamo", "tflite", "export"):
                runs[stage].append(_run_child(stage, args.model, args.input_size, folder))
                if stage == "export":
                    import shutil

                    shutil.rmtree(folder / "release", ignore_errors=True)

    def median(stage: str, key: str) -> float:
        values = sorted(r[key] for r in runs[stage])
        return values[len(values) // 2]

    def spread(stage: str, key: str) -> str:
        values = [r[key] for r in runs[stage]]
        return f"{min(values):.2f}..{max(values):.2f}"

    rss = max(r["peak_rss_gib"] for stage in runs for r in runs[stage])
    rows = [
        (
            "ONNX export (torchscript, chosen)",
            f"{median('onnx', 'seconds'):.2f} s",
            spread("onnx", "seconds"),
            f"<= {TARGETS['onnx_s']:.0f} s",
            median("onnx", "seconds") <= TARGETS["onnx_s"],
        ),
        (
            "ONNX export (dynamo, for comparison)",
            f"{median('onnx-dynamo', 'seconds'):.2f} s",
            spread("onnx-dynamo", "seconds"),
            "",
            None,
        ),
        (
            "TFLite conversion fp32 (imports included)",
            f"{median('tflite', 'seconds'):.2f} s",
            spread("tflite", "seconds"),
            f"<= {TARGETS['tflite_s']:.0f} s",
            median("tflite", "seconds") <= TARGETS["tflite_s"],
        ),
        (
            "  of which onnx2tf ONNX -> Keras",
            f"{median('tflite', 'onnx2tf_s'):.2f} s",
            spread("tflite", "onnx2tf_s"),
            "",
            None,
        ),
        (
            "  of which TFLiteConverter fp32",
            f"{median('tflite', 'converter_s'):.2f} s",
            spread("tflite", "converter_s"),
            "",
            None,
        ),
        (
            "whole `export` (model, reference, ONNX, TFLite)",
            f"{median('export', 'seconds'):.2f} s",
            spread("export", "seconds"),
            "",
            None,
        ),
        ("peak RSS, ONNX stage", f"{max(r['peak_rss_gib'] for r in runs['onnx']):.2f} GiB", "", "", None),
        ("peak RSS, TFLite stage", f"{max(r['peak_rss_gib'] for r in runs['tflite']):.2f} GiB", "", "", None),
        (
            "peak RSS, whole export",
            f"{max(r['peak_rss_gib'] for r in runs['export']):.2f} GiB",
            "",
            f"<= {TARGETS['rss_gib']:.0f} GiB",
            rss <= TARGETS["rss_gib"],
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'figure':<{width}}  {'median':>10}  {'range':>12}  {'target':>9}  verdict")
    for label, value, rng, target, ok in rows:
        verdict = "" if ok is None else ("met" if ok else "MISSED")
        print(f"{label:<{width}}  {value:>10}  {rng:>12}  {target:>9}  {verdict}")
    print(f"\n{args.repeats} runs per stage, each in a fresh process; load average now {_load()}")


if __name__ == "__main__":
    main()
