"""Per-operator times for TFLite by flatbuffer surgery: the Python interpreters expose no op profiler, so
each operator is cut out of the model as a one-operator model, fed the tensors it sees in a full run and
timed on the same delegate and threads (see ``profile_tflite_ops`` for what that cannot see)."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import RunnerError
from ..tensors import Feeds
from .registry import parse_providers


def tflite_schema() -> Tuple[Any, Optional[str]]:
    """The flatbuffer schema module and flatbuffers (shipped with ai-edge-litert and tensorflow, not with
    tflite-runtime). Returns (schema, flatbuffers) or (None, reason)."""
    try:
        import flatbuffers
    except ImportError:
        return None, "the flatbuffers package is not installed"
    for name in ("ai_edge_litert.schema_py_generated", "tensorflow.lite.python.schema_py_generated"):
        try:
            module = __import__(name, fromlist=["Model"])
            return (module, flatbuffers), None
        except ImportError:
            continue
    return None, "no TFLite flatbuffer schema (ai-edge-litert or tensorflow) is installed"


def profile_tflite_ops(
    path: str,
    providers: Any,
    threads: Optional[int],
    allow_fallback: bool,
    feeds_list: Sequence[Feeds],
    warmup: int = 5,
    runs: int = 50,
    *,
    load: Callable[[], Any],
    open_session: Callable[..., Any],
) -> Dict[str, Any]:
    """Per-operator times for TFLite, measured in isolation.

    The TFLite Python interpreters (ai-edge-litert, tflite-runtime, tensorflow.lite) expose no op profiler
    (only the native benchmark_model has one). So each operator is cut out of the model as a one-operator
    model, fed the very tensors it sees in a full run, and timed on the same delegate and threads. What this
    cannot see: whole-graph optimisations (XNNPACK fusing a PAD into the next convolution, eliding
    transposes) and inter-op cache effects; and every op pays one interpreter invoke. So the sum is an
    upper bound of the end-to-end time; read the shares, and compare the sum with the end-to-end figure.
    """
    found, why = tflite_schema()
    if found is None:
        return {
            "available": False,
            "method": None,
            "reason": "the TFLite Python interpreter offers no per-operator profiler, and isolated-operator "
            "timing needs the flatbuffer schema: %s" % why,
        }
    schema, flatbuffers = found
    module, _backend, _ = load()  # litert's import_tflite and TfliteSession, handed in (no import cycle)
    delegates = parse_providers(providers)
    probe = open_session(path, delegates[0] if delegates else None, threads, allow_fallback)
    delegate = probe.info["delegate"]
    if delegate not in ("xnnpack", "builtin"):
        return {
            "available": False,
            "method": None,
            "reason": "isolated-operator timing runs on xnnpack or the built-in kernels, not %s" % delegate,
        }
    resolver_type = getattr(module, "OpResolverType", None)
    with open(str(path), "rb") as handle:
        blob = handle.read()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(blob, 0))
    if len(model.subgraphs) != 1:
        return {"available": False, "method": None, "reason": "the model has several subgraphs"}
    graph = model.subgraphs[0]
    values = _all_tensor_values(module, resolver_type, blob, probe, feeds_list[0])
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    floor = None
    nodes = []
    for index, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        op_type = names.get(max(code.builtinCode, getattr(code, "deprecatedBuiltinCode", 0)), "CUSTOM")
        inputs = [t for t in op.inputs if t >= 0 and not _has_data(model, graph, t)]
        content, feeds = _one_op_model(schema, flatbuffers, model, graph, op, inputs, values)
        times, ran_on = _time_one_op(module, resolver_type, content, feeds, delegate, threads, warmup, runs)
        tensor_name = graph.tensors[op.outputs[0]].name if op.outputs else None
        nodes.append(
            {
                "name": "%d:%s" % (index, tensor_name.decode() if isinstance(tensor_name, bytes) else tensor_name),
                "op_type": op_type,
                "provider": ran_on,
                "calls": len(times),
                "mean_ms": float(np.mean(times)) * 1e3,
                "median_ms": float(np.median(times)) * 1e3,
                "input_shapes": [
                    list(values[t].shape) if t in values else list(graph.tensors[t].shape) for t in op.inputs if t >= 0
                ],
                "output_shapes": [list(graph.tensors[t].shape) for t in op.outputs],
            }
        )
        if floor is None or nodes[-1]["median_ms"] < floor:
            floor = nodes[-1]["median_ms"]
    per_batch = len(feeds_list)
    for node in nodes:  # one batch runs each op once per model call
        node["mean_ms"] *= per_batch
        node["median_ms"] *= per_batch
    placement: Dict[Any, int] = {}
    for node in nodes:
        placement[node["provider"]] = placement.get(node["provider"], 0) + 1
    return {
        "available": True,
        "method": "isolated operators (each op run alone as a one-op model on its recorded inputs; "
        "the TFLite Python interpreter has no op profiler)",
        "runs": int(runs),
        "nodes": nodes,
        "node_sum_ms": float(sum(n["mean_ms"] for n in nodes)),
        "run_ms": None,
        "invoke_floor_ms": floor,
        "node_providers": placement,
    }


def _has_data(model: Any, graph: Any, tensor: int) -> bool:
    buffer = model.buffers[graph.tensors[tensor].buffer] if graph.tensors[tensor].buffer < len(model.buffers) else None
    return buffer is not None and buffer.data is not None and len(buffer.data) > 0


def _all_tensor_values(
    module: Any, resolver_type: Any, blob: bytes, session: Any, feeds: Feeds
) -> Dict[int, np.ndarray]:
    """Every tensor of one full run (built-in kernels, all intermediates kept), by index."""
    kwargs = {"model_content": blob, "experimental_preserve_all_tensors": True}
    if resolver_type is not None:
        kwargs["experimental_op_resolver_type"] = resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    full = module.Interpreter(**kwargs)
    full.allocate_tensors()
    for info in session.inputs:
        x = feeds[info.name]
        if tuple(x.shape) != tuple(full.get_tensor(info.index).shape):
            x = x[:1]  # a dynamic-batch model profiled at batch 1
        full.set_tensor(info.index, x)
    full.invoke()
    values = {}
    for detail in full.get_tensor_details():
        try:
            values[detail["index"]] = np.array(full.get_tensor(detail["index"]))
        except ValueError:  # tensors without data (optional, released)
            continue
    return values


def _one_op_model(
    schema: Any,
    flatbuffers: Any,
    model: Any,
    graph: Any,
    op: Any,
    inputs: Sequence[int],
    values: Dict[int, np.ndarray],
) -> Tuple[bytes, Dict[int, np.ndarray]]:
    """One operator as a model of its own: only the tensors and buffers it touches (renumbered), so
    packing it costs the op's size, not the whole graph's (a graph of 300 ops and 450 tensors packed
    once per op was most of the profile's time). Returns the flatbuffer and the feeds by new index."""
    import copy

    own = [t for t in dict.fromkeys(list(op.inputs) + list(op.outputs) + list(op.intermediates or [])) if t >= 0]
    index = {t: i for i, t in enumerate(own)}
    buffers = [schema.BufferT()]  # buffer 0: the empty sentinel every tensor without data points at
    tensors = []
    for t in own:
        tensor = copy.copy(graph.tensors[t])
        if _has_data(model, graph, t):
            buffers.append(model.buffers[tensor.buffer])
            tensor.buffer = len(buffers) - 1
        else:
            tensor.buffer = 0
        tensors.append(tensor)
    one_op = copy.copy(op)
    one_op.inputs = [index[t] if t >= 0 else t for t in op.inputs]
    one_op.outputs = [index[t] for t in op.outputs]
    if op.intermediates is not None:
        one_op.intermediates = [index[t] for t in op.intermediates if t >= 0]
    one = copy.copy(model)
    sub = copy.copy(graph)
    sub.tensors = tensors
    sub.operators, sub.inputs, sub.outputs = [one_op], [index[t] for t in inputs], [index[t] for t in op.outputs]
    one.subgraphs = [sub]
    one.signatureDefs = []
    one.metadata, one.metadataBuffer = [], []  # they name buffers by the old numbers
    one.buffers = buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(one.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), {index[t]: values[t] for t in inputs}


def _time_one_op(
    module: Any,
    resolver_type: Any,
    content: bytes,
    feeds: Dict[int, np.ndarray],
    delegate: str,
    threads: Optional[int],
    warmup: int,
    runs: int,
) -> Tuple[List[float], str]:
    attempts = [delegate] if delegate == "builtin" else [delegate, "builtin"]
    for attempt in attempts:
        kwargs: Dict[str, Any] = {"model_content": content}
        if threads:
            kwargs["num_threads"] = int(threads)
        if attempt == "builtin" and resolver_type is not None:
            kwargs["experimental_op_resolver_type"] = resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            it = module.Interpreter(**kwargs)
            it.allocate_tensors()
            for t, value in feeds.items():
                it.set_tensor(t, value)
            it.invoke()
        except (RuntimeError, ValueError, KeyError):
            continue  # XNNPACK refuses some ops alone (e.g. a quantized op on its own): time it on built-ins
        delegated = (
            any(op.get("op_name") == "DELEGATE" for op in it._get_ops_details())
            if hasattr(it, "_get_ops_details")
            else attempt != "builtin"
        )
        for _ in range(int(warmup)):
            it.invoke()
        clock = time.perf_counter
        invoke = it.invoke
        times = []
        for _ in range(int(runs)):
            start = clock()
            invoke()
            times.append(clock() - start)
        return times, ("xnnpack" if delegated else "builtin")
    raise RunnerError(
        "run_failed", "an operator of the model cannot be run on its own", hint="profile without --op-profile"
    )
