"""torch -> ONNX: a self-contained, checked, simplified file whose shuffle and split stay static and 4-D."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shufflekit.errors import UsageError
from shufflekit.export.onnx import check_onnx, export_onnx, parse_batch, read_metadata
from shufflekit.export.source import load_source

SMALL_V2, SMALL_V1, SMALL_SIZE, SMALL_CLASSES = "shufflenet_v2_x0_5", "shufflenet_v1_g3_x0_5", 64, 10  # as conftest.py

SHAPE_INPUTS = {"Reshape": [1], "Slice": [1, 2, 3, 4], "Split": [1], "Expand": [1], "Tile": [1]}


@pytest.fixture(scope="module")
def sources():
    return {
        name: load_source(model=name, num_classes=SMALL_CLASSES, input_size=SMALL_SIZE) for name in (SMALL_V2, SMALL_V1)
    }


def _torch_logits(source, images):
    import torch

    with torch.no_grad():
        return source.model(torch.from_numpy(images)).numpy()


@pytest.mark.parametrize("name", [SMALL_V2, SMALL_V1])
@pytest.mark.parametrize("batch", [1, "dynamic"])
def test_graph_is_static_at_most_4d_and_folded(tmp_path, sources, name, batch):
    import onnx

    path = tmp_path / "m.onnx"
    export_onnx(sources[name].model, sources[name].meta, path, source=sources[name].record, batch=batch)
    model = onnx.load(str(path))
    constants = {i.name for i in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    for node in model.graph.node:
        for index in SHAPE_INPUTS.get(node.op_type, []):
            if index < len(node.input) and node.input[index]:
                assert node.input[index] in constants, f"{node.op_type} {node.name} takes a computed shape"
    ops = {n.op_type for n in model.graph.node}
    assert "BatchNormalization" not in ops and "Shape" not in ops and "Gather" not in ops
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    tensors = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    ranks = {t.name: len(t.type.tensor_type.shape.dim) for t in tensors}
    assert len(ranks) > 50  # shape inference reached the whole graph
    assert max(ranks.values()) <= 4, {k: v for k, v in ranks.items() if v > 4}


def test_file_is_self_contained_named_and_described(tmp_path, sources):
    import onnx

    source = sources[SMALL_V2]
    made = export_onnx(source.model, source.meta, tmp_path / "m.onnx", source=source.record)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no .data side file, no temp left
    model = onnx.load(str(made.path), load_external_data=False)
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in model.graph.initializer)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["logits"]
    meta = read_metadata(made.path)
    assert meta["model"] == SMALL_V2 and meta["layout"] == "NCHW" and meta["input_size"] == f"{SMALL_SIZE}x{SMALL_SIZE}"
    assert json.loads(meta["mean"]) == pytest.approx([0.485, 0.456, 0.406])
    assert json.loads(meta["labels"]) == [str(i) for i in range(SMALL_CLASSES)]
    assert meta["shufflekit_version"] and meta["source"] == "seed" and meta["source_seed"] == "0"
    check_onnx(made.path)  # full check, strict shape inference


def test_dynamic_batch_runs_any_batch_and_matches_torch(tmp_path, sources):
    import onnxruntime as ort

    from shufflekit.export.reference import reference_inputs

    source = sources[SMALL_V1]
    made = export_onnx(source.model, source.meta, tmp_path / "m.onnx", source=source.record, batch="dynamic")
    assert made.input_shape == ("batch", 3, SMALL_SIZE, SMALL_SIZE)
    images = reference_inputs(3, source.meta.preprocessing)
    got = ort.InferenceSession(str(made.path), providers=["CPUExecutionProvider"]).run(None, {"input": images})[0]
    want = _torch_logits(source, images)
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()


def test_fixed_batch_n(tmp_path, sources):
    import onnx

    source = sources[SMALL_V2]
    made = export_onnx(source.model, source.meta, tmp_path / "m.onnx", source=source.record, batch=4)
    dims = onnx.load(str(made.path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [4, 3, SMALL_SIZE, SMALL_SIZE]


@pytest.mark.slow
def test_dynamo_exporter_gives_the_same_model(tmp_path, sources):
    import onnxruntime as ort

    from shufflekit.export.reference import reference_inputs

    source = sources[SMALL_V2]
    made = export_onnx(
        source.model, source.meta, tmp_path / "d.onnx", source=source.record, exporter="dynamo", opset=18
    )
    images = reference_inputs(2, source.meta.preprocessing)
    session = ort.InferenceSession(str(made.path), providers=["CPUExecutionProvider"])
    got = np.concatenate([session.run(None, {"input": images[i : i + 1]})[0] for i in range(2)])
    want = _torch_logits(source, images)
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()
    assert read_metadata(made.path)["model"] == SMALL_V2


def test_dynamo_below_opset_18_is_refused(tmp_path, sources):
    source = sources[SMALL_V2]
    with pytest.raises(UsageError, match="opset 18"):
        export_onnx(source.model, source.meta, tmp_path / "d.onnx", exporter="dynamo", opset=17)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "value, expected", [("1", 1), ("8", 8), ("dynamic", "dynamic"), ("Dynamic", "dynamic"), (2, 2)]
)
def test_parse_batch(value, expected):
    assert parse_batch(value) == expected


@pytest.mark.parametrize("value", ["0", "-1", "many", "", 0])
def test_parse_batch_refuses(value):
    with pytest.raises(UsageError, match="batch"):
        parse_batch(value)


def test_checker_refuses_a_truncated_file(tmp_path, sources):
    from shufflekit.errors import ExportError

    source = sources[SMALL_V2]
    made = export_onnx(source.model, source.meta, tmp_path / "m.onnx")
    data = made.path.read_bytes()
    made.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match="fails the ONNX checker"):
        check_onnx(made.path)
