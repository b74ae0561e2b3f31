"""The exact graph rewrites (export.rewrites): each keeps the outputs of v1 and v2 (torchvision and Megvii
layouts) equal to the plain graph's in ONNX Runtime and, through one onnx2tf conversion of v1, v2 and
Megvii v2 side by side in one graph, in TFLite; each changes the graph where it should; --no-optimize
keeps the plain graph."""

from __future__ import annotations

import copy
import json
from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from shufflekit.artifacts import Manifest
from shufflekit.cli import main
from shufflekit.export import ExportOptions, export_model
from shufflekit.export.onnx import REWRITES_KEY, check_onnx, read_metadata, simplify
from shufflekit.export.rewrites import ONNX_REWRITES, REWRITES, TFLITE_REWRITES, rewrite
from shufflekit.formats import FP32
from shufflekit.models.shufflenet_v1 import shufflenet_v1
from shufflekit.models.shufflenet_v2 import ShuffleNetV2, shufflenet_v2
from shufflekit.models.shufflenet_v2_megvii import MegviiShuffleNetV2

SIZE = 64
CLASSES = 10
MAX_REL = FP32.tolerance.max_rel
assert MAX_REL is not None
# Which rewrite changes which model. v2 "unaligned": 36-channel stages, so its branches are 18 wide (not a
# multiple of 4, as 1.0x's 58). v1's shuffles are read by grouped convolutions: no rewrite applies there.
BUILDERS = {
    "v2_x0_5": lambda: shufflenet_v2(width=0.5, num_classes=CLASSES),
    "v2_unaligned": lambda: ShuffleNetV2((24, 36, 72, 144, 256), num_classes=CLASSES, stage_repeats=(2, 2, 2)),
    "v2_megvii_x0_5": lambda: MegviiShuffleNetV2(0.5, num_classes=CLASSES),
    "v1_g3_x0_5": lambda: shufflenet_v1(groups=3, width=0.5, num_classes=CLASSES),
}
# The 24-channel stem of every v2 is padded to 32 for NCHWc pooling; v1's stem pool also feeds an AvgPool.
# strip-zero-channels finds nothing to strip in a plain graph (see its own test).
APPLIES = {
    ("v2_x0_5", "fold-shuffle-into-conv"),
    ("v2_x0_5", "pad-pooled-channels-for-nchwc"),
    ("v2_x0_5", "concat-shuffle-as-interleave"),
    ("v2_unaligned", "fold-shuffle-into-conv"),
    ("v2_unaligned", "pad-channels-for-nchwc"),
    ("v2_unaligned", "pad-pooled-channels-for-nchwc"),
    ("v2_unaligned", "concat-shuffle-as-interleave"),
    ("v2_megvii_x0_5", "pad-pooled-channels-for-nchwc"),
    ("v2_megvii_x0_5", "strided-split-as-inner-split"),
}


def _seeded(name: str, seed: int) -> torch.nn.Module:
    """The model with BatchNorm far from identity (so folded biases are not zero)."""
    torch.manual_seed(seed)
    net = BUILDERS[name]()
    generator = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.weight.data = torch.empty(n).uniform_(0.5, 1.5, generator=generator)
            module.bias.data = torch.empty(n).normal_(0.0, 0.25, generator=generator)
            module.running_mean = torch.empty(n).normal_(0.0, 0.2, generator=generator)
            module.running_var = torch.empty(n).uniform_(0.5, 2.0, generator=generator)
    return net.eval()


def _plain(net: torch.nn.Module, path) -> onnx.ModelProto:
    """What a plain export gives (torch.onnx.export, then the export's onnxslim simplification)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(1, 3, SIZE, SIZE),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
        )
    return simplify(onnx.load(str(path)))


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _close(got: np.ndarray, want: np.ndarray) -> None:
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    assert rel <= MAX_REL, f"max relative difference {rel:.2e} > {MAX_REL:.0e}"


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """name -> (plain ONNX model, input, PyTorch logits)."""
    folder = tmp_path_factory.mktemp("rewrites")
    found = {}
    for index, name in enumerate(BUILDERS):
        net = _seeded(name, seed=index + 1)
        x = np.random.default_rng(index).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
        with torch.no_grad():
            logits = net(torch.from_numpy(x)).numpy()
        found[name] = (_plain(net, folder / f"{name}.onnx"), x, logits)
    return found


def _ops(model: onnx.ModelProto) -> Counter:
    return Counter(node.op_type for node in model.graph.node)


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("step", sorted(REWRITES))
def test_each_rewrite_keeps_the_outputs_and_changes_the_graph_where_it_applies(plain, tmp_path, name, step):
    model, x, logits = plain[name]
    rewritten = copy.deepcopy(model)
    applied = rewrite(rewritten, [step])
    assert applied == ([step] if (name, step) in APPLIES else [])
    path = tmp_path / "rewritten.onnx"
    onnx.save(rewritten, str(path))
    check_onnx(path)  # full shape inference: the rewritten graph is well-formed
    _close(_run(rewritten, x), _run(model, x))
    _close(_run(rewritten, x), logits)
    before, after = _ops(model), _ops(rewritten)
    if not applied:
        assert after == before
    elif step == "fold-shuffle-into-conv":  # the shuffle before each stride-2 unit and conv5: 3 in v2
        assert before["Transpose"] - after["Transpose"] == 3 and after["Conv"] == before["Conv"]
    elif step == "pad-channels-for-nchwc":
        groups = [a.i for n in rewritten.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group"]
        assert 32 in groups and all(g % 4 == 0 for g in groups if g > 1)  # the 18-wide branches: 32 channels
    elif step == "pad-pooled-channels-for-nchwc":
        inits = {i.name: i for i in rewritten.graph.initializer}
        stem = next(n for n in rewritten.graph.node if n.op_type == "Conv")
        assert inits[stem.input[1]].dims[0] == 32  # 24 + 8 zero channels
    elif step == "concat-shuffle-as-interleave":  # every shuffle (one per unit) becomes one Concat
        assert before["Transpose"] > 0 and after["Transpose"] == 0 and after["Concat"] == before["Concat"]
    else:  # strided-split-as-inner-split: no step-2 slice left
        inits = {i.name: onnx.numpy_helper.to_array(i) for i in rewritten.graph.initializer}
        steps = [inits[n.input[4]] for n in rewritten.graph.node if n.op_type == "Slice" and len(n.input) > 4]
        assert all((s == 1).all() for s in steps) and after["Slice"] == before["Slice"]
        pairs = before["Slice"] // 2
        assert after["Transpose"] == before["Transpose"] and after["Reshape"] == before["Reshape"] + 3 * pairs


def test_the_onnx_rewrites_together_keep_the_outputs(plain):
    for name, (model, x, logits) in plain.items():
        rewritten = copy.deepcopy(model)
        applied = rewrite(rewritten, ONNX_REWRITES)
        assert applied == [s for s in ONNX_REWRITES if (name, s) in APPLIES]
        _close(_run(rewritten, x), logits)


def test_strip_zero_channels_undoes_the_padding(plain):
    for name, (model, x, logits) in plain.items():
        padded, unpadded = copy.deepcopy(model), copy.deepcopy(model)
        rewrite(padded, ONNX_REWRITES)
        rewrite(unpadded, [s for s in ONNX_REWRITES if not s.startswith("pad-")])
        stripped = rewrite(padded, ["strip-zero-channels"])
        assert stripped == (["strip-zero-channels"] if name != "v1_g3_x0_5" else [])
        _close(_run(padded, x), logits)

        def shapes(m: onnx.ModelProto) -> list[list[int]]:
            inits = {i.name: list(i.dims) for i in m.graph.initializer}
            return [inits[n.input[1]] for n in m.graph.node if n.op_type == "Conv"]

        assert shapes(padded) == shapes(unpadded)


def _merged(models: dict[str, onnx.ModelProto]) -> onnx.ModelProto:
    """Every model side by side in one graph (names prefixed), so one onnx2tf conversion covers them all."""
    parts = [onnx.compose.add_prefix(m, prefix=f"{name}_") for name, m in models.items()]
    graph = onnx.helper.make_graph(
        [n for p in parts for n in p.graph.node],
        "merged",
        [i for p in parts for i in p.graph.input],
        [o for p in parts for o in p.graph.output],
        [i for p in parts for i in p.graph.initializer],
    )
    merged = onnx.helper.make_model(graph, opset_imports=list(parts[0].opset_import))
    merged.ir_version = parts[0].ir_version
    return merged


def test_tflite_rewrites_keep_the_outputs_in_one_conversion(plain, tmp_path):
    """The file the export makes (ONNX Runtime's rewrites), converted with TFLite's rewrites on top."""
    from ai_edge_litert.interpreter import Interpreter

    from shufflekit.export.tflite import TFLiteTarget, convert_to_tflite

    converted = {k: v for k, v in plain.items() if k != "v2_x0_5"}  # v2_unaligned has every v2 rewrite
    models = {}
    for name, (model, _, _) in converted.items():
        models[name] = copy.deepcopy(model)
        rewrite(models[name], ONNX_REWRITES)
    merged = _merged(models)
    entry = merged.metadata_props.add()
    entry.key, entry.value = REWRITES_KEY, json.dumps(list(ONNX_REWRITES))
    source = tmp_path / "merged.onnx"
    onnx.save(merged, str(source))
    conversion = convert_to_tflite(source, [TFLiteTarget("fp32", tmp_path / "merged.tflite")])
    # the padding is stripped again for TFLite (XNNPACK gains nothing from it)
    assert conversion.results[0].options["rewrites"] == ["concat-shuffle-as-interleave", "strided-split-as-inner-split"]
    interpreter = Interpreter(model_path=str(tmp_path / "merged.tflite"))
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():  # named after the ONNX inputs
        x = converted[detail["name"].removesuffix("_input")][1]
        interpreter.set_tensor(detail["index"], x.transpose(0, 2, 3, 1))
    interpreter.invoke()
    outputs = interpreter.get_output_details()  # Identity, Identity_1, ...: in the ONNX outputs' order
    assert len(outputs) == len(converted)
    for detail, (_, _, logits) in zip(outputs, converted.values()):
        _close(interpreter.get_tensor(detail["index"]), logits)


def test_no_optimize_keeps_the_plain_graph(tmp_path):
    common = ["export", "--model", "shufflenet_v2_x0_5", "--num-classes", "10", "--input-size", "64"]
    for flag, out in (("--no-optimize", "plain"), ("--optimize", "ours")):
        result = CliRunner().invoke(main, [*common, "--formats", "onnx", flag, "--out", str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    graphs = {}
    for out in ("plain", "ours"):
        (artifact,) = Manifest.load(tmp_path / out).artifacts
        graphs[out] = (artifact.options["rewrites"], _ops(onnx.load(str(tmp_path / out / artifact.name))))
        assert json.loads(read_metadata(tmp_path / out / artifact.name)[REWRITES_KEY]) == artifact.options["rewrites"]
    assert graphs["plain"][0] == [] and graphs["plain"][1]["Transpose"] == 16  # every shuffle kept
    flags = [Manifest.load(tmp_path / out).artifacts[0].options["optimize"] for out in ("plain", "ours")]
    assert flags == [False, True]
    assert graphs["ours"][0] == [s for s in ONNX_REWRITES if s != "pad-channels-for-nchwc"]  # 0.5x: aligned
    assert graphs["ours"][1]["Transpose"] == 0


def test_the_release_records_the_rewrites_and_options_enter_the_fingerprint(small_release):
    manifest = Manifest.load(small_release)
    by_format = {a.format: a.options["rewrites"] for a in manifest.artifacts if a.precision == "fp32"}
    assert by_format == {
        "onnx": ["pad-pooled-channels-for-nchwc", "concat-shuffle-as-interleave"],
        "tflite": ["concat-shuffle-as-interleave"],
    }
    assert ExportOptions(optimize=False).checked().optimize is False
    from shufflekit.release.state import options_inputs

    assert options_inputs(ExportOptions())["optimize"] is True


def test_unknown_rewrite_is_refused():
    from shufflekit.errors import UsageError

    with pytest.raises(UsageError, match="unknown graph rewrite"):
        rewrite(onnx.ModelProto(), ["no-such-rewrite"])


def test_tflite_list_names_known_rewrites():
    assert set(TFLITE_REWRITES) <= set(REWRITES) and set(ONNX_REWRITES) <= set(REWRITES)
    assert export_model is not None
