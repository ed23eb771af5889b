"""Tidy: qonnx cleanup (constant folding except quantizers, shape inference, unique and
readable names), and a check that every op is one the compiler can map."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames, RemoveUnusedTensors
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.cleanup import cleanup_model

from hw_build.errors import BuildError

#: ops of exported models the streamlining passes understand
SUPPORTED_OPS = {
    "Conv", "Gemm", "MatMul", "BatchNormalization", "Add", "Sub", "Mul", "Div", "PRelu", "Relu",
    "LeakyRelu", "Pad", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean", "Reshape", "Flatten",
    "Transpose", "Identity", "Dropout", "Quant", "BipolarQuant",
}


def check_supported_ops(model: ModelWrapper) -> None:
    """Refuse unmappable ops by the user's own node names (before tidy renames nodes)."""
    for node in model.graph.node:
        if node.op_type not in SUPPORTED_OPS:
            raise BuildError(
                f"node '{node.name}' has op type '{node.op_type}', which cannot be mapped to "
                f"hardware. Supported ops: {', '.join(sorted(SUPPORTED_OPS))}. Remove or replace "
                "it in the model (e.g. drop a final Softmax: the accelerator outputs the top-1 label)."
            )


def tidy(model: ModelWrapper) -> ModelWrapper:
    check_supported_ops(model)
    try:
        model = cleanup_model(model)
        model = model.transform(InferShapes())
    except Exception as exc:  # qonnx/onnx shape inference raise their own types for an inconsistent graph
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise BuildError(f"qonnx cleanup and shape inference fail on the model ({type(exc).__name__}: {first}); "
                         "the graph is inconsistent (check the input shape against the layers). Export the "
                         "Brevitas model with brevitas.export.export_qonnx and pass that file.") from None
    model = model.transform(GiveUniqueNodeNames())
    model = model.transform(GiveReadableTensorNames())
    model = model.transform(RemoveUnusedTensors())
    inputs = [i for i in model.graph.input if model.get_initializer(i.name) is None]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise BuildError(f"the model has {len(inputs)} inputs and {len(model.graph.output)} outputs; "
                         "an accelerator takes one image input and gives one class-score output.")
    check_supported_ops(model)
    shape = model.get_tensor_shape(inputs[0].name)
    if shape is None or len(shape) not in (2, 4):
        raise BuildError(f"model input '{inputs[0].name}' has shape {shape}; expected NCHW images "
                         "(or [N, features]).")
    return model
