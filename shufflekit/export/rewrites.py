"""Exact graph rewrites that make an exported file faster than a plain export, chosen per format.

Each rewrite is a named step on the ONNX graph that computes the same function: a channel permutation
folded into the weights of the convolutions that read it, zero channels added where the runtime's fast
kernels want aligned widths (a zero weight times a finite activation adds an exact zero), or the same
data movement written in the form the target runtime runs fastest. Nothing is approximated; the
outputs differ from the plain graph's only by the float rounding of a changed summation order, far
inside the fp32 parity tolerance (tests/export/test_rewrites.py checks each rewrite on v1 and v2).
TFLite files are converted from the exported ONNX file: ``TFLITE_REWRITES`` run on the copy onnx2tf is
given, and the file records the rewrites it carries (``combined``: the ONNX file's, less those undone).

Why per format (measured on the 2-core CI machine, see benchmarks/optimize.py and the README):

- ONNX Runtime (CPU) runs convolutions in its blocked NCHWc layout only when their channel counts are
  multiples of 4; ShuffleNet v2 1.0x's 58-channel stage-2 branch falls back to plain NCHW kernels, its
  depthwise convolutions about 3x slower. ``pad-channels-for-nchwc`` widens those branches to 64 with
  zero channels (the branch's input slice is widened to the next multiple of 4 with zero weights);
  ``pad-pooled-channels-for-nchwc`` pads the 24-channel stem to a whole 16-channel block so the MaxPool
  runs in NCHWc too (no reorder to NCHW and back around it); ``concat-shuffle-as-interleave`` writes
  concat + shuffle as one Concat on an inner axis (one copy instead of two).
- TFLite gains nothing from aligned widths (XNNPACK pads inside its kernels; the padded file was 2-4%
  slower): ``strip-zero-channels`` removes the zero channels again before onnx2tf.
- TFLite (XNNPACK) cannot run a strided channel slice (Megvii's even/odd split, ``x[:, 0::2]``): it falls
  back to the reference kernel and splits the delegated graph, 1.8-2.9x slower than the same network's
  torchvision form. ``strided-split-as-inner-split`` views the map as ``[N, C/2, 2, HW]`` and takes the
  two slices on that inner axis (contiguous runs of HW values), which onnx2tf and XNNPACK run at memory
  speed (5% faster than a reshape -> transpose -> reshape and two halves, measured). ONNX Runtime runs
  the strided slices well, so its file keeps them.
- TFLite, torchvision layout: what is left of the shuffle (onnx2tf keeps the kept half in NCHW: two
  half-map transposes, a concat and two contiguous slices per unit) is close to its floor: the same file
  with every shuffle deleted (not exact; ``benchmarks/optimize.py --bound``) is only 3-5% faster, and the
  exact forms tried instead (one Split, the interleave per half, a Concat on the height axis) were not
  faster (README).
- Both: ``fold-shuffle-into-conv`` removes a channel shuffle (reshape -> transpose -> reshape) whose
  readers are all convolutions (before each stride-2 unit and conv5 of v2): it is a constant
  permutation, folded into their weights (through a depthwise convolution into the next pointwise one).

``--no-optimize`` applies none of them: the plain graph, recorded as ``rewrites: []``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError, UsageError

NCHWC_ALIGNMENT = 4  # ONNX Runtime's NchwcTransformer takes a convolution only when its channels are a multiple
NCHWC_BLOCK = 16  # the widest NCHWc block (AVX-512); ONNX Runtime pads to its block anyway, so padding costs nothing


@dataclass(frozen=True)
class Rewrite:
    name: str
    summary: str
    run: Callable[[_Graph], int]  # returns how many places it changed


class _Graph:
    """The ONNX graph with the look-ups the rewrites need (producers, consumers, constants, shapes)."""

    def __init__(self, model: Any) -> None:
        import onnx

        self.model = model
        self.graph = model.graph
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        self.shapes: dict[str, list[int | None]] = {}
        for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
            dims = info.type.tensor_type.shape.dim
            self.shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        self.inits = {init.name: init for init in self.graph.initializer}
        self.outputs = {o.name for o in self.graph.output}
        self._taken = {name for n in self.graph.node for name in [*n.input, *n.output, n.name]}
        self._taken |= set(self.inits) | {i.name for i in self.graph.input} | self.outputs

    # -- look-ups --------------------------------------------------------------------------------
    def producer(self, name: str) -> Any | None:
        return next((n for n in self.graph.node if name in n.output), None)

    def consumers(self, name: str) -> list[Any]:
        return [n for n in self.graph.node if name in n.input]

    def only_consumer(self, name: str) -> Any | None:
        found = self.consumers(name)
        return found[0] if len(found) == 1 and name not in self.outputs else None

    def const(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producer(name)
        if node is not None and node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    def channels(self, name: str) -> int | None:
        shape = self.shapes.get(name)
        return shape[1] if shape and len(shape) == 4 else None

    # -- edits -----------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        """A name no tensor, node or initializer of the graph has (``base`` followed by a number)."""
        number = 1
        while f"{base}{number}" in self._taken or any(n.startswith(f"{base}{number}_") for n in self._taken):
            number += 1
        name = f"{base}{number}"
        self._taken.add(name)
        return name

    def set_input_const(self, node: Any, index: int, value: np.ndarray) -> None:
        """Give ``node`` a new constant as input ``index`` (a new initializer: others may share the old)."""
        from onnx import numpy_helper

        name = self.fresh(f"{node.input[index] or node.name}_rw")
        self.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        self.inits[name] = self.graph.initializer[-1]
        node.input[index] = name
        self.shapes.pop(node.output[0], None)

    def remove(self, nodes: Sequence[Any]) -> None:
        for node in nodes:
            self.graph.node.remove(node)

    def finish(self) -> None:
        """Drop what the edits left unused, and the stale shapes (the checker infers them again)."""
        used = {name for n in self.graph.node for name in n.input}
        keep = [i for i in self.graph.initializer if i.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(keep)
        del self.graph.value_info[:]


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    found = next((a for a in node.attribute if a.name == name), None)
    return helper.get_attribute_value(found) if found is not None else default


def _set_attr(node: Any, name: str, value: Any) -> None:
    from onnx import helper

    for attribute in list(node.attribute):
        if attribute.name == name:
            node.attribute.remove(attribute)
    node.attribute.append(helper.make_attribute(name, value))


def _conv_weights(g: _Graph, node: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
    if node.op_type != "Conv" or len(node.input) < 2:
        return None
    weight = g.const(node.input[1])
    bias = g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if weight is None or weight.ndim != 4 or (len(node.input) > 2 and node.input[2] and bias is None):
        return None
    return weight, bias


def _is_dense(g: _Graph, node: Any) -> bool:
    return _conv_weights(g, node) is not None and _attr(node, "group", 1) == 1


def _is_depthwise(g: _Graph, node: Any, channels: int) -> bool:
    found = _conv_weights(g, node)
    return found is not None and _attr(node, "group", 1) == channels and found[0].shape[:2] == (channels, 1)


# -- fold-shuffle-into-conv ----------------------------------------------------------------------
def _shuffle_at(g: _Graph, first: Any) -> tuple[list[Any], str, np.ndarray] | None:
    """Reshape -> Transpose(0, 2, 1, 3) -> Reshape back to the input's shape: the 4-D channel shuffle of
    shufflekit.models.layers. Returns (its nodes, its input, perm) with output[c] = input[perm[c]]."""
    if first.op_type != "Reshape":
        return None
    source = first.input[0]
    shape = g.shapes.get(source)
    view = g.const(first.input[1])
    if not shape or len(shape) != 4 or None in shape[1:] or view is None or view.shape != (4,):
        return None
    _, channels, height, width = shape
    assert channels is not None and height is not None and width is not None  # None in shape[1:] refused above
    rows, cols = int(view[1]), int(view[2])
    if rows * cols != channels or int(view[3]) != height * width:
        return None
    transpose = g.only_consumer(first.output[0])
    if transpose is None or transpose.op_type != "Transpose" or list(_attr(transpose, "perm", [])) != [0, 2, 1, 3]:
        return None
    last = g.only_consumer(transpose.output[0])
    back = g.const(last.input[1]) if last is not None and last.op_type == "Reshape" else None
    if back is None or back.shape != (4,) or [int(v) for v in back[1:]] != [channels, height, width]:
        return None
    perm = np.arange(channels).reshape(rows, cols).T.reshape(-1)
    return [first, transpose, last], source, perm


def _fold_permutation_into(g: _Graph, node: Any, perm: np.ndarray, *, check: bool) -> bool:
    """Make ``node`` (a Conv reading y with y[c] = x[perm[c]]) read x instead. ``check``: only say whether
    it can. A dense Conv takes the permutation on its input channels; a depthwise one permutes its
    channels and passes the permutation on to the dense Convs reading it."""
    channels = len(perm)
    if _is_dense(g, node):
        if not check:
            weight, _ = _conv_weights(g, node)  # type: ignore[misc]
            folded = np.empty_like(weight)
            folded[:, perm] = weight
            g.set_input_const(node, 1, folded)
        return True
    if _is_depthwise(g, node, channels):
        readers = g.consumers(node.output[0])
        if node.output[0] in g.outputs or not readers or not all(_is_dense(g, r) for r in readers):
            return False
        if not check:
            weight, bias = _conv_weights(g, node)  # type: ignore[misc]
            folded = np.empty_like(weight)
            folded[perm] = weight
            g.set_input_const(node, 1, folded)
            if bias is not None:
                moved = np.empty_like(bias)
                moved[perm] = bias
                g.set_input_const(node, 2, moved)
            for reader in readers:
                _fold_permutation_into(g, reader, perm, check=False)
        return True
    return False


def fold_shuffle_into_conv(g: _Graph) -> int:
    changed = 0
    for node in list(g.graph.node):
        found = _shuffle_at(g, node)
        if found is None:
            continue
        nodes, source, perm = found
        output = nodes[-1].output[0]
        readers = g.consumers(output)
        if output in g.outputs or not readers:
            continue
        if not all(r.input[0] == output and _fold_permutation_into(g, r, perm, check=True) for r in readers):
            continue
        for reader in readers:
            _fold_permutation_into(g, reader, perm, check=False)
            reader.input[0] = source
        g.remove(nodes)
        changed += 1
    return changed


# -- pad-channels-for-nchwc ----------------------------------------------------------------------
def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _channel_slice_into(g: _Graph, conv: Any) -> tuple[Any, int, int, int, np.dtype, np.dtype] | None:
    """The contiguous channel Slice that only ``conv`` reads, as (node, start, end, channels, the dtypes
    of its starts and ends), or None."""
    sliced = g.producer(conv.input[0])
    if sliced is None or sliced.op_type != "Slice" or g.only_consumer(sliced.output[0]) is not conv:
        return None
    consts = [g.const(name) if name else None for name in sliced.input[1:]]
    starts, ends = consts[0], consts[1]
    axes = consts[2] if len(consts) > 2 else np.array([0])
    steps = consts[3] if len(consts) > 3 else np.array([1])
    total = g.channels(sliced.input[0])
    if starts is None or ends is None or axes is None or steps is None or total is None:
        return None
    if starts.shape != (1,) or int(axes[0]) not in (1, -3) or int(steps[0]) != 1:
        return None
    return sliced, int(starts[0]), min(int(ends[0]), total), total, starts.dtype, ends.dtype


def _widen_slice_input(g: _Graph, conv: Any, extra: int) -> bool:
    """Widen the contiguous channel Slice feeding ``conv`` by ``extra`` channels (taken below its start,
    else above its end) and give ``conv`` zero weights for them. False where there is no such slice."""
    found = _channel_slice_into(g, conv)
    if found is None:
        return False
    sliced, start, end, total, starts_dtype, ends_dtype = found
    weight, _ = _conv_weights(g, conv)  # type: ignore[misc]
    zeros = np.zeros((weight.shape[0], extra, *weight.shape[2:]), weight.dtype)
    if start - extra >= 0:
        g.set_input_const(sliced, 1, np.array([start - extra], starts_dtype))
        g.set_input_const(conv, 1, np.concatenate([zeros, weight], axis=1))
    elif end + extra <= total:
        g.set_input_const(sliced, 2, np.array([end + extra], ends_dtype))
        g.set_input_const(conv, 1, np.concatenate([weight, zeros], axis=1))
    else:
        return False
    g.shapes.pop(sliced.output[0], None)
    return True


def pad_channels_for_nchwc(g: _Graph) -> int:
    """Dense Conv [-> Relu] -> depthwise Conv [-> Relu] -> dense Conv whose middle width is not a multiple
    of 4: add zero channels up to the next multiple of NCHWC_BLOCK (zero weights and bias out of the first
    Conv, zero depthwise kernels, zero weights into the last). Where the first Conv's own input width is
    not a multiple of 4 and it reads a contiguous channel slice, the slice is widened with zero weights."""
    changed = 0
    for depthwise in list(g.graph.node):
        width = g.channels(depthwise.input[0])
        if width is None or width % NCHWC_ALIGNMENT == 0 or not _is_depthwise(g, depthwise, width):
            continue
        before = g.producer(depthwise.input[0])
        relu_before = before if before is not None and before.op_type == "Relu" else None
        first = g.producer(relu_before.input[0]) if relu_before is not None else before
        after = g.only_consumer(depthwise.output[0])
        relu_after = after if after is not None and after.op_type == "Relu" else None
        last = g.only_consumer(relu_after.output[0]) if relu_after is not None else after
        if first is None or last is None or not _is_dense(g, first) or not _is_dense(g, last):
            continue
        if g.only_consumer(first.output[0]) is not (relu_before or depthwise):
            continue
        if relu_before is not None and g.only_consumer(relu_before.output[0]) is not depthwise:
            continue
        padded = _round_up(width, NCHWC_BLOCK)
        extra = padded - width
        weight, bias = _conv_weights(g, first)  # type: ignore[misc]
        g.set_input_const(first, 1, np.concatenate([weight, np.zeros((extra, *weight.shape[1:]), weight.dtype)]))
        if bias is not None:
            g.set_input_const(first, 2, np.concatenate([bias, np.zeros(extra, bias.dtype)]))
        weight, bias = _conv_weights(g, depthwise)  # type: ignore[misc]
        g.set_input_const(depthwise, 1, np.concatenate([weight, np.zeros((extra, *weight.shape[1:]), weight.dtype)]))
        if bias is not None:
            g.set_input_const(depthwise, 2, np.concatenate([bias, np.zeros(extra, bias.dtype)]))
        _set_attr(depthwise, "group", padded)
        weight, _ = _conv_weights(g, last)  # type: ignore[misc]
        zeros = np.zeros((weight.shape[0], extra, *weight.shape[2:]), weight.dtype)
        g.set_input_const(last, 1, np.concatenate([weight, zeros], axis=1))
        inputs = g.channels(first.input[0])
        if inputs is not None and inputs % NCHWC_ALIGNMENT:
            _widen_slice_input(g, first, _round_up(inputs, NCHWC_ALIGNMENT) - inputs)
        changed += 1
    return changed


# -- strided-split-as-inner-split ----------------------------------------------------------------
def strided_split_as_inner_split(g: _Graph) -> int:
    """Two Slices of one 4-D map taking its even and odd channels (``x[:, 0::2]``, ``x[:, 1::2]``) become
    one Reshape to ``[N, C/2, 2, HW]``, a step-1 Slice of that inner axis each, and a Reshape back."""
    from onnx import helper, numpy_helper

    changed = 0
    by_source: dict[str, dict[int, Any]] = {}
    for node in g.graph.node:
        if node.op_type != "Slice" or len(node.input) < 5:
            continue
        starts, ends, axes, steps = (g.const(name) for name in node.input[1:5])
        shape = g.shapes.get(node.input[0])
        if starts is None or ends is None or axes is None or steps is None or not shape or len(shape) != 4:
            continue
        channels = shape[1]
        if channels is None or channels % 2 or None in shape[2:] or steps.shape != (1,) or int(steps[0]) != 2:
            continue
        if int(axes[0]) not in (1, -3) or int(starts[0]) not in (0, 1) or int(ends[0]) < channels:
            continue
        by_source.setdefault(node.input[0], {})[int(starts[0])] = node
    for source, pair in by_source.items():
        if set(pair) != {0, 1}:
            continue
        _, channels, height, width = g.shapes[source]
        assert channels is not None and height is not None and width is not None  # checked above
        half = channels // 2
        tag = g.fresh(f"{source}_evenodd")
        consts = {"view": [-1, half, 2, height * width], "back": [-1, half, height, width], "axis": [2]}
        consts |= {"zero": [0], "one": [1], "two": [2]}
        for key, value in consts.items():
            g.graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), f"{tag}_{key}"))
        position = min(list(g.graph.node).index(pair[0]), list(g.graph.node).index(pair[1]))
        g.graph.node.insert(
            position, helper.make_node("Reshape", [source, f"{tag}_view"], [f"{tag}_pairs"], name=f"{tag}_reshape")
        )
        for start, node in pair.items():
            output = node.output[0]
            del node.input[:]
            lo, hi = ("zero", "one") if start == 0 else ("one", "two")
            node.input.extend([f"{tag}_pairs", f"{tag}_{lo}", f"{tag}_{hi}", f"{tag}_axis"])
            node.output[0] = f"{tag}_{start}"
            back = helper.make_node("Reshape", [node.output[0], f"{tag}_back"], [output], name=f"{tag}_back{start}")
            g.graph.node.insert(list(g.graph.node).index(node) + 1, back)
        changed += 1
    return changed


def _zero_channels(array: np.ndarray, extra: int, axis: int) -> np.ndarray:
    shape = list(array.shape)
    shape[axis] = extra
    return np.concatenate([array, np.zeros(shape, array.dtype)], axis=axis)


def _pad_reader(g: _Graph, reader: Any, width: int, extra: int, *, check: bool) -> bool:
    """Let ``reader`` (a Conv) read ``extra`` more, zero, channels: zero weights for them in a dense Conv;
    in a depthwise one, zero kernels (its extra outputs are zero) and the same for its dense readers."""
    if _is_dense(g, reader):
        if not check:
            weight, _ = _conv_weights(g, reader)  # type: ignore[misc]
            g.set_input_const(reader, 1, _zero_channels(weight, extra, 1))
        return True
    if _is_depthwise(g, reader, width):
        readers = g.consumers(reader.output[0])
        if reader.output[0] in g.outputs or not readers or not all(_is_dense(g, r) for r in readers):
            return False
        if not check:
            weight, bias = _conv_weights(g, reader)  # type: ignore[misc]
            g.set_input_const(reader, 1, _zero_channels(weight, extra, 0))
            if bias is not None:
                g.set_input_const(reader, 2, _zero_channels(bias, extra, 0))
            _set_attr(reader, "group", width + extra)
            for dense in readers:
                _pad_reader(g, dense, width, extra, check=False)
        return True
    return False


def pad_pooled_channels_for_nchwc(g: _Graph) -> int:
    """Dense Conv [-> Relu] -> MaxPool read only by Convs (ShuffleNet's stem: 24 channels), its width not a
    multiple of NCHWC_BLOCK: ONNX Runtime pools in NCHWc only at whole blocks, so it converts the
    convolution's output to NCHW and back around the pool. Zero output channels are added up to the block
    (a max over zeros is zero), and the readers get zero weights for them."""
    changed = 0
    for pool in list(g.graph.node):
        width = g.channels(pool.input[0]) if pool.op_type == "MaxPool" else None
        if width is None or width % NCHWC_BLOCK == 0:
            continue
        before = g.producer(pool.input[0])
        relu = before if before is not None and before.op_type == "Relu" else None
        conv = g.producer(relu.input[0]) if relu is not None else before
        if conv is None or not _is_dense(g, conv) or g.only_consumer(conv.output[0]) is not (relu or pool):
            continue
        if relu is not None and g.only_consumer(relu.output[0]) is not pool:
            continue
        readers = g.consumers(pool.output[0])
        extra = _round_up(width, NCHWC_BLOCK) - width
        if pool.output[0] in g.outputs or not readers or len(pool.output) != 1:
            continue
        if not all(r.input[0] == pool.output[0] and _pad_reader(g, r, width, extra, check=True) for r in readers):
            continue
        weight, bias = _conv_weights(g, conv)  # type: ignore[misc]
        g.set_input_const(conv, 1, _zero_channels(weight, extra, 0))
        if bias is not None:
            g.set_input_const(conv, 2, _zero_channels(bias, extra, 0))
        for reader in readers:
            _pad_reader(g, reader, width, extra, check=False)
        changed += 1
    return changed


def concat_shuffle_as_interleave(g: _Graph) -> int:
    """Concat(a, b) on channels followed by the 2-group shuffle: the shuffle interleaves a and b, which one
    Concat on a new inner axis does (a and b viewed as [N, h, 1, HW]), in one copy instead of two."""
    from onnx import helper, numpy_helper

    changed = 0
    for node in list(g.graph.node):
        found = _shuffle_at(g, node)
        if found is None:
            continue
        nodes, source, _ = found
        concat = g.producer(source)
        if concat is None or concat.op_type != "Concat" or len(concat.input) != 2 or _attr(concat, "axis") != 1:
            continue
        shape = g.shapes.get(source)
        view = g.const(nodes[0].input[1])
        halves = [g.channels(name) for name in concat.input]
        if g.only_consumer(source) is not nodes[0] or shape is None or view is None or int(view[1]) != 2:
            continue
        _, channels, height, width = shape
        assert channels is not None and height is not None and width is not None  # _shuffle_at checked them
        if halves != [channels // 2, channels // 2]:
            continue
        tag = g.fresh(f"{source}_interleave")
        for key, value in {
            "pair": [-1, channels // 2, 1, height * width],
            "back": [-1, channels, height, width],
        }.items():
            g.graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), f"{tag}_{key}"))
        position = list(g.graph.node).index(concat)
        new = [
            helper.make_node("Reshape", [concat.input[0], f"{tag}_pair"], [f"{tag}_a"], name=f"{tag}_a"),
            helper.make_node("Reshape", [concat.input[1], f"{tag}_pair"], [f"{tag}_b"], name=f"{tag}_b"),
            helper.make_node("Concat", [f"{tag}_a", f"{tag}_b"], [f"{tag}_ab"], axis=2, name=f"{tag}_concat"),
            helper.make_node("Reshape", [f"{tag}_ab", f"{tag}_back"], [nodes[-1].output[0]], name=f"{tag}_flatten"),
        ]
        g.remove([concat, *nodes])
        for offset, made in enumerate(new):
            g.graph.node.insert(position + offset, made)
        changed += 1
    return changed


def _zero_rows(weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Output channels of a Conv that are exactly zero whatever it reads (zero weights, zero or no bias)."""
    zero: np.ndarray = np.asarray(~weight.reshape(len(weight), -1).any(axis=1))
    return np.asarray(zero & (bias == 0)) if bias is not None else zero


def _droppable(g: _Graph, tensor: str, zero: np.ndarray) -> bool:
    """Channels ``zero`` of ``tensor`` (all zero) reach only dense Convs, through Relu, MaxPool and
    depthwise Convs that keep them zero: they can be removed."""
    readers = g.consumers(tensor)
    if tensor in g.outputs or not readers:
        return False
    for reader in readers:
        if reader.input[0] != tensor:
            return False
        if _is_dense(g, reader):
            continue
        if reader.op_type in ("Relu", "MaxPool") and len(reader.output) == 1:
            if not _droppable(g, reader.output[0], zero):
                return False
            continue
        if not _is_depthwise(g, reader, len(zero)):
            return False
        weight, bias = _conv_weights(g, reader)  # type: ignore[misc]
        if not _zero_rows(weight, bias)[zero].all() or not _droppable(g, reader.output[0], zero):
            return False
    return True


def _drop(g: _Graph, tensor: str, keep: np.ndarray) -> None:
    for reader in g.consumers(tensor):
        if _is_dense(g, reader):
            weight, _ = _conv_weights(g, reader)  # type: ignore[misc]
            g.set_input_const(reader, 1, weight[:, keep])
            continue
        if reader.op_type == "Conv":  # depthwise (checked by _droppable)
            weight, bias = _conv_weights(g, reader)  # type: ignore[misc]
            g.set_input_const(reader, 1, weight[keep])
            if bias is not None:
                g.set_input_const(reader, 2, bias[keep])
            _set_attr(reader, "group", int(keep.sum()))
        _drop(g, reader.output[0], keep)


def strip_zero_channels(g: _Graph) -> int:
    """The inverse of the padding rewrites, for runtimes that gain nothing from aligned widths (TFLite:
    XNNPACK pads inside its kernels; measured, the padded file is 2-4% slower): output channels of a
    dense Conv that are exactly zero and reach only Convs are removed, and a channel slice that a Conv
    reads with zero weights at its edge is narrowed."""
    changed = 0
    for conv in list(g.graph.node):
        found = _conv_weights(g, conv) if _is_dense(g, conv) else None
        if found is None:
            continue
        zero = _zero_rows(*found)
        if zero.any() and not zero.all() and _droppable(g, conv.output[0], zero):
            keep = ~zero
            weight, bias = found
            g.set_input_const(conv, 1, weight[keep])
            if bias is not None:
                g.set_input_const(conv, 2, bias[keep])
            _drop(g, conv.output[0], keep)
            changed += 1
    for conv in list(g.graph.node):
        if _is_dense(g, conv) and _narrow_slice_input(g, conv):
            changed += 1
    return changed


def _narrow_slice_input(g: _Graph, conv: Any) -> bool:
    found = _channel_slice_into(g, conv)
    if found is None:
        return False
    sliced, start, end, _, starts_dtype, ends_dtype = found
    weight, _ = _conv_weights(g, conv)  # type: ignore[misc]
    used: np.ndarray = np.asarray(weight.transpose(1, 0, 2, 3).reshape(weight.shape[1], -1).any(axis=1))
    if used.all() or not used.any():
        return False
    first, last = int(np.argmax(used)), len(used) - int(np.argmax(used[::-1]))
    if first == 0 and last == len(used):
        return False
    g.set_input_const(sliced, 1, np.array([start + first], starts_dtype))
    g.set_input_const(sliced, 2, np.array([start + last], ends_dtype))
    g.set_input_const(conv, 1, weight[:, first:last])
    g.shapes.pop(sliced.output[0], None)
    assert start + last <= end
    return True


REWRITES: dict[str, Rewrite] = {
    r.name: r
    for r in (
        Rewrite(
            "fold-shuffle-into-conv",
            "a channel shuffle read only by convolutions is folded into their weights",
            fold_shuffle_into_conv,
        ),
        Rewrite(
            "pad-channels-for-nchwc",
            "depthwise branches widened with zero channels to a multiple of 16, so ONNX Runtime runs them in NCHWc",
            pad_channels_for_nchwc,
        ),
        Rewrite(
            "pad-pooled-channels-for-nchwc",
            "the stem's pooled channels widened with zeros to a whole NCHWc block, so ONNX Runtime pools in NCHWc",
            pad_pooled_channels_for_nchwc,
        ),
        Rewrite(
            "concat-shuffle-as-interleave",
            "concat + channel shuffle written as one concat on an inner axis",
            concat_shuffle_as_interleave,
        ),
        Rewrite(
            "strip-zero-channels",
            "channels that are exactly zero and read only by convolutions removed (undoes the NCHWc padding)",
            strip_zero_channels,
        ),
        Rewrite(
            "strided-split-as-inner-split",
            "the even/odd channel split written as step-1 slices of an inner axis of a [N, C/2, 2, HW] view",
            strided_split_as_inner_split,
        ),
    )
}
# In the order they run. ONNX is the file ONNX Runtime loads; TFLite's list runs on the ONNX file given to
# onnx2tf (already carrying the ONNX rewrites, unless the export was --no-optimize).
# fold-shuffle-into-conv is exact and tested but in neither default: measured on v2 1.0x at 224 (AMD EPYC,
# 1 thread) it gains 0.5% in ONNX Runtime and nothing in TFLite, while every TFLiteConverter run of a
# graph it folded takes 3-4x longer (8 s instead of 2.4 s), which a release pays four times.
ONNX_REWRITES: tuple[str, ...] = (
    "pad-channels-for-nchwc",
    "pad-pooled-channels-for-nchwc",
    "concat-shuffle-as-interleave",
)
TFLITE_REWRITES: tuple[str, ...] = ("strip-zero-channels", "strided-split-as-inner-split")
UNDOES = {"strip-zero-channels": ("pad-channels-for-nchwc", "pad-pooled-channels-for-nchwc")}


def combined(carried: Sequence[str], applied: Sequence[str]) -> list[str]:
    """The rewrites a converted file carries: those of its ONNX source not undone, then those applied."""
    undone = {name for step in applied for name in UNDOES.get(step, ()) if name in carried}
    kept = [name for name in carried if name not in undone]
    inverses = {step for step in applied if undone & set(UNDOES.get(step, ()))}  # said by what is no longer there
    return kept + [name for name in applied if name not in kept and name not in inverses]


def rewrite(model: Any, names: Sequence[str]) -> list[str]:
    """Apply the named rewrites to ``model`` (an onnx.ModelProto, changed in place), in order. Returns
    the names of those that changed the graph."""
    unknown = [n for n in names if n not in REWRITES]
    if unknown:
        raise UsageError(f"unknown graph rewrite {', '.join(unknown)}", hint=f"known: {', '.join(REWRITES)}")
    applied = []
    for name in names:
        g = _Graph(model)
        try:
            count = REWRITES[name].run(g)
        except (ValueError, IndexError, KeyError) as exc:
            raise ExportError(f"graph rewrite {name} failed: {exc}", hint="export with --no-optimize") from None
        g.finish()
        if count:
            applied.append(name)
    return applied


def rewrite_file(source: str | Path, target: str | Path, names: Sequence[str]) -> list[str]:
    """``rewrite`` on an ONNX file: ``source`` read, the result written to ``target``."""
    import onnx

    model = onnx.load(str(source))
    applied = rewrite(model, names)
    onnx.save_model(model, str(target), save_as_external_data=False)
    return applied
