"""Integer datatype annotation of the streamlined graph.

A tensor is annotated with the smallest integer type holding its value range when it is
integer by construction (raw pixels, threshold levels, integer matmuls/convs of integers,
sums of integers, pooling/padding/reshaping of integers). Every pass relies on these
annotations to know which tensors are already in the integer domain.
"""

from __future__ import annotations

import hashlib

import numpy as np
from onnx import TensorProto, numpy_helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from hw_build.ops.base import smallest_int_type
from hw_build.streamline.graph import const

INTEGER_PRESERVING = ("MaxPool", "Reshape", "Flatten", "Transpose", "Identity")



def _linear_bounds(w: np.ndarray, lo: int, hi: int, reduce_axes: tuple[int, ...]) -> tuple[float, float]:
    low = np.minimum(w * lo, w * hi).sum(axis=reduce_axes)
    high = np.maximum(w * lo, w * hi).sum(axis=reduce_axes)
    return float(low.min()), float(high.max())


#: (op, input bounds, weight dims, type, digest of the weight bytes) -> output bounds, or None
#: for non-integer weights. This pass runs after every rewrite of the streamliner and the
#: weights rarely change between runs; recomputing the bounds of every Conv/MatMul each time
#: made it the bulk of streamlining a ResNet-18 (0.5 s a call, hundreds of calls).
_BOUNDS_CACHE: dict[tuple, tuple[float, float] | None] = {}
_BOUNDS_CACHE_LIMIT = 4096


def _weight_bounds(init, op: str, lo: int, hi: int) -> tuple[float, float] | None:
    """Output bounds of a Conv (axes 1-3) or MatMul (axis 0) with weights ``init`` (an
    initializer proto) over inputs in [lo, hi]; None when the weights are not integers."""
    raw = init.raw_data
    content = hashlib.blake2b(raw if raw else numpy_helper.to_array(init).tobytes(), digest_size=16).digest()
    key = (op, lo, hi, tuple(init.dims), init.data_type, content)
    if key not in _BOUNDS_CACHE:
        w = numpy_helper.to_array(init)
        if not np.all(w == np.round(w)):
            result = None
        else:
            result = _linear_bounds(w.astype(np.float64), lo, hi, (1, 2, 3) if op == "Conv" else (0,))
        if len(_BOUNDS_CACHE) >= _BOUNDS_CACHE_LIMIT:
            _BOUNDS_CACHE.pop(next(iter(_BOUNDS_CACHE)))
        _BOUNDS_CACHE[key] = result
    return _BOUNDS_CACHE[key]


def pad_params(model: ModelWrapper, node) -> tuple[list[int], float]:
    """ONNX Pad (attribute or input form) -> (pads, constant value)."""
    from qonnx.util.basic import get_by_name

    attr = get_by_name(node.attribute, "pads")
    if attr is not None:
        pads = list(attr.ints)
        value_attr = get_by_name(node.attribute, "value")
        value = value_attr.f if value_attr is not None else 0.0
    else:
        pads = [int(p) for p in const(model, node.input[1]).flatten()]
        value = 0.0
        if len(node.input) > 2 and node.input[2]:
            value = float(const(model, node.input[2]).flatten()[0])
    mode = get_by_name(node.attribute, "mode")
    if mode is not None and mode.s not in (b"constant", "constant"):
        raise ValueError(f"Pad node {node.name}: only constant padding is supported")
    return pads, value


class _Datatypes:
    """The graph's datatype annotations, read once per pass: ModelWrapper looks every one up
    by a linear search, and this pass runs after every rewrite (quadratic on big graphs)."""

    def __init__(self, model: ModelWrapper) -> None:
        self.model = model
        self.known: dict[str, DataType] = {}
        for ann in model.graph.quantization_annotation:
            for kv in ann.quant_parameter_tensor_names:
                if kv.key == "finn_datatype":
                    self.known[ann.tensor_name] = DataType[kv.value]
        graph = model.graph
        self.float_tensors = {vi.name for vi in [*graph.value_info, *graph.input, *graph.output]
                              if vi.type.tensor_type.elem_type == TensorProto.FLOAT}

    def get(self, tensor: str) -> DataType:
        if tensor not in self.known:
            self.known[tensor] = (DataType["FLOAT32"] if tensor in self.float_tensors
                                  else self.model.get_tensor_datatype(tensor))
        return self.known[tensor]

    def is_integer(self, tensor: str) -> bool:
        return self.get(tensor).is_integer()

    def bounds(self, tensor: str) -> tuple[int, int]:
        dt = self.get(tensor)
        if dt == DataType["BIPOLAR"]:
            return -1, 1
        return int(dt.min()), int(dt.max())

    def set(self, tensor: str, dt: DataType) -> None:
        if self.known.get(tensor) != dt:
            self.model.set_tensor_datatype(tensor, dt)
            self.known[tensor] = dt

    def set_range(self, tensor: str, lo: float, hi: float) -> None:
        self.set(tensor, smallest_int_type(int(np.floor(lo)), int(np.ceil(hi))))


class InferIntegerTypes(Transformation):
    """Annotate every tensor that is integer by construction (see module docstring)."""

    def apply(self, model: ModelWrapper):
        types = _Datatypes(model)
        inits = {init.name: init for init in model.graph.initializer}
        constants = set(inits)
        for node in model.graph.node:
            out = node.output[0] if node.output else None
            ins = [t for t in node.input if t and t not in constants]
            op = node.op_type
            if op == "MultiThreshold":
                n_thr = const(model, node.input[1]).shape[1]
                types.set_range(out, 0, n_thr)
            elif op in ("Conv", "MatMul") and ins and types.is_integer(ins[0]):
                weights = inits.get(node.input[1])
                if weights is None or (len(node.input) > 2 and node.input[2]):
                    continue
                lo, hi = types.bounds(node.input[0])
                bounds = _weight_bounds(weights, op, lo, hi)
                if bounds is not None:
                    types.set_range(out, *bounds)
            elif op == "Add" and len(ins) == 2 and all(types.is_integer(t) for t in ins):
                (alo, ahi), (blo, bhi) = (types.bounds(t) for t in ins)
                types.set_range(out, alo + blo, ahi + bhi)
            elif op in INTEGER_PRESERVING and ins and types.is_integer(ins[0]):
                types.set(out, types.get(ins[0]))
            elif op == "Pad" and ins and types.is_integer(ins[0]):
                _, value = pad_params(model, node)
                if value == round(value):
                    lo, hi = types.bounds(ins[0])
                    types.set_range(out, min(lo, value), max(hi, value))
            elif op == "ReduceSum" and ins and types.is_integer(ins[0]):
                shape = model.get_tensor_shape(ins[0])
                count = int(np.prod(shape[2:]))
                lo, hi = types.bounds(ins[0])
                types.set_range(out, lo * count, hi * count)
        return model, False
