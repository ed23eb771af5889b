"""Lowering: the integer-only (NCHW) streamlined graph -> a graph of hardware layers (NHWC).

One rule per streamlined op type (``RULES``); each rule reads the op's inputs as hardware
tensors and emits hardware layer nodes. Fan-outs get a DuplicateStreams afterwards. A
grouped conv becomes ChannelSplit -> one SlidingWindow + MVTU per group -> ChannelConcat
(the thresholds after it go into each group's MVTU before the groups are joined).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import get_by_name

from hw_build.errors import BuildError
from hw_build.ops.base import DOMAIN, smallest_int_type
from hw_build.streamline.graph import const
from hw_build.streamline.types import pad_params


@dataclass
class HwTensor:
    """A stream in the hardware graph and how it maps onto a streamlined tensor."""

    name: str
    shape: list[int]  # NHWC (batch 1)
    dtype: DataType
    #: for a flattened tensor: perm[j] = streamlined flat index of stream element j
    perm: np.ndarray | None = None
    #: hardware value = streamlined value + offset[channel] (binary MVTU accumulators)
    offset: np.ndarray | None = None
    producer: object = None  # the hw node that produces it


@dataclass
class GroupedTensor:
    """A grouped conv's output before its groups are joined: one stream per group, group g
    holding channels g*C/G .. (g+1)*C/G - 1. A MultiThreshold right after the conv is
    applied per group (fused into each group's MVTU); any other consumer gets the groups
    joined into one stream in standard channel order (``Lowering.hw``)."""

    parts: list[HwTensor]
    source: str  # the streamlined tensor the joined stream stands for


@dataclass
class PendingPad:
    source: HwTensor
    pads: list[int]  # top, left, bottom, right
    value: int


@dataclass
class Lowering:
    sl: ModelWrapper  # streamlined model
    nodes: list = field(default_factory=list)
    inits: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)  # streamlined name -> HwTensor | PendingPad
    dtypes: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)
    counter: dict = field(default_factory=dict)

    def fresh(self, base: str) -> str:
        k = self.counter.get(base, 0)
        self.counter[base] = k + 1
        return f"{base}_{k}"

    def emit(self, op: str, inputs: list[str], out: HwTensor | list[HwTensor], source: str,
             **attrs) -> onnx.NodeProto:
        """A hardware node; several outputs (``out`` a list) must share shape and type."""
        outs = out if isinstance(out, list) else [out]
        node = helper.make_node(op, inputs, [o.name for o in outs], name=self.fresh(op), domain=DOMAIN,
                                out_shape=outs[0].shape, out_dtype=outs[0].dtype.name, source=source, **attrs)
        self.nodes.append(node)
        for o in outs:
            self.shapes[o.name] = o.shape
            self.dtypes[o.name] = o.dtype
            o.producer = node
        return node

    def init(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits[name] = value
        return name

    def hw(self, tensor: str, node) -> HwTensor:
        t = self.tensors.get(tensor)
        if t is None:
            raise BuildError(f"node '{node.name}' ({node.op_type}): input '{tensor}' has no hardware "
                             "producer (unsupported op in front of it).")
        if isinstance(t, PendingPad) and node.op_type != "Conv":
            raise BuildError(f"pad feeding '{node.name}' ({node.op_type}): padding maps to hardware "
                             "only in front of a convolution.")
        if isinstance(t, GroupedTensor):
            t = self.tensors[tensor] = join_groups(self, t)
        return t

    def new_tensor(self, node, shape, dtype, **kw) -> HwTensor:
        return HwTensor(self.fresh(f"{node.name}_out"), list(shape), dtype, **kw)


def _ints(node, name, default=None):
    a = get_by_name(node.attribute, name)
    return list(a.ints) if a is not None else default


def _mvtu(lw: Lowering, node, x: HwTensor, w: np.ndarray, num_vectors: int, out_shape: list[int]) -> HwTensor:
    """Emit an MVTU computing x @ w.T per vector (w: [MH, MW] in stream order)."""
    lo, hi = int(x.dtype.min()), int(x.dtype.max())
    weights = w.astype(np.int64)
    binary = lo >= 0 and hi <= 1 and np.all(np.abs(weights) == 1)
    mh, mw = weights.shape
    if binary:
        offset = (weights == -1).sum(axis=1).astype(np.int64)  # acc_hw = acc + #(-1 weights)
        weights = (weights + 1) // 2
        w_dtype = DataType["BINARY"]
        acc_dtype = smallest_int_type(0, mw)
    else:
        offset = None
        w_dtype = smallest_int_type(int(weights.min()), int(weights.max()))
        acc_dtype = lw.sl.get_tensor_datatype(node.output[0])
    out = lw.new_tensor(node, out_shape, acc_dtype, offset=offset)
    lw.emit("MVTU", [x.name, lw.init(f"{node.name}_W", weights.astype(np.float32))], out, node.output[0],
            in_shape=x.shape, in_dtype=x.dtype.name, MW=mw, MH=mh, PE=1, SIMD=1,
            num_vectors=num_vectors, binary=int(binary), w_dtype=w_dtype.name,
            acc_dtype=acc_dtype.name)
    return out


#: most groups a grouped conv may have: each group is its own sliding-window + MVTU branch
MAX_GROUPS = 16


def lower_conv(lw: Lowering, node) -> None:
    src = lw.hw(node.input[0], node)
    w = const(lw.sl, node.input[1])
    group = get_by_name(node.attribute, "group")
    group = group.i if group is not None else 1
    kernel = _ints(node, "kernel_shape", list(w.shape[2:]))
    strides = _ints(node, "strides", [1, 1]) or [1, 1]
    dil = _ints(node, "dilations", [1, 1]) or [1, 1]
    if kernel[0] != kernel[1] or strides[0] != strides[1] or dil != [1, 1]:
        raise BuildError(f"conv '{node.name}': kernel {kernel}, strides {strides}, dilations {dil}; "
                         "only square kernels, equal strides and no dilation map to hardware.")
    k, s = kernel[0], strides[0]
    pads, pad_value = [0, 0, 0, 0], 0
    if isinstance(src, PendingPad):
        pads, pad_value, src = src.pads, src.value, src.source
    c = src.shape[-1]
    _, _, oh, ow = lw.sl.get_tensor_shape(node.output[0])
    if group > 1 and group == c and w.shape[0] == c and w.shape[1] == 1 and np.all(w == 1) and k == s \
            and not any(pads):
        # an all-ones depthwise conv with kernel == stride is a sum pool (AveragePoolToSum)
        dtype = lw.sl.get_tensor_datatype(node.output[0])
        out = lw.new_tensor(node, [1, oh, ow, c], dtype)
        lw.emit("Pool", [src.name], out, node.output[0], in_shape=src.shape, in_dtype=src.dtype.name,
                kernel=k, mode="sum", PE=1)
        lw.tensors[node.output[0]] = out
        return
    if src.perm is not None:
        raise BuildError(f"conv '{node.name}' reads a flattened tensor.")
    if group == 1:
        lw.tensors[node.output[0]] = _conv_branch(lw, node, src, w, k, s, pads, pad_value, oh, ow)
        return
    if group > MAX_GROUPS:
        raise BuildError(
            f"conv '{node.name}' has group={group}: each group becomes its own sliding-window + "
            f"MVTU branch, and more than {MAX_GROUPS} branches are not supported. Use at most "
            f"{MAX_GROUPS} groups (FTBNN's group execution uses 2 to 8), or groups=1."
        )
    if src.offset is not None:
        raise BuildError(f"conv '{node.name}' reads raw binary accumulators; put a quantizer in front of it.")
    # channel split -> one sliding window + MVTU per group -> (joined by the consumer)
    cin_g, cout_g = c // group, w.shape[0] // group
    parts = [HwTensor(lw.fresh(f"{node.name}_group{g}_in"), src.shape[:3] + [cin_g], src.dtype)
             for g in range(group)]
    lw.emit("ChannelSplit", [src.name], parts, "", in_shape=src.shape, in_dtype=src.dtype.name,
            num_outputs=group, PE=1)
    outs = [_conv_branch(lw, node, part, w[g * cout_g:(g + 1) * cout_g], k, s, pads, pad_value, oh, ow)
            for g, part in enumerate(parts)]
    lw.tensors[node.output[0]] = GroupedTensor(outs, node.output[0])


def _conv_branch(lw: Lowering, node, src: HwTensor, w: np.ndarray, k: int, s: int, pads: list[int],
                 pad_value: int, oh: int, ow: int) -> HwTensor:
    """Sliding window (unless 1x1, stride 1, unpadded) + MVTU of a dense conv on ``src``."""
    c = src.shape[-1]
    w_hw = w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)  # rows: (kh, kw, c) window order
    x = src
    if k != 1 or s != 1 or any(pads):
        win = HwTensor(lw.fresh(f"{node.name}_windows"), [1, oh, ow, k * k * c], src.dtype)
        lw.emit("SlidingWindow", [src.name], win, "", in_shape=src.shape, in_dtype=src.dtype.name,
                kernel=k, stride=s, pads=pads, pad_value=int(pad_value), SIMD=1)
        x = win
    return _mvtu(lw, node, x, w_hw, oh * ow, [1, oh, ow, w.shape[0]])


def join_groups(lw: Lowering, grouped: GroupedTensor) -> HwTensor:
    """One stream in standard channel order from a grouped conv's per-group streams: a chain
    of two-input ChannelConcat layers ((g0 + g1) + g2) + ..."""
    joined = grouped.parts[0]
    for g, part in enumerate(grouped.parts[1:], start=1):
        if part.dtype != joined.dtype or part.shape[:3] != joined.shape[:3]:
            raise BuildError(f"the groups of '{grouped.source}' have different types or shapes "
                             f"({joined.dtype.name} {joined.shape} vs {part.dtype.name} {part.shape}); this is a "
                             "compiler bug, please report it with the model file.")
        offset = None
        if joined.offset is not None or part.offset is not None:
            offset = np.concatenate([
                t.offset if t.offset is not None else np.zeros(t.shape[-1], dtype=np.int64)
                for t in (joined, part)])
        last = g == len(grouped.parts) - 1
        out = HwTensor(lw.fresh(f"{grouped.source}_joined"), joined.shape[:3] + [joined.shape[-1] + part.shape[-1]],
                       joined.dtype, offset=offset)
        # the joined stream stands for the streamlined tensor (unless it holds raw binary
        # accumulators, which differ from it by the offsets)
        source = grouped.source if last and offset is None else ""
        lw.emit("ChannelConcat", [joined.name, part.name], out, source, in_shape=joined.shape,
                in_dtype=joined.dtype.name, in1_channels=part.shape[-1], PE=1)
        joined = out
    return joined


def lower_matmul(lw: Lowering, node) -> None:
    x = lw.hw(node.input[0], node)
    w = const(lw.sl, node.input[1])  # [K, M]
    w_hw = w.T
    if x.perm is not None:
        w_hw = w_hw[:, x.perm]
    lw.tensors[node.output[0]] = _mvtu(lw, node, x, w_hw, 1, [1, 1, 1, w.shape[1]])


def lower_multithreshold(lw: Lowering, node) -> None:
    th = const(lw.sl, node.input[1]).astype(np.int64)
    out_dtype = lw.sl.get_tensor_datatype(node.output[0])
    single_use = len(lw.sl.find_consumers(node.input[0])) == 1
    grouped = lw.tensors.get(node.input[0])
    if isinstance(grouped, GroupedTensor) and single_use:
        # threshold each group on its own (fused into its MVTU); the consumer joins them
        parts, start = [], 0
        for part in grouped.parts:
            n = part.shape[-1]
            th_g = th[start:start + n] if th.shape[0] > 1 else th
            parts.append(_thresholds(lw, node, part, th_g, out_dtype, fusable=True, source=""))
            start += n
        lw.tensors[node.output[0]] = GroupedTensor(parts, node.output[0])
        return
    x = lw.hw(node.input[0], node)
    lw.tensors[node.output[0]] = _thresholds(lw, node, x, th, out_dtype, single_use, node.output[0])


def _thresholds(lw: Lowering, node, x: HwTensor, th: np.ndarray, out_dtype: DataType, fusable: bool,
                source: str) -> HwTensor:
    """Thresholds ``th`` (streamlined channel order) applied to ``x``: appended to the MVTU
    producing ``x`` when it has none and ``fusable``, else a Thresholding layer."""
    if th.shape[0] > 1 and x.perm is not None:
        th = th[x.perm]
    if x.offset is not None:
        th = th + x.offset[:, None]
    lo, hi = int(x.dtype.min()), int(x.dtype.max())
    th = np.clip(th, lo, hi + 1)  # thresholds outside the input range need no extra bits
    producer = x.producer
    if fusable and producer is not None and producer.op_type == "MVTU" and len(producer.input) == 2:
        producer.input.append(lw.init(f"{node.name}_T", th.astype(np.float32)))
        get_by_name(producer.attribute, "out_dtype").s = out_dtype.name.encode()
        get_by_name(producer.attribute, "source").s = source.encode()
        lw.dtypes[x.name] = out_dtype
        return HwTensor(x.name, x.shape, out_dtype, perm=x.perm, producer=producer)
    out = lw.new_tensor(node, x.shape, out_dtype, perm=x.perm)
    lw.emit("Thresholding", [x.name, lw.init(f"{node.name}_T", th.astype(np.float32))], out,
            source, in_shape=x.shape, in_dtype=x.dtype.name, PE=1)
    return out


def lower_pad(lw: Lowering, node) -> None:
    x = lw.hw(node.input[0], node)
    pads, value = pad_params(lw.sl, node)
    if any(pads[i] for i in (0, 1, 4, 5)) or value != round(value):
        raise BuildError(f"pad '{node.name}': only spatial padding with an integer value maps to hardware.")
    lw.tensors[node.output[0]] = PendingPad(x, [pads[2], pads[3], pads[6], pads[7]], int(value))


def lower_maxpool(lw: Lowering, node) -> None:
    x = lw.hw(node.input[0], node)
    kernel = _ints(node, "kernel_shape")
    strides = _ints(node, "strides", kernel) or kernel
    pads = _ints(node, "pads", [0, 0, 0, 0]) or [0, 0, 0, 0]
    if kernel[0] != kernel[1] or strides != kernel or any(pads):
        raise BuildError(f"max pool '{node.name}': kernel {kernel}, strides {strides}, pads {pads}; "
                         "only square, non-overlapping, unpadded pooling (kernel == stride) maps to hardware.")
    k = kernel[0]
    _, h, w, c = x.shape
    out = lw.new_tensor(node, [1, h // k, w // k, c], x.dtype)
    lw.emit("Pool", [x.name], out, node.output[0], in_shape=x.shape, in_dtype=x.dtype.name,
            kernel=k, mode="max", PE=1)
    lw.tensors[node.output[0]] = out


def lower_add(lw: Lowering, node) -> None:
    a, b = (lw.hw(t, node) for t in node.input)
    if a.shape != b.shape or (a.perm is None) != (b.perm is None) or a.offset is not None or b.offset is not None:
        raise BuildError(f"add '{node.name}': its inputs have different hardware layouts.")
    out = lw.new_tensor(node, a.shape, lw.sl.get_tensor_datatype(node.output[0]), perm=a.perm)
    lw.emit("AddStreams", [a.name, b.name], out, node.output[0], in_shape=a.shape, in_dtype=a.dtype.name,
            in1_dtype=b.dtype.name, PE=1)
    lw.tensors[node.output[0]] = out


def lower_reducesum(lw: Lowering, node) -> None:
    x = lw.hw(node.input[0], node)
    out = lw.new_tensor(node, [1, 1, 1, x.shape[-1]], lw.sl.get_tensor_datatype(node.output[0]))
    lw.emit("GlobalAccPool", [x.name], out, node.output[0], in_shape=x.shape, in_dtype=x.dtype.name, PE=1)
    lw.tensors[node.output[0]] = out


def lower_reshape(lw: Lowering, node) -> None:
    x = lw.hw(node.input[0], node)
    in_shape = lw.sl.get_tensor_shape(node.input[0])
    out_shape = lw.sl.get_tensor_shape(node.output[0])
    if node.op_type == "Transpose" or len(out_shape) != 2:
        raise BuildError(f"'{node.name}' ({node.op_type}) {in_shape} -> {out_shape}: only flattening "
                         "an NCHW tensor to [N, C*H*W] maps to hardware.")
    if len(in_shape) == 2 or int(np.prod(in_shape[2:])) == 1 or in_shape[1] == 1:
        perm = x.perm
    else:
        _, c, h, w = in_shape
        hh, ww, cc = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
        perm = (cc * h * w + hh * w + ww).reshape(-1)
    # the same stream, read as one vector by its consumers (same element order)
    flat = [1, 1, 1, int(np.prod(x.shape[1:]))]
    lw.tensors[node.output[0]] = HwTensor(x.name, flat, x.dtype, perm=perm, offset=x.offset, producer=x.producer)


def lower_label_select(lw: Lowering, node) -> None:
    x = lw.hw(node.input[0], node)
    if x.perm is not None and not np.array_equal(x.perm, np.arange(len(x.perm))):
        raise BuildError("the class scores reach the label select in a permuted order.")
    classes = x.shape[-1]
    if len(node.input) > 1:
        a = const(lw.sl, node.input[1]).astype(np.int64)
        b = const(lw.sl, node.input[2]).astype(np.int64)
    else:
        a = np.ones(classes, dtype=np.int64)
        b = np.zeros(classes, dtype=np.int64)
    affine = len(node.input) > 1
    if x.offset is not None and np.any(x.offset != x.offset[0]):
        b = b - a * x.offset  # scores of the streamlined accumulator
        affine = True
    inputs = [x.name]
    lo, hi = int(x.dtype.min()), int(x.dtype.max())
    score_bits = 32
    if affine:
        inputs += [lw.init("label_A", a), lw.init("label_B", b)]
        extremes = np.concatenate([a * lo + b, a * hi + b])
        score_bits = smallest_int_type(int(min(extremes.min(), 0)), int(max(extremes.max(), 0))).bitwidth()
    out = HwTensor("label", [1, 1], smallest_int_type(0, classes - 1))
    lw.emit("LabelSelect", inputs, out, node.output[0], in_shape=x.shape, in_dtype=x.dtype.name,
            PE=1, score_bits=score_bits)
    lw.tensors[node.output[0]] = out


RULES = {
    "Conv": lower_conv,
    "MatMul": lower_matmul,
    "MultiThreshold": lower_multithreshold,
    "Pad": lower_pad,
    "MaxPool": lower_maxpool,
    "Add": lower_add,
    "ReduceSum": lower_reducesum,
    "Reshape": lower_reshape,
    "Flatten": lower_reshape,
    "Transpose": lower_reshape,
    "LabelSelect": lower_label_select,
}


def insert_duplicate_streams(model: ModelWrapper) -> ModelWrapper:
    """Give every stream with several consumers its own copy through DuplicateStreams."""
    for tensor in list(model.get_all_tensor_names()):
        consumers = model.find_consumers(tensor)
        if len(consumers) < 2:
            continue
        shape = model.get_tensor_shape(tensor)
        dtype = model.get_tensor_datatype(tensor)
        outs = [f"{tensor}_copy{i}" for i in range(len(consumers))]
        node = helper.make_node("DuplicateStreams", [tensor], outs, name=f"{tensor}_fork", domain=DOMAIN,
                                in_shape=shape, out_shape=shape, in_dtype=dtype.name, out_dtype=dtype.name,
                                num_outputs=len(outs), PE=1)
        producer = model.find_producer(tensor)
        idx = list(model.graph.node).index(producer) + 1 if producer is not None else 0
        for consumer, out in zip(consumers, outs):
            for i, t in enumerate(consumer.input):
                if t == tensor:
                    consumer.input[i] = out
            model.graph.value_info.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, shape))
            model.set_tensor_datatype(out, dtype)
        model.graph.node.insert(idx, node)
    return model


def lower(streamlined: ModelWrapper) -> ModelWrapper:
    lw = Lowering(streamlined)
    inp = streamlined.graph.input[0]
    in_shape = streamlined.get_tensor_shape(inp.name)
    in_dtype = streamlined.get_tensor_datatype(inp.name)
    if len(in_shape) == 4:
        hw_in_shape = [1, in_shape[2], in_shape[3], in_shape[1]]
    else:
        hw_in_shape = [1, 1, 1, int(np.prod(in_shape[1:]))]
    lw.tensors[inp.name] = HwTensor("global_in", hw_in_shape, in_dtype)
    lw.shapes["global_in"] = hw_in_shape
    lw.dtypes["global_in"] = in_dtype
    for node in streamlined.graph.node:
        rule = RULES.get(node.op_type)
        if rule is None:
            raise BuildError(f"node '{node.name}' has op type '{node.op_type}', which has no hardware "
                             f"layer. Supported ops after streamlining: {', '.join(RULES)}.")
        rule(lw, node)
    out = lw.tensors[streamlined.graph.output[0].name]
    graph = helper.make_graph(
        lw.nodes, "dataflow",
        [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, hw_in_shape)],
        [helper.make_tensor_value_info(out.name, TensorProto.FLOAT, out.shape)],
        value_info=[helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in lw.shapes.items()
                    if n not in ("global_in", out.name)],
    )
    onnx_model = helper.make_model(graph, producer_name="hw_build",
                                   opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)])
    model = ModelWrapper(onnx_model)
    for name, value in lw.inits.items():
        model.set_initializer(name, value)
    for name, dtype in lw.dtypes.items():
        model.set_tensor_datatype(name, dtype)
    model = insert_duplicate_streams(model)
    return model
