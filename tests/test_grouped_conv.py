"""Grouped convolutions (FTBNN's group execution) compile bit-exactly.

- streamlining moves scales and biases through grouped convs (per group);
- lowering maps a grouped conv to ChannelSplit -> per-group SlidingWindow + MVTU ->
  ChannelConcat, equal to the streamlined graph on every output element;
- the split/concat Verilog equals their Python under random stalls, at full rate;
- a grouped FTBNN built by the test goes through the flow with PyTorch's labels (to
  ``dataflow`` by default, to ``verify`` in the slow test).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_build import build
from hw_build.errors import BuildError
from hw_build.execute import execute_dataflow
from hw_build.lower import MAX_GROUPS, lower
from hw_build.ops.base import divisors
from hw_build.rtl import sim
from hw_build.streamline.check import assert_integer_only
from hw_build.streamline.move import MoveAffinePastLinear
from hw_build.streamline.types import InferIntegerTypes
from quant_models.ftbnn import FTBNN
from quant_models.resnet import ResNetSpec
from tests import rtl_cases as T
from tests.bnn_pynq_fixtures import export, is_top1, torch_scores
from tests.graph_builders import GraphBuilder, copy_model, node_types, run
from tests.residual_models import randomize
from tests.test_residual_compile import varied_images

SEED = int(os.environ.get("HW_BUILD_RTL_SEED", "20240611"))


# ---------------------------------------------------------------- streamlining
def _grouped_conv_graph(rng: np.random.Generator, op: str, c: np.ndarray, group: int):
    g = GraphBuilder()
    x = g.input([1, 6, 5, 5])
    w = rng.integers(-2, 3, size=(4 * group, 6 // group, 3, 3)).astype(np.float32)
    y = g.conv(g.mul(x, c) if op == "Mul" else g.add(x, c), w, strides=(2, 2), group=group)
    return g.build(y)


@pytest.mark.parametrize("group", [2, 3, 6])
def test_bias_moves_through_grouped_conv_per_group(group):
    rng = np.random.default_rng(group)
    model = _grouped_conv_graph(rng, "Add", rng.normal(size=(1, 6, 1, 1)), group)
    xs = rng.normal(size=(4, 6, 5, 5))
    before = run(model, xs)
    new, changed = MoveAffinePastLinear().apply(copy_model(model))
    assert changed and node_types(new) == ["Conv", "Add"]
    assert new.get_initializer(new.graph.node[1].input[1]).shape == (1, 4 * group, 1, 1)
    np.testing.assert_allclose(run(new, xs), before, rtol=1e-5, atol=1e-4)


def test_scale_constant_within_groups_moves_through_grouped_conv():
    rng = np.random.default_rng(1)
    scale = np.repeat([0.5, 2.0, 0.25], 2).reshape(1, 6, 1, 1)  # one value per group of 2 channels
    model = _grouped_conv_graph(rng, "Mul", scale, 3)
    xs = rng.normal(size=(4, 6, 5, 5))
    before = run(model, xs)
    new, changed = MoveAffinePastLinear().apply(copy_model(model))
    assert changed and node_types(new) == ["Conv", "Mul"]
    np.testing.assert_allclose(run(new, xs), before, rtol=1e-5, atol=1e-5)


def test_scale_varying_within_a_group_stays_and_is_diagnosed():
    """Integer weights cannot absorb a scale that differs between a group's input channels;
    the error names that scale and the conv, not some float add further down."""
    rng = np.random.default_rng(2)
    scale = np.array([0.5, 2.0, 0.25, 1.0, 3.0, 1.5]).reshape(1, 6, 1, 1)
    model = _grouped_conv_graph(rng, "Mul", scale, 3)
    assert MoveAffinePastLinear().apply(copy_model(model))[1] is False
    model.set_tensor_datatype("x", DataType["INT4"])
    model.set_tensor_datatype(model.graph.node[1].input[1], DataType["INT3"])
    InferIntegerTypes().apply(model)
    with pytest.raises(BuildError, match=r"scale 'mul_\d+'.*in front of Conv 'conv_\d+'.*per-tensor scale"):
        assert_integer_only(model)


# ---------------------------------------------------------------- lowering
def _streamlined_grouped(rng: np.random.Generator, group: int, binary: bool, c: int = 8, cout: int = 8,
                         shared_th: bool = False) -> ModelWrapper:
    """Integer input -> Pad -> grouped 3x3 conv -> MultiThreshold -> Add(input) residual:
    the streamlined shape of an FTBNN block."""
    g = GraphBuilder()
    dtype = "BINARY" if binary else "UINT3"
    x = g.input([1, c, 6, 5], dtype)
    p = g.pad(x, (1, 1, 1, 1), 0.0)
    w = (2 * rng.integers(0, 2, size=(cout, c // group, 3, 3)) - 1) if binary else \
        rng.integers(-3, 4, size=(cout, c // group, 3, 3))
    w = w.astype(np.float32)
    y = g.conv(p, w, group=group)
    rows = 1 if shared_th else cout
    span = max(3, 9 * c // group // 3)  # around the typical sums, so every level occurs
    th = np.sort(rng.integers(-span, span + 1, size=(rows, 3)), axis=1)
    lv = g.node("MultiThreshold", [y, g.const(th.astype(np.float32), "th")], domain="qonnx.custom_op.general",
                out_dtype="UINT2", data_layout="NCHW")
    out = g.add(lv, x) if c == cout else lv
    model = g.build(out)
    for t in [w for w in model.graph.initializer if w.name.startswith("W")]:
        model.set_tensor_datatype(t.name, DataType["INT3"])
    InferIntegerTypes().apply(model)
    model.set_tensor_datatype(lv, DataType["UINT2"])
    InferIntegerTypes().apply(model)
    return model


@pytest.mark.parametrize("group,binary,shared", [(2, True, False), (4, True, True), (2, False, False),
                                                 (8, False, True)])
def test_lowered_grouped_conv_equals_streamlined(group, binary, shared):
    rng = np.random.default_rng(10 + group)
    sl = _streamlined_grouped(rng, group, binary, shared_th=shared)
    hw = lower(sl)
    ops = node_types(hw)
    assert ops.count("ChannelSplit") == 1 and ops.count("ChannelConcat") == group - 1
    assert ops.count("MVTU") == group and ops.count("SlidingWindow") == group
    assert "Thresholding" not in ops  # the thresholds went into each group's MVTU
    lo, hi = (0, 1) if binary else (0, 7)
    xs = rng.integers(lo, hi + 1, size=(16, 8, 6, 5)).astype(np.float32)
    expected = run(sl, xs).transpose(0, 2, 3, 1)
    got = execute_dataflow(hw, xs.transpose(0, 2, 3, 1))[hw.graph.output[0].name]
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected)) >= 4


def test_too_many_groups_is_a_build_error():
    rng = np.random.default_rng(3)
    c = 2 * MAX_GROUPS
    sl = _streamlined_grouped(rng, c, True, c=c, cout=c)
    with pytest.raises(BuildError, match=rf"group={c}.*at most {MAX_GROUPS} groups"):
        lower(sl)


# ---------------------------------------------------------------- RTL of the new layers
def build_cases() -> dict[str, T.Case]:
    rng = np.random.default_rng(SEED)
    cases = {
        "split_g2_pe1": T.channel_split_case(rng, "split_g2_pe1", 2, 3, 4, 2, 1, "INT3"),
        "split_g4_full": T.channel_split_case(rng, "split_g4_full", 3, 2, 8, 4, 2, "BINARY"),
        "split_g3_odd": T.channel_split_case(rng, "split_g3_odd", 2, 2, 9, 3, 3, "UINT4"),
        "concat_pe1": T.channel_concat_case(rng, "concat_pe1", 2, 3, 2, 2, 1, "UINT2"),
        "concat_uneven": T.channel_concat_case(rng, "concat_uneven", 3, 2, 6, 3, 3, "INT4"),
        "concat_wide": T.channel_concat_case(rng, "concat_wide", 2, 2, 16, 8, 8, "BINARY"),
    }
    for k in range(3):
        groups = int(rng.choice([2, 3, 4, 5]))
        c = groups * int(rng.choice([1, 2, 3, 4, 6]))
        pe = int(rng.choice(divisors(c // groups)))
        h, w = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        dtype = str(rng.choice(["BINARY", "UINT3", "INT5", "BIPOLAR"]))
        cases[f"split_rand{k}"] = T.channel_split_case(rng, f"split_rand{k}", h, w, c, groups, pe, dtype)
        cg = int(rng.choice([1, 2, 3, 4]))
        c0, c1 = cg * int(rng.integers(1, 4)), cg * int(rng.integers(1, 3))
        pe = int(rng.choice(divisors(cg)))
        cases[f"concat_rand{k}"] = T.channel_concat_case(rng, f"concat_rand{k}", h, w, c0, c1, pe, dtype)
    return cases


CASES = build_cases()
STALL_RUNS = {"stalls_a": (0.3, 0.3, 1), "stalls_b": (0.6, 0.1, 2), "stalls_c": (0.1, 0.6, 3), "free": (0.0, 0.0, 4)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, list[sim.LayerResult]]:
    cases = list(CASES.values())
    return {label: sim.simulate_layers(cases, tmp_path_factory.mktemp(label), stall_in=a, stall_out=b, seed=s)
            for label, (a, b, s) in STALL_RUNS.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_layer_rtl_matches_python(runs, name):
    model, node, inputs = CASES[name]
    expected = T.reference(model, node, inputs)
    T.assert_layer_runs_match(runs, list(CASES).index(name), expected)


@pytest.mark.parametrize("name", list(CASES))
def test_layer_runs_at_one_beat_per_cycle(runs, name):
    model, node, _ = CASES[name]
    cycles = getCustomOp(node).cycles()
    measured = runs["free"][list(CASES).index(name)].ii_cycles
    assert abs(measured - cycles) <= max(1.0, 0.05 * cycles), f"measured II {measured} vs cycles() {cycles}"


def test_stalls_slow_the_layers_down(runs):
    assert sum(r.cycles_total for r in runs["stalls_a"]) > 1.2 * sum(r.cycles_total for r in runs["free"])


# ---------------------------------------------------------------- whole models through the flow
#: a 12x12 FTBNN: stem 4@12 (8 channels at width 2), a grouped block at 12x12 and a grouped
#: downsampling block to 6x6 (binary 1x1 shortcut)
SPEC = ResNetSpec(in_channels=1, num_classes=10, input_size=12, stem_channels=4,
                  stages=((4, 1, 1), (8, 1, 2)))


def grouped_ftbnn(groups: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = FTBNN(SPEC, groups=groups, width=2.0)
    with torch.no_grad():
        for m in model.modules():
            bias = getattr(m, "bias", None)
            if type(m).__name__ == "SignWithBias" and bias is not None:
                bias.copy_(0.2 * torch.randn(bias.shape))
    return randomize(model, seed=seed, input_shape=SPEC.input_shape)


def build_grouped(tmp_path, groups: int, until: str):
    model = grouped_ftbnn(groups)
    path = export(model, SPEC.input_shape, tmp_path / f"ftbnn_g{groups}.onnx")
    x = varied_images(SPEC.input_shape, n=16, seed=4)
    np.save(tmp_path / "in.npy", x)
    out = tmp_path / "b"
    build(str(path), "pynq-z2", output=out, until=until, verify_input=tmp_path / "in.npy", synth=False)
    return model, x, out


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_ftbnn_dataflow_labels_equal_pytorch(groups, tmp_path):
    model, x, out = build_grouped(tmp_path, groups, "dataflow")
    scores = torch_scores(model, x)
    labels = np.load(out / "verify" / "dataflow.npy")
    assert is_top1(labels, scores).all()
    assert len(set(scores.argmax(1).tolist())) > 1  # a model that ignores its input proves nothing
    ops = node_types(ModelWrapper(str(out / "dataflow.onnx")))
    assert ops.count("ChannelSplit") == 2 and ops.count("ChannelConcat") == 2 * (groups - 1)


@pytest.mark.slow
@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_ftbnn_rtl_labels_equal_dataflow(groups, tmp_path):
    """Through the generated top under random stalls (the verify step), with measured II."""
    _, _, out = build_grouped(tmp_path, groups, "verify")
    report = json.loads((out / "report.json").read_text())
    dataflow = np.load(out / "verify" / "dataflow.npy")
    np.testing.assert_array_equal(np.load(out / "verify" / "rtlsim.npy"), dataflow)
    assert len(set(dataflow.tolist())) > 1
    assert report["rtlsim"]["mismatches"] == 0
    assert report["rtlsim"]["ii_cycles"] == max(report["estimate"]["cycles_per_frame"], report["dma"]["cycles_per_frame"])
