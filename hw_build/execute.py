"""Python execution of every stage's graph on a batch of inputs."""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.change_batchsize import ChangeBatchSize
from qonnx.transformation.infer_shapes import InferShapes

from hw_build.ops import is_hw_node


def with_batch(model: ModelWrapper, batch: int) -> ModelWrapper:
    """A copy of a qonnx model whose tensors have batch size ``batch``."""
    copy = ModelWrapper(model.model.SerializeToString())
    datatypes = {t: copy.get_tensor_datatype(t) for t in copy.get_all_tensor_names()}
    copy = copy.transform(ChangeBatchSize(batch))
    copy = copy.transform(InferShapes())
    for t, dt in datatypes.items():
        if t in copy.get_all_tensor_names():
            copy.set_tensor_datatype(t, dt)
    return copy


def execute_graph(model: ModelWrapper, x: np.ndarray, batch: int = 64, full_context: bool = False) -> dict:
    """Execute a qonnx graph (standard ops through onnxruntime, custom ops in numpy) on the
    first-axis batch ``x`` in chunks; returns {tensor: array} for the outputs (or all tensors)."""
    results: dict[str, list[np.ndarray]] = {}
    cache: dict[int, ModelWrapper] = {}
    inp = model.graph.input[0].name
    for start in range(0, x.shape[0], batch):
        chunk = np.ascontiguousarray(x[start : start + batch], dtype=np.float32)
        n = chunk.shape[0]
        if n not in cache:
            cache[n] = with_batch(model, n)
        ctx = execute_onnx(cache[n], {inp: chunk}, return_full_exec_context=full_context)
        for k, v in ctx.items():
            if isinstance(v, np.ndarray) and v.ndim > 0 and v.shape[0] == n and model.get_initializer(k) is None:
                results.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in results.items()}


def execute_dataflow(model: ModelWrapper, x_nhwc: np.ndarray, full_context: bool = False) -> dict:
    """Execute a hardware-layer graph on a batch of NHWC inputs through each layer's
    ``execute_node`` (any batch size; no onnxruntime involved)."""
    context: dict[str, np.ndarray] = {init.name: model.get_initializer(init.name) for init in model.graph.initializer}
    context[model.graph.input[0].name] = np.asarray(x_nhwc, dtype=np.float32)
    for node in model.graph.node:
        if not is_hw_node(node):
            raise ValueError(f"{node.name} ({node.op_type}) is not a hardware layer")
        getCustomOp(node).execute_node(context, model.graph)
    if full_context:
        return context
    return {o.name: context[o.name] for o in model.graph.output}
