"""The guideline benchmarks' folder: each network exported to ONNX (and converted to TFLite) as an
artifact of a folder with a manifest.json like a release's, so `shufflekit profile FOLDER --device ...`
measures it too and `shufflekit report FOLDER` shows its tables.

Each artifact's options carry the network it is (``guideline``: a ``BenchNet``) and its multiply-adds
and memory access (``complexity``). A network whose files are already in the folder, made from the same
description with the same opset by the same shufflekit, and unchanged (sha256), is not made again.
Files are staged inside the folder and committed with the manifest (``ReleaseFolder.commit``), one
network at a time, so an interrupted build keeps the networks it finished.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..artifacts import MANIFEST_NAME, Artifact, Manifest, TensorSpec, tool_versions
from ..errors import ManifestError, UsageError
from ..files import atomic_path, sha256_file
from ..folder import ReleaseFolder
from ..formats import get_format
from ..metadata import ModelMeta
from .networks import BenchNet, NetComplexity, complexity

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, "int | None"], None]
FORMATS = ("onnx", "tflite")
SOURCE_KIND = "guidelines"
FOLDER_MODEL = "guidelines"
INPUT_NAME = "input"
OUTPUT_NAME = "output"
OPSET = 17
SEED = 0
# The folder's and each artifact's model metadata: these networks take a feature map, not an image, and
# give one; the preprocessing fields are the schema's defaults and unused (an artifact's tensor specs
# say what it takes).
_NOTE = "a guideline micro-benchmark network (seed 000, section 2): a feature map in, a feature map out"


def folder_meta(model: str = FOLDER_MODEL) -> ModelMeta:
    return ModelMeta(model=model, num_classes=1, training={"note": _NOTE})


@dataclass(frozen=True)
class BuiltNet:
    net: BenchNet
    complexity: NetComplexity
    artifacts: tuple[Artifact, ...]
    reused: bool  # already in the folder: nothing was exported


def artifact_name(net: BenchNet, fmt: str) -> str:
    return get_format(fmt).filename(f"{net.name}_fp32")


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise UsageError(
            f"unknown format {', '.join(bad) or '(none)'} for the guideline benchmarks",
            hint="use --formats onnx, tflite or onnx,tflite",
        )
    return chosen


def build_folder(
    out: str | Path, nets: Sequence[BenchNet], *, formats: Sequence[str] = FORMATS, progress: ProgressFn | None = None
) -> list[BuiltNet]:
    """Make (or reuse) every network's files in ``out`` and return them in ``nets``' order. TFLite
    conversions go to the converter process (``export.tflite_worker``), which keeps TensorFlow loaded."""
    from ..export.tflite_worker import conversions_in_worker, warm_up

    formats = check_formats(formats)
    progress = progress or (lambda task, done, total: None)
    out = Path(out)
    if not str(out).strip():
        raise UsageError("the output folder is an empty path (an unset shell variable?)", hint="pass --out DIR")
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is a file", hint="pass a folder path (it is created if missing)")
    folder = ReleaseFolder(out)
    _check_guidelines_folder(out)
    folder.check_replaceable([artifact_name(n, f) for n in nets for f in formats], hint="choose another --out")
    folder.clean_leftovers()
    built: list[BuiltNet] = []
    with conversions_in_worker():
        if "tflite" in formats and any(_reusable(out, n, formats) is None for n in nets):
            warm_up()  # TensorFlow loads in the converter process while the first ONNX files are exported
        for index, net in enumerate(nets):
            progress("build the guideline networks", index, len(nets))
            counted = complexity(net)
            reused = _reusable(out, net, formats)
            if reused is not None:
                built.append(BuiltNet(net, counted, reused, True))
                continue
            built.append(BuiltNet(net, counted, _build_one(folder, net, counted, formats), False))
    progress("build the guideline networks", len(nets), len(nets))
    return built


def _check_guidelines_folder(out: Path) -> None:
    if not (out / MANIFEST_NAME).exists():
        return
    try:
        manifest = Manifest.load(out)
    except ManifestError as exc:
        raise ManifestError(
            f"{out} holds a {MANIFEST_NAME} shufflekit cannot read ({exc.message})",
            hint="remove it or choose another --out; nothing was changed",
        ) from None
    if manifest.source.get("kind") != SOURCE_KIND:
        raise UsageError(
            f"{out} is a release of {manifest.meta.model}, not a folder of guideline benchmarks",
            hint="choose another --out (the guideline networks get a folder of their own)",
        )


def build_options(net: BenchNet, counted: NetComplexity) -> dict[str, Any]:
    """What an artifact of ``net`` records (and what a rerun compares to reuse it)."""
    return {
        "guideline": net.to_dict(),
        "complexity": {
            "mult_adds": counted.mult_adds,
            "memory_access": counted.memory_access,
            "params": counted.params,
        },
        "opset": OPSET,
        "seed": SEED,
        "made_by": __version__,
    }


def _reusable(out: Path, net: BenchNet, formats: Sequence[str]) -> tuple[Artifact, ...] | None:
    """The folder's artifacts of ``net`` in every format, when all are there as recorded and were made
    from the same description; None otherwise."""
    if not (out / MANIFEST_NAME).exists():
        return None
    manifest = Manifest.load(out)
    by_name = {a.name: a for a in manifest.artifacts}
    found = []
    for fmt in formats:
        art = by_name.get(artifact_name(net, fmt))
        if art is None or art.options.get("guideline") != net.to_dict() or art.options.get("made_by") != __version__:
            return None
        if art.options.get("opset") != OPSET:
            return None
        path = out / art.name
        if not path.is_file() or path.stat().st_size != art.size_bytes or sha256_file(path) != art.sha256:
            return None
        found.append(art)
    return tuple(found)


def _build_one(
    folder: ReleaseFolder, net: BenchNet, counted: NetComplexity, formats: Sequence[str]
) -> tuple[Artifact, ...]:
    options = build_options(net, counted)
    meta = folder_meta(net.name)
    with folder.staging("guidelines") as staging:
        onnx_path = staging / artifact_name(net, "onnx")
        _export_onnx(net, onnx_path)
        onnx_art = Artifact.from_file(
            onnx_path,
            format="onnx",
            precision="fp32",
            meta=meta,
            inputs=(TensorSpec(INPUT_NAME, net.input_shape(), "float32", "NCHW"),),
            outputs=(TensorSpec(OUTPUT_NAME, _output_shape(net), "float32"),),
            tools=tool_versions("torch", "onnx", "onnxslim"),
            options={**options, "exporter": "torchscript", "simplifier": "onnxslim", "rewrites": []},
        )
        made = [onnx_art]
        if "tflite" in formats:
            made.append(_convert_tflite(net, onnx_art, staging, meta, options))
        keep = [a for a in made if a.format in formats]

        def manifest() -> Manifest:
            current = Manifest.load(folder.path) if (folder.path / MANIFEST_NAME).exists() else None
            if current is None:
                current = Manifest.new(folder.path, folder_meta(), source={"kind": SOURCE_KIND, "note": _NOTE})
            for art in keep:
                current.add(art)
            return current

        folder.commit(staging, [a.name for a in keep], manifest)
    log.info("built %s: %s", net.name, ", ".join(a.name for a in keep))
    return tuple(keep)


def _output_shape(net: BenchNet) -> tuple[int, int, int, int]:
    return net.input_shape()  # every block gives back its input's shape


def _seeded_module(net: BenchNet) -> Any:
    """The network with He-normal weights (fixed seed), so activations stay near unit scale over the 10
    blocks: no run is slowed by denormal numbers or sped up by zeros."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        module = net.build()
        for sub in module.modules():
            if isinstance(sub, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(sub.weight, nonlinearity="relu" if net.relu else "linear")
    return module.eval()


def _export_onnx(net: BenchNet, path: Path) -> None:
    """torch -> ONNX (TorchScript exporter, as ``export.onnx``), simplified by onnxslim and checked."""
    import onnx
    import torch

    from ..export.onnx import check_onnx, simplify

    module = _seeded_module(net)
    example = torch.zeros(net.input_shape())
    with atomic_path(path, suffix=".onnx") as raw:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                module,
                (example,),
                str(raw),
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                do_constant_folding=True,
                export_params=True,
            )
        graph = simplify(onnx.load(str(raw)))
        graph.producer_name, graph.producer_version = "shufflekit", __version__
        graph.doc_string = f"{net.guideline} {net.row} x{net.scale}: {_NOTE}"
        del graph.metadata_props[:]
        for key, value in (
            ("model", net.name),
            ("guideline", json.dumps(net.to_dict())),
            ("shufflekit_version", __version__),
        ):
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save_model(graph, str(raw), save_as_external_data=False)
        check_onnx(raw)


def _convert_tflite(
    net: BenchNet, onnx_art: Artifact, staging: Path, meta: ModelMeta, options: dict[str, Any]
) -> Artifact:
    from ..export.conversion import ConversionRequest
    from ..export.converters import get_converter

    path = staging / artifact_name(net, "tflite")
    made = get_converter("tflite")(
        ConversionRequest(
            onnx=staging / onnx_art.name,
            onnx_inputs=onnx_art.inputs,
            onnx_outputs=onnx_art.outputs,
            out=path,
            layout="NHWC",
            batch=1,
            progress=lambda task, done, total: None,
            optimize=False,  # the paper's structure as it is: no graph rewrite
        )
    )
    return Artifact.from_file(
        path,
        format="tflite",
        precision="fp32",
        meta=meta,
        inputs=made.inputs,
        outputs=made.outputs,
        parent_sha256=onnx_art.sha256,
        tools=tool_versions(*made.tools),
        options={**options, **dict(made.options)},
    )
