"""Python execution of every hardware layer against an independent naive implementation
(loops or direct formulas) on randomized shapes, values and bit widths; cycles and folding."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from hw_build.execute import execute_dataflow
from tests.graph_builders import HW_DOMAIN, GraphBuilder


def hw_node(op_type, inputs, outputs, **attrs):
    node = helper.make_node(op_type, inputs, outputs, domain=HW_DOMAIN, name=f"{op_type.lower()}_0", **attrs)
    return node, getCustomOp(node)


def execute(op_type, context, inputs, outputs=("y",), **attrs):
    node, inst = hw_node(op_type, list(inputs), list(outputs), **attrs)
    context = {k: (np.asarray(v, dtype=np.float32) if not np.asarray(v).dtype == np.int64 else v)
               for k, v in context.items()}
    inst.execute_node(context, None)
    return context[outputs[0]] if len(outputs) == 1 else [context[o] for o in outputs]


def random_values(rng, dtype: str, shape) -> np.ndarray:
    dt = DataType[dtype]
    return rng.integers(int(dt.min()), int(dt.max()) + 1, shape).astype(np.float32)


def naive_levels(acc, th):
    """#{t : acc >= th[c, t]} by loops (th has one row per channel or one shared row)."""
    out = np.zeros(acc.shape, dtype=np.int64)
    for idx in np.ndindex(*acc.shape):
        row = th[idx[-1]] if th.shape[0] > 1 else th[0]
        out[idx] = sum(1 for t in row if acc[idx] >= t)
    return out


# ---------------------------------------------------------------- MVTU


def mvtu_attrs(n_vec_hw, mw, mh, in_dtype, w_dtype, out_dtype, binary=0, **extra):
    oh, ow = n_vec_hw
    return dict(in_shape=[1, oh, ow, mw], out_shape=[1, oh, ow, mh], in_dtype=in_dtype, out_dtype=out_dtype,
                MW=mw, MH=mh, num_vectors=oh * ow, binary=binary, w_dtype=w_dtype, acc_dtype="INT32", **extra)


@pytest.mark.parametrize("seed", range(4))
def test_mvtu_binary_is_xnor_popcount(seed):
    rng = np.random.default_rng(seed)
    n, oh, ow = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    mw, mh = int(rng.integers(1, 40)), int(rng.integers(1, 9))
    x = rng.integers(0, 2, (n, oh, ow, mw)).astype(np.float32)
    w = rng.integers(0, 2, (mh, mw)).astype(np.float32)
    y = execute("MVTU", {"x": x, "W": w}, ["x", "W"],
                **mvtu_attrs((oh, ow), mw, mh, "BINARY", "BINARY", "UINT32", binary=1))
    assert y.shape == (n, oh, ow, mh)
    # loops: count of equal bits
    expected = np.zeros((n, oh, ow, mh), dtype=np.int64)
    for i, r, c, h in np.ndindex(n, oh, ow, mh):
        expected[i, r, c, h] = sum(int(x[i, r, c, k] == w[h, k]) for k in range(mw))
    np.testing.assert_array_equal(y, expected)
    # the bipolar dot product: (sum (2x-1)(2w-1) + MW) / 2
    bip = np.einsum("nrck,hk->nrch", 2 * x - 1, 2 * w - 1)
    np.testing.assert_array_equal(y, (bip + mw) / 2)


MVTU_INT_TYPES = [("INT4", "INT3"), ("UINT8", "INT2"), ("UINT2", "UINT3"), ("INT8", "INT8"), ("BINARY", "INT4")]


@pytest.mark.parametrize("in_dtype,w_dtype", MVTU_INT_TYPES)
def test_mvtu_integer(in_dtype, w_dtype):
    rng = np.random.default_rng(MVTU_INT_TYPES.index((in_dtype, w_dtype)))
    n, oh, ow, mw, mh = 2, 2, 3, int(rng.integers(3, 30)), int(rng.integers(1, 8))
    x = random_values(rng, in_dtype, (n, oh, ow, mw))
    w = random_values(rng, w_dtype, (mh, mw))
    y = execute("MVTU", {"x": x, "W": w}, ["x", "W"],
                **mvtu_attrs((oh, ow), mw, mh, in_dtype, w_dtype, "INT32"))
    expected = np.zeros((n, oh, ow, mh), dtype=np.int64)
    for i, r, c, h in np.ndindex(n, oh, ow, mh):
        expected[i, r, c, h] = sum(int(x[i, r, c, k]) * int(w[h, k]) for k in range(mw))
    np.testing.assert_array_equal(y, expected)


def test_mvtu_integer_large_accumulators_are_exact():
    rng = np.random.default_rng(7)
    mw, mh = 512, 3
    x = random_values(rng, "INT16", (2, 1, 1, mw))
    w = random_values(rng, "INT16", (mh, mw))
    y = execute("MVTU", {"x": x, "W": w}, ["x", "W"], **mvtu_attrs((1, 1), mw, mh, "INT16", "INT16", "INT48"))
    expected = x.reshape(2, mw).astype(np.int64) @ w.T.astype(np.int64)
    # float32 holds the output; compare what float32 can represent of the exact sum
    np.testing.assert_array_equal(y.reshape(2, mh), expected.astype(np.float32))


@pytest.mark.parametrize("binary", [1, 0])
@pytest.mark.parametrize("shared", [False, True])
def test_mvtu_with_thresholds(binary, shared):
    rng = np.random.default_rng(10 * binary + shared)
    n, oh, ow, mw, mh, t = 3, 2, 2, 24, 5, 3
    if binary:
        x = rng.integers(0, 2, (n, oh, ow, mw)).astype(np.float32)
        w = rng.integers(0, 2, (mh, mw)).astype(np.float32)
        acc = np.einsum("nrck,hk->nrch", x, w) + np.einsum("nrck,hk->nrch", 1 - x, 1 - w)
        th = np.sort(rng.integers(6, 19, (1 if shared else mh, t)), axis=1).astype(np.float32)
    else:
        x = random_values(rng, "UINT3", (n, oh, ow, mw))
        w = random_values(rng, "INT2", (mh, mw))
        acc = np.einsum("nrck,hk->nrch", x, w)
        th = np.sort(rng.integers(-20, 20, (1 if shared else mh, t)), axis=1).astype(np.float32)
    th[0, 1] = th[0, 0]  # a repeated threshold counts twice
    y = execute("MVTU", {"x": x, "W": w, "T": th}, ["x", "W", "T"],
                **mvtu_attrs((oh, ow), mw, mh, "BINARY" if binary else "UINT3", "BINARY" if binary else "INT2",
                             "UINT2", binary=binary))
    expected = naive_levels(acc.astype(np.int64), th)
    np.testing.assert_array_equal(y, expected)
    assert 0 < len(np.unique(expected))


def test_mvtu_cycles_and_folding():
    attrs = mvtu_attrs((4, 4), 36, 12, "BINARY", "BINARY", "UINT32", binary=1)
    _, mvtu = hw_node("MVTU", ["x", "W"], ["y"], **attrs)
    assert mvtu.fold_options() == {"PE": [1, 2, 3, 4, 6, 12], "SIMD": [1, 2, 3, 4, 6, 9, 12, 18, 36]}
    assert mvtu.cycles() == 16 * 12 * 36
    for pe, simd in [(1, 1), (3, 9), (12, 36), (4, 6)]:
        mvtu.set_folding(PE=pe, SIMD=simd)
        assert mvtu.get_folding() == {"PE": pe, "SIMD": simd}
        assert mvtu.cycles() == 16 * (12 // pe) * (36 // simd)
    assert mvtu.in_stream_bits() == 6 and mvtu.out_stream_bits() == 4 * 32
    with pytest.raises(ValueError, match="PE=5"):
        mvtu.set_folding(PE=5)
    with pytest.raises(ValueError, match="SIMD=8"):
        mvtu.set_folding(SIMD=8)
    with pytest.raises(ValueError):
        mvtu.set_folding(MMV=2)
    assert mvtu.get_folding() == {"PE": 4, "SIMD": 6}  # unchanged by the rejected values


# ---------------------------------------------------------------- SlidingWindow


def naive_im2col(x, k, s, pads, value):
    top, left, bottom, right = pads
    n, h, w, c = x.shape
    hp, wp = h + top + bottom, w + left + right
    oh, ow = (hp - k) // s + 1, (wp - k) // s + 1

    def px(i, r, q, ch):
        r, q = r - top, q - left
        return x[i, r, q, ch] if 0 <= r < h and 0 <= q < w else value

    out = np.zeros((n, oh, ow, k * k * c), dtype=np.float64)
    for i, oy, ox in np.ndindex(n, oh, ow):
        out[i, oy, ox] = [px(i, oy * s + kh, ox * s + kw, ch) for kh in range(k) for kw in range(k) for ch in range(c)]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_sliding_window_matches_naive_im2col(seed):
    rng = np.random.default_rng(seed)
    n, h, w, c = int(rng.integers(1, 3)), int(rng.integers(3, 7)), int(rng.integers(3, 7)), int(rng.integers(1, 4))
    k = int(rng.integers(1, 4))
    s = int(rng.integers(1, 3))
    pads = [int(p) for p in rng.integers(0, 2, 4)] if seed % 2 == 0 else [0, 0, 0, 0]
    pad_value = int(rng.integers(-3, 4))
    oh = (h + pads[0] + pads[2] - k) // s + 1
    ow = (w + pads[1] + pads[3] - k) // s + 1
    x = random_values(rng, "INT4", (n, h, w, c))
    y = execute("SlidingWindow", {"x": x}, ["x"], in_shape=[1, h, w, c], out_shape=[1, oh, ow, k * k * c],
                in_dtype="INT4", out_dtype="INT4", kernel=k, stride=s, pads=pads, pad_value=pad_value)
    np.testing.assert_array_equal(y, naive_im2col(x, k, s, pads, pad_value))


def test_sliding_window_window_order_is_kh_kw_c():
    x = np.arange(2 * 2 * 3, dtype=np.float32).reshape(1, 2, 2, 3)  # value = (h*2 + w)*3 + c
    y = execute("SlidingWindow", {"x": x}, ["x"], in_shape=[1, 2, 2, 3], out_shape=[1, 1, 1, 12],
                in_dtype="UINT4", out_dtype="UINT4", kernel=2)
    assert y.reshape(-1).tolist() == list(range(12))
    y = execute("SlidingWindow", {"x": x}, ["x"], in_shape=[1, 2, 2, 3], out_shape=[1, 2, 2, 12],
                in_dtype="UINT4", out_dtype="UINT4", kernel=2, pads=[1, 1, 0, 0], pad_value=-1)
    assert y[0, 0, 0].tolist() == [-1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 2]


# ---------------------------------------------------------------- Pool


@pytest.mark.parametrize("mode", ["max", "sum"])
@pytest.mark.parametrize("seed", range(3))
def test_pool(mode, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 4))
    n, h, w, c = 2, int(rng.integers(k, 3 * k + 2)), int(rng.integers(k, 3 * k + 2)), int(rng.integers(1, 5))
    oh, ow = h // k, w // k
    x = random_values(rng, "INT5", (n, h, w, c))
    y = execute("Pool", {"x": x}, ["x"], in_shape=[1, h, w, c], out_shape=[1, oh, ow, c], in_dtype="INT5",
                out_dtype="INT10", kernel=k, mode=mode)
    expected = np.zeros((n, oh, ow, c))
    for i, r, q, ch in np.ndindex(n, oh, ow, c):
        window = [x[i, r * k + a, q * k + b, ch] for a in range(k) for b in range(k)]
        expected[i, r, q, ch] = max(window) if mode == "max" else sum(window)
    np.testing.assert_array_equal(y, expected)


def test_pool_drops_remainder_rows():
    x = np.zeros((1, 5, 5, 1), dtype=np.float32)
    x[0, 4, :, 0] = 9  # last row and column lie outside every 2x2 window
    x[0, :, 4, 0] = 9
    x[0, 1, 1, 0] = 3
    y = execute("Pool", {"x": x}, ["x"], in_shape=[1, 5, 5, 1], out_shape=[1, 2, 2, 1], in_dtype="UINT4",
                out_dtype="UINT4", kernel=2, mode="max")
    assert y.reshape(2, 2).tolist() == [[3, 0], [0, 0]]


# ---------------------------------------------------------------- Thresholding


@pytest.mark.parametrize("shared", [False, True])
def test_thresholding(shared):
    rng = np.random.default_rng(20 + shared)
    n, h, w, c, t = 2, 3, 2, 4, 7
    x = random_values(rng, "INT6", (n, h, w, c))
    th = np.sort(rng.integers(-40, 40, (1 if shared else c, t)), axis=1).astype(np.float32)
    y = execute("Thresholding", {"x": x, "T": th}, ["x", "T"], in_shape=[1, h, w, c], out_shape=[1, h, w, c],
                in_dtype="INT6", out_dtype="UINT3")
    expected = naive_levels(x.astype(np.int64), th)
    np.testing.assert_array_equal(y, expected)
    assert expected.min() == 0 or expected.max() == t or len(np.unique(expected)) > 2


def test_thresholding_cycles_and_folding():
    _, op = hw_node("Thresholding", ["x", "T"], ["y"], in_shape=[1, 4, 4, 6], out_shape=[1, 4, 4, 6],
                    in_dtype="INT6", out_dtype="UINT3")
    assert op.cycles() == 96
    op.set_folding(PE=3)
    assert op.cycles() == 32
    with pytest.raises(ValueError):
        op.set_folding(PE=4)


# ---------------------------------------------------------------- streams


def test_add_streams():
    rng = np.random.default_rng(30)
    a = random_values(rng, "INT4", (3, 2, 2, 5))
    b = random_values(rng, "UINT3", (3, 2, 2, 5))
    y = execute("AddStreams", {"a": a, "b": b}, ["a", "b"], in_shape=[1, 2, 2, 5], out_shape=[1, 2, 2, 5],
                in_dtype="INT4", in1_dtype="UINT3", out_dtype="INT5")
    expected = np.zeros(a.shape)
    for idx in np.ndindex(*a.shape):
        expected[idx] = int(a[idx]) + int(b[idx])
    np.testing.assert_array_equal(y, expected)


def test_global_acc_pool():
    rng = np.random.default_rng(31)
    x = random_values(rng, "INT3", (2, 3, 4, 5))
    y = execute("GlobalAccPool", {"x": x}, ["x"], in_shape=[1, 3, 4, 5], out_shape=[1, 1, 1, 5],
                in_dtype="INT3", out_dtype="INT7")
    assert y.shape == (2, 1, 1, 5)
    for i, ch in np.ndindex(2, 5):
        assert y[i, 0, 0, ch] == sum(x[i, r, q, ch] for r in range(3) for q in range(4))


def test_duplicate_streams():
    rng = np.random.default_rng(32)
    x = random_values(rng, "UINT4", (2, 2, 3, 4))
    outs = execute("DuplicateStreams", {"x": x}, ["x"], outputs=("y0", "y1", "y2"), in_shape=[1, 2, 3, 4],
                   out_shape=[1, 2, 3, 4], in_dtype="UINT4", out_dtype="UINT4", num_outputs=3)
    for o in outs:
        np.testing.assert_array_equal(o, x)
    outs[0][0, 0, 0, 0] = 99  # each output is its own copy
    assert outs[1][0, 0, 0, 0] == x[0, 0, 0, 0] != 99


# ---------------------------------------------------------------- LabelSelect


def naive_label(scores):
    best, label = None, 0
    for c, v in enumerate(scores):
        if best is None or v > best:  # strict: the first index wins ties
            best, label = v, c
    return label


def test_label_select_without_affine_first_index_on_ties():
    rng = np.random.default_rng(40)
    x = random_values(rng, "INT2", (300, 1, 1, 6))  # few values: many ties
    y = execute("LabelSelect", {"x": x}, ["x"], in_shape=[1, 1, 1, 6], out_shape=[1, 1], in_dtype="INT2",
                out_dtype="UINT3")
    assert y.shape == (300, 1)
    expected = [naive_label(list(row)) for row in x.reshape(300, 6)]
    np.testing.assert_array_equal(y[:, 0], expected)
    assert sum((row == row.max()).sum() > 1 for row in x.reshape(300, 6)) > 50
    assert execute("LabelSelect", {"x": np.full((1, 1, 1, 6), 1.0)}, ["x"], in_shape=[1, 1, 1, 6],
                   out_shape=[1, 1], in_dtype="INT2", out_dtype="UINT3")[0, 0] == 0


def test_label_select_with_affine():
    rng = np.random.default_rng(41)
    classes = 10
    x = random_values(rng, "INT8", (500, classes))
    a = rng.integers(-(1 << 20), 1 << 20, classes).astype(np.int64)
    b = rng.integers(-(1 << 30), 1 << 30, classes).astype(np.int64)
    a[3] = a[4] = 5  # two classes with small equal affine: exact ties appear
    b[3] = b[4] = 0
    y = execute("LabelSelect", {"x": x, "A": a, "B": b}, ["x", "A", "B"], in_shape=[1, classes], out_shape=[1, 1],
                in_dtype="INT8", out_dtype="UINT4")
    expected = [naive_label([int(a[c]) * int(row[c]) + int(b[c]) for c in range(classes)]) for row in x]
    np.testing.assert_array_equal(y[:, 0], expected)
    # an affine beyond float32 precision must still be exact (scores compared as integers)
    big = np.array([1 << 40, 1 << 40], dtype=np.int64)
    off = np.array([0, 1], dtype=np.int64)
    y = execute("LabelSelect", {"x": np.array([[3.0, 3.0]]), "A": big, "B": off}, ["x", "A", "B"],
                in_shape=[1, 2], out_shape=[1, 1], in_dtype="INT8", out_dtype="BINARY")
    assert y[0, 0] == 1


# ---------------------------------------------------------------- a dataflow graph


def test_execute_dataflow_chain_matches_naive():
    rng = np.random.default_rng(50)
    h = w = 4
    c, mh, k = 3, 4, 3
    x = rng.integers(0, 2, (5, h, w, c)).astype(np.float32)
    wts = rng.integers(0, 2, (mh, k * k * c)).astype(np.float32)
    th = np.sort(rng.integers(5, 22, (mh, 1)), axis=1).astype(np.float32)
    g = GraphBuilder()
    g.input([1, h, w, c], name="x")
    win = g.node("SlidingWindow", ["x"], shape=[1, h, w, k * k * c], domain=HW_DOMAIN, in_shape=[1, h, w, c],
                 out_shape=[1, h, w, k * k * c], in_dtype="BINARY", out_dtype="BINARY", kernel=k,
                 pads=[1, 1, 1, 1], pad_value=0)
    act = g.node("MVTU", [win, g.const(wts, "W"), g.const(th, "T")], shape=[1, h, w, mh], domain=HW_DOMAIN,
                 **mvtu_attrs((h, w), k * k * c, mh, "BINARY", "BINARY", "BINARY", binary=1))
    pooled = g.node("GlobalAccPool", [act], shape=[1, 1, 1, mh], domain=HW_DOMAIN, in_shape=[1, h, w, mh],
                    out_shape=[1, 1, 1, mh], in_dtype="BINARY", out_dtype="UINT5")
    label = g.node("LabelSelect", [pooled], shape=[1, 1], domain=HW_DOMAIN, in_shape=[1, 1, 1, mh],
                   out_shape=[1, 1], in_dtype="UINT5", out_dtype="UINT2")
    model = g.build(label)
    ctx = execute_dataflow(model, x, full_context=True)
    cols = naive_im2col(x, k, 1, [1, 1, 1, 1], 0)
    acc = (cols[..., None, :] == wts[None, None, None]).sum(-1)
    levels = (acc >= th[:, 0]).astype(np.int64)
    sums = levels.sum(axis=(1, 2))
    np.testing.assert_array_equal(ctx[act], levels)
    np.testing.assert_array_equal(ctx[pooled].reshape(5, mh), sums)
    np.testing.assert_array_equal(ctx[label][:, 0], [naive_label(list(r)) for r in sums])
    out = execute_dataflow(model, x[:2])
    np.testing.assert_array_equal(out[label], ctx[label][:2])
