"""Window-parallel input layers (issue 13): the folder turns a SlidingWindow into a
ParallelWindow (whole windows per beat) when the cycle target needs it, the MVTU behind
it then takes SIMD > C, folding files round-trip the choice, and a generated top with it
matches the Python execution with its II equal to the designed cycles.

The layer itself (bit-exact under stalls, exact II) is in tests/test_rtl_layers.py
(``pwin_*`` cases), its lint in tests/test_rtl_lint.py."""

from __future__ import annotations

import json

import numpy as np
from qonnx.custom_op.registry import getCustomOp

from hw_build import fold
from tests import rtl_cases as T


def _chain():
    return T.chain_graph(np.random.default_rng(3))


def _ops(model) -> dict:
    return {n.name: getCustomOp(n) for n in model.graph.node}


def test_parallel_window_executes_like_the_sliding_window():
    rng = np.random.default_rng(1)
    for pads, stride, simd in [((0, 0, 0, 0), 1, 27), ((1, 1, 1, 1), 2, 9), ((1, 0, 2, 1), 1, 3)]:
        model, node, inputs = T.parallel_window_case(rng, "pw", 7, 6, 3, 3, stride, pads, simd=simd, dtype="UINT8",
                                                     frames=2)
        node_sw = type(node)()
        node_sw.CopyFrom(node)
        node_sw.op_type = "SlidingWindow"
        getCustomOp(node_sw).set_nodeattr("SIMD", 3)
        np.testing.assert_array_equal(T.reference(model, node, inputs)[0], T.reference(model, node_sw, inputs)[0])


def test_cycles_and_fold_options():
    model, node, _ = T.parallel_window_case(np.random.default_rng(0), "cnv0", 32, 32, 3, 3, dtype="UINT8")
    op = getCustomOp(node)
    assert op.fold_options() == {"SIMD": [3, 9, 27]}
    # CNV-W1A1's stem: 32 x 32 scanned positions, 900 windows of F = 27 / SIMD beats
    assert op.cycles() == 1024
    op.set_nodeattr("SIMD", 9)
    assert op.cycles() == 1024 + 900 * 2
    assert op.in_beat_elems() == 3 and op.out_beat_elems() == 9


def test_folder_keeps_the_sliding_window_while_it_is_fast_enough():
    model = fold.fold_for_cycles(_chain(), 8 * 8 * 9)      # SIMD = C reaches 576 cycles
    ops = _ops(model)
    assert ops["conv_swg"].onnx_node.op_type == "SlidingWindow"
    assert ops["conv_swg"].cycles() <= 576


def test_folder_takes_the_parallel_window_for_a_faster_target():
    model = fold.fold_for_cycles(_chain(), 200)
    ops = _ops(model)
    swg, mvtu = ops["conv_swg"], ops["conv_mvtu"]
    assert swg.onnx_node.op_type == "ParallelWindow"
    assert swg.cycles() <= 200 and mvtu.cycles() <= 200
    assert mvtu.get_nodeattr("SIMD") > 3                   # over the window, beyond the channels
    # and back: a slower target returns to the cheaper element-serial window
    fold.fold_for_cycles(model, 576)
    assert _ops(model)["conv_swg"].onnx_node.op_type == "SlidingWindow"


def test_candidate_cycles_reach_below_the_serial_window():
    """The search of reachable cycle counts sees the parallel window's (the floor is no longer
    K*K windows per pixel)."""
    assert min(fold._candidate_cycles(_chain())) < 8 * 8 * 9 // 3


def test_folding_file_round_trips_the_parallel_window(tmp_path):
    model = fold.fold_for_cycles(_chain(), 200)
    from hw_build.fold.plumbing import insert_stream_plumbing

    model = insert_stream_plumbing(model, 64)
    cfg = fold.folding_config(model)
    assert cfg["conv_swg"]["SIMD"] > 3
    path = tmp_path / "folding.json"
    path.write_text(json.dumps(cfg))
    again = fold.apply_folding_file(_chain(), path, 64)
    assert _ops(again)["conv_swg"].onnx_node.op_type == "ParallelWindow"
    assert fold.folding_config(again) == cfg


def test_generated_top_with_parallel_window_matches_python(tmp_path):
    from hw_build.fold.plumbing import narrow_upsizer_fifos
    from hw_build.rtl import sim

    rng = np.random.default_rng(11)
    model = fold.fold_for_cycles(T.chain_graph(rng), 200)
    assert _ops(model)["conv_swg"].onnx_node.op_type == "ParallelWindow"
    frames = T.random_frames(rng, 6, model.get_tensor_shape("pixels")[1:])
    expected = T.execute_graph(model, frames)
    design = T.plumbed(model, 64)
    assert narrow_upsizer_fifos(design) == ["bits0_fifo", "pooled_fifo"]
    sim.size_fifos(design, tmp_path, frames[:4])        # as the build's verify step does
    # the thresholds (192 cycles, no slack) feed the window, which reads in bursts, through a
    # 1 -> 3 bit upsizer: with the FIFOs on the narrow side the deep run measured II 210, so
    # the sizing put the upsizers' FIFOs on the wide side (what the II check below proves)
    assert narrow_upsizer_fifos(design) == []
    for seed, (stall_in, stall_out) in enumerate([(0.3, 0.3), (0.0, 0.0)]):
        labels, stats = sim.simulate_top(tmp_path, frames, stall_in, stall_out, seed=seed)
        np.testing.assert_array_equal(labels, expected)
    designed = max(op.cycles() for op in fold.layers(design))
    assert stats["ii_cycles"] == designed, stats
