"""Test fixtures (not part of the compiler): small builders of single hardware-layer models
and whole hardware graphs, for the RTL tests, the lint tests and the cost-model calibration
sweep (benchmarks/calibrate_cost_model.py).

Each ``*_case`` function returns ``(model, node, inputs)``: a qonnx ModelWrapper holding
one ``hw_build.ops`` node (tensor shapes, datatypes and initializers set), the node, and
random input tensors for ``frames`` frames. :func:`reference` runs the node's
``execute_node`` on them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import NodeProto, TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_build.ops.base import DOMAIN

Case = tuple[ModelWrapper, NodeProto, list[np.ndarray]]


def random_values(rng: np.random.Generator, dtype: DataType, shape: list[int] | tuple[int, ...]) -> np.ndarray:
    """Uniform random values of an integer qonnx type (float32, as qonnx tensors are)."""
    if dtype == DataType["BIPOLAR"]:
        return (2 * rng.integers(0, 2, size=shape) - 1).astype(np.float32)
    return rng.integers(int(dtype.min()), int(dtype.max()) + 1, size=shape).astype(np.float32)


def make_model(op_type: str, name: str, inputs: list[tuple[str, list[int], str]],
               outputs: list[tuple[str, list[int], str]], attrs: dict[str, Any],
               initializers: dict[str, tuple[np.ndarray, str]] | None = None) -> tuple[ModelWrapper, NodeProto]:
    """A one-node graph. ``inputs``/``outputs``: (tensor, shape, datatype name) of the streams;
    ``initializers``: tensor -> (value, datatype name), appended to the node's inputs in order."""
    initializers = initializers or {}
    node = helper.make_node(op_type, [t for t, _, _ in inputs] + list(initializers),
                            [t for t, _, _ in outputs], name=name, domain=DOMAIN, **attrs)
    graph = helper.make_graph(
        [node], f"{name}_graph",
        [helper.make_tensor_value_info(t, TensorProto.FLOAT, s) for t, s, _ in inputs],
        [helper.make_tensor_value_info(t, TensorProto.FLOAT, s) for t, s, _ in outputs],
    )
    model = ModelWrapper(helper.make_model(graph, producer_name="tests.rtl_cases"))
    for t, _shape, dt in inputs + outputs:
        model.set_tensor_datatype(t, DataType[dt])
    for t, (value, dt) in initializers.items():
        model.set_initializer(t, np.asarray(value, dtype=np.float32))
        model.set_tensor_datatype(t, DataType[dt])
    return model, model.graph.node[0]


def reference(model: ModelWrapper, node: NodeProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The node's Python execution (the bit-exact reference), outputs as int64 arrays."""
    context = {t: np.asarray(v, dtype=np.float32) for t, v in zip(
        [t for t in node.input if t and model.get_initializer(t) is None], inputs)}
    for t in node.input:
        if t and model.get_initializer(t) is not None:
            context[t] = model.get_initializer(t)
    getCustomOp(node).execute_node(context, model.graph)
    return [np.rint(context[t]).astype(np.int64) for t in node.output]


def mvtu_case(rng: np.random.Generator, name: str, mw: int, mh: int, pe: int, simd: int, vectors: int = 1,
              binary: bool = True, in_dtype: str = "BINARY", w_dtype: str = "BINARY",
              thresholds: int = 0, shared_thresholds: bool = False, frames: int = 3,
              shape: str = "vector", weights: np.ndarray | None = None) -> Case:
    """An MVTU; ``vectors`` input vectors per frame (conv layers: output pixels); ``weights``
    (MH x MW, values of ``w_dtype``) replaces the random ones."""
    in_dt = DataType["BINARY" if binary else in_dtype]
    w_dt = DataType["BINARY" if binary else w_dtype]
    weights = random_values(rng, w_dt, (mh, mw)) if weights is None else np.asarray(weights, dtype=np.float32)
    if binary:
        lo, hi = 0, mw
    else:
        corners = [a * b for a in (in_dt.min(), in_dt.max()) for b in (w_dt.min(), w_dt.max())]
        lo, hi = int(mw * min(min(corners), 0)), int(mw * max(max(corners), 0))
    inits: dict[str, tuple[np.ndarray, str]] = {f"{name}_W": (weights, w_dt.name)}
    if thresholds:
        rows = 1 if shared_thresholds else mh
        # mostly inside the reachable range (with a spread around the typical sum), a few outside
        span = max(4, int((hi - lo) ** 0.5 * 2))
        centre = (lo + hi) // 2 if binary else 0
        th = np.sort(rng.integers(centre - span, centre + span + 1, size=(rows, thresholds)), axis=1)
        if thresholds > 1 and rows > 1:
            th[0, 0] = lo - 5          # always passed
            th[-1, -1] = hi + 3        # never passed
        inits[f"{name}_T"] = (th.astype(np.float32), "INT32")
        out_dt = DataType[f"UINT{max(1, int(thresholds).bit_length())}"] if thresholds > 1 else DataType["BINARY"]
    else:
        out_dt = DataType[f"INT{max(2, int(max(abs(lo), abs(hi) + 1)).bit_length() + 1)}"]
    acc_dt = DataType[f"INT{max(2, int(max(abs(lo), abs(hi) + 1)).bit_length() + 1)}"]
    if shape == "vector":
        in_shape, out_shape = [1, 1, vectors, mw], [1, 1, vectors, mh]
    else:
        side = int(round(vectors ** 0.5))
        in_shape, out_shape = [1, side, vectors // side, mw], [1, side, vectors // side, mh]
    attrs = dict(MW=mw, MH=mh, PE=pe, SIMD=simd, num_vectors=vectors, binary=int(binary),
                 w_dtype=w_dt.name, acc_dtype=acc_dt.name, in_shape=in_shape, out_shape=out_shape,
                 in_dtype=in_dt.name, out_dtype=out_dt.name)
    model, node = make_model("MVTU", name, [(f"{name}_in", in_shape, in_dt.name)],
                             [(f"{name}_out", out_shape, out_dt.name)], attrs, inits)
    x = random_values(rng, in_dt, [frames] + in_shape[1:])
    return model, node, [x]


def sliding_window_case(rng: np.random.Generator, name: str, h: int, w: int, c: int, k: int, stride: int = 1,
                        pads: tuple[int, int, int, int] = (0, 0, 0, 0), simd: int = 1, dtype: str = "BINARY",
                        pad_value: int = 0, frames: int = 3) -> Case:
    top, left, bottom, right = pads
    oh = (h + top + bottom - k) // stride + 1
    ow = (w + left + right - k) // stride + 1
    attrs = dict(kernel=k, stride=stride, pads=list(pads), pad_value=pad_value, SIMD=simd,
                 in_shape=[1, h, w, c], out_shape=[1, oh, ow, k * k * c], in_dtype=dtype, out_dtype=dtype)
    model, node = make_model("SlidingWindow", name, [(f"{name}_in", [1, h, w, c], dtype)],
                             [(f"{name}_out", [1, oh, ow, k * k * c], dtype)], attrs)
    return model, node, [random_values(rng, DataType[dtype], [frames, h, w, c])]


def parallel_window_case(rng: np.random.Generator, name: str, h: int, w: int, c: int, k: int, stride: int = 1,
                         pads: tuple[int, int, int, int] = (0, 0, 0, 0), simd: int | None = None,
                         dtype: str = "BINARY", pad_value: int = 0, frames: int = 3) -> Case:
    """A ParallelWindow (one pixel per input beat, ``simd`` output elements per beat, default
    the whole window): the same stream as :func:`sliding_window_case` with wider beats."""
    model, node, inputs = sliding_window_case(rng, name, h, w, c, k, stride, pads, 1, dtype, pad_value, frames)
    node.op_type = "ParallelWindow"
    getCustomOp(node).set_nodeattr("SIMD", k * k * c if simd is None else simd)
    return model, node, inputs


def thresholding_case(rng: np.random.Generator, name: str, shape: list[int], pe: int, in_dtype: str,
                      thresholds: int, shared: bool = False, frames: int = 3) -> Case:
    in_dt = DataType[in_dtype]
    c = shape[-1]
    lo, hi = int(in_dt.min()), int(in_dt.max())
    th = np.sort(rng.integers(lo - 2, hi + 3, size=(1 if shared else c, thresholds)), axis=1)
    out_dt = DataType[f"UINT{int(thresholds).bit_length()}"] if thresholds > 1 else DataType["BINARY"]
    attrs = dict(PE=pe, in_shape=[1] + shape, out_shape=[1] + shape, in_dtype=in_dtype, out_dtype=out_dt.name)
    model, node = make_model("Thresholding", name, [(f"{name}_in", [1] + shape, in_dtype)],
                             [(f"{name}_out", [1] + shape, out_dt.name)], attrs,
                             {f"{name}_T": (th.astype(np.float32), "INT32")})
    return model, node, [random_values(rng, in_dt, [frames] + shape)]


def pool_case(rng: np.random.Generator, name: str, h: int, w: int, c: int, k: int, pe: int, in_dtype: str,
              mode: str = "max", frames: int = 3) -> Case:
    in_dt = DataType[in_dtype]
    oh, ow = h // k, w // k
    if mode == "sum":
        lo, hi = int(in_dt.min()) * k * k, int(in_dt.max()) * k * k
        out_dt = DataType[f"INT{int(max(-lo, hi + 1)).bit_length() + 1}"] if in_dt.signed() \
            else DataType[f"UINT{int(hi).bit_length()}"]
    else:
        out_dt = in_dt
    attrs = dict(kernel=k, mode=mode, PE=pe, in_shape=[1, h, w, c], out_shape=[1, oh, ow, c],
                 in_dtype=in_dtype, out_dtype=out_dt.name)
    model, node = make_model("Pool", name, [(f"{name}_in", [1, h, w, c], in_dtype)],
                             [(f"{name}_out", [1, oh, ow, c], out_dt.name)], attrs)
    return model, node, [random_values(rng, in_dt, [frames, h, w, c])]


def duplicate_case(rng: np.random.Generator, name: str, shape: list[int], pe: int, dtype: str, outputs: int = 2,
                   frames: int = 3) -> Case:
    attrs = dict(PE=pe, num_outputs=outputs, in_shape=[1] + shape, out_shape=[1] + shape,
                 in_dtype=dtype, out_dtype=dtype)
    model, node = make_model("DuplicateStreams", name, [(f"{name}_in", [1] + shape, dtype)],
                             [(f"{name}_out{i}", [1] + shape, dtype) for i in range(outputs)], attrs)
    return model, node, [random_values(rng, DataType[dtype], [frames] + shape)]


def add_case(rng: np.random.Generator, name: str, shape: list[int], pe: int, a_dtype: str, b_dtype: str,
             frames: int = 3) -> Case:
    a_dt, b_dt = DataType[a_dtype], DataType[b_dtype]
    lo, hi = int(a_dt.min() + b_dt.min()), int(a_dt.max() + b_dt.max())
    out_dt = DataType[f"INT{int(max(-lo, hi + 1)).bit_length() + 1}"] if lo < 0 \
        else DataType[f"UINT{int(hi).bit_length()}"]
    attrs = dict(PE=pe, in1_dtype=b_dtype, in_shape=[1] + shape, out_shape=[1] + shape,
                 in_dtype=a_dtype, out_dtype=out_dt.name)
    model, node = make_model("AddStreams", name, [(f"{name}_a", [1] + shape, a_dtype),
                                                  (f"{name}_b", [1] + shape, b_dtype)],
                             [(f"{name}_out", [1] + shape, out_dt.name)], attrs)
    return model, node, [random_values(rng, a_dt, [frames] + shape), random_values(rng, b_dt, [frames] + shape)]


def global_acc_pool_case(rng: np.random.Generator, name: str, h: int, w: int, c: int, pe: int, in_dtype: str,
                         frames: int = 3) -> Case:
    in_dt = DataType[in_dtype]
    lo, hi = int(in_dt.min()) * h * w, int(in_dt.max()) * h * w
    out_dt = DataType[f"INT{int(max(-lo, hi + 1)).bit_length() + 1}"] if lo < 0 \
        else DataType[f"UINT{int(hi).bit_length()}"]
    attrs = dict(PE=pe, in_shape=[1, h, w, c], out_shape=[1, 1, 1, c], in_dtype=in_dtype, out_dtype=out_dt.name)
    model, node = make_model("GlobalAccPool", name, [(f"{name}_in", [1, h, w, c], in_dtype)],
                             [(f"{name}_out", [1, 1, 1, c], out_dt.name)], attrs)
    return model, node, [random_values(rng, in_dt, [frames, h, w, c])]


def label_select_case(rng: np.random.Generator, name: str, classes: int, pe: int, in_dtype: str,
                      affine: bool = False, frames: int = 3, ties: bool = False) -> Case:
    in_dt = DataType[in_dtype]
    label_dt = DataType[f"UINT{max(1, int(classes - 1).bit_length())}"]
    attrs = dict(PE=pe, in_shape=[1, 1, 1, classes], out_shape=[1, 1], in_dtype=in_dtype,
                 out_dtype=label_dt.name)
    inits = {}
    if affine:
        inits[f"{name}_A"] = (rng.integers(-7, 8, size=classes).astype(np.float32), "INT4")
        inits[f"{name}_B"] = (rng.integers(-100, 101, size=classes).astype(np.float32), "INT8")
    model, node = make_model("LabelSelect", name, [(f"{name}_in", [1, 1, 1, classes], in_dtype)],
                             [(f"{name}_out", [1, 1], label_dt.name)], attrs, inits)
    if ties:
        # few distinct values, so maxima tie and the first index must win
        x = rng.integers(int(in_dt.max()) - 1, int(in_dt.max()) + 1, size=(frames, 1, 1, classes)).astype(np.float32)
    else:
        x = random_values(rng, in_dt, [frames, 1, 1, classes])
    return model, node, [x]


def channel_split_case(rng: np.random.Generator, name: str, h: int, w: int, c: int, groups: int, pe: int, dtype: str,
               frames: int = 3) -> Case:
    cg = c // groups
    attrs = dict(PE=pe, num_outputs=groups, in_shape=[1, h, w, c], out_shape=[1, h, w, cg],
                 in_dtype=dtype, out_dtype=dtype)
    model, node = make_model("ChannelSplit", name, [(f"{name}_in", [1, h, w, c], dtype)],
                               [(f"{name}_out{g}", [1, h, w, cg], dtype) for g in range(groups)], attrs)
    return model, node, [random_values(rng, DataType[dtype], [frames, h, w, c])]


def channel_concat_case(rng: np.random.Generator, name: str, h: int, w: int, c0: int, c1: int, pe: int, dtype: str,
                frames: int = 3) -> Case:
    attrs = dict(PE=pe, in1_channels=c1, in_shape=[1, h, w, c0], out_shape=[1, h, w, c0 + c1],
                 in_dtype=dtype, out_dtype=dtype)
    model, node = make_model("ChannelConcat", name, [(f"{name}_a", [1, h, w, c0], dtype),
                                                       (f"{name}_b", [1, h, w, c1], dtype)],
                               [(f"{name}_out", [1, h, w, c0 + c1], dtype)], attrs)
    dt = DataType[dtype]
    return model, node, [random_values(rng, dt, [frames, h, w, c0]), random_values(rng, dt, [frames, h, w, c1])]


#: the randomized case builder of every layer op type (tests/test_plumbing.py checks that each
#: layer class in hw_build.ops has one: adding a layer means adding its builder here)
CASE_BUILDERS: dict[str, Any] = {
    "AddStreams": add_case,
    "ChannelConcat": channel_concat_case,
    "ChannelSplit": channel_split_case,
    "DuplicateStreams": duplicate_case,
    "GlobalAccPool": global_acc_pool_case,
    "LabelSelect": label_select_case,
    "MVTU": mvtu_case,
    "ParallelWindow": parallel_window_case,
    "Pool": pool_case,
    "SlidingWindow": sliding_window_case,
    "Thresholding": thresholding_case,
}


# --------------------------------------------------------------------------- whole graphs
def assert_layer_runs_match(runs: dict[str, list], k: int, expected: list[np.ndarray]) -> None:
    """Case ``k`` of every stall run (``sim.simulate_layers`` results per run label) produced
    exactly ``expected``: no extra beats, every output array equal (first mismatch named)."""
    for label, results in runs.items():
        got = results[k]
        assert got.extra_beats == 0, f"{label}: {got.extra_beats} output beats more than the frames need"
        assert len(got.outputs) == len(expected)
        for j, (e, g) in enumerate(zip(expected, got.outputs)):
            bad = np.argwhere(e != g)
            assert bad.size == 0, (f"{label}, output {j}: {len(bad)} elements differ, first at {bad[0].tolist()}: "
                                   f"expected {e[tuple(bad[0])]}, RTL {g[tuple(bad[0])]}")


def make_graph(name: str, input_tensor: tuple[str, list[int]], output_tensor: tuple[str, list[int]],
               layers: list[dict[str, Any]], tensors: dict[str, tuple[list[int], str]]) -> ModelWrapper:
    """A hardware-layer graph. ``layers``: dicts with op_type, name, inputs, outputs, attrs and
    optional initializers (tensor -> (value, datatype)); ``tensors``: shape and datatype of
    every stream tensor. The graph input is UINT8 pixels, the output the label tensor."""
    nodes, inits = [], {}
    for lay in layers:
        init = lay.get("initializers", {})
        inits.update(init)
        nodes.append(helper.make_node(lay["op_type"], list(lay["inputs"]) + list(init), list(lay["outputs"]),
                                      name=lay["name"], domain=DOMAIN, **lay["attrs"]))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(input_tensor[0], TensorProto.FLOAT, input_tensor[1])],
        [helper.make_tensor_value_info(output_tensor[0], TensorProto.FLOAT, output_tensor[1])],
        value_info=[helper.make_tensor_value_info(t, TensorProto.FLOAT, s) for t, (s, _) in tensors.items()
                    if t not in (input_tensor[0], output_tensor[0])],
    )
    model = ModelWrapper(helper.make_model(graph, producer_name="tests.rtl_cases"))
    for t, (_, dt) in tensors.items():
        model.set_tensor_datatype(t, DataType[dt])
    for t, (value, dt) in inits.items():
        model.set_initializer(t, np.asarray(value, dtype=np.float32))
        model.set_tensor_datatype(t, DataType[dt])
    return model


def _layer(op_type: str, name: str, inputs: list[str], outputs: list[str], tensors: dict, init=None,
           **attrs: Any) -> dict[str, Any]:
    in_shape, in_dt = tensors[inputs[0]]
    out_shape, out_dt = tensors[outputs[0]]
    attrs = dict(in_shape=in_shape, out_shape=out_shape, in_dtype=in_dt, out_dtype=out_dt, **attrs)
    return dict(op_type=op_type, name=name, inputs=inputs, outputs=outputs, attrs=attrs,
                initializers=init or {})


def chain_graph(rng: np.random.Generator) -> ModelWrapper:
    """Thresholding -> SlidingWindow -> MVTU (binary, thresholds) -> Pool -> MVTU (binary, no
    thresholds) -> LabelSelect on 8x8x3 pixels; foldings that need width converters."""
    t = {
        "pixels": ([1, 8, 8, 3], "UINT8"),
        "bits0": ([1, 8, 8, 3], "BINARY"),
        "windows": ([1, 8, 8, 27], "BINARY"),
        "conv": ([1, 8, 8, 16], "BINARY"),
        "pooled": ([1, 4, 4, 16], "BINARY"),
        "scores": ([1, 1, 1, 10], "UINT9"),
        "label": ([1, 1], "UINT4"),
    }
    th0 = rng.integers(60, 200, size=(3, 1))
    w1 = rng.integers(0, 2, size=(16, 27))
    th1 = np.sort(rng.integers(10, 18, size=(16, 1)), axis=1)
    w2 = rng.integers(0, 2, size=(10, 256))
    layers = [
        _layer("Thresholding", "quant_in", ["pixels"], ["bits0"], t, {"th_in": (th0, "UINT8")}, PE=3),
        _layer("SlidingWindow", "conv_swg", ["bits0"], ["windows"], t, kernel=3, stride=1, pads=[1, 1, 1, 1],
               pad_value=0, SIMD=3),
        _layer("MVTU", "conv_mvtu", ["windows"], ["conv"], t, {"w_conv": (w1, "BINARY"), "th_conv": (th1, "INT32")},
               MW=27, MH=16, PE=4, SIMD=9, num_vectors=64, binary=1, w_dtype="BINARY", acc_dtype="UINT5"),
        _layer("Pool", "pool", ["conv"], ["pooled"], t, kernel=2, mode="max", PE=2),
        _layer("MVTU", "fc", ["pooled"], ["scores"], t, {"w_fc": (w2, "BINARY")},
               MW=256, MH=10, PE=5, SIMD=32, num_vectors=1, binary=1, w_dtype="BINARY", acc_dtype="UINT9"),
        _layer("LabelSelect", "top1", ["scores"], ["label"], t, PE=5),
    ]
    return make_graph("chain", ("pixels", t["pixels"][0]), ("label", t["label"][0]), layers, t)


def residual_graph(rng: np.random.Generator) -> ModelWrapper:
    """Thresholding -> DuplicateStreams -> (SlidingWindow -> MVTU integer) + direct ->
    AddStreams -> GlobalAccPool -> MVTU (integer) -> LabelSelect (affine) on 6x6x4 pixels."""
    t = {
        "pixels": ([1, 6, 6, 4], "UINT8"),
        "act": ([1, 6, 6, 4], "UINT2"),
        "branch": ([1, 6, 6, 4], "UINT2"),
        "shortcut": ([1, 6, 6, 4], "UINT2"),
        "windows": ([1, 6, 6, 36], "UINT2"),
        "conv": ([1, 6, 6, 4], "UINT2"),
        "sum": ([1, 6, 6, 4], "UINT3"),
        "gap": ([1, 1, 1, 4], "UINT8"),
        "scores": ([1, 1, 1, 10], "INT13"),
        "label": ([1, 1], "UINT4"),
    }
    th0 = np.sort(rng.integers(30, 230, size=(4, 3)), axis=1)
    w1 = rng.integers(-2, 2, size=(4, 36))
    th1 = np.sort(rng.integers(-6, 7, size=(4, 3)), axis=1)
    w2 = rng.integers(-4, 4, size=(10, 4))
    a = rng.integers(1, 4, size=10)
    b = rng.integers(-8, 9, size=10)
    layers = [
        _layer("Thresholding", "quant_in", ["pixels"], ["act"], t, {"th_in": (th0, "UINT8")}, PE=2),
        _layer("DuplicateStreams", "fork", ["act"], ["branch", "shortcut"], t, PE=2, num_outputs=2),
        _layer("SlidingWindow", "res_swg", ["branch"], ["windows"], t, kernel=3, stride=1, pads=[1, 1, 1, 1],
               pad_value=0, SIMD=2),
        _layer("MVTU", "res_conv", ["windows"], ["conv"], t, {"w_res": (w1, "INT2"), "th_res": (th1, "INT32")},
               MW=36, MH=4, PE=2, SIMD=6, num_vectors=36, binary=0, w_dtype="INT2", acc_dtype="INT9"),
        _layer("AddStreams", "join", ["conv", "shortcut"], ["sum"], t, PE=4, in1_dtype="UINT2"),
        _layer("GlobalAccPool", "gap", ["sum"], ["gap"], t, PE=1),
        _layer("MVTU", "fc", ["gap"], ["scores"], t, {"w_fc": (w2, "INT3")},
               MW=4, MH=10, PE=2, SIMD=2, num_vectors=1, binary=0, w_dtype="INT3", acc_dtype="INT13"),
        _layer("LabelSelect", "top1", ["scores"], ["label"], t, {"ls_a": (a, "INT3"), "ls_b": (b, "INT8")}, PE=2),
    ]
    return make_graph("residual", ("pixels", t["pixels"][0]), ("label", t["label"][0]), layers, t)


def burst_graph(rng: np.random.Generator) -> ModelWrapper:
    """Thresholding -> Pool (PE=2, the slowest layer) -> MVTU (SIMD=1) -> LabelSelect on 8x8x8
    pixels. The pool emits its output in bursts (one beat per input beat on the last row and
    column of each window, nothing otherwise) into a 2 -> 1 element downsizer: the edge
    needs a FIFO on the pool's side of the converter, or the pool stalls in every burst."""
    t = {
        "pixels": ([1, 8, 8, 8], "UINT8"),
        "bits": ([1, 8, 8, 8], "BINARY"),
        "pooled": ([1, 4, 4, 8], "BINARY"),
        "scores": ([1, 1, 1, 10], "UINT8"),
        "label": ([1, 1], "UINT4"),
    }
    th0 = rng.integers(60, 200, size=(8, 1))
    w1 = rng.integers(0, 2, size=(10, 128))
    layers = [
        _layer("Thresholding", "quant_in", ["pixels"], ["bits"], t, {"th_in": (th0, "UINT8")}, PE=8),
        _layer("Pool", "pool", ["bits"], ["pooled"], t, kernel=2, mode="max", PE=2),
        _layer("MVTU", "fc", ["pooled"], ["scores"], t, {"w_fc": (w1, "BINARY")},
               MW=128, MH=10, PE=10, SIMD=1, num_vectors=1, binary=1, w_dtype="BINARY", acc_dtype="UINT8"),
        _layer("LabelSelect", "top1", ["scores"], ["label"], t, PE=10),
    ]
    return make_graph("burst", ("pixels", t["pixels"][0]), ("label", t["label"][0]), layers, t)


def plumbed(model: ModelWrapper, dma_bits: int = 64, depths: dict[str, int] | None = None,
            narrow_upsizers: bool = True) -> ModelWrapper:
    """``model`` with its stream plumbing (what the fold step adds), FIFO depths overridden by
    ``depths`` (FIFO node name -> depth)."""
    from hw_build.fold.plumbing import insert_stream_plumbing, set_fifo_depths

    model = insert_stream_plumbing(model, dma_bits, narrow_upsizers)
    set_fifo_depths(model, depths or {})
    return model


def generate(model: ModelWrapper, out_dir, dma_bits: int = 64, depths: dict[str, int] | None = None) -> dict:
    """Plumb ``model`` and generate its accelerator top in ``out_dir`` (the manifest)."""
    from hw_build.rtl import codegen

    return codegen.generate(plumbed(model, dma_bits, depths), out_dir)


def execute_graph(model: ModelWrapper, frames_uint8_nhwc: np.ndarray) -> np.ndarray:
    """Labels (int64[N]) of the Python execution of a hardware-layer graph."""
    from qonnx.core.onnx_exec import execute_onnx

    in_name, out_name = model.graph.input[0].name, model.graph.output[0].name
    labels = []
    for frame in np.asarray(frames_uint8_nhwc, dtype=np.float32):
        # qonnx checks the batch size against the graph's (1)
        out = execute_onnx(model, {in_name: frame[None]})[out_name]
        labels.append(int(np.rint(out).reshape(-1)[0]))
    return np.array(labels, dtype=np.int64)


# --------------------------------------------------------------------------- plumbing modules
def plumbing_harness(blocks: list[tuple[str, dict[str, int]]], out_dir) -> dict:
    """A simulation top with one instance per (module, params) of single-stream library
    modules (fifo, stream_width_converter, ...): block k's input is port ``c{k}_s``, its
    output ``c{k}_m``. Returns {"top", "ports", "files"} like codegen.generate_harness."""
    from pathlib import Path

    from hw_build.rtl.codegen import copy_library
    from hw_build.rtl.verilog import stream_instance

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ports, decls, body = [], ["    input  wire clk", "    input  wire rst_n"], []
    for k, (module, params) in enumerate(blocks):
        if module == "fifo":
            w_in = w_out = params["WIDTH"]
        else:
            w_in, w_out = params["IN_BITS"], params["OUT_BITS"]
        ports += [{"name": f"c{k}_s", "dir": "in", "width": w_in}, {"name": f"c{k}_m", "dir": "out", "width": w_out}]
        decls += [f"    input  wire [{w_in - 1}:0] c{k}_s_tdata", f"    input  wire c{k}_s_tvalid",
                  f"    output wire c{k}_s_tready", f"    output wire [{w_out - 1}:0] c{k}_m_tdata",
                  f"    output wire c{k}_m_tvalid", f"    input  wire c{k}_m_tready"]
        body.append(stream_instance(module, f"c{k}_{module}", params, "clk", "rst_n", [f"c{k}_s"], [f"c{k}_m"]))
    text = ("`default_nettype none\n\nmodule plumbing (\n" + ",\n".join(decls) + "\n);\n"
            + "\n".join(body) + "\nendmodule\n\n`default_nettype wire\n")
    (out_dir / "plumbing.v").write_text(text)
    files = copy_library({m for m, _ in blocks}, out_dir) + ["plumbing.v"]
    return {"top": "plumbing", "ports": ports, "files": files}


def repack_reference(beats: list[int], in_bits: int, out_bits: int, frame_bits: int = 0) -> list[int]:
    """What a stream_width_converter must output for ``beats``: the little-endian bit stream
    (minus each frame's pad bits when frame_bits > 0) cut into out_bits beats."""
    words_per_frame = -(-frame_bits // in_bits) if frame_bits else 1
    stream, nbits, out = 0, 0, []
    for i, beat in enumerate(beats):
        keep = in_bits
        if frame_bits and i % words_per_frame == words_per_frame - 1:
            keep = frame_bits - (words_per_frame - 1) * in_bits
        stream |= (beat & ((1 << keep) - 1)) << nbits
        nbits += keep
        while nbits >= out_bits:
            out.append(stream & ((1 << out_bits) - 1))
            stream >>= out_bits
            nbits -= out_bits
    return out


def random_frames(rng: np.random.Generator, n: int, shape: list[int] | tuple[int, ...]) -> np.ndarray:
    """uint8 NHWC frames whose channels have random per-frame levels (plus noise), so
    frames differ in more than noise and small networks give varied labels."""
    shape = tuple(shape)
    level = rng.integers(0, 256, size=(n, 1, 1, shape[-1]))
    noise = rng.integers(-60, 61, size=(n, *shape))
    return np.clip(level + noise, 0, 255).astype(np.uint8)
