"""The device's dense-convolution peak: how far a file is from what the hardware does in this runtime.

A short calibrated micro-benchmark, a stack of 1x1 convolutions (256 -> 256 channels at 28x28, batch
1, float32: compute-bound, 256 multiply-adds per activation read), runs on the device in the
same runtime, provider and thread count as the file, through the one measuring path (it rides in the
first artifact's job, after that artifact's figures are taken, so load time and memory stay the
artifact's own). peak = its multiply-adds / its p50; a file's fraction of it = (the model's
multiply-adds / its per-image p50) / peak. An emulated device measures no speed, so no peak either.

The micro-benchmark files are built here (the device package has no onnx or tensorflow): the ONNX
one with ``onnx.helper``, the TFLite one with TFLite's flatbuffer schema, both once, under
``$SHUFFLEKIT_CACHE/peak/``, and sent like artifacts. The measured peak is filed in the manifest as a
``conv_peak`` record per device, named by runtime + provider + threads + the file's sha256, so a rerun
(or the next artifact) does not measure it again.

The peak is float32's: a quantized file running int8 kernels (VNNI, dot-product) can pass 1.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..device import backends
from ..files import cache_root, sha256_file
from ..records import ConvPeak

log = logging.getLogger(__name__)

LAYERS = 4
CHANNELS = 256
SIZE = 28
MULT_ADDS = LAYERS * CHANNELS * CHANNELS * SIZE * SIZE  # 205,520,896
DESCRIPTION = f"{LAYERS} x 1x1 conv {CHANNELS}->{CHANNELS} at {SIZE}x{SIZE}, float32, batch 1"
VERSION = 2  # of the micro-benchmark's definition: part of the cached files' names
# A few hundred ms at most: a short warm-up, then a 0.1 s budget with a floor of 10 runs.
WARMUP = 3
SECONDS = 0.1
MIN_ITERS = 10
_LAYOUT = {"onnx": "NCHW", "tflite": "NHWC"}


def _weights() -> list[np.ndarray]:
    """Fixed, well-scaled weights (OIHW): the activations keep their size through the stack, far from
    denormals and infinities, so every run does the same arithmetic."""
    rng = np.random.default_rng(0)
    scale = 1.0 / np.sqrt(CHANNELS)
    return [(rng.standard_normal((CHANNELS, CHANNELS, 1, 1)) * scale).astype(np.float32) for _ in range(LAYERS)]


def _build_onnx(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from ..export.onnx import DEFAULT_OPSET

    shape = [1, CHANNELS, SIZE, SIZE]
    inits, nodes, prev = [], [], "input"
    for i, w in enumerate(_weights()):
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        out = "output" if i == LAYERS - 1 else f"x{i + 1}"
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [out], name=f"conv{i}", kernel_shape=[1, 1]))
        prev = out
    graph = helper.make_graph(
        nodes,
        "conv1x1_peak",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        inits,
    )
    opsets = [helper.make_opsetid("", DEFAULT_OPSET)]
    # the lowest IR version the opset needs, not this onnx's newest (an older ONNX Runtime refuses that)
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="shufflekit-peak", ir_version=helper.find_min_ir_version_for(opsets)
    )
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def _build_tflite(path: Path) -> None:
    """The same stack as a TFLite file, written with TFLite's own flatbuffer schema (``ai_edge_litert``'s
    object API, or tensorflow's): NHWC input, OHWI weights, CONV_2D with a zero bias, as TensorFlow's converter lays a
    1x1 convolution out. No TensorFlow import (seconds, in a release whose converter runs elsewhere)."""
    from ..device.backends.litert_ops import tflite_schema  # ai-edge-litert's schema, else tensorflow's

    found, why = tflite_schema()
    if found is None:
        raise ImportError(f"cannot write the TFLite micro-benchmark: {why}")
    tfl, flatbuffers = found

    shape = [1, SIZE, SIZE, CHANNELS]
    buffers = [tfl.BufferT()]  # buffer 0: the empty sentinel

    def tensor(name: str, dims: list[int], data: np.ndarray | None = None) -> int:
        t = tfl.TensorT()
        t.name, t.shape, t.type, t.buffer = name, dims, tfl.TensorType.FLOAT32, 0
        if data is not None:
            buffer = tfl.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data, dtype=np.float32).tobytes(), dtype=np.uint8)
            buffers.append(buffer)
            t.buffer = len(buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    tensors: list[Any] = []
    operators = []
    prev = tensor("input", shape)
    for i, w in enumerate(_weights()):
        weight = tensor(f"w{i}", [CHANNELS, 1, 1, CHANNELS], np.transpose(w, (0, 2, 3, 1)))  # OIHW -> OHWI
        bias = tensor(f"b{i}", [CHANNELS], np.zeros(CHANNELS, np.float32))
        out = tensor("output" if i == LAYERS - 1 else f"x{i + 1}", shape)
        options = tfl.Conv2DOptionsT()
        options.padding, options.strideW, options.strideH = tfl.Padding.VALID, 1, 1
        op = tfl.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, [prev, weight, bias], [out]
        op.builtinOptionsType, op.builtinOptions = tfl.BuiltinOptions.Conv2DOptions, options
        operators.append(op)
        prev = out
    code = tfl.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = tfl.BuiltinOperator.CONV_2D
    code.version = 1
    graph = tfl.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [0], [prev], operators
    graph.name = "conv1x1_peak"
    model = tfl.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], buffers
    model.description = "shufflekit-peak"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))


_BUILDERS = {"onnx": _build_onnx, "tflite": _build_tflite}


def bench_file(fmt: str, cache: Path | None = None) -> Path:
    """The micro-benchmark file for artifact format ``fmt``, built once into the cache (written under a
    temporary name and renamed, so a reader never sees half of one)."""
    if fmt not in _BUILDERS:
        raise ValueError(f"no dense-convolution micro-benchmark for format {fmt!r}")
    folder = (cache or cache_root()) / "peak"
    target = folder / f"conv1x1-peak-v{VERSION}.{fmt}"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=f".{fmt}", dir=folder)
    os.close(fd)
    try:
        _BUILDERS[fmt](Path(tmp))
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    log.info("built the dense-convolution micro-benchmark %s", target)
    return target


def peak_name(runtime: str, provider: str, threads: int | None, sha256: str) -> str:
    """The name a peak is filed under in a device's group: what it depends on besides the device."""
    return f"{runtime} {provider} threads={threads if threads else 'default'} {sha256[:16]}"


@dataclass(frozen=True)
class PeakPlan:
    """What one runtime's peak needs on a device: its entry's name, the micro-benchmark file, and the
    record already filed (None: measure it with the next job)."""

    name: str
    path: Path
    sha256: str
    runtime: str
    provider: str
    threads: int | None
    cached: ConvPeak | None

    def job_entry(self) -> dict[str, Any]:
        """The job's ``peak`` field (the device package runs it after the artifact, when not emulated)."""
        fmt = backends.get(self.runtime).formats[0]
        return {
            "model": self.path.name,
            "layout": _LAYOUT.get(fmt),
            "warmup": WARMUP,
            "seconds": SECONDS,
            "min_iters": MIN_ITERS,
        }

    def record(self, measured: Mapping[str, Any]) -> ConvPeak:
        """The device's answer (``result["conv_peak"]``) as the record filed under ``name``."""
        p50 = float(measured["latency_ms"]["p50_ms"])
        return ConvPeak(
            runtime=self.runtime,
            provider=self.provider,
            threads=self.threads,
            benchmark=DESCRIPTION,
            benchmark_sha256=self.sha256,
            mult_adds=MULT_ADDS,
            p50_ms=p50,
            iters=int(measured["iters"]),
            gmacs=MULT_ADDS / (p50 / 1e3) / 1e9,
            providers=tuple(str(p) for p in measured.get("providers") or ()),
            runtime_version=measured.get("runtime_version"),
        )


def plan_peak(manifest: Any, device_key: str, runtime: str, provider: str, threads: int | None) -> PeakPlan:
    """The peak of ``runtime`` with this provider and thread count on ``device_key``: its micro-benchmark
    file (built once) and the record the manifest already holds for it, if any."""
    fmt = backends.get(runtime).formats[0]
    path = bench_file(fmt)
    sha = sha256_file(path)
    name = peak_name(runtime, provider, threads, sha)
    cached = manifest.results(ConvPeak, group=device_key).get(name)
    return PeakPlan(name, path, sha, runtime, provider, threads, cached)


def peak_fraction(mult_adds: int | None, per_image_p50_ms: float | None, peak: ConvPeak | None) -> float | None:
    """(model multiply-adds / per-image p50) / the device's peak; None without any of them."""
    if not mult_adds or not per_image_p50_ms or peak is None or not peak.p50_ms:
        return None
    return (mult_adds / per_image_p50_ms) / (peak.mult_adds / peak.p50_ms)
