"""Integer datatype annotation of the streamlined graph.

A tensor is annotated with the smallest integer type holding its value range when it is
integer by construction (raw pixels, threshold levels, integer matmuls/convs of integers,
sums of integers, pooling/padding/reshaping of integers). Every pass relies on these
annotations to know which tensors are already in the integer domain.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from hw_build.streamline.graph import const, is_integer_tensor, set_int_type

INTEGER_PRESERVING = ("MaxPool", "Reshape", "Flatten", "Transpose", "Identity")


def _bounds(model: ModelWrapper, tensor: str) -> tuple[int, int]:
    dt = model.get_tensor_datatype(tensor)
    if dt == DataType["BIPOLAR"]:
        return -1, 1
    return int(dt.min()), int(dt.max())


def _linear_bounds(w: np.ndarray, lo: int, hi: int, reduce_axes: tuple[int, ...]) -> tuple[float, float]:
    low = np.minimum(w * lo, w * hi).sum(axis=reduce_axes)
    high = np.maximum(w * lo, w * hi).sum(axis=reduce_axes)
    return float(low.min()), float(high.max())


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


class InferIntegerTypes(Transformation):
    """Annotate every tensor that is integer by construction (see module docstring)."""

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            out = node.output[0] if node.output else None
            ins = [t for t in node.input if t and const(model, t) is None]
            op = node.op_type
            if op == "MultiThreshold":
                n_thr = const(model, node.input[1]).shape[1]
                set_int_type(model, out, 0, n_thr)
            elif op in ("Conv", "MatMul") and ins and is_integer_tensor(model, ins[0]):
                w = const(model, node.input[1])
                if w is None or not np.all(w == np.round(w)) or (len(node.input) > 2 and node.input[2]):
                    continue
                lo, hi = _bounds(model, node.input[0])
                axes = (1, 2, 3) if op == "Conv" else (0,)
                low, high = _linear_bounds(w.astype(np.float64), lo, hi, axes)
                set_int_type(model, out, low, high)
            elif op == "Add" and len(ins) == 2 and all(is_integer_tensor(model, t) for t in ins):
                (alo, ahi), (blo, bhi) = (_bounds(model, t) for t in ins)
                set_int_type(model, out, alo + blo, ahi + bhi)
            elif op in INTEGER_PRESERVING and ins and is_integer_tensor(model, ins[0]):
                model.set_tensor_datatype(out, model.get_tensor_datatype(ins[0]))
            elif op == "Pad" and ins and is_integer_tensor(model, ins[0]):
                _, value = pad_params(model, node)
                if value == round(value):
                    lo, hi = _bounds(model, ins[0])
                    set_int_type(model, out, min(lo, value), max(hi, value))
            elif op == "ReduceSum" and ins and is_integer_tensor(model, ins[0]):
                shape = model.get_tensor_shape(ins[0])
                count = int(np.prod(shape[2:]))
                lo, hi = _bounds(model, ins[0])
                set_int_type(model, out, lo * count, hi * count)
        return model, False
