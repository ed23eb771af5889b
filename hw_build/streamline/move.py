"""Passes that move constant Mul/Add nodes downstream, past forks, linear layers, padding,
pooling and reshapes, and collapse chains of them. Together with the absorption passes
they leave every scale and bias in front of a quantizer, where it becomes a threshold."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name

from hw_build.streamline.graph import (
    GraphView,
    add_const,
    affine_operand,
    const,
    insert_after,
    new_tensor,
    per_channel,
    single_consumer,
)
from hw_build.streamline.types import pad_params


def _swap_after(model: ModelWrapper, affine, follower, new_const: np.ndarray, dyn_input: str) -> None:
    """Rewrite ``follower(affine(x, c))`` as ``affine'(follower(x), new_const)``."""
    out = follower.output[0]
    inner = new_tensor(model, model.get_tensor_shape(out), hint=f"{follower.name}_pre")
    for i, t in enumerate(follower.input):
        if t == affine.output[0]:
            follower.input[i] = dyn_input
    follower.output[0] = inner
    moved = helper.make_node(affine.op_type, [inner, add_const(model, new_const, "c")], [out],
                             name=f"{affine.name}_moved")
    model.graph.node.remove(affine)
    insert_after(model, follower, moved)
    model.set_tensor_datatype(inner, model.get_tensor_datatype(out))


class MoveAffinePastFork(Transformation):
    """A constant Mul/Add feeding several consumers is cloned into each branch, so each
    branch can absorb it into its own thresholds."""

    def apply(self, model: ModelWrapper):
        outputs = {o.name for o in model.graph.output}
        view = GraphView(model)
        for node in list(model.graph.node):
            op = affine_operand(view, node)
            if op is None or node.output[0] in outputs:
                continue
            consumers = view.find_consumers(node.output[0])
            if len(consumers) < 2:
                continue
            dyn, c = op
            for k, consumer in enumerate(consumers[1:], start=1):
                out = new_tensor(model, model.get_tensor_shape(node.output[0]), hint=f"{node.name}_b{k}")
                clone = helper.make_node(node.op_type, [dyn, add_const(model, c, "c")], [out],
                                         name=f"{node.name}_branch{k}")
                insert_after(model, node, clone)
                for i, t in enumerate(consumer.input):
                    if t == node.output[0]:
                        consumer.input[i] = out
            return model, True
        return model, False


def _affines_read_once(model: ModelWrapper):
    """``(node, dynamic input, constant, consumer)`` of every constant Mul/Add in ``model`` that
    exactly one node reads (a snapshot, read through a GraphView: a pass returns after its
    first rewrite)."""
    view = GraphView(model)
    for node in list(model.graph.node):
        op = affine_operand(view, node)
        if op is None:
            continue
        consumer = single_consumer(view, node.output[0])
        if consumer is not None:
            yield node, op[0], op[1], consumer


class _MoveAffinePastFollower(Transformation):
    """Template of the passes that move a constant Mul/Add past the one node reading it (as
    that node's data input): a subclass names the op types it moves past (``followers``) and
    gives the constant that goes after the follower (``moved_constant``), or None where the
    Mul/Add cannot move through it."""

    followers: tuple[str, ...] = ()

    def moved_constant(self, model: ModelWrapper, affine, follower, c: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def apply(self, model: ModelWrapper):
        for node, dyn, c, follower in _affines_read_once(model):
            if follower.op_type not in self.followers or follower.input[0] != node.output[0]:
                continue
            new_c = self.moved_constant(model, node, follower, c)
            if new_c is None:
                continue
            _swap_after(model, node, follower, new_c, dyn)
            return model, True
        return model, False


class MoveAffinePastLinear(_MoveAffinePastFollower):
    """Mul(x, c) -> Conv/MatMul  ==>  Conv/MatMul(x) -> Mul(c');
    Add(x, c) -> Conv/MatMul     ==>  Conv/MatMul(x) -> Add(W applied to c).

    Dense, grouped and depthwise convs are one case: output channel o of group g only reads
    the input channels of group g, so a per-channel scale moves through when it is constant
    within each group (scalars always; per-channel for depthwise, where a group is one
    channel), and a bias becomes the group's weight slice applied to the group's bias.
    Weights are integers, so a scale that varies inside a group cannot be folded into them.

    Conv padding must already be explicit (ExplicitConvPadding), so the bias of a constant
    input is the same at every output pixel."""

    followers = ("Conv", "MatMul")

    def moved_constant(self, model, affine, layer, c):
        w = const(model, layer.input[1])
        if w is None or (len(layer.input) > 2 and layer.input[2]):
            return None
        in_shape = model.get_tensor_shape(affine.output[0])
        if layer.op_type == "Conv":
            pads = get_by_name(layer.attribute, "pads")
            if pads is not None and any(pads.ints):
                return None
            return _conv_affine(affine.op_type, c, w, in_shape, _conv_group(layer))
        if len(in_shape) != 2:
            return None
        if affine.op_type == "Mul":
            return c.reshape([]) if c.size == 1 else None
        full = np.broadcast_to(c.reshape(-1) if c.size > 1 else c.reshape(1), (in_shape[1],)).astype(np.float64)
        return (full @ w.astype(np.float64)).astype(np.float32).reshape(1, -1)


def _conv_group(conv) -> int:
    group = get_by_name(conv.attribute, "group")
    return group.i if group is not None else 1


def _conv_affine(op_type: str, c: np.ndarray, w: np.ndarray, in_shape: list[int],
                 group: int) -> np.ndarray | None:
    """The constant after a (grouped) conv with weights ``w`` [C_out, C_in/group, kh, kw] that
    is equivalent to Mul/Add(``c``) on its input, or None when the Mul cannot move through."""
    vec = per_channel(c, in_shape)
    if vec is None:
        return None
    cin_g = w.shape[1]
    cout_g = w.shape[0] // group
    if group * cin_g != in_shape[1]:
        return None
    full = np.broadcast_to(vec, (in_shape[1],)).astype(np.float64).reshape(group, cin_g)
    if op_type == "Mul":
        if vec.size == 1:
            return vec.reshape([])
        if not np.all(full == full[:, :1]):
            return None  # the scale varies inside a group: it would have to scale weights
        return np.repeat(full[:, 0], cout_g).astype(np.float32).reshape(1, -1, 1, 1)
    wg = w.astype(np.float64).reshape(group, cout_g, cin_g, -1)
    bias = np.einsum("goik,gi->go", wg, full).reshape(-1)
    return bias.astype(np.float32).reshape(1, -1, 1, 1)


class MoveAffinePastPad(_MoveAffinePastFollower):
    """Pad(Add(x, c), v) ==> Add(Pad(x, v - c), c); Pad(Mul(x, s), v) ==> Mul(Pad(x, v / s), s)
    for scalar c/s: the padding value follows the integer encoding."""

    followers = ("Pad",)

    def moved_constant(self, model, affine, pad, c):
        if c.size != 1 or (affine.op_type == "Mul" and float(c.flatten()[0]) == 0.0):
            return None
        _, value = pad_params(model, pad)
        cv = float(c.flatten()[0])
        new_value = value - cv if affine.op_type == "Add" else value / cv
        if get_by_name(pad.attribute, "value") is not None:
            get_by_name(pad.attribute, "value").f = new_value
        elif len(pad.input) > 2 and pad.input[2]:
            pad.input[2] = add_const(model, np.float32(new_value), "padval")
        else:
            pad.input.append(add_const(model, np.float32(new_value), "padval"))
        return c.reshape([])


class MoveAffinePastPooling(_MoveAffinePastFollower):
    """Per-channel Mul (positive) and Add commute with MaxPool; per-channel Mul commutes with
    ReduceSum and Add(c) becomes Add(c * pixels)."""

    followers = ("MaxPool", "ReduceSum")

    def moved_constant(self, model, affine, pool, c):
        in_shape = model.get_tensor_shape(affine.output[0])
        vec = per_channel(c, in_shape)
        if vec is None:
            return None
        if pool.op_type == "MaxPool" and affine.op_type == "Mul" and np.any(vec <= 0):
            return None
        new_vec = vec
        if pool.op_type == "ReduceSum" and affine.op_type == "Add":
            new_vec = vec * np.float32(np.prod(in_shape[2:]))
        return new_vec.reshape([]) if new_vec.size == 1 else new_vec.reshape([1, -1] + [1] * (len(in_shape) - 2))


class MoveAffinePastReshape(_MoveAffinePastFollower):
    """Constant Mul/Add commute with Reshape/Flatten/Transpose once the constant is laid out
    like the data (a per-channel constant becomes a per-feature vector after Flatten)."""

    followers = ("Reshape", "Flatten", "Transpose")

    def moved_constant(self, model, affine, shaper, c):
        if c.size == 1:
            return c.reshape([])
        in_shape = model.get_tensor_shape(affine.output[0])
        full = np.broadcast_to(c, [1] + list(in_shape[1:]))
        if shaper.op_type == "Transpose":
            new_c = np.transpose(full, get_by_name(shaper.attribute, "perm").ints)
        else:
            new_c = full.reshape([1] + list(model.get_tensor_shape(shaper.output[0])[1:]))
        return np.ascontiguousarray(new_c, dtype=np.float32)


class CollapseAffine(Transformation):
    """Mul(Mul(x,a),b) -> Mul(x,ab); Add(Add(x,a),b) -> Add(x,a+b);
    Mul(Add(x,a),b) -> Add(Mul(x,b), ab): the canonical form is one Mul then one Add."""

    def apply(self, model: ModelWrapper):
        for node, dyn, a, nxt in _affines_read_once(model):
            nxt_op = affine_operand(model, nxt)
            if nxt_op is None:
                continue
            _, b = nxt_op
            if node.op_type == nxt.op_type:
                merged = a * b if node.op_type == "Mul" else a + b
                nxt.input[:] = [dyn, add_const(model, merged, "c")]
                model.graph.node.remove(node)
                return model, True
            if node.op_type == "Add" and nxt.op_type == "Mul":
                # (x + a) * b = x * b + a * b
                mid = node.output[0]
                node.op_type, nxt.op_type = "Mul", "Add"
                node.input[:] = [dyn, add_const(model, b, "c")]
                nxt.input[:] = [mid, add_const(model, (a * b).astype(np.float32), "c")]
                model.set_tensor_shape(mid, model.get_tensor_shape(nxt.output[0]))
                return model, True
        return model, False
