"""The end-of-streamlining check: every node must be an integer operation the lowering
knows. Anything else gets an error that names the node and says what to change."""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from hw_build.errors import BuildError
from hw_build.streamline.absorb import residual_scale_mismatch
from hw_build.streamline.graph import affine_operand, const, is_integer_tensor, single_consumer
from hw_build.streamline.types import pad_params

INTEGER_OPS = ("MultiThreshold", "Conv", "MatMul", "MaxPool", "Pad", "Add", "ReduceSum",
               "Reshape", "Flatten", "Transpose", "LabelSelect")


def _float_weight_layers(model: ModelWrapper):
    for node in model.graph.node:
        if node.op_type in ("Conv", "MatMul", "Gemm") and len(node.input) > 1:
            w = const(model, node.input[1])
            if w is not None and not is_integer_tensor(model, node.input[1]) and not (
                node.op_type == "Conv" and np.all(w == 1)
            ):
                yield node


def assert_integer_only(model: ModelWrapper) -> None:
    # the root cause first: a layer without quantized weights blocks everything around it
    for node in _float_weight_layers(model):
        raise BuildError(
            f"layer '{node.name}' ({node.op_type}) has floating-point weights. Every Conv/Linear "
            "must have Brevitas-quantized weights (QuantConv2d/QuantLinear), so its quantizers "
            "around it could not be turned into thresholds."
        )
    # then the most specific diagnosis: residual adds, padding, quantizers, anything else
    problems: list[tuple[int, str]] = []
    for node in model.graph.node:
        problem = _diagnose(model, node)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise BuildError(min(problems, key=lambda p: p[0])[1])


def _diagnose(model: ModelWrapper, node) -> tuple[int, str] | None:
    """(priority, message) for a node that is not an integer operation, else None."""
    dyn = [t for t in node.input if t and const(model, t) is None]
    outs_int = all(is_integer_tensor(model, o) for o in node.output)
    ins_int = all(is_integer_tensor(model, t) for t in dyn)
    if node.op_type in INTEGER_OPS and ins_int and (outs_int or node.op_type == "LabelSelect"):
        return None
    stuck = _stuck_in_front_of_layer(model, node)
    if stuck is not None:
        return -1, stuck
    if node.op_type == "Add" and len(dyn) == 2:
        scales = residual_scale_mismatch(model, node)
        if scales is not None:
            return 0, (
                f"residual add '{node.name}': its two inputs have different scales "
                f"({scales[0]} vs {scales[1]}), so the sum is not an integer add. Put both "
                "inputs through one shared quantizer (the same QuantIdentity instance) "
                "right before the add."
            )
        return 1, (
            f"add '{node.name}' joins tensors that are not both quantized "
            f"({', '.join(dyn)}). Each input of a residual add must come straight from "
            "an activation quantizer, the same quantizer instance on both inputs."
        )
    if node.op_type == "Pad" and ins_int:
        _, value = pad_params(model, node)
        return 2, (
            f"pad '{node.name}': the padding value becomes {value:g} in the integer encoding "
            "of its input, which is not a representable value (zero padding of a binary "
            "activation is neither +1 nor -1). Pad binary activations with -1 "
            "(F.pad(x, ..., value=-1.0)) and train with that padding."
        )
    if node.op_type in ("Quant", "BipolarQuant"):
        return 3, (
            f"quantizer '{node.name}' could not be turned into thresholds: its input is not an "
            "integer tensor followed only by per-channel scales, biases, BatchNorm, PReLU or "
            "ReLU. Check that every layer in front of it has quantized weights and a "
            "quantized input."
        )
    inputs_desc = ", ".join(f"{t} ({model.get_tensor_datatype(t).name})" for t in dyn)
    return 4, (
        f"node '{node.name}' ({node.op_type}) still computes in floating point after "
        f"streamlining (inputs: {inputs_desc}). Every layer needs a quantized input and "
        "quantized weights, and every constant scale/bias must sit between a layer and the "
        "next activation quantizer (per tensor or per channel)."
    )


def _stuck_in_front_of_layer(model: ModelWrapper, node) -> str | None:
    """The root cause when a constant scale/bias could not move past the Conv/MatMul after it:
    every float tensor downstream (residual adds included) follows from it."""
    op = affine_operand(model, node)
    layer = single_consumer(model, node.output[0]) if op is not None else None
    if layer is None or layer.op_type not in ("Conv", "MatMul"):
        return None
    c = op[1]
    what = "scale" if node.op_type == "Mul" else "bias"
    kind = "per-tensor" if c.size == 1 else f"per-element (shape {list(c.shape)})"
    return (
        f"the {kind} {what} '{node.name}' ({node.op_type}) in front of {layer.op_type} '{layer.name}' "
        "cannot move through it into the thresholds after it: the weights are integers, so only a "
        "scale that is the same for all input channels of a group (a per-tensor scale, or "
        "per-channel in front of a depthwise conv) and only an unpadded conv without its own bias "
        "can take it. Give the quantizer feeding this layer a per-tensor scale "
        "(e.g. scaling_per_output_channel=False) and pad binary inputs explicitly with -1."
    )
