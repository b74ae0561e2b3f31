"""Our exported files against a plain export of the same weights (issue 15, goals 1 and 2).

Plain: ``torch.onnx.export`` (TorchScript, opset 17, nothing else) for ONNX; for TFLite, plain onnx2tf
(``convert_to_tflite(optimize=False)``) of the ``--no-optimize`` export (torch.onnx.export + onnxslim: onnx2tf
fails on the raw export of the Megvii layout). Ours: ``export_onnx`` (onnxslim and the ONNX
rewrites of ``shufflekit.export.rewrites``) and ``convert_to_tflite`` of that file (TFLite's rewrites on top).
Seeded weights (BatchNorm far from identity), 224x224, batch 1, 1000 classes.

Per runtime (ONNX Runtime CPU EP; LiteRT with XNNPACK, its default) and thread count (1 and 2), every file
of one runtime is opened in this one process and timed in interleaved rounds (plain, ours, plain, ours
...: a burst of machine load hits both alike); p50 is the median of all timed runs. Printed: p50 of each,
ours/plain, the paired ratio (median over rounds of ours/plain within the round: steadier under load,
see ``paired``), and the largest difference of their logits on one input (absolute, and relative to the
largest logit: fp32 parity allows 2e-4). At one thread the paired ratio is also given in the
calling thread's CPU time (``cpu``: the interpreter and ONNX Runtime run a one-thread model on the calling
thread, so this leaves out the time the process waits for a core on a shared machine; it still pays the
cache misses of a busy one). ``--bound`` adds a TFLite file that is not exact and never shipped: ours with
every channel shuffle deleted (the branches concatenated in order). It is the ceiling of what any rewrite of
the shuffle can win. Then goal 2: the Megvii-layout TFLite against the
torchvision-layout TFLite of the same width (<= 1.05x), plain and ours. The load average and the CPU's
vector extensions are printed with the figures.

    .venv/bin/python benchmarks/optimize.py [--models shufflenet_v2_x0_5,shufflenet_v2_x1_0,shufflenet_v2_x1_0_megvii]
        [--rounds 15] [--iters 20] [--threads 1,2] [--folder DIR (keep and reuse the files)] [--bound]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

# benchmarks/profile.py would shadow the standard library's `profile`: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

MODELS = ("shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_0_megvii")
SIZE = 224
GOAL_RATIO = 0.90  # ours p50 / plain p50
GOAL_MEGVII = 1.05  # Megvii TFLite p50 / torchvision-layout TFLite p50


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _cpu_flags() -> str:
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "fma") if f in flags) or "none of avx2/avx512"


def make_files(model: str, folder: Path) -> dict[str, Path]:
    """plain/ours ONNX and TFLite files of ``model`` in ``folder`` (made once, reused with --folder)."""
    files = {k: folder / f"{model}_{k.replace(':', '.')}" for k in ("plain:onnx", "ours:onnx")}
    files |= {k: folder / f"{model}_{k.replace(':', '.')}" for k in ("plain:tflite", "ours:tflite")}
    if all(p.is_file() for p in files.values()):
        return files
    import torch

    from shufflekit.export.onnx import export_onnx
    from shufflekit.export.source import load_source
    from shufflekit.export.tflite import TFLiteTarget, convert_to_tflite

    source = load_source(model=model, input_size=SIZE, num_classes=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            source.model.eval(),
            (torch.zeros(1, 3, SIZE, SIZE),),
            str(files["plain:onnx"]),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
        )
    made = export_onnx(source.model, source.meta, files["ours:onnx"], source=source.record)
    print(f"{model}: ONNX rewrites {made.options['rewrites']}", flush=True)
    # onnx2tf fails on the raw torch.onnx.export of the Megvii layout (a Conv after its un-folded
    # constants): TFLite's plain file is onnx2tf of the --no-optimize export (onnxslim, no rewrite).
    unoptimized = folder / f"{model}_noopt.onnx"
    export_onnx(source.model, source.meta, unoptimized, source=source.record, optimize=False)
    convert_to_tflite(unoptimized, [TFLiteTarget("fp32", files["plain:tflite"])], optimize=False)
    conversion = convert_to_tflite(files["ours:onnx"], [TFLiteTarget("fp32", files["ours:tflite"])])
    print(f"{model}: TFLite rewrites {conversion.results[0].options['rewrites']}", flush=True)
    return files


def without_shuffle(source: Path, target: Path) -> int:
    """Not exact, for ``--bound`` only: every Concat on the inner axis of two ``[N, h, 1, HW]`` views that
    concat-shuffle-as-interleave writes (concat + shuffle) becomes a plain channel Concat of the two
    branches, so the TFLite file keeps the concat and split and drops the shuffle's data movement."""
    import onnx
    from onnx import helper

    model = onnx.load(str(source))
    nodes = list(model.graph.node)
    producer = {out: n for n in nodes for out in n.output}
    readers: dict[str, list] = {}
    for n in nodes:
        for name in n.input:
            readers.setdefault(name, []).append(n)
    changed = 0
    for concat in nodes:
        axis = next((helper.get_attribute_value(a) for a in concat.attribute if a.name == "axis"), None)
        if concat.op_type != "Concat" or axis != 2 or len(concat.input) != 2:
            continue
        views = [producer.get(name) for name in concat.input]
        flat = readers.get(concat.output[0], [])
        if any(v is None or v.op_type != "Reshape" for v in views) or len(flat) != 1 or flat[0].op_type != "Reshape":
            continue
        new = helper.make_node("Concat", [v.input[0] for v in views], [flat[0].output[0]], axis=1, name=concat.name)
        model.graph.node.insert(list(model.graph.node).index(concat), new)
        for old in (*views, concat, flat[0]):  # type: ignore[misc]
            model.graph.node.remove(old)
        changed += 1
    onnx.save(model, str(target))
    return changed


def make_bound(model: str, folder: Path) -> Path:
    """The ``--bound`` TFLite file of ``model``: ours with its shuffles deleted (see without_shuffle)."""
    from shufflekit.export.rewrites import TFLITE_REWRITES, rewrite_file
    from shufflekit.export.tflite import TFLiteTarget, convert_to_tflite

    target = folder / f"{model}_bound.tflite"
    if target.is_file():
        return target
    rewritten = folder / f"{model}_tflite_rewrites.onnx"
    rewrite_file(folder / f"{model}_ours.onnx", rewritten, TFLITE_REWRITES)
    deleted = without_shuffle(rewritten, folder / f"{model}_bound.onnx")
    print(f"{model}: --bound file with {deleted} shuffles deleted (not exact)", flush=True)
    convert_to_tflite(folder / f"{model}_bound.onnx", [TFLiteTarget("fp32", target)], optimize=False)
    return target


class _Runner:
    def __init__(self, runtime: str, path: Path, threads: int) -> None:
        import numpy as np

        x = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
        if runtime == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feeds = {session.get_inputs()[0].name: x}
            self.run = lambda: session.run(None, feeds)[0]
        else:
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.transpose(0, 2, 3, 1))
            out = interpreter.get_output_details()[0]["index"]

            def run() -> np.ndarray:
                interpreter.invoke()
                return interpreter.get_tensor(out)

            self.run = run
        self.output = self.run().copy()
        self.times: list[float] = []
        self.rounds: list[float] = []  # each round's median
        self.cpu_rounds: list[float] = []  # each round's median in the calling thread's CPU time

    def time(self, iters: int) -> None:
        for _ in range(3):
            self.run()
        this_round, cpu = [], []
        for _ in range(iters):
            c0, t0 = time.thread_time(), time.perf_counter()
            self.run()
            this_round.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        self.times += this_round
        self.rounds.append(statistics.median(this_round))
        self.cpu_rounds.append(statistics.median(cpu))


def measure(runtime: str, paths: dict[str, Path], threads: int, rounds: int, iters: int) -> dict[str, float]:
    """p50 in ms of every file, timed in interleaved rounds."""
    runners = {name: _Runner(runtime, path, threads) for name, path in paths.items()}
    for _ in range(rounds):
        for runner in runners.values():
            runner.time(iters)
    found = {name: statistics.median(r.times) * 1e3 for name, r in runners.items()}
    found |= {f"{name}:output": r.output for name, r in runners.items()}  # type: ignore[misc]
    found |= {f"{name}:rounds": r.rounds for name, r in runners.items()}  # type: ignore[misc]
    found |= {f"{name}:cpu": r.cpu_rounds for name, r in runners.items()}  # type: ignore[misc]
    return found


def paired(a: list[float], b: list[float]) -> float:
    """Median over rounds of b's round median / a's: the two were timed back to back in each round, so
    a burst of load that lasts a round hits both, where the ratio of the overall p50s can take it once."""
    return statistics.median(y / x for x, y in zip(a, b))


def _ratio(value: float | None) -> str:
    return f"{value:6.3f}" if value is not None else f"{'-':>6s}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--bound", action="store_true", help="add the TFLite file with the shuffles deleted")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    models = [m for m in args.models.split(",") if m]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        files = {m: make_files(m, folder) for m in models}
        bounds = {m: make_bound(m, folder) for m in models if args.bound and not m.endswith("_megvii")}
        print(f"\nCPU: {os.cpu_count()} cores, {_cpu_flags()}; {args.rounds} interleaved rounds of {args.iters} runs")
        print(f"load average before: {_load()}")
        print(
            f"{'model':28s} {'runtime':8s} {'thr':>3s} {'plain ms':>9s} {'ours ms':>9s} {'ratio':>6s} "
            f"{'paired':>6s} {'cpu':>6s} {'max|diff|':>9s} {'rel':>8s}"
        )
        p50: dict[tuple[str, str, int, str], float] = {}
        rounds: dict[tuple[str, str, int, str], list[float]] = {}
        for runtime in ("onnx", "tflite"):
            for threads in [int(t) for t in args.threads.split(",")]:
                paths = {f"{m}|{k}": files[m][f"{k}:{runtime}"] for m in models for k in ("plain", "ours")}
                if runtime == "tflite":
                    paths |= {f"{m}|bound": path for m, path in bounds.items()}
                found = measure(runtime, paths, threads, args.rounds, args.iters)
                for m in models:
                    plain, ours = found[f"{m}|plain"], found[f"{m}|ours"]
                    cpu = paired(found[f"{m}|plain:cpu"], found[f"{m}|ours:cpu"]) if threads == 1 else None
                    a, b = found[f"{m}|plain:output"], found[f"{m}|ours:output"]
                    diff = float(np.abs(np.asarray(a) - np.asarray(b)).max())
                    rel = diff / float(np.abs(np.asarray(a)).max())
                    p50 |= {(m, runtime, threads, "plain"): plain, (m, runtime, threads, "ours"): ours}
                    rounds[(m, runtime, threads, "plain")] = found[f"{m}|plain:rounds"]
                    rounds[(m, runtime, threads, "ours")] = found[f"{m}|ours:rounds"]
                    pair = paired(found[f"{m}|plain:rounds"], found[f"{m}|ours:rounds"])
                    name = "ONNX Runtime" if runtime == "onnx" else "TFLite"
                    print(
                        f"{m:28s} {name:8.8s} {threads:3d} {plain:9.3f} {ours:9.3f} {ours / plain:6.3f} "
                        f"{pair:6.3f} {_ratio(cpu)} {diff:9.2e} {rel:8.1e}",
                        flush=True,
                    )
                    if f"{m}|bound" in found:
                        bound = found[f"{m}|bound"]
                        pair = paired(found[f"{m}|plain:rounds"], found[f"{m}|bound:rounds"])
                        cpu = paired(found[f"{m}|plain:cpu"], found[f"{m}|bound:cpu"]) if threads == 1 else None
                        print(
                            f"{'  shuffle deleted (bound)':28s} {name:8.8s} {threads:3d} {plain:9.3f} {bound:9.3f} "
                            f"{bound / plain:6.3f} {pair:6.3f} {_ratio(cpu)}  (not exact)",
                            flush=True,
                        )
        print(f"load average after: {_load()}")
        print(f"goal 1: ours/plain <= {GOAL_RATIO:.2f} on each runtime")
        for m in models:
            if not m.endswith("_megvii") or m.removesuffix("_megvii") not in models:
                continue
            base = m.removesuffix("_megvii")
            for threads in [int(t) for t in args.threads.split(",")]:
                for kind in ("plain", "ours"):
                    ratio = p50[(m, "tflite", threads, kind)] / p50[(base, "tflite", threads, kind)]
                    pair = paired(rounds[(base, "tflite", threads, kind)], rounds[(m, "tflite", threads, kind)])
                    print(
                        f"goal 2 ({kind}, {threads} thread(s)): {m} TFLite / {base} TFLite = {ratio:.2f}, "
                        f"paired {pair:.2f} (<= {GOAL_MEGVII})"
                    )


if __name__ == "__main__":
    main()
