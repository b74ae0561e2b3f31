"""The GPU-delegate report of each TFLite file (shufflekit.validate.gpu_compat): the TFLite model analyzer
(LiteRT's, or TensorFlow's) on real files, the record filed by sha256, and the line the card and report.html show."""

from __future__ import annotations

import pytest

from shufflekit.artifacts import Manifest
from shufflekit.files import sha256_file
from shufflekit.records import GpuCompatibility
from shufflekit.report.card import gpu_lines, write_card
from shufflekit.report.html import write_html
from shufflekit.report.view import load_view
from shufflekit.validate.gpu_compat import (
    check_file,
    check_release,
    litert_report,
    parse_report,
    tensorflow_report,
)

TFLITE = "shufflenet_v2_x0_5_fp32.tflite"


@pytest.fixture(scope="module")
def five_d_shuffle(tmp_path_factory: pytest.TempPathFactory):
    """A tiny TFLite file with ShuffleNet's classic 5-D channel shuffle (reshape to [n, h, w, g, c/g],
    transpose the last two, reshape back), converted by TensorFlow itself (no onnx2tf run)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 4, 4, 6], tf.float32)])
    def shuffle(x):
        y = tf.reshape(x, [1, 4, 4, 2, 3])
        y = tf.transpose(y, [0, 1, 2, 4, 3])
        return tf.nn.relu(tf.reshape(y, [1, 4, 4, 6]))

    converter = tf.lite.TFLiteConverter.from_concrete_functions([shuffle.get_concrete_function()], shuffle)
    path = tmp_path_factory.mktemp("five-d") / "shuffle5d.tflite"
    path.write_bytes(converter.convert())
    return path


def test_the_release_tflite_file_is_all_4d_and_compatible_and_the_card_says_so(small_release_copy):
    checks = check_release(small_release_copy)
    assert [c.artifact for c in checks] == [TFLITE]  # the ONNX file is not a TFLite file
    manifest = Manifest.load(small_release_copy)
    record = manifest.results(GpuCompatibility)[TFLITE]
    assert record.sha256 == manifest.artifact(TFLITE).sha256
    assert record.compatible and record.analyzer_compatible and not record.findings
    assert record.max_rank == 4 and record.ops > 50 and record.analyzer.startswith("ai_edge_litert ")
    line = f"GPU delegate: all {record.ops} ops (largest tensor 4-D)"
    view = load_view(small_release_copy)
    assert f"`{TFLITE}`: {line}" in write_card(view)
    assert f"<code>{TFLITE}</code>: {line}" in write_html(view)


def test_a_5d_shuffle_is_named_op_by_op(five_d_shuffle):
    record = check_file(five_d_shuffle)
    assert not record.compatible and record.max_rank == 5
    # both reshapes (one makes the 5-D tensor, one reads it) and the transpose; not the 4-D ops around them
    assert sorted(f["op"] for f in record.findings) == ["RESHAPE", "RESHAPE", "TRANSPOSE"]
    assert {f["source"] for f in record.findings} == {"rank"} and record.ops > 3
    whys = {f["why"] for f in record.findings}
    assert whys == {"5-D tensor [1, 4, 4, 2, 3]", "5-D tensor [1, 4, 4, 3, 2]"}
    assert record.summary().startswith(f"GPU delegate: 3 of {record.ops} ops fall back to the CPU (")


def test_litert_and_tensorflow_analyzers_give_the_same_verdict(small_release_copy, five_d_shuffle):
    """LiteRT's analyzer (used, it loads in milliseconds) and TensorFlow's (the fallback) read each file
    alike: the same ops, ranks and findings, on a compatible file and on a 5-D shuffle."""
    for path in (small_release_copy / TFLITE, five_d_shuffle):
        model = path.read_bytes()
        (lite_text, lite_name), (tf_text, tf_name) = litert_report(model), tensorflow_report(model)
        assert lite_name.startswith("ai_edge_litert ") and tf_name.startswith("tensorflow ")
        lite, tf = parse_report(lite_text, analyzer=lite_name), parse_report(tf_text, analyzer=tf_name)
        verdict = lambda r: (r.ops, r.max_rank, r.findings, r.compatible)  # noqa: E731
        assert verdict(lite) == verdict(tf)
    assert not lite.compatible  # the 5-D shuffle, last: the comparison covered findings, not only empty lists


def test_the_analyzers_own_warnings_are_kept_on_their_op():
    # the format of the analyzer's per-op checker (tensorflow/lite/python/analyzer_wrapper/model_analyzer.cc),
    # which TensorFlow 2.21's build does not print: a warning line after the op it refuses
    text = """Subgraph#0 main(T#0) -> [T#2]
  Op#0 CONV_2D(T#0, T#3[1, 2], T#4) -> [T#1]
  Op#1 FlexCosh(T#1) -> [T#2]
GPU COMPATIBILITY WARNING: Not supported custom op FlexCosh

GPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate compatibility issues at nodes 1 with TFLite runtime version 2.9.0

Tensors of Subgraph#0
  T#0(x) shape:[1, 8, 8, 3], type:FLOAT32
  T#1(conv) shape:[1, 8, 8, 4], type:FLOAT32
  T#2(Identity) shape:[1, 8, 8, 4], type:FLOAT32
"""
    record = parse_report(text, analyzer="tensorflow 2.9.0")
    assert not record.analyzer_compatible and not record.compatible and record.ops == 2
    assert [(f["op"], f["index"], f["source"]) for f in record.findings] == [
        ("FlexCosh", 1, "analyzer"),
        ("FlexCosh", 1, "custom"),
    ]
    assert record.summary().startswith("GPU delegate: 1 of 2 ops fall back to the CPU (FlexCosh Not supported")


def test_a_file_changed_after_its_check_is_not_vouched_for(small_release_copy):
    check_release(small_release_copy)
    path = small_release_copy / TFLITE
    path.write_bytes(path.read_bytes() + b"\0")
    assert gpu_lines(load_view(small_release_copy)) == [
        (TFLITE, "not vouched for: the file was changed after it was made and measured (sha256 mismatch)")
    ]
    manifest = Manifest.load(small_release_copy)  # a careless script re-records the hash: the check is stale
    manifest.add(manifest.artifact(TFLITE).with_(sha256=sha256_file(path), size_bytes=path.stat().st_size))
    manifest.save()
    assert gpu_lines(load_view(small_release_copy)) == [
        (TFLITE, "GPU delegate: not checked (run `shufflekit validate` on the folder)")
    ]
