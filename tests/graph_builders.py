"""Small qonnx graphs for unit tests of the streamlining passes and the hardware layers.

``GraphBuilder`` collects ONNX nodes (opset 17, plus the qonnx domain for Quant,
BipolarQuant and MultiThreshold), constant initializers, value_info shapes (batch 1) and
qonnx datatype annotations, and turns them into a ``ModelWrapper``::

    g = GraphBuilder()
    x = g.input([1, 4], "INT4")
    y = g.quant(g.add(g.mul(x, [0.5, 1, 2, 3]), 0.25), scale=0.5, bits=3, signed=False)
    model = g.build(y)
    out = run(model, np.arange(-8, 8)[:, None].repeat(4, 1))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from hw_build.execute import execute_graph

OPSET = 17
QONNX_DOMAIN = "qonnx.custom_op.general"
HW_DOMAIN = "hw_build.ops"


class GraphBuilder:
    """Accumulates nodes, constants, shapes and datatypes; ``build`` makes the model."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.shapes: dict[str, list[int]] = {}
        self.dtypes: dict[str, str] = {}
        self.inputs: list[str] = []
        self._count = 0

    # ----- names, inputs, constants
    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}{self._count}"

    def input(self, shape: Sequence[int], dtype: str | None = None, name: str = "x") -> str:
        self.inputs.append(name)
        self.shapes[name] = list(shape)
        if dtype is not None:
            self.dtypes[name] = dtype
        return name

    def const(self, value, hint: str = "c", dtype: str | None = None) -> str:
        """A constant initializer (float32 unless ``value`` is an int64 array)."""
        arr = np.asarray(value)
        arr = arr if arr.dtype == np.int64 else arr.astype(np.float32)
        name = self.fresh(hint)
        self.inits[name] = arr
        if dtype is not None:
            self.dtypes[name] = dtype
        return name

    def shape(self, tensor: str) -> list[int]:
        if tensor in self.inits:
            return list(self.inits[tensor].shape)
        return list(self.shapes[tensor])

    def _operand(self, value, hint: str = "c") -> str:
        return value if isinstance(value, str) else self.const(value, hint)

    # ----- generic node
    def node(self, op_type: str, inputs: Sequence[str], shape: Sequence[int] | None = None,
             domain: str = "", name: str | None = None, dtype: str | None = None, **attrs) -> str:
        """Append a node with one output; ``shape`` defaults to the first input's shape."""
        name = name or self.fresh(op_type.lower() + "_")
        out = f"{name}_out"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=name, domain=domain, **attrs))
        self.shapes[out] = list(shape) if shape is not None else self.shape(inputs[0])
        if dtype is not None:
            self.dtypes[out] = dtype
        return out

    # ----- element-wise ops
    def mul(self, x: str, c, name: str | None = None) -> str:
        return self.node("Mul", [x, self._operand(c)], name=name)

    def add(self, x: str, c, name: str | None = None) -> str:
        if isinstance(c, str) and c not in self.inits:
            # dynamic add: broadcast shape of the two inputs
            shape = list(np.broadcast_shapes(tuple(self.shape(x)), tuple(self.shape(c))))
            return self.node("Add", [x, c], shape=shape, name=name)
        return self.node("Add", [x, self._operand(c)], name=name)

    def relu(self, x: str, name: str | None = None) -> str:
        return self.node("Relu", [x], name=name)

    def prelu(self, x: str, slope, name: str | None = None) -> str:
        return self.node("PRelu", [x, self._operand(slope, "slope")], name=name)

    # ----- linear layers, padding, pooling, reshaping
    def matmul(self, x: str, w, name: str | None = None, w_dtype: str | None = None) -> str:
        w_name = w if isinstance(w, str) else self.const(w, "W", dtype=w_dtype)
        n = self.shape(x)[0]
        return self.node("MatMul", [x, w_name], shape=[n, self.shape(w_name)[1]], name=name)

    def gemm(self, x: str, w: str, bias=None, name: str | None = None, **attrs) -> str:
        trans_b = attrs.get("transB", 0)
        out_features = self.shape(w)[0] if trans_b else self.shape(w)[1]
        inputs = [x, w] + ([self._operand(bias, "bias")] if bias is not None else [])
        return self.node("Gemm", inputs, shape=[self.shape(x)[0], out_features], name=name, **attrs)

    def conv(self, x: str, w, pads=(0, 0, 0, 0), strides=(1, 1), group: int = 1,
             name: str | None = None, w_dtype: str | None = None) -> str:
        w_name = w if isinstance(w, str) else self.const(w, "W", dtype=w_dtype)
        n, _, h, wd = self.shape(x)
        o, _, kh, kw = self.shape(w_name)
        oh = (h + pads[0] + pads[2] - kh) // strides[0] + 1
        ow = (wd + pads[1] + pads[3] - kw) // strides[1] + 1
        return self.node("Conv", [x, w_name], shape=[n, o, oh, ow], name=name, kernel_shape=[kh, kw],
                         pads=list(pads), strides=list(strides), group=group)

    def pad(self, x: str, pads_hw: Sequence[int], value: float, name: str | None = None) -> str:
        """Constant padding of the H, W axes of NCHW ``x``; pads_hw = (top, left, bottom, right)."""
        t, left, b, r = pads_hw
        pads = np.array([0, 0, t, left, 0, 0, b, r], dtype=np.int64)
        n, c, h, w = self.shape(x)
        return self.node("Pad", [x, self.const(pads, "pads"), self.const(np.float32(value), "padval")],
                         shape=[n, c, h + t + b, w + left + r], name=name, mode="constant")

    def maxpool(self, x: str, k: int, name: str | None = None) -> str:
        n, c, h, w = self.shape(x)
        return self.node("MaxPool", [x], shape=[n, c, h // k, w // k], name=name, kernel_shape=[k, k],
                         strides=[k, k])

    def flatten(self, x: str, name: str | None = None) -> str:
        shape = self.shape(x)
        return self.node("Flatten", [x], shape=[shape[0], int(np.prod(shape[1:]))], name=name, axis=1)

    # ----- quantizers
    def quant(self, x: str, scale, bits: int, signed: bool = True, narrow: bool = False, zeropt=0.0,
              rounding: str = "ROUND", name: str | None = None) -> str:
        inputs = [x, self.const(scale, "scale"), self.const(zeropt, "zeropt"), self.const(np.float32(bits), "bits")]
        return self.node("Quant", inputs, domain=QONNX_DOMAIN, name=name, signed=int(signed),
                         narrow=int(narrow), rounding_mode=rounding)

    def bipolar_quant(self, x: str, scale, name: str | None = None) -> str:
        return self.node("BipolarQuant", [x, self.const(scale, "scale")], domain=QONNX_DOMAIN, name=name)

    def quant_weight(self, w: np.ndarray, scale, bits: int | None = None, signed: bool = True,
                     narrow: bool = False) -> str:
        """Quant/BipolarQuant of a constant weight (``bits=None``: BipolarQuant)."""
        w_name = self.const(w, "Wfloat")
        self.shapes[w_name] = list(np.shape(w))
        if bits is None:
            return self.bipolar_quant(w_name, scale)
        return self.quant(w_name, scale, bits, signed=signed, narrow=narrow)

    # ----- the model
    def build(self, outputs: str | Sequence[str]) -> ModelWrapper:
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        vi = lambda t: helper.make_tensor_value_info(t, TensorProto.FLOAT, self.shape(t))  # noqa: E731
        produced = {o for n in self.nodes for o in n.output}
        value_info = [vi(t) for t in self.shapes if t in produced and t not in outputs and t not in self.inits]
        graph = helper.make_graph(
            self.nodes, "test_graph",
            [vi(t) for t in self.inputs], [vi(t) for t in outputs],
            initializer=[numpy_helper.from_array(v, k) for k, v in self.inits.items()],
            value_info=value_info,
        )
        onnx_model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(QONNX_DOMAIN, 1)],
            producer_name="tests.graph_builders",
        )
        model = ModelWrapper(onnx_model)
        for tensor, dt in self.dtypes.items():
            model.set_tensor_datatype(tensor, DataType[dt])
        return model


def run(model: ModelWrapper, x: np.ndarray, output: str | None = None) -> np.ndarray:
    """Execute ``model`` on the batch ``x`` (first axis) in one chunk; returns the first
    graph output (or the tensor ``output``)."""
    x = np.asarray(x, dtype=np.float32)
    name = output or model.graph.output[0].name
    return execute_graph(model, x, batch=max(1, x.shape[0]))[name]


def copy_model(model: ModelWrapper) -> ModelWrapper:
    """An independent copy (the passes edit models in place)."""
    return ModelWrapper(model.model.SerializeToString())


def integer_values(dtype: str) -> np.ndarray:
    """Every value of an integer qonnx datatype, ascending."""
    dt = DataType[dtype]
    if dt == DataType["BIPOLAR"]:
        return np.array([-1.0, 1.0], dtype=np.float32)
    return np.arange(int(dt.min()), int(dt.max()) + 1).astype(np.float32)


def every_value_batch(dtype: str, shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """A batch shaped ``[V] + shape[1:]`` in which every channel (axis 1) of every pixel sees
    every value of ``dtype`` once (values shuffled independently per element)."""
    values = integer_values(dtype)
    rng = np.random.default_rng(seed)
    rest = int(np.prod(shape[1:]))
    cols = [rng.permutation(values) for _ in range(rest)]
    return np.stack(cols, axis=1).reshape([len(values)] + list(shape[1:])).astype(np.float32)


def node_types(model: ModelWrapper) -> list[str]:
    return [n.op_type for n in model.graph.node]


def nodes_of(model: ModelWrapper, op_type: str) -> list:
    return [n for n in model.graph.node if n.op_type == op_type]


def only_node(model: ModelWrapper, op_type: str):
    found = nodes_of(model, op_type)
    assert len(found) == 1, f"expected one {op_type}, found {node_types(model)}"
    return found[0]
