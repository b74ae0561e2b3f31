"""PyTorch -> ONNX: one self-contained file with an explicit opset, named input and output, the model's
metadata in metadata_props, constants and BatchNorm folded (onnxslim), checked with full shape inference.

Exporter: the TorchScript-based ``torch.onnx.export(dynamo=False)`` by default. Measured on v2 1.0x at
224 on the 2-core CI machine (torch 2.13, fresh process, benchmarks/export.py): 2.7 s for this whole
function (the export call itself 0.6-0.7 s), against 8.2 s with ``dynamo=True`` (torch.export,
decompositions, onnxscript), over the 5 s budget. Both give the same graph for these
models once simplified (Conv, Relu, Reshape, Transpose, Slice, Concat, pooling, Gemm), and the
ShuffleNet code is plain tensor code that traces exactly. ``exporter="dynamo"`` remains available,
and is the way forward should a later torch drop the TorchScript exporter.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ExportError, UsageError
from ..files import atomic_path
from ..metadata import ModelMeta
from .rewrites import ONNX_REWRITES, rewrite

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17  # ONNX Runtime (incl. mobile builds), onnx2tf and TFLite converters all take it
EXPORTERS = ("torchscript", "dynamo")
DYNAMO_MIN_OPSET = 18  # torch 2.13's dynamo exporter has no lower-opset implementations
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"
REWRITES_KEY = "shufflekit_rewrites"  # metadata_props: the exact graph rewrites the file carries (a JSON list)


def parse_batch(value: int | str) -> int | str:
    """1, N (a fixed batch size) or "dynamic"."""
    if isinstance(value, str):
        if value.strip().lower() == "dynamic":
            return "dynamic"
        try:
            value = int(value)
        except ValueError:
            raise UsageError(
                f"batch {value!r} is neither a positive integer nor 'dynamic'",
                hint="use --batch 1, --batch 8 or --batch dynamic",
            ) from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(
            f"batch {value!r} is not a positive integer", hint="use --batch 1, --batch 8 or --batch dynamic"
        )
    return value


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    opset: int
    batch: int | str
    input_shape: tuple[int | str, ...]
    output_shape: tuple[int | str, ...]
    seconds: float  # torch export + simplification
    options: Mapping[str, Any] = field(default_factory=dict)


def metadata_props(meta: ModelMeta, source: Mapping[str, Any]) -> dict[str, str]:
    """What an app reads from the file itself (ONNX Runtime exposes it as custom_metadata_map)."""
    pre = meta.preprocessing
    props = {
        "model": meta.model,
        "num_classes": str(meta.num_classes),
        "input_size": str(pre.input_size),  # WIDTHxHEIGHT, as input_width and input_height say
        "input_height": str(pre.input_size.height),
        "input_width": str(pre.input_size.width),
        "resize_size": str(pre.resize_size),
        "mean": json.dumps(list(pre.mean)),
        "std": json.dumps(list(pre.std)),
        "layout": "NCHW",
        "color": "RGB, scaled to [0, 1] before mean/std",
        "labels": json.dumps(list(meta.label_names())),
        "shufflekit_version": __version__,
        "source": str(source.get("kind", "unknown")),
    }
    if source.get("checkpoint_sha256"):
        props["source_checkpoint_sha256"] = str(source["checkpoint_sha256"])
    if source.get("seed") is not None:
        props["source_seed"] = str(source["seed"])
    return props


def export_onnx(
    model: Any,
    meta: ModelMeta,
    path: str | Path,
    *,
    source: Mapping[str, Any] | None = None,
    batch: int | str = 1,
    opset: int = DEFAULT_OPSET,
    exporter: str = "torchscript",
    optimize: bool = True,
) -> OnnxExport:
    """Export ``model`` (a torch module) to ``path`` atomically and return what was made.

    ``optimize``: apply the exact graph rewrites chosen for ONNX Runtime (``export.rewrites``), recorded in
    the options as ``rewrites``; False keeps the plain graph (``rewrites: []``)."""
    import onnx
    import torch

    batch = parse_batch(batch)
    if exporter not in EXPORTERS:
        raise UsageError(f"unknown ONNX exporter {exporter!r}", hint=f"use one of {', '.join(EXPORTERS)}")
    if exporter == "dynamo" and opset < DYNAMO_MIN_OPSET:
        raise UsageError(
            f"the dynamo exporter writes opset {DYNAMO_MIN_OPSET} or later, not {opset}",
            hint=f"pass opset={DYNAMO_MIN_OPSET} or use the torchscript exporter",
        )
    size = meta.input_size
    example = torch.zeros(size.nchw(batch if isinstance(batch, int) else 1))  # parse_batch: an int or "dynamic"
    model = model.eval()
    started = time.perf_counter()
    with atomic_path(path, suffix=".onnx") as raw:
        try:
            _torch_export(model, example, raw, batch=batch, opset=opset, exporter=exporter)
            graph = onnx.load(str(raw))
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(
                f"torch -> ONNX export of {meta.model} failed: {_first_line(exc)}", hint="run with -vv for details"
            ) from exc
        graph = simplify(graph)
        applied = rewrite(graph, ONNX_REWRITES) if optimize else []
        _set_metadata(graph, meta, source or {})
        entry = graph.metadata_props.add()
        entry.key, entry.value = REWRITES_KEY, json.dumps(applied)  # what converters of this file inherit
        onnx.save_model(graph, str(raw), save_as_external_data=False)
        check_onnx(raw)
    seconds = time.perf_counter() - started
    dims = (BATCH_DIM if batch == "dynamic" else batch,)
    log.info("exported %s to %s in %.2f s", meta.model, path, seconds)
    return OnnxExport(
        path=Path(path),
        opset=opset,
        batch=batch,
        input_shape=(*dims, 3, size.height, size.width),
        output_shape=(*dims, meta.num_classes),
        seconds=seconds,
        options={
            "opset": opset,
            "exporter": exporter,
            "batch": batch,
            "simplifier": "onnxslim",
            "constant_folding": True,
            "batchnorm_folded": True,
            "optimize": optimize,
            "rewrites": applied,
        },
    )


def _torch_export(model: Any, example: Any, path: Path, *, batch: int | str, opset: int, exporter: str) -> None:
    import torch

    dynamic = batch == "dynamic"
    if exporter == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice of the TorchScript exporter
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                do_constant_folding=True,
                training=torch.onnx.TrainingMode.EVAL,
                export_params=True,
                dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}} if dynamic else None,
            )
        return
    dynamic_shapes = ({0: torch.export.Dim(BATCH_DIM, min=1, max=4096)},) if dynamic else None
    program = torch.onnx.export(
        model,
        (example,),
        None,
        dynamo=True,
        opset_version=opset,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=dynamic_shapes,
        external_data=False,
        optimize=True,
        verbose=False,
    )
    assert program is not None  # dynamo=True returns the program (None is the torchscript path's return)
    program.save(str(path), external_data=False)


def simplify(graph: Any) -> Any:
    """Constant folding, BatchNorm folding into Conv and dead-node removal (onnxslim)."""
    import onnxslim

    try:
        return onnxslim.slim(graph)
    except Exception as exc:
        raise ExportError(f"simplifying the ONNX graph failed: {_first_line(exc)}") from exc


def _set_metadata(graph: Any, meta: ModelMeta, source: Mapping[str, Any]) -> None:
    graph.producer_name = "shufflekit"
    graph.producer_version = __version__
    graph.doc_string = f"{meta.model}, {meta.num_classes} classes, input NCHW float32 {list(meta.input_size.nchw())}"
    del graph.metadata_props[:]
    for key, value in metadata_props(meta, source).items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value


def check_onnx(path: str | Path) -> None:
    """onnx.checker with full (strict) shape inference; a broken file is one line."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001 - checker, shape inference and protobuf errors alike
        raise ExportError(
            f"{Path(path).name} fails the ONNX checker: {_first_line(exc)}",
            hint="the file is damaged or was not made by shufflekit; re-export it",
        ) from None


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in graph.metadata_props}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
