"""Profile harness figures for ShuffleNet v2 1.0x at 224x224 (ONNX fp32 on ONNX Runtime CPU, TFLite fp32
on LiteRT/XNNPACK):

1. the harness's overhead against a bare timing loop (target < 2 %): the runner's timed loop (what
   `shufflekit profile` runs) and a bare ``perf_counter(); run(); perf_counter()`` loop over the same
   runtime object, alternated in blocks of 10 iterations so machine load hits both alike;
   overhead = median harness iteration / median bare iteration - 1;
2. the spread of p50 over 3 back-to-back `shufflekit profile` runs (each a fresh runner process):
   (max - min) / median (target < 5 % on an idle machine);
3. the op-type breakdown (--op-profile): time per operator category, the paper's Figure 2.

The machine's load average is printed before and after: other processes on the cores inflate
latency and its spread, so read the figures with it.

    .venv/bin/python benchmarks/profile.py [--model shufflenet_v2_x1_0] [--input-size 224] [--iters 200]
        [--rounds 5] [--threads N] [--folder DIR (reuse an exported release)]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# This file is named like the standard library's `profile` module (torch imports cProfile, which imports
# profile): keep its own folder off the import path so the real one is found.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

TARGET_OVERHEAD = 0.02
TARGET_SPREAD = 0.05


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def bare_vs_harness(path: Path, layout: str, iters: int, rounds: int, threads: int | None) -> dict[str, float]:
    from shufflekit.device.session import open_session
    from shufflekit.device.tensors import example_images, prepare_feeds

    session = open_session(str(path), threads=threads)
    feeds_list = prepare_feeds(session, example_images(session.inputs[0], 1, layout), layout)
    result = bare_vs_harness_session(session, feeds_list, iters, rounds)
    session.close()
    return result


def bare_vs_harness_session(session, feeds_list: list, iters: int, rounds: int, block: int = 10) -> dict[str, float]:
    from shufflekit.device.bench import timed_loop

    feeds = feeds_list[0]
    if session.runtime == "onnxruntime":
        ort_session = session.session

        def bare_call() -> None:
            ort_session.run(None, feeds)
    else:
        it = session.interpreter
        index = session.inputs[0].index
        outs = [o.index for o in session.outputs]
        x = feeds[session.inputs[0].name]

        def bare_call() -> None:
            it.set_tensor(index, x)
            it.invoke()
            for o in outs:
                it.get_tensor(o)

    def bare(n: int) -> list[float]:
        clock = time.perf_counter
        times = []
        for _ in range(n):
            start = clock()
            bare_call()
            times.append(clock() - start)
        return times

    bare(20)
    timed_loop(session, feeds_list, warmup=20, iters=1)
    # Fine interleaving (blocks of `block` iterations, alternating) and medians of per-iteration times:
    # on a shared machine, load comes and goes within seconds, and must hit both loops alike.
    harness_times: list[float] = []
    bare_times: list[float] = []
    block_overheads = []
    for _ in range(max(1, rounds * iters // block)):
        h = timed_loop(session, feeds_list, warmup=0, iters=block)
        b = bare(block)
        harness_times += h
        bare_times += b
        block_overheads.append(statistics.median(h) / statistics.median(b) - 1)
    h50, b50 = statistics.median(harness_times), statistics.median(bare_times)
    q = statistics.quantiles(block_overheads, n=4)
    overheads = [q[0], q[2]]
    return {
        "harness_ms": h50 * 1e3,
        "bare_ms": b50 * 1e3,
        "overhead": h50 / b50 - 1,
        "overhead_min": overheads[0],
        "overhead_max": overheads[1],
        "samples": len(harness_times),
    }


def tiny_models(folder: Path, tflite_path: Path) -> dict[str, tuple[Path, str | None]]:
    """Models so small that a harness's per-iteration cost in microseconds is plain to see: a one-node
    ONNX graph, and the last operator of the TFLite model cut out as a one-op model (the device package's own
    cutter)."""
    import onnx
    from onnx import TensorProto, helper

    from shufflekit.device.backends import litert_ops

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    onnx_path = folder / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(onnx_path))
    found, why = litert_ops.tflite_schema()
    if found is None:
        raise SystemExit(f"cannot cut a one-op TFLite model: {why}")
    schema, flatbuffers = found
    blob = tflite_path.read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(blob, 0))
    graph_t = model.subgraphs[0]
    op = graph_t.operators[-1]
    inputs = [t for t in op.inputs if t >= 0 and not litert_ops._has_data(model, graph_t, t)]
    tfl_path = folder / "tiny.tflite"
    tfl_path.write_bytes(litert_ops._one_op_model(schema, flatbuffers, model, graph_t, op, inputs))
    return {"onnx": (onnx_path, "NCHW"), "tflite": (tfl_path, None)}


def per_call_overhead_us(path: Path, layout: str | None, iters: int = 20000) -> tuple[float, float]:
    """(bare p50, harness p50 - bare p50) in microseconds on a tiny model."""
    from shufflekit.device.session import open_session

    session = open_session(str(path))
    info = session.inputs[0]
    import numpy as np

    x = np.zeros([d or 1 for d in info.shape], dtype=info.dtype)
    feeds_list = [{info.name: x}]
    r = bare_vs_harness_session(session, feeds_list, iters // 10, 10, block=100)
    session.close()
    return r["bare_ms"] * 1e3, (r["harness_ms"] - r["bare_ms"]) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shufflenet_v2_x1_0")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--folder", type=Path, help="an exported release folder to reuse")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import logging

    from shufflekit.artifacts import Manifest
    from shufflekit.runtimes import RuntimeOptions
    from shufflekit.runtimes.profile import ProfileSettings, profile_folder

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("shufflekit.runtimes.profile").setLevel(logging.INFO)
    print(f"machine: {os.cpu_count()} cores, load average {_load()} at start (shared machines inflate spread)")
    tmp = None
    folder = args.folder
    if folder is None or not (folder / "manifest.json").exists():
        import subprocess

        tmp = tempfile.TemporaryDirectory(prefix="shufflekit-bench-profile-")
        folder = folder or Path(tmp.name) / "release"
        t0 = time.perf_counter()
        # In a process of its own: torch's and TensorFlow's idle thread pools must not share the cores
        # with the loops timed here.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "shufflekit",
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
        print(f"exported {args.model} at {args.input_size} to {folder} in {time.perf_counter() - t0:.1f} s")
    manifest = Manifest.load(folder)
    arts = manifest.select(["onnx:fp32", "tflite:fp32"])

    print(
        "\n1. harness overhead against a bare timing loop: median per-iteration time, "
        f"{args.rounds * args.iters} iterations each, alternating in blocks of 10, batch 1"
    )
    print(f"   {'artifact':42} {'bare p50':>9} {'harness p50':>11} {'overhead':>9}  (interquartile range over blocks)")
    big_p50 = {}
    for art in arts:
        r = bare_vs_harness(folder / art.name, art.input.layout, args.iters, args.rounds, args.threads)
        big_p50[art.format] = r["bare_ms"]
        ok = "ok" if abs(r["overhead"]) < TARGET_OVERHEAD else "ABOVE TARGET"
        print(
            f"   {art.name:42} {r['bare_ms']:9.3f} {r['harness_ms']:11.3f} {r['overhead'] * 100:8.2f}%  "
            f"({r['overhead_min'] * 100:+.2f}..{r['overhead_max'] * 100:+.2f}%)  target < 2%: {ok}"
        )

    print(
        "\n   the same on tiny models (one Relu / one TFLite op), where the harness's own cost per iteration is "
        "visible, relative to v2's p50 above:"
    )
    with tempfile.TemporaryDirectory(prefix="shufflekit-tiny-") as tiny_dir:
        tfl = next(a for a in arts if a.format == "tflite")
        for fmt, (path, layout) in tiny_models(Path(tiny_dir), folder / tfl.name).items():
            bare_us, extra_us = per_call_overhead_us(path, layout)
            big = big_p50[fmt]
            print(
                f"   {fmt:8} bare {bare_us:7.2f} µs per call, harness +{extra_us:.2f} µs per iteration = "
                f"{extra_us / (big * 1e3) * 100:.3f}% of the {big:.3f} ms p50 of {args.model}"
            )

    print(
        "\n2. p50 over 3 back-to-back `shufflekit profile` runs (fresh runner process each, "
        f"{args.iters} iterations, 10 warmup)"
    )
    options = RuntimeOptions(threads=args.threads)
    settings = ProfileSettings(warmup=10, iters=args.iters)
    p50s: dict[str, list[float]] = {a.name: [] for a in arts}
    for _ in range(3):
        report = profile_folder(folder, [a.name for a in arts], options=options, settings=settings)
        for p in report.profiles:
            p50s[p.artifact.name].append(p.latency["p50_ms"])
    for name, values in p50s.items():
        spread = (max(values) - min(values)) / statistics.median(values)
        ok = "ok" if spread < TARGET_SPREAD else "ABOVE TARGET"
        print(
            f"   {name:42} p50 ms {' / '.join(f'{v:.3f}' for v in values)}   spread {spread * 100:.2f}%  "
            f"target < 5%: {ok}"
        )
    mult_adds = report.profiles[0].mult_adds
    for p in report.profiles:
        print(
            f"   {p.artifact.name:42} {p.us_per_mmac:.2f} µs per million multiply-adds "
            f"({(mult_adds or 0) / 1e6:.1f}M mult-adds), peak RSS {p.result['peak_rss_bytes'] / 1e6:.0f} MB, "
            f"load {p.result['load_ms']:.0f} ms"
        )

    print("\n3. op-type breakdown (--op-profile)")
    report = profile_folder(
        folder,
        [a.name for a in arts],
        options=options,
        settings=ProfileSettings(warmup=10, iters=args.iters, op_profile=True),
    )
    for p in report.profiles:
        prof, parts = p.op_profile, p.breakdown
        if not prof:
            print(f"   {p.artifact.name}: no op profile: {(p.result.get('op_profile') or {}).get('reason')}")
            continue
        run = f", profiled run {prof['run_ms']:.3f} ms" if prof.get("run_ms") else ""
        print(
            f"   {p.artifact.name} [{prof['method'].split(' (')[0]}]: sum of operators {prof['node_sum_ms']:.3f} ms"
            f"{run}, benchmark mean {p.latency['mean_ms']:.3f} ms"
        )
        for entry in parts["categories"]:
            print(f"      {entry['category']:28} {entry['ms']:8.3f} ms  {entry['share'] * 100:5.1f}%")
        top = ", ".join(f"{t['op_type']} {t['share'] * 100:.0f}%" for t in parts["op_types"][:6])
        print(f"      top op types: {top}")
    print(f"\nload average {_load()} at the end")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
