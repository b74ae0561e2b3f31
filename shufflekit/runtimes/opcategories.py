"""Operator categories for the runtime breakdown (ShuffleNet v2 paper, Figure 2): which share of the time
goes to convolutions, and which to the "cheap" operators FLOPs do not count (element-wise, shuffle,
concat/split, pooling) on this machine.

Maps ONNX Runtime op types (including its fused and layout-transformed kernels) and TFLite builtin op
names. A convolution is depthwise when its weight has one input channel per group and its input has
more than one channel; the profilers' shapes tell it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CONV = "conv"
DEPTHWISE = "depthwise conv"
ELEMENTWISE = "element-wise"
SHUFFLE = "transpose/reshape/shuffle"
CONCAT_SPLIT = "concat/split"
POOLING = "pooling"
FC = "fully connected"
LAYOUT = "layout conversion"  # reorders the runtime inserts itself (ORT's NCHWc kernels)
QUANT = "quantize/dequantize"
PAD = "padding"
OTHER = "other"

CATEGORIES = (CONV, DEPTHWISE, ELEMENTWISE, SHUFFLE, CONCAT_SPLIT, POOLING, FC, PAD, LAYOUT, QUANT, OTHER)

_CONVS = {
    "Conv",
    "FusedConv",
    "NhwcConv",
    "NhwcFusedConv",
    "QLinearConv",
    "ConvInteger",
    "ConvTranspose",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "TRANSPOSE_CONV",
}

_BY_NAME: dict[str, str] = {}


def _add(category: str, names: str) -> None:
    for name in names.split():
        _BY_NAME[name] = category


# ONNX Runtime (onnx domain, com.microsoft contrib and fused kernels)
_add(
    ELEMENTWISE,
    "Add Sub Mul Div Relu LeakyRelu Clip Sigmoid HardSigmoid HardSwish Tanh Sum Max Min Neg Abs "
    "BatchNormalization Erf Gelu FastGelu BiasGelu Sqrt Pow Exp Where Not Equal QLinearAdd QLinearMul "
    "QLinearSigmoid QLinearLeakyRelu Softmax LogSoftmax",
)
_add(SHUFFLE, "Transpose Reshape Flatten Squeeze Unsqueeze Identity Expand Gather Tile DepthToSpace SpaceToDepth")
_add(CONCAT_SPLIT, "Concat Split Slice QLinearConcat")
_add(
    POOLING,
    "MaxPool AveragePool GlobalAveragePool GlobalMaxPool ReduceMean ReduceMax QLinearAveragePool "
    "QLinearGlobalAveragePool",
)
_add(
    FC, "Gemm MatMul FusedGemm FusedMatMul QGemm MatMulInteger QLinearMatMul MatMulIntegerToFloat DynamicQuantizeMatMul"
)
_add(PAD, "Pad")
_add(LAYOUT, "ReorderInput ReorderOutput")
_add(QUANT, "QuantizeLinear DequantizeLinear DynamicQuantizeLinear Cast")
# TFLite builtins
_add(
    ELEMENTWISE,
    "ADD SUB MUL DIV RELU RELU6 RELU_N1_TO_1 RELU_0_TO_1 LEAKY_RELU HARD_SWISH LOGISTIC TANH MAXIMUM "
    "MINIMUM ABS NEG SQRT RSQRT EXP POW SQUARED_DIFFERENCE SOFTMAX LOG_SOFTMAX PRELU ADD_N",
)
_add(SHUFFLE, "TRANSPOSE RESHAPE SQUEEZE EXPAND_DIMS GATHER GATHER_ND TILE DEPTH_TO_SPACE SPACE_TO_DEPTH BROADCAST_TO")
_add(CONCAT_SPLIT, "CONCATENATION SPLIT SPLIT_V STRIDED_SLICE SLICE PACK UNPACK")
_add(POOLING, "AVERAGE_POOL_2D MAX_POOL_2D MEAN SUM REDUCE_MAX L2_POOL_2D")
_add(FC, "FULLY_CONNECTED BATCH_MATMUL")
_add(PAD, "PAD PADV2 MIRROR_PAD")
_add(QUANT, "QUANTIZE DEQUANTIZE CAST")


def _weight_shape(shapes: Sequence[Sequence[int]]) -> Sequence[int] | None:
    """The first 4-D operand after the data input: the convolution's weight (QLinearConv puts scales and
    zero points between them)."""
    for shape in shapes[1:]:
        if len(shape) == 4:
            return shape
    return None


def is_depthwise(op_type: str, input_shapes: Sequence[Sequence[int]] | None) -> bool:
    if op_type == "DEPTHWISE_CONV_2D":
        return True
    if op_type not in _CONVS or op_type == "CONV_2D" or not input_shapes:
        return False
    weight = _weight_shape(input_shapes)
    data = input_shapes[0]
    if weight is None or len(data) != 4:
        return False
    # ONNX weights are [C_out, C_in / group, kh, kw]; one input channel per group means depthwise
    # (the NCHWc layout pads channels, so compare with the weight rather than the data's channels).
    return weight[1] == 1 and weight[0] > 1 and data[1] > 1


def categorize(op_type: str, input_shapes: Sequence[Sequence[int]] | None = None) -> str:
    if op_type in _CONVS:
        return DEPTHWISE if is_depthwise(op_type, input_shapes) else CONV
    return _BY_NAME.get(op_type, OTHER)


def breakdown(nodes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-category and per-op-type totals (ms per batch) and shares of the profiled total."""
    by_category: dict[str, float] = {}
    by_type: dict[str, dict[str, Any]] = {}
    for node in nodes:
        category = node.get("category") or categorize(node["op_type"], node.get("input_shapes"))
        by_category[category] = by_category.get(category, 0.0) + float(node["mean_ms"])
        entry = by_type.setdefault(
            node["op_type"], {"op_type": node["op_type"], "ms": 0.0, "count": 0, "category": category}
        )
        entry["ms"] += float(node["mean_ms"])
        entry["count"] += 1
    total = sum(by_category.values())
    categories = [
        {"category": c, "ms": by_category[c], "share": by_category[c] / total if total else 0.0}
        for c in CATEGORIES
        if c in by_category
    ]
    types = sorted(by_type.values(), key=lambda e: -e["ms"])
    for entry in types:
        entry["share"] = entry["ms"] / total if total else 0.0
    return {"total_ms": total, "categories": categories, "op_types": types}


# One colour per category, the same in every plot (profile --plot and report.html).
COLORS = {
    CONV: "#1f77b4",
    DEPTHWISE: "#aec7e8",
    ELEMENTWISE: "#ff7f0e",
    SHUFFLE: "#d62728",
    CONCAT_SPLIT: "#9467bd",
    POOLING: "#2ca02c",
    FC: "#8c564b",
    PAD: "#e377c2",
    LAYOUT: "#7f7f7f",
    QUANT: "#bcbd22",
    OTHER: "#17becf",
}
