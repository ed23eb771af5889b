"""Each streamlining pass on small seeded graphs: it fires, rewrites the structure as its
docstring says, and the graph computes the same before and after (on every value of an
integer input where the pass relies on the input being integer)."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
from qonnx.core.datatype import DataType
from qonnx.custom_op.general.intquant import max_int, min_int

from hw_build.errors import BuildError
from hw_build.execute import execute_graph
from hw_build.ops.base import smallest_int_type
from hw_build.streamline import move, streamline
from hw_build.streamline.absorb import ChainToMultiThreshold, IntegerResidualAdd, TailToLabelSelect
from hw_build.streamline.canonicalize import (
    AveragePoolToSum,
    ExplicitConvPadding,
    QuantizedWeightsToIntegers,
    RawPixelInput,
    RemoveNoOps,
)
from hw_build.streamline.check import assert_integer_only
from hw_build.streamline.types import InferIntegerTypes
from tests.graph_builders import (
    GraphBuilder,
    copy_model,
    every_value_batch,
    node_types,
    nodes_of,
    only_node,
    run,
)


def apply_once(pass_cls, model):
    """Apply a pass to a copy; returns (new model, changed)."""
    return pass_cls().apply(copy_model(model))


def assert_same(before, after, atol=1e-5):
    assert before.shape == after.shape
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=atol)


def rewritten(pass_cls, model, xs, types_after: list[str] | None = None, atol: float = 1e-5):
    """``pass_cls`` applied once to a copy of ``model``: it fires, leaves the node types
    ``types_after`` (when given), and the new graph computes the same on ``xs``."""
    before = run(model, xs)
    new, changed = apply_once(pass_cls, model)
    assert changed
    if types_after is not None:
        assert node_types(new) == types_after
    assert_same(before, run(new, xs), atol)
    return new


def applied_until_unchanged(pass_cls, model):
    """``pass_cls`` applied to a copy of ``model`` until it changes nothing (each call changes
    one site): (the new model, how many calls changed it)."""
    new, rounds = copy_model(model), 0
    while True:
        new, changed = pass_cls().apply(new)
        if not changed:
            return new, rounds
        rounds += 1


def rejected(pass_cls, model, match: str) -> BuildError:
    """The BuildError ``pass_cls`` raises on a copy of ``model``, its message matching ``match``."""
    with pytest.raises(BuildError, match=match) as info:
        apply_once(pass_cls, model)
    return info.value


def producer_of(model, tensor):
    p = model.find_producer(tensor)
    assert p is not None, tensor
    return p


# ---------------------------------------------------------------- canonicalization


@pytest.mark.parametrize("bits,signed,narrow,per_channel", [(4, True, True, False), (3, True, False, True),
                                                             (2, False, False, True), (1, True, False, False)])
def test_quantized_weights_to_integers_matmul(bits, signed, narrow, per_channel):
    rng = np.random.default_rng(bits)
    g = GraphBuilder()
    x = g.input([1, 6])
    w = rng.normal(size=(6, 5)).astype(np.float32)
    scale = rng.uniform(0.2, 0.6, (1, 5)) if per_channel else np.float32(0.4)
    y = g.matmul(x, g.quant_weight(w, scale, bits=bits, signed=signed, narrow=narrow), name="fc")
    model = g.build(y)
    xs = rng.normal(size=(20, 6))
    new = rewritten(QuantizedWeightsToIntegers, model, xs, ["MatMul", "Mul"])
    mm = only_node(new, "MatMul")
    w_int = new.get_initializer(mm.input[1])
    assert np.array_equal(w_int, np.round(w_int))
    lo, hi = min_int(signed, narrow, bits), max_int(signed, narrow, bits)
    if bits == 1 and signed:
        assert set(np.unique(w_int)) <= {-1.0, 1.0}
    else:
        assert w_int.min() >= lo and w_int.max() <= hi
    assert new.get_tensor_datatype(mm.input[1]).is_integer()
    mul = only_node(new, "Mul")
    assert mul.input[0] == mm.output[0] and mul.output[0] == y


def test_quantized_weights_to_integers_gemm_transb_bias_alpha_beta():
    rng = np.random.default_rng(1)
    g = GraphBuilder()
    x = g.input([1, 7])
    w = rng.normal(size=(4, 7)).astype(np.float32)  # [out, in] as Brevitas exports Linear
    wq = g.quant_weight(w, rng.uniform(0.2, 0.5, (4, 1)), bits=3)
    y = g.gemm(x, wq, bias=rng.normal(size=4), name="gemm", transB=1, alpha=0.5, beta=2.0)
    model = g.build(y)
    xs = rng.normal(size=(16, 7))
    new = rewritten(QuantizedWeightsToIntegers, model, xs, ["MatMul", "Mul", "Add"])
    mm = only_node(new, "MatMul")
    assert list(new.get_initializer(mm.input[1]).shape) == [7, 4]


def test_quantized_weights_to_integers_conv_bipolar_per_channel():
    rng = np.random.default_rng(2)
    g = GraphBuilder()
    x = g.input([1, 3, 5, 5])
    wq = g.quant_weight(rng.normal(size=(4, 3, 3, 3)), rng.uniform(0.1, 1.0, (4, 1, 1, 1)))
    y = g.conv(x, wq, name="conv")
    model = g.build(y)
    xs = rng.normal(size=(4, 3, 5, 5))
    new = rewritten(QuantizedWeightsToIntegers, model, xs)
    conv = only_node(new, "Conv")
    w_int = new.get_initializer(conv.input[1])
    assert set(np.unique(w_int)) == {-1.0, 1.0}
    assert not nodes_of(new, "BipolarQuant")
    scale = new.get_initializer(only_node(new, "Mul").input[1])
    assert scale.shape == (1, 4, 1, 1)


def test_quantized_weights_nonzero_zero_point_is_an_error():
    g = GraphBuilder()
    x = g.input([1, 3])
    wq = g.quant(g.const(np.ones((3, 2)), "w"), 0.5, 4, zeropt=1.0, name="wq")
    model = g.build(g.matmul(x, wq))
    rejected(QuantizedWeightsToIntegers, model, "wq.*zero point")


def test_raw_pixel_input_divides_by_255():
    rng = np.random.default_rng(3)
    g = GraphBuilder()
    x = g.input([1, 4])
    model = g.build(g.mul(g.add(x, -0.5), 3.0))
    pixels = rng.integers(0, 256, (10, 4)).astype(np.float32)
    before = run(model, pixels / np.float32(255))
    new, changed = apply_once(RawPixelInput, model)
    assert changed is False  # applied once, by design: it reports no change
    assert new.get_tensor_datatype("x") == DataType["UINT8"]
    div = new.graph.node[0]
    assert div.op_type == "Div" and div.input[0] == "x"
    assert float(new.get_initializer(div.input[1])) == 255.0
    assert_same(before, run(new, pixels))
    again, _ = RawPixelInput().apply(copy_model(new))
    assert node_types(again) == node_types(new)


def test_explicit_conv_padding():
    rng = np.random.default_rng(4)
    g = GraphBuilder()
    x = g.input([1, 2, 5, 6])
    y = g.conv(x, rng.normal(size=(3, 2, 3, 3)), pads=(1, 0, 2, 1), name="conv")  # t, l, b, r
    model = g.build(y)
    xs = rng.normal(size=(3, 2, 5, 6))
    new = rewritten(ExplicitConvPadding, model, xs, ["Pad", "Conv"])
    pad, conv = new.graph.node
    assert list(new.get_initializer(pad.input[1])) == [0, 0, 1, 0, 0, 0, 2, 1]
    assert float(new.get_initializer(pad.input[2])) == 0.0
    pads = [a for a in conv.attribute if a.name == "pads"][0].ints
    assert list(pads) == [0, 0, 0, 0]
    assert ExplicitConvPadding().apply(new)[1] is False


def test_average_pool_to_sum():
    rng = np.random.default_rng(5)
    g = GraphBuilder()
    x = g.input([1, 3, 4, 6])
    y = g.node("AveragePool", [x], shape=[1, 3, 2, 3], kernel_shape=[2, 2], strides=[2, 2])
    model = g.build(y)
    xs = rng.normal(size=(4, 3, 4, 6))
    new = rewritten(AveragePoolToSum, model, xs, ["Conv", "Mul"])
    conv = new.graph.node[0]
    assert np.all(new.get_initializer(conv.input[1]) == 1.0)
    assert float(new.get_initializer(new.graph.node[1].input[1])) == pytest.approx(0.25)


def test_global_average_pool_to_reduce_sum():
    rng = np.random.default_rng(6)
    g = GraphBuilder()
    x = g.input([1, 3, 3, 5])
    model = g.build(g.node("GlobalAveragePool", [x], shape=[1, 3, 1, 1]))
    xs = rng.normal(size=(4, 3, 3, 5))
    new = rewritten(AveragePoolToSum, model, xs, ["ReduceSum", "Mul"])
    assert float(new.get_initializer(new.graph.node[1].input[1])) == pytest.approx(1 / 15)


def test_overlapping_average_pool_is_an_error():
    g = GraphBuilder()
    x = g.input([1, 2, 5, 5])
    model = g.build(g.node("AveragePool", [x], shape=[1, 2, 4, 4], name="avg", kernel_shape=[2, 2],
                           strides=[1, 1]))
    rejected(AveragePoolToSum, model, "avg.*kernel == stride")


def test_remove_no_ops_keeps_graph_output():
    rng = np.random.default_rng(7)
    g = GraphBuilder()
    x = g.input([1, 4])
    y = g.node("Identity", [g.relu(g.add(g.mul(x, 1.0), np.zeros((1, 4))))])
    model = g.build(y)
    xs = rng.normal(size=(5, 4))
    before = run(model, xs)
    new, fired = applied_until_unchanged(RemoveNoOps, model)
    assert fired == 2
    assert node_types(new) == ["Relu", "Identity"]
    assert new.graph.node[0].input[0] == "x"
    assert_same(before, run(new, xs))


def test_remove_no_ops_keeps_broadcasting_mul():
    g = GraphBuilder()
    x = g.input([1, 1])
    y = g.node("Mul", [x, g.const(np.ones((1, 3)))], shape=[1, 3])
    model = g.build(g.relu(y))
    _, changed = apply_once(RemoveNoOps, model)
    assert changed is False


# ---------------------------------------------------------------- moving affine nodes


def test_move_affine_past_fork_clones_into_each_branch():
    rng = np.random.default_rng(8)
    g = GraphBuilder()
    x = g.input([1, 4])
    y = g.mul(x, rng.uniform(-1, 1, (1, 4)), name="scale")
    out = g.add(g.relu(y), g.node("Abs", [y]))
    model = g.build(out)
    xs = rng.normal(size=(6, 4))
    new = rewritten(move.MoveAffinePastFork, model, xs)
    muls = nodes_of(new, "Mul")
    assert len(muls) == 2
    for m in muls:
        assert m.input[0] == "x"
        assert len(new.find_consumers(m.output[0])) == 1
    assert move.MoveAffinePastFork().apply(new)[1] is False


def test_move_scalar_mul_past_matmul():
    rng = np.random.default_rng(9)
    g = GraphBuilder()
    x = g.input([1, 5])
    y = g.matmul(g.mul(x, np.float32(0.7)), rng.normal(size=(5, 3)), name="fc")
    model = g.build(y)
    xs = rng.normal(size=(8, 5))
    new = rewritten(move.MoveAffinePastLinear, model, xs, ["MatMul", "Mul"])
    assert new.graph.node[0].input[0] == "x"
    assert new.graph.node[1].output[0] == y


def test_move_per_feature_mul_past_matmul_is_not_done():
    rng = np.random.default_rng(10)
    g = GraphBuilder()
    x = g.input([1, 5])
    model = g.build(g.matmul(g.mul(x, rng.uniform(1, 2, (1, 5))), rng.normal(size=(5, 3))))
    assert apply_once(move.MoveAffinePastLinear, model)[1] is False


def test_move_add_past_matmul_becomes_bias():
    rng = np.random.default_rng(11)
    g = GraphBuilder()
    x = g.input([1, 5])
    w = rng.normal(size=(5, 3))
    c = rng.normal(size=(1, 5))
    y = g.matmul(g.add(x, c), w)
    model = g.build(y)
    xs = rng.normal(size=(8, 5))
    new = rewritten(move.MoveAffinePastLinear, model, xs, ["MatMul", "Add"])
    bias = new.get_initializer(new.graph.node[1].input[1])
    np.testing.assert_allclose(bias.reshape(-1), (c @ w).reshape(-1), rtol=1e-5)


def test_move_per_channel_add_past_conv():
    rng = np.random.default_rng(12)
    g = GraphBuilder()
    x = g.input([1, 3, 5, 5])
    y = g.conv(g.add(x, rng.normal(size=(1, 3, 1, 1))), rng.normal(size=(4, 3, 3, 3)), strides=(2, 2))
    model = g.build(y)
    xs = rng.normal(size=(4, 3, 5, 5))
    new = rewritten(move.MoveAffinePastLinear, model, xs, ["Conv", "Add"], atol=1e-4)
    assert new.get_initializer(new.graph.node[1].input[1]).shape == (1, 4, 1, 1)


def test_move_add_past_padded_conv_is_not_done():
    rng = np.random.default_rng(13)
    g = GraphBuilder()
    x = g.input([1, 3, 5, 5])
    model = g.build(g.conv(g.add(x, np.float32(0.5)), rng.normal(size=(4, 3, 3, 3)), pads=(1, 1, 1, 1)))
    assert apply_once(move.MoveAffinePastLinear, model)[1] is False


def test_move_per_channel_mul_past_depthwise_conv():
    rng = np.random.default_rng(14)
    g = GraphBuilder()
    x = g.input([1, 3, 4, 4])
    y = g.conv(g.mul(x, rng.uniform(0.5, 2, (1, 3, 1, 1))), rng.normal(size=(3, 1, 2, 2)), group=3)
    model = g.build(y)
    xs = rng.normal(size=(4, 3, 4, 4))
    rewritten(move.MoveAffinePastLinear, model, xs, ["Conv", "Mul"])
    # a per-channel scale cannot pass a dense conv
    g = GraphBuilder()
    x = g.input([1, 3, 4, 4])
    dense = g.build(g.conv(g.mul(x, rng.uniform(0.5, 2, (1, 3, 1, 1))), rng.normal(size=(2, 3, 2, 2))))
    assert apply_once(move.MoveAffinePastLinear, dense)[1] is False


@pytest.mark.parametrize("op", ["Mul", "Add"])
def test_move_affine_past_depthwise_conv_with_channel_multiplier(op):
    rng = np.random.default_rng(15)
    g = GraphBuilder()
    x = g.input([1, 3, 4, 4])
    c = rng.uniform(0.5, 2, (1, 3, 1, 1))
    y = g.mul(x, c) if op == "Mul" else g.add(x, c)
    model = g.build(g.conv(y, rng.normal(size=(6, 1, 2, 2)), group=3))
    xs = rng.normal(size=(4, 3, 4, 4))
    before = run(model, xs)
    new, changed = apply_once(move.MoveAffinePastLinear, model)
    if changed:
        assert_same(before, run(new, xs))


@pytest.mark.parametrize("op,c,value,expected", [("Mul", 0.5, 1.0, 2.0), ("Add", -0.25, -1.0, -0.75),
                                                 ("Mul", -2.0, 3.0, -1.5)])
def test_move_affine_past_pad(op, c, value, expected):
    rng = np.random.default_rng(16)
    g = GraphBuilder()
    x = g.input([1, 2, 3, 3])
    y = g.mul(x, np.float32(c)) if op == "Mul" else g.add(x, np.float32(c))
    out = g.pad(y, (1, 2, 0, 1), value)
    model = g.build(out)
    xs = rng.normal(size=(3, 2, 3, 3))
    new = rewritten(move.MoveAffinePastPad, model, xs, ["Pad", op])
    pad = new.graph.node[0]
    assert pad.input[0] == "x"
    assert float(new.get_initializer(pad.input[2])) == pytest.approx(expected)
    assert new.graph.node[1].output[0] == out


def test_move_affine_past_maxpool():
    rng = np.random.default_rng(17)
    for op in ("Mul", "Add"):
        g = GraphBuilder()
        x = g.input([1, 3, 4, 5])
        c = rng.uniform(0.2, 2.0, (1, 3, 1, 1))
        y = g.mul(x, c) if op == "Mul" else g.add(x, -c)
        model = g.build(g.maxpool(y, 2))
        xs = rng.normal(size=(4, 3, 4, 5))
        rewritten(move.MoveAffinePastPooling, model, xs, ["MaxPool", op])
    # a negative scale does not commute with max
    g = GraphBuilder()
    x = g.input([1, 3, 4, 4])
    model = g.build(g.maxpool(g.mul(x, np.array([1.0, -1.0, 2.0]).reshape(1, 3, 1, 1)), 2))
    assert apply_once(move.MoveAffinePastPooling, model)[1] is False


def test_move_affine_past_reduce_sum():
    rng = np.random.default_rng(18)
    g = GraphBuilder()
    x = g.input([1, 3, 2, 3])
    c = rng.normal(size=(1, 3, 1, 1)).astype(np.float32)
    y = g.node("ReduceSum", [g.add(x, c), g.const(np.array([2, 3], dtype=np.int64), "axes")], shape=[1, 3, 1, 1],
               keepdims=1)
    model = g.build(y)
    xs = rng.normal(size=(4, 3, 2, 3))
    new = rewritten(move.MoveAffinePastPooling, model, xs, ["ReduceSum", "Add"])
    np.testing.assert_allclose(new.get_initializer(new.graph.node[1].input[1]).reshape(-1), 6 * c.reshape(-1),
                               rtol=1e-6)


@pytest.mark.parametrize("shaper", ["Flatten", "Transpose", "Reshape"])
def test_move_affine_past_reshape(shaper):
    rng = np.random.default_rng(19)
    g = GraphBuilder()
    x = g.input([1, 3, 2, 2])
    y = g.add(g.mul(x, rng.uniform(0.5, 2, (1, 3, 1, 1))), rng.normal(size=(1, 3, 1, 1)))
    if shaper == "Flatten":
        out = g.flatten(y)
    elif shaper == "Transpose":
        out = g.node("Transpose", [y], shape=[1, 2, 2, 3], perm=[0, 2, 3, 1])
    else:
        out = g.node("Reshape", [y, g.const(np.array([1, 6, 2], dtype=np.int64), "shape")], shape=[1, 6, 2])
    model = g.build(out)
    xs = rng.normal(size=(1, 3, 2, 2))  # Reshape has a fixed batch of 1
    before = run(model, xs)
    new = copy_model(model)
    for expected in (["Mul", "X", "Add"], ["X", "Mul", "Add"]):
        new, changed = move.MoveAffinePastReshape().apply(new)
        assert changed
        assert node_types(new) == [shaper if t == "X" else t for t in expected]
    assert new.graph.node[0].input[0] == "x"
    assert_same(before, run(new, xs))


def test_collapse_affine_chain():
    rng = np.random.default_rng(20)
    g = GraphBuilder()
    x = g.input([1, 4])
    y = g.mul(g.add(g.add(g.mul(g.mul(x, np.float32(0.5)), rng.normal(size=(1, 4))), 0.25),
                    rng.normal(size=(1, 4))), rng.normal(size=(1, 4)))
    model = g.build(g.relu(g.add(y, 1.0)))
    xs = rng.normal(size=(6, 4))
    before = run(model, xs)
    new, rounds = applied_until_unchanged(move.CollapseAffine, model)
    assert rounds >= 4
    assert node_types(new) == ["Mul", "Add", "Relu"]
    assert_same(before, run(new, xs))


# ---------------------------------------------------------------- integer types


def test_infer_integer_types():
    g = GraphBuilder()
    x = g.input([1, 2, 2, 2], "INT2")
    y = g.conv(x, np.array([1.0, -1.0]).reshape(1, 2, 1, 1), w_dtype="INT2")  # [-3, 3]
    p = g.pad(y, (1, 1, 1, 1), -5.0)  # [-5, 3]
    m = g.maxpool(p, 2)
    s = g.add(m, m)  # [-10, 6]
    f = g.flatten(s)
    mt = g.node("MultiThreshold", [f, g.const(np.zeros((1, 3)))], domain="qonnx.custom_op.general",
                out_dtype="UINT2")
    model = g.build(mt)
    InferIntegerTypes().apply(model)
    assert model.get_tensor_datatype(y) == DataType["INT3"]
    assert model.get_tensor_datatype(p) == DataType["INT4"]
    assert model.get_tensor_datatype(m) == DataType["INT4"]
    assert model.get_tensor_datatype(s) == DataType["INT5"]
    assert model.get_tensor_datatype(f) == DataType["INT5"]
    assert model.get_tensor_datatype(mt) == DataType["UINT2"]


def test_infer_integer_types_skips_float_weights_and_half_padding():
    g = GraphBuilder()
    x = g.input([1, 2, 2, 2], "INT2")
    y = g.conv(x, np.array([0.5, -1.0]).reshape(1, 2, 1, 1))
    p = g.pad(x, (1, 1, 1, 1), 0.5)
    model = g.build([y, p])
    InferIntegerTypes().apply(model)
    assert not model.get_tensor_datatype(y).is_integer()
    assert not model.get_tensor_datatype(p).is_integer()


# ---------------------------------------------------------------- ChainToMultiThreshold

# quantizers: (kind, bits, signed, narrow); kind "bipolar" is BipolarQuant
QUANTIZERS = [("quant", b, s, n) for b in (1, 2, 3, 4) for s in (True, False) for n in (False, True)
              if not (b == 1 and not s and n)] + [("bipolar", 1, True, False)]
CHAINS = ["mul_add", "mul_add_prelu", "add_relu_mul", "add_mul_prelu_add"]
INPUT_TYPES = ["INT5", "UINT6", "INT8", "UINT3", "BIPOLAR"]


def quant_range(kind, bits, signed, narrow):
    if kind == "bipolar" or (bits == 1 and signed):
        return -1, 1
    return int(min_int(signed, narrow, bits)), int(max_int(signed, narrow, bits))


def build_chain_graph(rng, kind, bits, signed, narrow, chain, in_type, per_channel, rank=2, channels=5,
                      rounding="ROUND", zeropt=0.0):
    shape = [1, channels] + ([3, 2] if rank == 4 else [])
    cshape = [1, channels] + [1] * (rank - 2)
    g = GraphBuilder()
    x = g.input(shape, in_type)
    dt = DataType[in_type]
    xlo, xhi = (-1, 1) if in_type == "BIPOLAR" else (int(dt.min()), int(dt.max()))
    qlo, qhi = quant_range(kind, bits, signed, narrow)
    s = rng.uniform(0.2, 1.5, cshape) if per_channel else rng.uniform(0.2, 1.5)
    s = np.asarray(s, dtype=np.float32)
    # the chain maps the input range onto ~1.5x the quantizer range
    a = s * (qhi - qlo + 1) * 1.5 / (xhi - xlo) * rng.uniform(0.6, 1.4, cshape)
    b = s * (qlo + qhi) / 2 - a * (xlo + xhi) / 2 + rng.uniform(-0.3, 0.3, cshape) * s * (qhi - qlo + 1)
    slope = rng.uniform(0, 1, cshape)
    slope.flat[0] = 0.0
    y = x
    if chain == "mul_add":
        y = g.add(g.mul(y, a), b)
    elif chain == "mul_add_prelu":
        y = g.prelu(g.add(g.mul(y, a), b), slope)
    elif chain == "add_relu_mul":
        y = g.mul(g.relu(g.add(y, b / a)), a)
    else:
        y = g.add(g.prelu(g.mul(g.add(y, b / a * 0.5), a), slope), b * 0.5)
    if kind == "bipolar":
        out = g.bipolar_quant(y, s, name="act_quant")
    else:
        out = g.quant(y, s, bits, signed=signed, narrow=narrow, rounding=rounding, zeropt=zeropt, name="act_quant")
    return g.build(out), shape, out


def check_chain_absorbed(model, shape, out, in_type, n_levels):
    xs = every_value_batch(in_type, shape, seed=1)
    before = run(model, xs)
    new, changed = apply_once(ChainToMultiThreshold, model)
    assert changed
    assert node_types(new) == ["MultiThreshold", "Mul", "Add"]
    # the tensors it adds are named alike every time (a build's folding.json names FIFOs by them)
    again, _ = apply_once(ChainToMultiThreshold, model)
    assert [(list(n.input), list(n.output)) for n in again.graph.node] == \
        [(list(n.input), list(n.output)) for n in new.graph.node]
    mt, mul, add = new.graph.node
    assert mt.input[0] == "x" and mul.input[0] == mt.output[0] and add.input[0] == mul.output[0]
    assert add.output[0] == out
    th = new.get_initializer(mt.input[1])
    assert th.shape[0] in (1, shape[1]) and th.shape[1] == n_levels - 1
    assert np.array_equal(th, np.round(th)), "thresholds must be integers"
    assert np.all(np.diff(th, axis=1) >= 0), "thresholds must be sorted"
    out_dt = new.get_tensor_datatype(mt.output[0])
    assert out_dt.is_integer() and out_dt.max() >= n_levels - 1
    after = run(new, xs)
    assert_same(before, after)
    # the test is not vacuous: the quantizer output takes several values
    assert len(np.unique(before)) >= min(n_levels, 2)
    return new


@pytest.mark.parametrize("index,quantizer", list(enumerate(QUANTIZERS)))
def test_chain_to_multithreshold_every_input_value(index, quantizer):
    kind, bits, signed, narrow = quantizer
    rng = np.random.default_rng(100 + index)
    chain = CHAINS[index % len(CHAINS)]
    in_type = INPUT_TYPES[index % len(INPUT_TYPES)]
    model, shape, out = build_chain_graph(rng, kind, bits, signed, narrow, chain, in_type,
                                          per_channel=index % 2 == 0)
    qlo, qhi = quant_range(kind, bits, signed, narrow)
    n_levels = 2 if kind == "bipolar" or (bits == 1 and signed) else qhi - qlo + 1
    check_chain_absorbed(model, shape, out, in_type, n_levels)


@pytest.mark.parametrize("chain", CHAINS)
@pytest.mark.parametrize("per_channel", [True, False])
def test_chain_to_multithreshold_rank4(chain, per_channel):
    rng = np.random.default_rng(200 + CHAINS.index(chain) + 10 * per_channel)
    model, shape, out = build_chain_graph(rng, "quant", 3, True, False, chain, "INT6", per_channel, rank=4)
    check_chain_absorbed(model, shape, out, "INT6", 8)


@pytest.mark.parametrize("rounding", ["ROUND", "FLOOR", "CEIL", "HALF_UP"])
def test_chain_to_multithreshold_exact_rounding_ties(rounding):
    """Power-of-two constants put the quantizer input exactly on .5: rounding must match."""
    g = GraphBuilder()
    x = g.input([1, 3], "INT6")
    y = g.add(g.mul(x, np.array([[0.25, 0.5, 0.125]])), np.array([[0.25, 0.0, -0.5]]))
    out = g.quant(y, np.float32(0.5), 4, signed=True, rounding=rounding)
    model = g.build(out)
    check_chain_absorbed(model, [1, 3], out, "INT6", 16)


def test_chain_to_multithreshold_leaky_relu():
    g = GraphBuilder()
    x = g.input([1, 3], "INT6")
    y = g.node("LeakyRelu", [g.add(g.mul(x, np.array([[0.2, 0.35, 0.1]])), 0.3)], alpha=0.25)
    out = g.quant(y, np.array([[0.25, 0.5, 0.125]]), 3, signed=True)
    model = g.build(out)
    check_chain_absorbed(model, [1, 3], out, "INT6", 8)


def test_chain_to_multithreshold_nonzero_zero_point():
    g = GraphBuilder()
    x = g.input([1, 3], "UINT5")
    y = g.add(g.mul(x, np.array([[0.3, 0.7, 0.45]])), -2.0)
    out = g.quant(y, np.float32(0.5), 3, signed=False, zeropt=np.float32(3.0))
    model = g.build(out)
    check_chain_absorbed(model, [1, 3], out, "UINT5", 8)


def test_chain_to_multithreshold_one_bit_signed_with_zero_point():
    g = GraphBuilder()
    x = g.input([1, 2], "INT4")
    out = g.quant(g.mul(x, 0.3), np.float32(0.5), 1, signed=True, zeropt=np.float32(0.5))
    model = g.build(out)
    check_chain_absorbed(model, [1, 2], out, "INT4", 2)


@pytest.mark.parametrize("layer", ["MatMul", "Conv"])
def test_decreasing_chain_negates_weight_rows(layer):
    rng = np.random.default_rng(300)
    g = GraphBuilder()
    signs = np.array([1.0, -1.0, 1.0, -1.0, -1.0])
    if layer == "MatMul":
        x = g.input([1, 6], "INT3")
        w = rng.integers(-3, 4, (6, 5)).astype(np.float32)
        acc = g.matmul(x, w, w_dtype="INT3")
        cshape = (1, 5)
    else:
        x = g.input([1, 2, 3, 3], "INT3")
        w = rng.integers(-3, 4, (5, 2, 2, 2)).astype(np.float32)
        acc = g.conv(x, w, w_dtype="INT3")
        cshape = (1, 5, 1, 1)
    a = (signs * rng.uniform(0.05, 0.15, 5)).reshape(cshape)
    out = g.quant(g.add(g.mul(acc, a), rng.normal(size=cshape) * 0.3), np.float32(0.25), 3, signed=True,
                  name="act_quant")
    model = g.build(out)
    InferIntegerTypes().apply(model)
    assert model.get_tensor_datatype(acc).is_integer()
    xs = rng.integers(-4, 4, [400] + g.shape(x)[1:]).astype(np.float32)
    before = run(model, xs)
    new, changed = apply_once(ChainToMultiThreshold, model)
    assert changed
    assert node_types(new) == [layer, "MultiThreshold", "Mul", "Add"]
    w_new = new.get_initializer(new.graph.node[0].input[1])
    neg = signs < 0
    if layer == "MatMul":
        assert np.array_equal(w_new[:, neg], -w[:, neg]) and np.array_equal(w_new[:, ~neg], w[:, ~neg])
    else:
        assert np.array_equal(w_new[neg], -w[neg]) and np.array_equal(w_new[~neg], w[~neg])
    th = new.get_initializer(new.graph.node[1].input[1])
    assert np.array_equal(th, np.round(th)) and np.all(np.diff(th, axis=1) >= 0)
    after = run(new, xs)
    assert_same(before, after)
    assert len(np.unique(before)) >= 4


def test_decreasing_chain_on_graph_input_is_an_error():
    g = GraphBuilder()
    x = g.input([1, 2], "INT4")
    out = g.quant(g.mul(x, np.array([[0.5, -0.5]])), np.float32(0.5), 2, name="act_quant")
    rejected(ChainToMultiThreshold, g.build(out), "act_quant.*decreases")


def test_negative_prelu_slope_is_an_error():
    g = GraphBuilder()
    x = g.input([1, 3], "INT4")
    y = g.prelu(g.add(g.mul(x, 0.5), 0.25), np.array([[0.5, -0.5, 0.1]]), name="fprelu")
    out = g.quant(y, np.float32(0.5), 4, signed=False, name="block3_act_quant")
    with pytest.raises(BuildError) as info:
        apply_once(ChainToMultiThreshold, g.build(out))
    msg = str(info.value)
    assert "block3_act_quant" in msg
    assert "PReLU" in msg and "slope >= 0" in msg
    assert "channel 1" in msg


def test_too_wide_input_is_an_error():
    g = GraphBuilder()
    x = g.input([1, 1024], "INT16")
    out = g.quant(g.mul(x, 0.001), np.float32(0.5), 4, name="wide_quant")
    rejected(ChainToMultiThreshold, g.build(out), "wide_quant")


def test_chain_without_integer_source_is_left_alone():
    g = GraphBuilder()
    x = g.input([1, 3])  # float input: no thresholds possible
    out = g.quant(g.mul(x, 0.5), np.float32(0.5), 4)
    assert apply_once(ChainToMultiThreshold, g.build(out))[1] is False


# ---------------------------------------------------------------- IntegerResidualAdd


def residual_graph(rng, scale_a, scale_b, channels=4):
    g = GraphBuilder()
    x = g.input([1, channels], "INT5")
    qa = g.quant(g.mul(x, rng.uniform(0.1, 0.3, (1, channels))), np.float32(scale_a), 4, name="quant_a")
    yb = g.add(g.mul(x, rng.uniform(0.1, 0.3, (1, channels))), rng.normal(size=(1, channels)))
    qb = g.quant(yb, np.float32(scale_b), 4, signed=False, name="quant_b")
    out = g.add(qa, qb, name="residual_add")
    return g.build(out), out


def absorb_quantizers(model):
    model = copy_model(model)
    for _ in range(2):
        model, changed = ChainToMultiThreshold().apply(model)
        assert changed
    return model


def test_integer_residual_add_equal_scales():
    rng = np.random.default_rng(400)
    model, out = residual_graph(rng, 0.375, 0.375)
    xs = every_value_batch("INT5", [1, 4])
    before = run(model, xs)
    absorbed = absorb_quantizers(model)
    new, changed = IntegerResidualAdd().apply(copy_model(absorbed))
    assert changed
    add = [n for n in new.graph.node if n.name == "residual_add"][0]
    mts = nodes_of(new, "MultiThreshold")
    assert sorted(add.input) == sorted(mt.output[0] for mt in mts)
    assert new.get_tensor_datatype(add.output[0]).is_integer()
    mul = new.find_consumers(add.output[0])[0]
    assert mul.op_type == "Mul" and float(new.get_initializer(mul.input[1])) == 0.375
    assert producer_of(new, out).op_type == "Add"
    assert_same(before, run(new, xs))
    assert len(np.unique(before)) > 10


def test_integer_residual_add_different_scales_is_not_rewritten():
    rng = np.random.default_rng(401)
    model, _ = residual_graph(rng, 0.375, 0.5)
    absorbed = absorb_quantizers(model)
    assert IntegerResidualAdd().apply(copy_model(absorbed))[1] is False


def test_residual_add_with_different_scales_names_the_add():
    """The float Muls in front of the add must not hide the real problem: the add's scales."""
    rng = np.random.default_rng(401)
    model, _ = residual_graph(rng, 0.375, 0.5)
    absorbed = absorb_quantizers(model)
    with pytest.raises(BuildError) as info:
        assert_integer_only(absorbed)
    assert "residual_add" in str(info.value) and "different scales" in str(info.value)


def test_residual_add_mismatch_message_of_the_add_itself():
    """The add's own check (reached when it is the first float node) names it and both scales."""
    g = GraphBuilder()
    a = g.input([1, 3], "INT4", name="x")
    qa = g.mul(a, np.float32(0.5))
    qb = g.mul(g.node("Relu", [a], dtype="UINT3"), np.float32(0.25))
    out = g.add(qa, qb, name="residual_add")
    model = g.build(out)
    # put the add first in node order so the check reaches it before the Muls
    add = [n for n in model.graph.node if n.name == "residual_add"][0]
    model.graph.node.remove(add)
    model.graph.node.insert(0, add)
    with pytest.raises(BuildError, match=r"residual_add.*different scales \(0\.5 vs 0\.25\)"):
        assert_integer_only(model)


# ---------------------------------------------------------------- TailToLabelSelect


def tail_graph(a, b, in_type="INT6", classes=None):
    classes = classes or len(np.ravel(a))
    g = GraphBuilder()
    x = g.input([1, classes], in_type)
    out = g.add(g.mul(x, np.asarray(a, dtype=np.float32).reshape(1, -1) if np.size(a) > 1 else np.float32(a)),
                np.asarray(b, dtype=np.float32).reshape(1, -1) if np.size(b) > 1 else np.float32(b))
    return g.build(out)


def to_label_select(model):
    new, changed = apply_once(TailToLabelSelect, model)
    assert changed
    ls = only_node(new, "LabelSelect")
    assert ls.domain == "hw_build.ops" and ls.input[0] == "x"
    assert new.graph.output[0].name == ls.output[0]
    assert node_types(new) == ["LabelSelect"]
    return new, ls


def test_tail_to_label_select_per_class_scales_fixed_point():
    rng = np.random.default_rng(500)
    classes = 10
    a = rng.uniform(0.01, 0.5, classes) * rng.choice([1.0, -1.0], classes)
    b = rng.normal(size=classes)
    model = tail_graph(a, b, "INT6")
    new, ls = to_label_select(model)
    a_int = new.get_initializer(ls.input[1])
    assert a_int.dtype == np.int64 and np.all(np.sign(a_int) == np.sign(a))
    xs = rng.integers(-32, 32, (3000, classes)).astype(np.float32)
    scores = run(model, xs)
    labels = run(new, xs)
    assert labels.shape == (3000, 1)
    exact = np.argmax(xs.astype(np.float64) * a.astype(np.float32) + b.astype(np.float32), axis=1)
    np.testing.assert_array_equal(labels[:, 0].astype(np.int64), np.argmax(scores, axis=1))
    np.testing.assert_array_equal(labels[:, 0].astype(np.int64), exact)


def test_tail_to_label_select_uniform_scale_half_integer_bias_is_exact_with_ties():
    rng = np.random.default_rng(501)
    classes = 8
    s = 0.375  # exact in float32, so the float graph's scores are exact too
    k = rng.integers(-6, 7, classes)
    model = tail_graph(np.full(classes, s), s * k / 2, "INT3")
    new, ls = to_label_select(model)
    a_int = new.get_initializer(ls.input[1])
    assert np.all(a_int == 2)  # denominator 2: exact integer scores
    xs = rng.integers(-4, 4, (4000, classes)).astype(np.float32)
    exact_scores = 2 * xs.astype(np.int64) + k[None, :]
    ties = (exact_scores == exact_scores.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert ties.sum() > 100, "the test needs ties"
    labels = run(new, xs)[:, 0].astype(np.int64)
    np.testing.assert_array_equal(labels, np.argmax(exact_scores, axis=1))
    np.testing.assert_array_equal(labels, np.argmax(run(model, xs), axis=1))


def test_tail_to_label_select_negative_uniform_scale():
    rng = np.random.default_rng(502)
    model = tail_graph(np.full(6, -0.5), np.float32(0.0), "INT3")
    new, ls = to_label_select(model)
    assert np.all(new.get_initializer(ls.input[1]) < 0)
    xs = rng.integers(-4, 4, (500, 6)).astype(np.float32)
    np.testing.assert_array_equal(run(new, xs)[:, 0], np.argmax(-xs, axis=1))


def test_tail_to_label_select_positive_uniform_affine_needs_no_affine():
    rng = np.random.default_rng(503)
    model = tail_graph(np.float32(0.3), np.float32(1.5), "INT4", classes=7)
    new, ls = to_label_select(model)
    assert len(ls.input) == 1
    xs = rng.integers(-8, 8, (500, 7)).astype(np.float32)
    np.testing.assert_array_equal(run(new, xs)[:, 0], np.argmax(xs, axis=1))


def test_tail_to_label_select_integer_affine_values():
    a_int, b_int = TailToLabelSelect.integer_affine(np.array([0.5, 0.5, 0.5]), np.array([0.0, 0.25, 0.5]))
    assert a_int.tolist() == [2, 2, 2] and b_int.tolist() == [0, 1, 2]
    a_int, b_int = TailToLabelSelect.integer_affine(np.array([-2.0, -2.0]), np.array([1.0, 0.0]))
    assert a_int.tolist() == [-2, -2] and b_int.tolist() == [0, -1]  # -2x + 1 vs -2x: same order
    a_int, _ = TailToLabelSelect.integer_affine(np.array([0.5, 0.25]), np.array([0.0, 0.0]))
    assert a_int.tolist() == [1 << 23, 1 << 22]


def test_tail_with_spatial_output_is_an_error():
    g = GraphBuilder()
    x = g.input([1, 3, 2, 2], "INT4")
    model = g.build(g.mul(x, 0.5))
    rejected(TailToLabelSelect, model, "one score per class")


# ---------------------------------------------------------------- execution helper


def test_execute_graph_chunks_equal_one_batch():
    rng = np.random.default_rng(550)
    g = GraphBuilder()
    x = g.input([1, 4])
    model = g.build(g.quant(g.matmul(x, rng.normal(size=(4, 3))), np.float32(0.25), 4))
    xs = rng.normal(size=(10, 4)).astype(np.float32)
    whole = execute_graph(model, xs, batch=10)
    chunked = execute_graph(model, xs, batch=3)
    name = model.graph.output[0].name
    assert whole[name].shape == (10, 3)
    np.testing.assert_array_equal(whole[name], chunked[name])
    w = model.get_initializer(model.graph.node[0].input[1])
    np.testing.assert_array_equal(whole[name], np.clip(np.round(xs @ w / 0.25), -8, 7) * 0.25)


# ---------------------------------------------------------------- full streamline


def uint8_images(n, shape, seed):
    return np.random.default_rng(seed).integers(0, 256, [n] + list(shape[1:])).astype(np.float32)


def build_residual_mlp(rng, scale_b):
    """Quant(pixels) -> MatMul(Quant W) -> BN -> Quant(s) -+-> MatMul(bipolar W) -> BN -> Quant(scale_b) -> Add
                                                           +--------------------------------------------/
    -> MatMul(Quant W) + bias."""
    g = GraphBuilder()
    x = g.input([1, 16])
    q0 = g.quant(x, np.float32(1 / 255), 8, signed=False)
    h = g.matmul(q0, g.quant_weight(rng.normal(size=(16, 8)), np.float32(0.05), bits=2))
    h = g.add(g.mul(h, rng.uniform(2, 8, (1, 8)) * rng.choice([1, -1], (1, 8))), rng.normal(size=(1, 8)) * 0.5)
    r = g.quant(h, np.float32(0.5), 3, name="shared_quant_a")
    b = g.matmul(r, g.quant_weight(rng.normal(size=(8, 8)), np.float32(0.1)))
    b = g.add(g.mul(b, rng.uniform(0.3, 1.0, (1, 8))), rng.normal(size=(1, 8)) * 0.3)
    rb = g.quant(b, np.float32(scale_b), 3, name="shared_quant_b")
    s = g.add(r, rb, name="residual_add")
    out = g.add(g.matmul(s, g.quant_weight(rng.normal(size=(8, 5)), rng.uniform(0.1, 0.3, (1, 5)), bits=3)),
                rng.normal(size=(1, 5)) * 0.2)
    return g.build(out)


def test_streamline_residual_mlp_labels_match_float_graph():
    rng = np.random.default_rng(600)
    model = build_residual_mlp(rng, 0.5)
    pixels = uint8_images(200, [1, 16], seed=1)
    scores = run(model, pixels / np.float32(255))
    s = streamline(copy_model(model))
    types = node_types(s)
    assert "Quant" not in types and "BipolarQuant" not in types and "Mul" not in types
    assert types[-1] == "LabelSelect"
    # two activation quantizers; the input quantizer (uint8 at scale 1/255) is the identity
    # on raw pixels and leaves no thresholds
    assert types.count("MultiThreshold") == 2
    assert s.get_tensor_datatype(s.graph.input[0].name) == DataType["UINT8"]
    add = [n for n in s.graph.node if n.name == "residual_add"][0]
    assert all(s.get_tensor_datatype(t).is_integer() for t in add.input)
    labels = run(s, pixels)[:, 0]
    np.testing.assert_array_equal(labels, np.argmax(scores, axis=1))
    assert len(np.unique(labels)) >= 3


def test_streamline_residual_mlp_different_scales_names_the_add():
    rng = np.random.default_rng(600)
    model = build_residual_mlp(rng, 0.25)
    with pytest.raises(BuildError) as info:
        streamline(copy_model(model))
    assert "residual_add" in str(info.value) and "different scales" in str(info.value)


def build_small_cnn(rng, pool):
    """Quant(pixels) -> zero-padded Conv (2-bit W, per-channel scale) -> BN (gammas of both signs) -> 2-bit
    unsigned Quant -> MaxPool -> Conv (bipolar W) -> BN -> 4-bit Quant -> GlobalAveragePool/AveragePool ->
    Flatten -> MatMul (3-bit W) + bias."""
    g = GraphBuilder()
    x = g.input([1, 3, 8, 8])
    q0 = g.quant(x, np.float32(1 / 255), 8, signed=False)
    h = g.conv(q0, g.quant_weight(rng.normal(size=(6, 3, 3, 3)), rng.uniform(0.02, 0.05, (6, 1, 1, 1)), bits=2),
               pads=(1, 1, 1, 1))
    h = g.add(g.mul(h, rng.uniform(5, 20, (1, 6, 1, 1)) * rng.choice([1, -1], (1, 6, 1, 1))),
              rng.normal(size=(1, 6, 1, 1)) * 2)
    a = g.maxpool(g.quant(h, np.float32(0.5), 2, signed=False), 2)
    h = g.conv(a, g.quant_weight(rng.normal(size=(5, 6, 3, 3)), np.float32(0.1)))
    h = g.add(g.mul(h, rng.uniform(0.5, 2, (1, 5, 1, 1))), rng.normal(size=(1, 5, 1, 1)) * 0.3)
    a = g.quant(h, np.float32(0.25), 4, signed=True)
    if pool == "GlobalAveragePool":
        p = g.node("GlobalAveragePool", [a], shape=[1, 5, 1, 1])
    else:
        p = g.node("AveragePool", [a], shape=[1, 5, 1, 1], kernel_shape=[2, 2], strides=[2, 2])
    w3 = g.quant_weight(rng.normal(size=(5, 4)), rng.uniform(0.1, 0.3, (1, 4)), bits=3)
    out = g.add(g.matmul(g.flatten(p), w3), np.zeros((1, 4)), name="fc_bias")
    return g.build(out)


@pytest.mark.parametrize("pool", ["GlobalAveragePool", "AveragePool"])
def test_streamline_small_cnn_labels_match_float_graph(pool):
    model = build_small_cnn(np.random.default_rng(800), pool)
    rng = np.random.default_rng(801)
    pixels = np.clip(rng.integers(0, 256, (100, 3, 1, 1)) + rng.integers(-60, 60, (100, 3, 8, 8)), 0, 255)
    pixels = pixels.astype(np.float32)
    # center the classifier on these images so that the labels vary
    bias = [n for n in model.graph.node if n.name == "fc_bias"][0].input[1]
    model.set_initializer(bias, -run(model, pixels / np.float32(255)).mean(axis=0, keepdims=True))
    scores = run(model, pixels / np.float32(255))
    s = streamline(copy_model(model))
    # the 8-bit input quantizer with scale 1/255 maps every pixel to itself: no thresholds left
    assert node_types(s) == ["Pad", "Conv", "MultiThreshold", "MaxPool", "Conv", "MultiThreshold",
                             "ReduceSum" if pool == "GlobalAveragePool" else "Conv", "Flatten", "MatMul",
                             "LabelSelect"]
    labels = run(s, pixels)[:, 0]
    np.testing.assert_array_equal(labels, np.argmax(scores, axis=1))
    assert len(np.unique(labels)) >= 3


def binary_conv_graph(rng, pad_value, explicit):
    """Quant(pixels) -> Conv(bipolar W) -> BN -> BipolarQuant -> pad -> Conv(bipolar W) -> Flatten -> scale/bias."""
    g = GraphBuilder()
    x = g.input([1, 2, 5, 5])
    q0 = g.quant(x, np.float32(1 / 255), 8, signed=False)
    h = g.conv(q0, g.quant_weight(rng.normal(size=(4, 2, 3, 3)), np.float32(1.0)))
    h = g.add(g.mul(h, rng.uniform(0.5, 1.5, (1, 4, 1, 1))), rng.normal(size=(1, 4, 1, 1)))
    a = g.bipolar_quant(h, np.float32(1.0))
    w2 = g.quant_weight(rng.normal(size=(6, 4, 5, 5)), np.float32(1.0))
    if explicit:
        y = g.conv(g.pad(a, (1, 1, 1, 1), pad_value, name="act_pad"), w2)
    else:
        y = g.conv(a, w2, pads=(1, 1, 1, 1), name="conv2")
    out = g.add(g.mul(g.flatten(y), np.float32(0.25)), np.float32(0.125))
    return g.build(out)


def test_streamline_binary_conv_minus_one_padding():
    rng = np.random.default_rng(700)
    model = binary_conv_graph(rng, -1.0, explicit=True)
    pixels = uint8_images(64, [1, 2, 5, 5], seed=2)
    scores = run(model, pixels / np.float32(255))
    s = streamline(copy_model(model))
    assert "Pad" in node_types(s) and node_types(s)[-1] == "LabelSelect"
    pad = only_node(s, "Pad")
    assert float(s.get_initializer(pad.input[2])) == 0.0  # -1 is level 0 of the bipolar encoding
    labels = run(s, pixels)[:, 0]
    np.testing.assert_array_equal(labels, np.argmax(scores, axis=1))
    assert len(np.unique(labels)) >= 2


@pytest.mark.parametrize("explicit", [True, False])
def test_streamline_zero_padding_of_binary_activation_is_an_error(explicit):
    rng = np.random.default_rng(701)
    model = binary_conv_graph(rng, 0.0, explicit=explicit)
    with pytest.raises(BuildError) as info:
        streamline(copy_model(model))
    msg = str(info.value)
    assert "pad" in msg and "-1" in msg
    assert ("act_pad" if explicit else "conv2") in msg


# ---------------------------------------------------------------- Brevitas MLP end to end


def brevitas_mlp(act_bits: int, seed: int):
    import torch
    from brevitas import nn as qnn
    from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst

    torch.manual_seed(seed)

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(bit_width=8, max_val=1.0, return_quant_tensor=True)
            self.fc1 = qnn.QuantLinear(64, 24, bias=False, weight_quant=SignedBinaryWeightPerTensorConst,
                                       weight_bit_width=1)
            self.bn = torch.nn.BatchNorm1d(24)
            if act_bits == 1:
                self.act = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
            else:
                self.act = qnn.QuantIdentity(bit_width=act_bits, max_val=2.0, return_quant_tensor=True)
            self.fc2 = qnn.QuantLinear(24, 10, bias=True, weight_quant=SignedBinaryWeightPerTensorConst,
                                       weight_bit_width=1)

        def forward(self, x):
            return self.fc2(self.act(self.bn(self.fc1(self.inp(x.flatten(1))))))

    model = MLP()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # fc1 outputs are 0.1 * (sum of 64 +-pixels): BN statistics in that range, gammas of both signs
        model.bn.running_mean.copy_(torch.randn(24, generator=gen) * 0.3)
        model.bn.running_var.copy_(torch.rand(24, generator=gen) * 0.3 + 0.05)
        gamma = torch.rand(24, generator=gen) + 0.5
        model.bn.weight.copy_(gamma * torch.where(torch.rand(24, generator=gen) < 0.3, -1.0, 1.0))
        model.bn.bias.copy_(torch.randn(24, generator=gen) * 0.3)
        model.fc2.bias.copy_(torch.randn(10, generator=gen) * 0.05)
    return model.eval()


@pytest.mark.parametrize("act_bits", [1, 2])
def test_streamline_brevitas_mlp_labels_match_torch(act_bits, tmp_path):
    import torch
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    model = brevitas_mlp(act_bits, seed=act_bits)
    path = tmp_path / "mlp.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.rand(1, 1, 8, 8), str(path))
    qonnx_model = cleanup_model(ModelWrapper(str(path)))
    s = streamline(qonnx_model)
    types = node_types(s)
    assert types.count("MultiThreshold") == 2 and types.count("MatMul") == 2 and types[-1] == "LabelSelect"
    assert not {"Quant", "BipolarQuant", "BatchNormalization", "Mul", "Gemm"} & set(types)
    assert s.get_tensor_datatype(s.graph.input[0].name) == DataType["UINT8"]
    for mm in nodes_of(s, "MatMul"):
        w = s.get_initializer(mm.input[1])
        assert set(np.unique(w)) <= {-1.0, 1.0}
    images = np.random.default_rng(act_bits).integers(0, 256, (32, 1, 8, 8)).astype(np.uint8)
    with torch.no_grad():
        ref = model(torch.tensor(images / 255.0, dtype=torch.float32)).argmax(1).numpy()
    labels = run(s, images.astype(np.float32))
    assert labels.shape == (32, 1)
    np.testing.assert_array_equal(labels[:, 0].astype(np.int64), ref)
    assert len(np.unique(ref)) >= 3, "labels should vary for the test to mean something"


def test_smallest_int_type_used_for_thresholds():
    assert smallest_int_type(0, 1) == DataType["BINARY"]
    assert smallest_int_type(0, 7) == DataType["UINT3"]
    assert smallest_int_type(-4, 3) == DataType["INT3"]
    assert smallest_int_type(-5, 3) == DataType["INT4"]


def test_remove_identity_thresholds_drops_only_identities():
    from hw_build.streamline.absorb import RemoveIdentityThresholds

    g = GraphBuilder()
    x = g.input([1, 4], "UINT4")
    ident = g.node("MultiThreshold", [x, g.const(np.arange(1, 16, dtype=np.float32)[None, :])],
                   domain="qonnx.custom_op.general", out_dtype="UINT4", data_layout="NC")
    other = g.node("MultiThreshold", [x, g.const(np.arange(2, 17, dtype=np.float32)[None, :])],
                   domain="qonnx.custom_op.general", out_dtype="UINT4", data_layout="NC")
    out = g.node("Add", [ident, other])
    model = g.build(out)
    model.set_tensor_datatype(ident, DataType["UINT4"])
    model.set_tensor_datatype(other, DataType["UINT4"])
    xs = every_value_batch("UINT4", [1, 4])
    before = run(model, xs)
    new, changed = RemoveIdentityThresholds().apply(copy_model(model))
    assert changed
    assert len(nodes_of(new, "MultiThreshold")) == 1  # the shifted one stays
    assert x in producer_of(new, out).input
    assert_same(before, run(new, xs))
    assert RemoveIdentityThresholds().apply(new)[1] is False
