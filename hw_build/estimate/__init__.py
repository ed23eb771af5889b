"""Analytical performance and resource estimates of a folded hardware graph.

Cycles are exact per layer (``cycles()``, checked against RTL simulation). LUT/BRAM numbers
are a first-order model of our RTL (to be calibrated against Yosys synthesis)."""

from __future__ import annotations

import math

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

#: a memory shallower than this goes to LUTRAM instead of block RAM
LUTRAM_MAX_DEPTH = 64


#: (depth, width) aspect ratios of a RAMB36E1; a RAMB18E1 (half) offers the same with half the depth
RAMB36_SHAPES = [(32768, 1), (16384, 2), (8192, 4), (4096, 9), (2048, 18), (1024, 36), (512, 72)]


def _memory(depth: int, width: int) -> tuple[float, float]:
    """(LUT, BRAM36) of a ROM of ``depth`` words of ``width`` bits (RAMB18 counts 0.5)."""
    if depth * width == 0:
        return 0.0, 0.0
    if depth <= LUTRAM_MAX_DEPTH:
        return float(width * math.ceil(depth / 64)), 0.0
    best = math.inf
    for d, w in RAMB36_SHAPES:
        best = min(best, math.ceil(depth / d) * math.ceil(width / w))
        if w <= 36:
            best = min(best, 0.5 * math.ceil(depth / (d // 2)) * math.ceil(width / w))
    return 0.0, float(best)


def layer_resources(op) -> dict:
    """{lut, ff, bram36, dsp} of one hardware layer."""
    t = op.onnx_node.op_type
    lut, ff, bram, dsp = 60.0, 80.0, 0.0, 0.0  # stream handshake and control
    if t == "MVTU":
        pe, simd = op.get_nodeattr("PE"), op.get_nodeattr("SIMD")
        mw, mh = op.get_nodeattr("MW"), op.get_nodeattr("MH")
        acc_bits = DataType[op.get_nodeattr("acc_dtype")].bitwidth()
        w_bits = DataType[op.get_nodeattr("w_dtype")].bitwidth()
        in_bits = op.in_dtype().bitwidth()
        if op.get_nodeattr("binary"):
            per_pe = 1.1 * simd + 1.5 * acc_bits
        else:
            per_pe = simd * in_bits * w_bits * 0.7 + 1.5 * acc_bits + simd * acc_bits * 0.3
        n_th = 0
        if op.has_thresholds():
            n_th = op.onnx_node.input[2] and 1
        lut += pe * per_pe
        ff += pe * (acc_bits * 2 + simd)
        depth = (mh // pe) * (mw // simd)
        m_lut, m_bram = _memory(depth, pe * simd * w_bits)
        lut += m_lut
        bram += m_bram
        if n_th:
            lut += pe * acc_bits * 2.5
        del n_th
    elif t == "SlidingWindow":
        _, h, w, c = op.in_shape()
        k = op.get_nodeattr("kernel")
        bits = op.in_dtype().bitwidth()
        simd = op.get_nodeattr("SIMD")
        buf_bits = (k + 1) * w * c * bits
        depth = (k + 1) * w * c // simd
        m_lut, m_bram = _memory(depth, simd * bits)
        lut += 150 + simd * bits * 2 + m_lut
        bram += m_bram
        del buf_bits
    elif t == "Thresholding":
        pe = op.get_nodeattr("PE")
        lut += pe * op.in_dtype().bitwidth() * 2.5 * max(1, op.out_dtype().bitwidth())
    elif t in ("Pool", "AddStreams", "GlobalAccPool", "DuplicateStreams", "LabelSelect"):
        pe = op.get_nodeattr("PE")
        lut += pe * op.out_dtype().bitwidth() * 2
        if t == "Pool":
            _, h, w, c = op.in_shape()
            lut += c * op.out_dtype().bitwidth() * 0.5  # one row of partial results in LUTRAM
    return {"lut": round(lut), "ff": round(ff), "bram36": bram, "dsp": dsp}


def estimate(model: ModelWrapper, clock_mhz: float) -> dict:
    layers = []
    for node in model.graph.node:
        op = getCustomOp(node)
        res = layer_resources(op)
        fold = op.get_folding()
        layers.append({"name": node.name, "op": node.op_type, "pe": fold.get("PE", 1),
                       "simd": fold.get("SIMD", 1), "cycles": op.cycles(), **res})
    bottleneck = max(layer["cycles"] for layer in layers)
    totals = {k: sum(layer[k] for layer in layers) for k in ("lut", "ff", "bram36", "dsp")}
    return {
        "layers": layers,
        "estimate": {
            "cycles_per_frame": bottleneck,
            "fps": clock_mhz * 1e6 / bottleneck,
            "latency_cycles": sum(layer["cycles"] for layer in layers),
            **totals,
        },
    }
