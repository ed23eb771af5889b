"""Small graph helpers shared by the streamlining passes (qonnx ModelWrapper based)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from hw_build.ops.base import smallest_int_type

#: element-wise ops with one constant operand that the passes understand
AFFINE_OPS = ("Mul", "Add")
#: ops that only rearrange data: integer in, integer out, no arithmetic
LAYOUT_OPS = ("Reshape", "Flatten", "Transpose", "Identity")


def const(model: ModelWrapper, tensor: str) -> np.ndarray | None:
    return model.get_initializer(tensor)


def affine_operand(model: ModelWrapper, node) -> tuple[str, np.ndarray] | None:
    """For Mul/Add with exactly one constant input: (dynamic input, constant)."""
    if node.op_type not in AFFINE_OPS or len(node.input) != 2:
        return None
    a, b = (const(model, t) for t in node.input)
    if a is None and b is not None:
        return node.input[0], b.astype(np.float32)
    if b is None and a is not None:
        return node.input[1], a.astype(np.float32)
    return None


def single_consumer(model: ModelWrapper, tensor: str):
    consumers = model.find_consumers(tensor)
    if len(consumers) != 1 or tensor in [o.name for o in model.graph.output]:
        return None
    return consumers[0]


def fresh_name(model: ModelWrapper, hint: str) -> str:
    """``<hint>_<n>`` with the smallest n no tensor of the graph uses. Deterministic (unlike
    qonnx's random ``make_new_valueinfo_name``): two builds of one model name their tensors,
    and so their stream FIFOs, alike, so a build's folding.json fits the next build."""
    g = model.graph
    taken = {t.name for t in (*g.value_info, *g.input, *g.output, *g.initializer)}
    taken.update(out for node in g.node for out in node.output)
    k = 0
    while f"{hint}_{k}" in taken:
        k += 1
    return f"{hint}_{k}"


def new_tensor(model: ModelWrapper, shape, hint: str = "t") -> str:
    name = fresh_name(model, hint)
    vi = helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape) if shape else None)
    model.graph.value_info.append(vi)
    return name


def add_const(model: ModelWrapper, value: np.ndarray, hint: str = "c") -> str:
    name = fresh_name(model, hint)
    model.set_initializer(name, np.asarray(value, dtype=np.float32))
    return name


def insert_after(model: ModelWrapper, anchor, node) -> None:
    """Insert node right after anchor (keeps the node list topologically sorted)."""
    idx = list(model.graph.node).index(anchor)
    model.graph.node.insert(idx + 1, node)


def insert_before(model: ModelWrapper, anchor, node) -> None:
    idx = list(model.graph.node).index(anchor)
    model.graph.node.insert(idx, node)


def per_channel(value: np.ndarray, shape: list[int]) -> np.ndarray | None:
    """The constant as a vector over axis 1 of a tensor of ``shape``, or None when it varies
    along another axis. Scalars give a vector of length 1."""
    v = np.asarray(value, dtype=np.float32)
    if v.size == 1:
        return v.reshape(1)
    if len(shape) < 2:
        return None
    full = np.broadcast_to(v, [1] + list(shape[1:])) if v.ndim <= len(shape) else None
    if full is None:
        return None
    moved = np.moveaxis(full, 1, -1).reshape(-1, shape[1])
    if not np.all(moved == moved[0:1]):
        return None
    return moved[0].copy()


def channel_shaped(vec: np.ndarray, rank: int) -> np.ndarray:
    """Per-channel vector -> constant broadcastable over axis 1 of a rank-``rank`` tensor."""
    vec = np.asarray(vec, dtype=np.float32)
    if vec.size == 1:
        return vec.reshape([])
    return vec.reshape([1, -1] + [1] * (rank - 2))


def is_integer_tensor(model: ModelWrapper, tensor: str) -> bool:
    dt = model.get_tensor_datatype(tensor)
    return dt is not None and dt.is_integer()


def bounds_of(model: ModelWrapper, tensor: str) -> tuple[int, int]:
    """Value range of an integer-annotated tensor (from its datatype annotation)."""
    dt = model.get_tensor_datatype(tensor)
    if dt == DataType["BIPOLAR"]:
        return -1, 1
    return int(dt.min()), int(dt.max())


def set_int_type(model: ModelWrapper, tensor: str, lo: float, hi: float) -> None:
    model.set_tensor_datatype(tensor, smallest_int_type(int(np.floor(lo)), int(np.ceil(hi))))


def remove_node(model: ModelWrapper, node) -> None:
    model.graph.node.remove(node)


def rewire_consumers(model: ModelWrapper, old: str, new: str) -> None:
    """Point every consumer (and graph output) of ``old`` at ``new``."""
    for n in model.graph.node:
        for i, t in enumerate(n.input):
            if t == old:
                n.input[i] = new
    for o in model.graph.output:
        if o.name == old:
            # keep the graph output name stable: rename the producer's output instead
            raise ValueError("rewire_consumers cannot move a graph output")


def bypass(model: ModelWrapper, node) -> None:
    """Remove ``node``, whose output (not a graph output) is then read from its first input."""
    rewire_consumers(model, node.output[0], node.input[0])
    model.graph.node.remove(node)


class GraphView:
    """A read-only snapshot of ``model`` that answers ModelWrapper's lookups (initializers,
    producers, consumers, shapes, datatypes) from dictionaries built once.

    ModelWrapper finds every tensor by a linear search of the graph, and the streamliner's
    fixed point rescans the whole graph after every rewrite, which made streamlining a
    ResNet-18 quadratic. A pass scans with a view and rewrites the real model; it returns
    right after its one rewrite, so the view is never read after the graph changed. The
    answers are ModelWrapper's, first match included (a node reading a tensor twice is two
    consumers, as in ``find_consumers``). Anything else is delegated to the model."""

    def __init__(self, model: ModelWrapper) -> None:
        graph = model.graph
        self._model = model
        self._inits: dict[str, TensorProto] = {}
        for init in graph.initializer:
            self._inits.setdefault(init.name, init)
        self._producers: dict[str, object] = {}
        self._consumers: dict[str, list] = {}
        for node in graph.node:
            for t in node.output:
                self._producers.setdefault(t, node)
            for t in node.input:
                self._consumers.setdefault(t, []).append(node)
        self._value_info: dict[str, object] = {}
        for vi in [*graph.input, *graph.output, *graph.value_info]:
            self._value_info.setdefault(vi.name, vi)
        self._annotations: dict[str, object] = {}
        for ann in graph.quantization_annotation:
            self._annotations.setdefault(ann.tensor_name, ann)

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def get_initializer(self, tensor_name: str) -> np.ndarray | None:
        init = self._inits.get(tensor_name)
        return None if init is None else numpy_helper.to_array(init)

    def find_producer(self, tensor_name: str):
        return self._producers.get(tensor_name)

    def find_consumers(self, tensor_name: str) -> list:
        return list(self._consumers.get(tensor_name, []))

    def get_tensor_shape(self, tensor_name: str) -> list[int] | None:
        vi = self._value_info.get(tensor_name)
        if vi is not None:
            return [d.dim_value for d in vi.type.tensor_type.shape.dim]
        init = self._inits.get(tensor_name)
        return None if init is None else list(init.dims)

    def get_tensor_datatype(self, tensor_name: str) -> DataType:
        ann = self._annotations.get(tensor_name)
        if ann is not None:
            for kv in ann.quant_parameter_tensor_names:
                if kv.key == "finn_datatype":
                    return DataType[kv.value]
        vi = self._value_info.get(tensor_name)
        if vi is not None:
            onnx_dtype = vi.type.tensor_type.elem_type
        else:
            init = self._inits.get(tensor_name)
            onnx_dtype = None if init is None else init.data_type
        return DataType["FLOAT16"] if onnx_dtype == TensorProto.FLOAT16 else DataType["FLOAT32"]
