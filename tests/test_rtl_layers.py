"""Every hardware layer's Verilog against its Python ``execute_node``, bit for bit.

Parameters are drawn at random (fixed seed, override with HW_BUILD_RTL_SEED) around a set
of hand-picked corner cases; all cases share one Verilator build. Each case streams
several frames back to back under random valid/ready stalls (two stall patterns), and
stall-free to check the measured initiation interval against ``cycles()``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from qonnx.custom_op.registry import getCustomOp

from hw_build.ops.base import divisors
from hw_build.rtl import sim
from tests import rtl_cases as T

SEED = int(os.environ.get("HW_BUILD_RTL_SEED", "20240611"))
FRAMES = 3


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def build_cases() -> dict[str, T.Case]:
    rng = np.random.default_rng(SEED)
    cases: dict[str, T.Case] = {}

    def add(name: str, case: T.Case) -> None:
        cases[name] = case

    # ---------------------------------------------------------------- MVTU
    add("mvtu_bin_th", T.mvtu_case(rng, "mvtu_bin_th", 12, 8, 2, 4, vectors=4, thresholds=1, frames=FRAMES))
    add("mvtu_bin_full_fold", T.mvtu_case(rng, "mvtu_bin_full_fold", 16, 4, 4, 16, vectors=3, frames=FRAMES))
    add("mvtu_bin_simd1", T.mvtu_case(rng, "mvtu_bin_simd1", 5, 6, 1, 1, vectors=2, thresholds=1, frames=FRAMES))
    add("mvtu_int_u4_i3", T.mvtu_case(rng, "mvtu_int_u4_i3", 6, 4, 2, 3, vectors=3, binary=False,
                                      in_dtype="UINT4", w_dtype="INT3", frames=FRAMES))
    add("mvtu_int_bipolar_w", T.mvtu_case(rng, "mvtu_int_bipolar_w", 9, 6, 3, 3, vectors=2, binary=False,
                                          in_dtype="UINT8", w_dtype="BIPOLAR", thresholds=3, frames=FRAMES))
    add("mvtu_int_bipolar_x", T.mvtu_case(rng, "mvtu_int_bipolar_x", 8, 4, 4, 2, vectors=2, binary=False,
                                          in_dtype="BIPOLAR", w_dtype="INT2", frames=FRAMES))
    add("mvtu_int_shared_th", T.mvtu_case(rng, "mvtu_int_shared_th", 4, 6, 2, 4, vectors=3, binary=False,
                                          in_dtype="INT4", w_dtype="TERNARY", thresholds=7,
                                          shared_thresholds=True, frames=FRAMES))
    # +-1 weights typed INT2 (as the first conv of a BNN arrives): stored as bipolar bits
    add("mvtu_int2_pm1", T.mvtu_case(rng, "mvtu_int2_pm1", 27, 8, 4, 3, vectors=4, binary=False,
                                     in_dtype="UINT8", w_dtype="INT2", thresholds=1, frames=FRAMES,
                                     weights=2 * rng.integers(0, 2, size=(8, 27)) - 1))
    add("mvtu_narrow_x", T.mvtu_case(rng, "mvtu_narrow_x", 8, 4, 2, 4, vectors=2, binary=False,
                                     in_dtype="INT3", w_dtype="INT8", frames=FRAMES))
    add("mvtu_full_mul", T.mvtu_case(rng, "mvtu_full_mul", 6, 4, 2, 2, vectors=2, binary=False,
                                     in_dtype="UINT8", w_dtype="INT8", frames=FRAMES))
    # adder trees in several registered stages (more terms than mvtu.v SUM_GROUP)
    add("mvtu_bin_stages", T.mvtu_case(rng, "mvtu_bin_stages", 200, 4, 2, 100, vectors=3, thresholds=1,
                                       frames=FRAMES))
    add("mvtu_bin_stages3", T.mvtu_case(rng, "mvtu_bin_stages3", 2401, 2, 1, 2401, vectors=2, frames=FRAMES))
    add("mvtu_int_stages", T.mvtu_case(rng, "mvtu_int_stages", 27, 4, 2, 27, vectors=3, binary=False,
                                       in_dtype="UINT8", w_dtype="INT2", thresholds=1, frames=FRAMES,
                                       weights=2 * rng.integers(0, 2, size=(4, 27)) - 1))
    add("mvtu_int_stages_th", T.mvtu_case(rng, "mvtu_int_stages_th", 36, 6, 3, 18, vectors=2, binary=False,
                                          in_dtype="INT4", w_dtype="INT3", thresholds=3, frames=FRAMES))
    # LUT-ROM weights deeper than 64 words: rom.v reads them in 64-word banks (a register
    # per bank, then one picking the bank); 160 words (a partial last bank) and 256. Their
    # own generator keeps the random cases below as they were.
    banked = np.random.default_rng(SEED + 1)
    add("mvtu_bin_banked_rom", T.mvtu_case(banked, "mvtu_bin_banked_rom", 20, 8, 1, 1, vectors=2, thresholds=1,
                                           frames=FRAMES))
    add("mvtu_int_banked_rom", T.mvtu_case(banked, "mvtu_int_banked_rom", 16, 16, 1, 1, vectors=2, binary=False,
                                           in_dtype="UINT2", w_dtype="INT3", thresholds=3, frames=FRAMES))
    # binary lane sums as a bit heap (xnor_popcount.v): block-RAM weights, lane counts over
    # the heap's corner cases (1 and 2 lanes, a partial last group of three, several
    # registered stages, columns that wait), with and without thresholds; own generator
    heap = np.random.default_rng(SEED + 2)
    for mw, mh, pe, simd, vectors, th in ((5, 4, 2, 1, 2, 1), (8, 4, 2, 2, 3, 1), (21, 6, 3, 7, 2, 0),
                                          (66, 4, 2, 33, 2, 1), (200, 8, 4, 100, 2, 3), (1154, 2, 1, 577, 2, 1)):
        name = f"mvtu_bin_heap{simd}"
        add(name, T.mvtu_case(heap, name, mw, mh, pe, simd, vectors=vectors, thresholds=th, frames=FRAMES))
        getCustomOp(cases[name][1]).set_nodeattr("mem_style", "block")
    for k in range(4):
        binary = bool(rng.integers(2))
        mw = int(_pick(rng, [4, 6, 8, 9, 12, 18, 32]))
        mh = int(_pick(rng, [2, 4, 6, 8, 10]))
        simd, pe = int(_pick(rng, divisors(mw))), int(_pick(rng, divisors(mh)))
        in_dt = "BINARY" if binary else str(_pick(rng, ["UINT2", "UINT4", "INT3", "INT8", "BIPOLAR"]))
        w_dt = "BINARY" if binary else str(_pick(rng, ["INT2", "INT4", "UINT3", "BIPOLAR", "BINARY"]))
        th = int(_pick(rng, [0, 1, 3, 15]))
        name = f"mvtu_rand{k}"
        add(name, T.mvtu_case(rng, name, mw, mh, pe, simd, vectors=int(rng.integers(1, 5)), binary=binary,
                              in_dtype=in_dt, w_dtype=w_dt, thresholds=th, frames=FRAMES))

    # ---------------------------------------------------------------- SlidingWindow
    add("swg_3x3_pad", T.sliding_window_case(rng, "swg_3x3_pad", 5, 6, 4, 3, 1, (1, 1, 1, 1), simd=2,
                                             frames=FRAMES))
    add("swg_stride2", T.sliding_window_case(rng, "swg_stride2", 7, 7, 2, 3, 2, (1, 1, 1, 1), dtype="INT4",
                                             pad_value=-3, frames=FRAMES))
    add("swg_k2s2", T.sliding_window_case(rng, "swg_k2s2", 8, 6, 2, 2, 2, simd=2, dtype="UINT2", frames=FRAMES))
    add("swg_k1", T.sliding_window_case(rng, "swg_k1", 3, 5, 3, 1, 1, simd=3, dtype="UINT2", frames=FRAMES))
    add("swg_asym_pad", T.sliding_window_case(rng, "swg_asym_pad", 9, 8, 1, 4, 3, (2, 1, 0, 2), dtype="UINT3",
                                              pad_value=5, frames=FRAMES))
    add("swg_stride_gt_k", T.sliding_window_case(rng, "swg_stride_gt_k", 9, 9, 2, 2, 3, simd=1, frames=FRAMES))
    # no padding (CNV's convolutions): the next frame's first output row needs K whole rows
    # while the last output row still holds K rows; with only K + STRIDE line-buffer rows
    # every frame waited for two rows of input (II 20 cycles over cycles())
    add("swg_nopad", T.sliding_window_case(rng, "swg_nopad", 6, 10, 2, 3, 1, simd=2, frames=FRAMES))
    add("swg_nopad_s2", T.sliding_window_case(rng, "swg_nopad_s2", 9, 7, 4, 3, 2, simd=2, dtype="UINT2",
                                              frames=FRAMES))
    for k in range(3):
        kern = int(rng.integers(1, 5))
        stride = int(rng.integers(1, kern + 2))
        pads = tuple(int(rng.integers(0, kern)) for _ in range(4))
        h, w, c = int(rng.integers(kern, 9)), int(rng.integers(kern, 9)), int(_pick(rng, [1, 2, 3, 4, 6]))
        name = f"swg_rand{k}"
        add(name, T.sliding_window_case(rng, name, h, w, c, kern, stride, pads, simd=int(_pick(rng, divisors(c))),
                                        dtype=str(_pick(rng, ["BINARY", "UINT2", "INT3"])), frames=FRAMES))

    # ---------------------------------------------------------------- ParallelWindow
    # CNV's RGB stem (8-bit pixels, no padding): the whole 27-element window per beat, and 9
    add("pwin_rgb_full", T.parallel_window_case(rng, "pwin_rgb_full", 8, 7, 3, 3, dtype="UINT8", frames=FRAMES))
    add("pwin_rgb_row", T.parallel_window_case(rng, "pwin_rgb_row", 6, 8, 3, 3, simd=9, dtype="UINT8",
                                               frames=FRAMES))
    add("pwin_pad", T.parallel_window_case(rng, "pwin_pad", 5, 6, 2, 3, 1, (1, 1, 1, 1), simd=2, frames=FRAMES))
    add("pwin_stride2", T.parallel_window_case(rng, "pwin_stride2", 7, 7, 2, 3, 2, (1, 1, 1, 1), dtype="INT4",
                                               pad_value=-3, frames=FRAMES))
    add("pwin_asym_pad", T.parallel_window_case(rng, "pwin_asym_pad", 9, 8, 1, 4, 3, (2, 1, 0, 2), simd=4,
                                                dtype="UINT3", pad_value=5, frames=FRAMES))
    add("pwin_k2s2", T.parallel_window_case(rng, "pwin_k2s2", 8, 6, 2, 2, 2, dtype="UINT2", frames=FRAMES))
    add("pwin_stride_gt_k", T.parallel_window_case(rng, "pwin_stride_gt_k", 9, 9, 2, 2, 3, simd=2,
                                                   frames=FRAMES))
    for k in range(3):
        kern = int(rng.integers(2, 5))
        stride = int(rng.integers(1, kern + 2))
        pads = tuple(int(rng.integers(0, kern)) for _ in range(4))
        h, w, c = int(rng.integers(kern, 9)), int(rng.integers(kern, 9)), int(_pick(rng, [1, 2, 3, 4]))
        name = f"pwin_rand{k}"
        add(name, T.parallel_window_case(rng, name, h, w, c, kern, stride, pads,
                                         simd=c * int(_pick(rng, divisors(kern * kern))),
                                         dtype=str(_pick(rng, ["BINARY", "UINT2", "INT3", "UINT8"])), frames=FRAMES))

    # ---------------------------------------------------------------- Thresholding
    add("thr_u8", T.thresholding_case(rng, "thr_u8", [3, 4, 6], 2, "UINT8", 3, frames=FRAMES))
    add("thr_i5_shared", T.thresholding_case(rng, "thr_i5_shared", [2, 3, 4], 4, "INT5", 7, shared=True,
                                             frames=FRAMES))
    add("thr_binary_out", T.thresholding_case(rng, "thr_binary_out", [4, 4, 3], 1, "INT9", 1, frames=FRAMES))
    # binary-search implementation (more than 3 thresholds): an 8-bit input quantizer, and lanes
    add("thr_search_255", T.thresholding_case(rng, "thr_search_255", [3, 4, 3], 1, "UINT8", 255, frames=FRAMES))
    add("thr_search_pe3", T.thresholding_case(rng, "thr_search_pe3", [2, 3, 6], 3, "INT6", 12, frames=FRAMES))

    # ---------------------------------------------------------------- Pool
    add("pool_max_u2", T.pool_case(rng, "pool_max_u2", 6, 6, 4, 2, 2, "UINT2", frames=FRAMES))
    add("pool_sum_i4_floor", T.pool_case(rng, "pool_sum_i4_floor", 7, 5, 3, 3, 1, "INT4", mode="sum",
                                         frames=FRAMES))
    add("pool_max_i3_floor", T.pool_case(rng, "pool_max_i3_floor", 5, 7, 2, 2, 2, "INT3", frames=FRAMES))
    add("pool_max_binary", T.pool_case(rng, "pool_max_binary", 4, 4, 8, 2, 8, "BINARY", frames=FRAMES))

    # ---------------------------------------------------------------- streams
    add("dup2", T.duplicate_case(rng, "dup2", [3, 3, 4], 2, "INT3", 2, frames=FRAMES))
    add("dup3", T.duplicate_case(rng, "dup3", [2, 2, 3], 3, "UINT2", 3, frames=FRAMES))
    add("add_i4_u3", T.add_case(rng, "add_i4_u3", [3, 3, 4], 2, "INT4", "UINT3", frames=FRAMES))
    add("add_u2_u2", T.add_case(rng, "add_u2_u2", [2, 4, 4], 4, "UINT2", "UINT2", frames=FRAMES))
    add("gap_i4", T.global_acc_pool_case(rng, "gap_i4", 3, 4, 6, 3, "INT4", frames=FRAMES))
    add("gap_u3_pe1", T.global_acc_pool_case(rng, "gap_u3_pe1", 2, 2, 5, 1, "UINT3", frames=FRAMES))

    # ---------------------------------------------------------------- LabelSelect
    add("label_i8", T.label_select_case(rng, "label_i8", 10, 2, "INT8", frames=FRAMES))
    add("label_affine", T.label_select_case(rng, "label_affine", 12, 3, "UINT4", affine=True, frames=FRAMES))
    add("label_ties", T.label_select_case(rng, "label_ties", 10, 5, "UINT4", ties=True, frames=4))
    add("label_ties_pe1", T.label_select_case(rng, "label_ties_pe1", 6, 1, "INT3", ties=True, frames=4))
    return cases


CASES = build_cases()
STALL_RUNS = {"stalls_a": (0.3, 0.3, 1), "stalls_b": (0.6, 0.1, 2), "stalls_c": (0.1, 0.6, 3), "free": (0.0, 0.0, 4)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, list[sim.LayerResult]]:
    """Every case under four stall patterns. The bit-heap popcounts are simulated LUT by LUT
    (HW_BUILD_SIM_STRUCTURAL), not by the behavioural model whole designs use."""
    case_list = [CASES[name] for name in CASES]
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HW_BUILD_SIM_STRUCTURAL", "1")
        for label, (stall_in, stall_out, seed) in STALL_RUNS.items():
            work = tmp_path_factory.mktemp(label)
            out[label] = sim.simulate_layers(case_list, work, stall_in=stall_in, stall_out=stall_out, seed=seed)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_python(runs, name):
    model, node, inputs = CASES[name]
    expected = T.reference(model, node, inputs)
    T.assert_layer_runs_match(runs, list(CASES).index(name), expected)


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith(("mvtu", "swg", "pwin"))] + ["thr_u8", "thr_search_255", "pool_max_u2",
                                                                                           "add_i4_u3", "dup3"])
def test_initiation_interval_matches_cycles(runs, name):
    """Exactly: the folder balances layers by cycles(), so a layer that is slower than its
    formula (a bubble between output rows or frames) makes the whole design slower."""
    model, node, _ = CASES[name]
    cycles = getCustomOp(node).cycles()
    measured = runs["free"][list(CASES).index(name)].ii_cycles
    assert measured == cycles, f"measured II {measured} vs cycles() {cycles}"


def test_stalls_slow_the_layers_down(runs):
    """The stall runs really exercised back-pressure (a run that ignored ready would not be slower)."""
    free = sum(r.cycles_total for r in runs["free"][:1])
    stalled = sum(r.cycles_total for r in runs["stalls_a"][:1])
    assert stalled > free * 1.2


def test_banked_rom_cases_have_lut_rom_weights_deeper_than_a_bank():
    """The two banked-ROM cases above really take rom.v's banked read (LUT ROM, 64 < words <= 256)."""
    for name, words in (("mvtu_bin_banked_rom", 160), ("mvtu_int_banked_rom", 256)):
        model, node, _ = CASES[name]
        params = getCustomOp(node).rtl_params(model)
        assert params["WEIGHT_STYLE"] == "distributed", name
        assert (params["MW"] // params["SIMD"]) * (params["MH"] // params["PE"]) == words, name


def test_heap_cases_take_the_bit_heap_popcount():
    """The heap cases above (block RAM weights) take xnor_popcount with the XNORs inside (mvtu.v
    HEAP_XNOR, mirrored by MvtuParams); behind a LUT ROM of at most 32 words the heap counts
    XNOR bits made outside it; deeper LUT ROMs, constant weights (one fold) and integer layers
    keep the adder tree."""
    from hw_build.ops.mvtu import MvtuParams

    def record(name: str) -> MvtuParams:
        model, node, _ = CASES[name]
        return MvtuParams(**getCustomOp(node).rtl_params(model))

    assert all(record(n).heap_xnor() for n in CASES if n.startswith("mvtu_bin_heap"))
    assert not record("mvtu_bin_banked_rom").heap_popcount()    # 160 words: the adder tree
    assert record("mvtu_bin_th").heap_popcount() and not record("mvtu_bin_th").heap_xnor()
    assert not record("mvtu_bin_full_fold").heap_popcount()
    assert not record("mvtu_int_banked_rom").heap_popcount()


def test_deep_narrow_weight_rom_goes_to_block_ram():
    """A fully folded 1024 x 1024 layer (LFC) keeps 1M x 1 bit of weights: 32 BRAM36 in the
    32K x 1 shape. Counting only 512 x 72 tiles made it 2048 BRAM36, so the ROM went to LUTs
    (16K of them per layer) and LFC did not fit a PYNQ-Z2 at any folding."""
    from hw_build.rtl.memory import bram36

    assert bram36(1 << 20, 1) == 32
    # as Yosys maps them (checked with synth_xilinx): 512 x 72 one RAMB36, 9 x 16 one RAMB18
    assert bram36(512, 72) == 1 and bram36(9, 16) == 0.5
    model, node, _ = T.mvtu_case(np.random.default_rng(0), "lfc_fc", 1024, 1024, 1, 1, frames=1)
    assert getCustomOp(node).rtl_params(model)["WEIGHT_STYLE"] == "block"
    # small ROMs stay in LUTs
    model, node, _ = T.mvtu_case(np.random.default_rng(0), "small_fc", 27, 16, 16, 3, frames=1)
    assert getCustomOp(node).rtl_params(model)["WEIGHT_STYLE"] == "distributed"
