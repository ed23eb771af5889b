"""Checks of a user's QONNX graph before anything executes it.

The export step runs the user's graph (onnxruntime and qonnx) for the reference scores, so
every property those libraries would trip over, and every number the hardware cannot hold,
is checked here first and reported by node, tensor and rule, with what to do about it.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from hw_build.errors import BuildError

#: op domains of exported models (standard ONNX and QONNX's quantizers)
KNOWN_DOMAINS = {"", "ai.onnx", "qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general"}
QUANT_OPS = {"Quant", "BipolarQuant"}
#: ops whose second input is a weight matrix that must be constant
WEIGHT_OPS = {"Conv", "Gemm", "MatMul"}
#: elementwise ops that the compiler maps only with one constant operand
CONSTANT_OPERAND_OPS = {"Mul", "Div", "Sub"}
#: (op, input index) slots where an int64 initializer is a shape, axes or pads, not data
INTEGER_SLOTS = {("Reshape", 1), ("Pad", 1), ("Pad", 3), ("ReduceMean", 1), ("Transpose", 1), ("Squeeze", 1),
                 ("Unsqueeze", 1)}
#: widest activation the thresholding hardware holds: a b-bit activation needs 2^b - 1 thresholds
#: per channel in block RAM (8 bits: 255, like the 8-bit input quantizer)
MAX_ACTIVATION_BITS = 8
#: widest constant quantizer at all (Brevitas' 32-bit bias quantizers)
MAX_CONSTANT_BITS = 32
MIN_IR_VERSION = 3
FIX_EXPORT = "Export the Brevitas model with brevitas.export.export_qonnx and pass that file."


def _dtype_name(elem_type: int) -> str:
    return TensorProto.DataType.Name(elem_type)


def _constant_tensors(graph: onnx.GraphProto) -> set[str]:
    """Tensors whose value does not depend on the graph input (initializers, Constant nodes and
    everything computed from them alone)."""
    const = {i.name for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" or (node.input and all(not i or i in const for i in node.input)):
            const.update(node.output)
    return const


def check_header(proto: onnx.ModelProto, path: str) -> None:
    """What onnx's own checker would reject with a less helpful message: the IR version, opsets
    and an empty graph."""
    g = proto.graph
    if not proto.HasField("graph") or not (g.node or g.input or g.output or g.initializer):
        raise BuildError(f"'{path}' is not a valid ONNX model (it holds no graph). {FIX_EXPORT}")
    if not g.node:
        raise BuildError(f"'{path}' has a graph with no nodes; it computes nothing. {FIX_EXPORT}")
    newest = onnx.IR_VERSION
    if not MIN_IR_VERSION <= proto.ir_version <= newest:
        raise BuildError(f"'{path}' has ONNX IR version {proto.ir_version}; this compiler reads IR versions "
                         f"{MIN_IR_VERSION} to {newest}. Re-export the model with the installed onnx "
                         f"({onnx.__version__}): {FIX_EXPORT}")
    for op in proto.opset_import:
        if op.domain not in KNOWN_DOMAINS:
            raise BuildError(f"'{path}' imports the operator domain '{op.domain}', which this compiler does not "
                             f"know (known: standard ONNX and qonnx.custom_op.general). {FIX_EXPORT}")
        if op.domain in ("", "ai.onnx") and op.version > onnx.defs.onnx_opset_version():
            raise BuildError(f"'{path}' uses ONNX opset {op.version}; the installed onnx supports opsets up to "
                             f"{onnx.defs.onnx_opset_version()}. Export with opset_version <= that.")


def check_graph(proto: onnx.ModelProto, path: str) -> dict:
    """Refuse what the compiler (or the libraries running the reference) cannot take, naming
    the node or tensor and the fix. Returns facts the build reports: {"batch": int | "dynamic"}."""
    from hw_build.tidy import check_supported_ops

    check_header(proto, path)
    g = proto.graph
    for node in g.node:
        if node.domain not in KNOWN_DOMAINS:
            raise BuildError(f"node '{node.name}' ({node.op_type}) is in the operator domain '{node.domain}', "
                             f"which this compiler does not know. {FIX_EXPORT}")
    check_supported_ops(proto)

    inits = {i.name: i for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1 or len(g.output) != 1:
        raise BuildError(f"'{path}' has {len(inputs)} graph inputs and {len(g.output)} outputs "
                         f"({', '.join(i.name for i in inputs) or 'none'} -> "
                         f"{', '.join(o.name for o in g.output) or 'none'}); an accelerator takes one image input "
                         "and gives one class-score output. Export a model with one input and one output.")
    inp, out = inputs[0], g.output[0]
    batch = _check_input(inp)
    produced = {o for n in g.node for o in n.output}
    if out.name not in produced:
        what = "the graph input itself" if out.name == inp.name else (
            "a constant initializer" if out.name in inits else "not computed by any node")
        raise BuildError(f"the graph output '{out.name}' is {what}; the model must compute its class scores "
                         f"from the input. {FIX_EXPORT}")
    const = _constant_tensors(g)
    if out.name in const:
        raise BuildError(f"the graph output '{out.name}' does not depend on the input '{inp.name}' (it is "
                         "computed from constants alone); the class scores must come from the image.")
    known = {inp.name, *inits, *produced}
    for node in g.node:
        for t in node.input:
            if t and t not in known:
                raise BuildError(f"node '{node.name}' ({node.op_type}) reads '{t}', which is neither the graph "
                                 f"input, an initializer nor any node's output. {FIX_EXPORT}")
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in g.node:
        for k, t in enumerate(node.input):
            consumers.setdefault(t, []).append((node, k))
    for name, init in inits.items():
        _check_initializer(name, init, consumers.get(name, []))
    for node in g.node:
        _check_node(node, inits, const)
    _check_binary_padding(g, inits, const)
    return {"batch": batch}


def _check_binary_padding(g: onnx.GraphProto, inits: dict[str, onnx.TensorProto], const: set[str]) -> None:
    """Zero padding of a binary activation (0 is neither +1 nor -1) is the root cause of later,
    misleading failures (e.g. at a residual add the padded conv feeds), so it is named first."""
    binary = {n.output[0] for n in g.node if n.op_type == "BipolarQuant" and n.input[0] not in const}
    fix = ("zero padding of a binary activation is neither +1 nor -1. Pad binary activations with -1 "
           "(F.pad(x, ..., value=-1.0), conv padding=0) and train with that padding")
    for node in g.node:
        if not node.input or node.input[0] not in binary:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv" and any(int(v) for v in attrs.get("pads", [])):
            raise BuildError(f"conv '{node.name}' pads its binary input '{node.input[0]}' with zeros "
                             f"(pads={list(attrs['pads'])}): {fix}.")
        if node.op_type == "Pad" and attrs.get("mode", b"constant") in (b"constant", "constant"):
            value = attrs.get("value", 0.0)
            if len(node.input) > 2 and node.input[2]:
                value = _scalar(inits, node.input[2])
            if value == 0:
                raise BuildError(f"pad '{node.name}' pads the binary activation '{node.input[0]}' with 0: {fix}.")


def _check_input(inp: onnx.ValueInfoProto) -> int | str:
    t = inp.type.tensor_type
    if not inp.type.HasField("tensor_type"):
        raise BuildError(f"the graph input '{inp.name}' is not a tensor; give a float32 image tensor (N, C, H, W).")
    if t.elem_type != TensorProto.FLOAT:
        raise BuildError(f"the graph input '{inp.name}' is {_dtype_name(t.elem_type)}; the compiler takes float32 "
                         "images (pixel/255 in [0, 1], NCHW). Export with a float32 example input.")
    if not t.HasField("shape") or len(t.shape.dim) not in (2, 4):
        rank = len(t.shape.dim) if t.HasField("shape") else "unknown"
        raise BuildError(f"the graph input '{inp.name}' has rank {rank}; expected NCHW images (rank 4) or "
                         "[N, features] (rank 2). Export with an example input of that shape.")
    dims = list(t.shape.dim)
    for k, d in enumerate(dims[1:], start=1):
        if not d.HasField("dim_value") or d.dim_value <= 0:
            shown = d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else "?")
            raise BuildError(f"the graph input '{inp.name}' has a dynamic or unknown dimension {k} ('{shown}'); "
                             "an accelerator is built for one image size. Export with fixed dimensions "
                             "(no dynamic_axes except the batch).")
    first = dims[0]
    if first.HasField("dim_value") and first.dim_value > 0:
        return int(first.dim_value)
    return "dynamic"


def _check_initializer(name: str, init: onnx.TensorProto, uses: list[tuple[onnx.NodeProto, int]]) -> None:
    if not uses:
        return  # unused: tidy removes it
    user = f" (read by node '{uses[0][0].name}', {uses[0][0].op_type})"
    try:
        value = numpy_helper.to_array(init)
    except Exception as exc:  # onnx raises ValueError/TypeError for truncated raw data
        raise BuildError(f"initializer '{name}'{user} cannot be read ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''}). {FIX_EXPORT}") from None
    integer_slot = all((n.op_type, k) in INTEGER_SLOTS for n, k in uses)
    if init.data_type == TensorProto.INT64 and integer_slot:
        return
    if init.data_type != TensorProto.FLOAT:
        raise BuildError(f"initializer '{name}'{user} is {_dtype_name(init.data_type)}; weights and parameters "
                         "must be float32. Convert the model to float32 (model.float()) before exporting.")
    # quantizer scales are checked (with the Brevitas fix) by streamline, bit widths by _check_node
    scale_slot = all(n.op_type in QUANT_OPS and k in (1, 3) for n, k in uses)
    if value.size and not np.isfinite(value).all() and not scale_slot:
        bad = int((~np.isfinite(value)).sum())
        raise BuildError(f"initializer '{name}'{user} holds {bad} NaN or infinite values; the reference would "
                         "be computed from the same broken numbers. Retrain or fix the parameters "
                         "(check BatchNorm running statistics and weights for NaN/Inf).")


def _scalar(inits: dict[str, onnx.TensorProto], tensor: str) -> float | None:
    if tensor not in inits:
        return None
    value = numpy_helper.to_array(inits[tensor])
    return float(value.reshape(-1)[0]) if value.size == 1 else math.nan


def _check_node(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto], const: set[str]) -> None:
    what = f"node '{node.name}' ({node.op_type})"
    if node.op_type in WEIGHT_OPS and len(node.input) > 1 and node.input[1] not in const:
        raise BuildError(f"{what} multiplies two activations ('{node.input[0]}' by '{node.input[1]}'); the "
                         "hardware multiplies activations by constant, quantized weights only. Use a QuantConv2d/"
                         "QuantLinear layer with its own weights.")
    if node.op_type in CONSTANT_OPERAND_OPS and len(node.input) == 2 and not any(i in const for i in node.input):
        raise BuildError(f"{what} combines two activations ('{node.input[0]}', '{node.input[1]}'); the "
                         f"compiler maps {node.op_type} only by a constant. Only Add may join two activations "
                         "(a residual add through one shared quantizer).")
    if node.op_type == "BatchNormalization" and len(node.input) == 5 and node.input[4] in inits:
        var = numpy_helper.to_array(inits[node.input[4]])
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        if np.isfinite(var).all() and (var + eps <= 0).any():
            raise BuildError(f"{what} has a running variance of {float(var.min()):g} (plus epsilon {eps:g} "
                             "<= 0): the normalization would divide by zero or take a square root of a negative "
                             "number. Fix or recompute the BatchNorm statistics.")
    if node.op_type == "Quant" and len(node.input) == 4:
        bits = _scalar(inits, node.input[3])
        if bits is None:
            raise BuildError(f"quantizer {what}: its bit width '{node.input[3]}' is not a constant; the hardware "
                             "needs a fixed bit width.")
        if not math.isfinite(bits) or bits != int(bits) or bits < 1:
            raise BuildError(f"quantizer {what} has bit width {bits:g}; a bit width must be a whole number >= 1 "
                             "(bit_width=... of the Brevitas quantizer).")
        weight = node.input[0] in const
        limit = MAX_CONSTANT_BITS if weight else MAX_ACTIVATION_BITS
        if bits > limit:
            kind = "constant" if weight else "activation"
            why = ("a b-bit activation needs 2^b - 1 thresholds per channel (8 bits: 255)" if not weight
                   else "wider constants do not fit the integer datapath")
            raise BuildError(f"{kind} quantizer {what} has {int(bits)} bits; the hardware holds at most {limit}-bit "
                             f"{kind}s ({why}). Quantize to {limit} bits or fewer.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:300] if text else "") or type(exc).__name__


def failing_node(model, x: np.ndarray) -> str:
    """Name the first node of ``model`` whose execution on ``x`` fails, with the library's own first
    line of complaint (for an error message); "" when the whole graph runs. Prefixes of the graph
    are executed (a failing prefix stays failing when it grows), found by bisection."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    nodes = list(model.graph.node)
    inp = model.graph.input[0].name

    def run_prefix(k: int) -> BaseException | None:
        copy = ModelWrapper(model.model.SerializeToString())
        del copy.graph.node[k:]
        del copy.graph.value_info[:]
        used = {t for n in copy.graph.node for t in n.input}
        for init in [i for i in copy.graph.initializer if i.name not in used]:
            copy.graph.initializer.remove(init)
        del copy.graph.output[:]
        copy.graph.output.append(onnx.helper.make_tensor_value_info(nodes[k - 1].output[0], TensorProto.FLOAT, None))
        try:
            copy = copy.transform(InferShapes())
            execute_onnx(copy, {inp: x})
        except Exception as exc:  # any library's exception, reported by node
            return exc
        return None

    if run_prefix(len(nodes)) is None:
        return ""
    lo, hi = 1, len(nodes)  # the shortest failing prefix has hi nodes
    while lo < hi:
        mid = (lo + hi) // 2
        if run_prefix(mid) is None:
            lo = mid + 1
        else:
            hi = mid
    node = nodes[hi - 1]
    exc = run_prefix(hi)
    return f"node '{node.name}' ({node.op_type}) fails: {_first_line(exc)}"


def execution_error(model, x: np.ndarray, exc: BaseException, what: str) -> BuildError:
    """A BuildError for an exception a library raised while running the user's graph."""
    try:
        where = failing_node(model, x[:1])
    except Exception:  # the probe itself may trip over the same problem
        where = ""
    detail = where or f"{type(exc).__name__}: {_first_line(exc)}"
    return BuildError(f"running the model for {what} failed: {detail}. The graph is inconsistent (check that the "
                      "input shape matches the layers and that initializer shapes fit their nodes). "
                      f"{FIX_EXPORT}")
