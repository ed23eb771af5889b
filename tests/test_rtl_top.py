"""Generated accelerator tops (accel_top.v) against the Python execution of the graph:
a plain chain (Thresholding -> SlidingWindow -> MVTU -> Pool -> MVTU -> LabelSelect) and a
residual block (DuplicateStreams -> conv path + shortcut -> AddStreams -> GlobalAccPool ->
MVTU -> LabelSelect), 8 frames each under random DMA stalls."""

from __future__ import annotations

import os

import numpy as np
import pytest

from hw_build.errors import BuildError
from hw_build.fold.plumbing import fifos
from hw_build.rtl import codegen, sim
from tests import rtl_cases as T

SEED = int(os.environ.get("HW_BUILD_RTL_SEED", "7"))
FRAMES = 8
DESIGNS = {"chain": (T.chain_graph, 64), "residual": (T.residual_graph, 32)}


def _model_and_frames(name: str):
    rng = np.random.default_rng(SEED + len(name))
    model = DESIGNS[name][0](rng)
    frames = T.random_frames(rng, FRAMES, model.get_tensor_shape("pixels")[1:])
    return model, frames


@pytest.fixture(scope="module", params=list(DESIGNS))
def design(request, tmp_path_factory):
    name = request.param
    model, frames = _model_and_frames(name)
    out = tmp_path_factory.mktemp(f"rtl_{name}")
    manifest = T.generate(model, out, DESIGNS[name][1])
    return name, model, out, manifest, frames, T.execute_graph(model, frames)


def test_labels_match_python_under_stalls(design):
    name, _, out, _, frames, expected = design
    for seed, (stall_in, stall_out) in enumerate([(0.3, 0.3), (0.6, 0.6)]):
        labels, stats = sim.simulate_top(out, frames, stall_in, stall_out, seed=seed)
        assert stats["frames"] == FRAMES
        np.testing.assert_array_equal(labels, expected, err_msg=f"{name}, stalls {stall_in}/{stall_out}")
        assert stats["tlast"] == [1] * FRAMES


def test_ii_is_the_slowest_layer(design):
    name, _, out, manifest, frames, expected = design
    labels, stats = sim.simulate_top(out, frames, 0.0, 0.0)
    np.testing.assert_array_equal(labels, expected)
    slowest = manifest["cycles_per_frame"]
    assert slowest >= manifest["words_per_frame"]      # compute-bound designs
    assert stats["ii_cycles"] == slowest, stats          # measured II = designed cycles, exactly
    assert stats["latency_cycles"] < 3 * slowest


def test_tlast_follows_the_input_frames(design):
    """A DMA transfer of several frames sets tlast once: only the last label carries it."""
    _, _, out, _, frames, expected = design
    labels, stats = sim.simulate_top(out, frames, 0.2, 0.2, seed=5, tlast_every_frame=False)
    np.testing.assert_array_equal(labels, expected)
    assert stats["tlast"] == [0] * (FRAMES - 1) + [1]


def test_top_is_readable(design):
    name, model, out, manifest, _, _ = design
    text = (out / "accel_top.v").read_text()
    for node in model.graph.node:           # one instance per layer, named after it
        assert f") {codegen.verilog_name(node.name)} (" in text
    for fifo in manifest["fifos"].values():     # wires named after tensors
        assert f"{codegen.verilog_name(fifo['edge'])}_q_tdata" in text
    plumbing = [i for i in manifest["instances"] if i["kind"] != "layer"]
    assert {i["op"] for i in plumbing} == {"Fifo", "WidthConverter", "DmaUnpack", "TlastQueue"}
    for inst in plumbing:                     # one instance per plumbing node, named after it
        assert f") {inst['instance']} (" in text
    assert all((out / m).exists() for m in manifest["memories"])


def test_fifo_sizing_is_safe_and_small(tmp_path):
    model, frames = _model_and_frames("residual")
    design = T.plumbed(model, 32)
    depths = sim.size_fifos(design, tmp_path, frames[:4])
    nodes = fifos(design)
    assert depths["shortcut_fifo"] < nodes["shortcut_fifo"].frame_depth()
    assert all(d >= 2 for d in depths.values())
    # the sized depths are the FIFO nodes' attributes, and the generated RTL's
    assert {name: op.depth() for name, op in nodes.items()} == depths
    assert {name: f["depth"] for name, f in codegen.read_manifest(tmp_path)["fifos"].items()} == depths
    # size_fifos leaves the sized RTL in place; it must hold up under stalls too
    labels, _ = sim.simulate_top(tmp_path, frames, 0.5, 0.5, seed=11)
    np.testing.assert_array_equal(labels, T.execute_graph(model, frames))


def test_bursty_layer_keeps_its_rate_behind_a_downsizer(tmp_path):
    """The pool (PE=2, the slowest layer) emits bursts into a 2 -> 1 downsizer. With the FIFO
    after the converter the pool stalled in every burst (II 304 for 256 cycles()); the FIFO
    now sits on the wide side, and the sized design runs at the pool's rate."""
    rng = np.random.default_rng(SEED)
    model = T.burst_graph(rng)
    frames = T.random_frames(rng, 6, model.get_tensor_shape("pixels")[1:])
    depths = sim.size_fifos(T.plumbed(model, 64), tmp_path, frames[:4])
    manifest = codegen.read_manifest(tmp_path)
    assert manifest["fifos"]["pooled_fifo"]["before_converter"]
    assert depths["pooled_fifo"] > 2            # the burst needed room, and the sizing saw it
    labels, stats = sim.simulate_top(tmp_path, frames, 0.0, 0.0)
    np.testing.assert_array_equal(labels, T.execute_graph(model, frames))
    assert manifest["cycles_per_frame"] == 256
    assert stats["ii_cycles"] == 256, stats


def test_shallow_shortcut_deadlocks(tmp_path):
    """The residual join needs its shortcut FIFO: with 2 entries the fork stalls the conv path
    before it can produce anything, and the simulator must report that instead of hanging."""
    model, frames = _model_and_frames("residual")
    T.generate(model, tmp_path, 32, {"shortcut_fifo": 2, "conv_fifo": 2})
    with pytest.raises(BuildError, match="deadlock"):
        sim.simulate_top(tmp_path, frames[:2], 0.0, 0.0)


def test_generate_names_the_problem(tmp_path):
    """Graphs the generator cannot build fail with a message that names the node or tensor."""
    from onnx import helper

    model, _ = _model_and_frames("chain")
    model.graph.node.append(helper.make_node("Relu", ["label"], ["relu_out"], name="stray_relu"))
    with pytest.raises(BuildError, match="stray_relu"):
        T.generate(model, tmp_path, 64)

    model, _ = _model_and_frames("chain")
    with pytest.raises(BuildError, match="no FIFO nodes"):
        T.generate(model, tmp_path, 64, {"no_such_tensor": 4})
    with pytest.raises(BuildError, match="no stream plumbing"):
        codegen.generate(model, tmp_path)
    # refolded after the plumbing went in: the widths no longer meet
    design = T.plumbed(model, 64)
    from qonnx.custom_op.registry import getCustomOp

    getCustomOp(next(n for n in design.graph.node if n.name == "conv_mvtu")).set_nodeattr("PE", 8)
    with pytest.raises(BuildError, match="rerun InsertStreamPlumbing"):
        codegen.generate(design, tmp_path)


def test_ii_is_the_steady_state_not_the_start_up():
    """A deep, tightly balanced design loses a few cycles while its FIFOs settle (the grouped
    FTBNN test: 3 cycles over its first frames); a mean over every frame reported 288.21 for a
    design that runs at 288. A design that is really slower is slower in every frame."""
    settling = [1000 + 288 * f + min(f, 3) for f in range(16)]       # 3 cycles of start-up
    assert sim.frame_timing([0], settling, 1, 16)["ii_cycles"] == 288
    slow = [1000 + 289 * f for f in range(16)]                        # one cycle a frame short
    assert sim.frame_timing([0], slow, 1, 16)["ii_cycles"] == 289
    assert sim.frame_timing([0], [10, 20, 31], 1, 3)["ii_cycles"] == 11   # 3 frames: from frame 1
