"""Analytical performance and resource estimates of a folded hardware graph.

Cycles are exact per layer (``cycles()``, checked against RTL simulation). Resources come
from :mod:`hw_build.estimate.cost_model`, a per-module model of our RTL calibrated against
Yosys ``synth_xilinx`` (benchmarks/calibrate_cost_model.py): every node of the plumbed
graph, the layers and the FIFOs, width converters and DMA adapters between them.
"""

from __future__ import annotations

import copy

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_build.estimate.cost_model import KEYS
from hw_build.rtl.encoding import verilog_name


def layer_resources(op, model: ModelWrapper | None = None) -> dict[str, float]:
    """{lut, ff, bram36, dsp} of one hardware node's RTL instance (``HWLayer.resources``)."""
    return op.resources(model)


def plumbed(model: ModelWrapper, dma_bits: int = 64) -> ModelWrapper:
    """``model`` if it carries its stream plumbing, else a plumbed copy (what the fold step
    will build from this folding: the folder prices designs before it inserts the nodes)."""
    from hw_build.fold.plumbing import insert_stream_plumbing, is_plumbing

    if any(is_plumbing(n) for n in model.graph.node):
        return model
    return insert_stream_plumbing(ModelWrapper(copy.deepcopy(model.model)), dma_bits)


def estimate(model: ModelWrapper, clock_mhz: float, dma_bits: int = 64) -> dict:
    """{"layers": [...], "edges": [...], "estimate": {cycles_per_frame, fps, latency_cycles,
    lut, ff, bram36, dsp}}; the totals include the edges (the plumbing nodes; ``dma_bits``
    only matters for a graph without them)."""
    # a graph that is not a whole accelerator raises here (naming what is missing) rather than
    # being priced without its FIFOs and width converters
    design = plumbed(model, dma_bits)
    layers, edges = [], []
    for node in design.graph.node:
        op = getCustomOp(node)
        res = layer_resources(op, design)
        if op.plumbing:
            if op.instantiated():
                edges.append({"instance": verilog_name(node.name), "node": node.name, "op": node.op_type,
                              "module": op.rtl_module, "tensor": op.get_nodeattr("edge"),
                              "params": op.rtl_params(design), **res})
            continue
        fold = op.get_folding()
        layers.append({"name": node.name, "op": node.op_type, "pe": fold.get("PE", 1),
                       "simd": fold.get("SIMD", 1), "cycles": op.cycles(), **res})
    bottleneck = max(layer["cycles"] for layer in layers)
    totals = {k: round(sum(x[k] for x in layers + edges), 1) for k in KEYS}
    return {
        "layers": layers,
        "edges": edges,
        "estimate": {
            "cycles_per_frame": bottleneck,
            "fps": clock_mhz * 1e6 / bottleneck,
            "latency_cycles": sum(layer["cycles"] for layer in layers),
            **totals,
            "edges_lut": round(sum(e["lut"] for e in edges), 1),
        },
    }
