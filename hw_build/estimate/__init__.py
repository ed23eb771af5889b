"""Analytical performance and resource estimates of a folded hardware graph.

Cycles are exact per layer (``cycles()``, checked against RTL simulation). Resources come
from :mod:`hw_build.estimate.cost_model`, a per-module model of our RTL calibrated against
Yosys ``synth_xilinx`` (benchmarks/calibrate_cost_model.py): every layer instance, plus the
FIFOs and width converters on the edges between layers, which the code generator adds.
"""

from __future__ import annotations

import json

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_build.estimate.cost_model import KEYS, module_resources

#: metadata key the rtl step stores the FIFO depths it proved in simulation under
FIFO_DEPTHS_KEY = "hw_build.fifo_depths"


def layer_resources(op, model: ModelWrapper | None = None) -> dict[str, float]:
    """{lut, ff, bram36, dsp} of one hardware layer's RTL instance (its module at the
    parameters the code generator would give it; ``model`` lets them follow the actual
    weights and thresholds, e.g. the narrowest weight encoding)."""
    return module_resources(op.rtl_module, op.rtl_params(model))


def lookahead(op) -> float:
    """Share of a frame a layer takes in before its first output: a sliding window needs the
    window's rows below the padding plus one pixel, a pool its window rows but one."""
    t = op.onnx_node.op_type
    if t == "SlidingWindow":
        _, h, w, _ = op.in_shape()
        rows = max(op.get_nodeattr("kernel") - op.get_nodeattr("pads")[0], 1)
        return (rows + 1 / w) / h
    if t == "Pool":
        _, h, _, _ = op.in_shape()
        return (op.get_nodeattr("kernel") - 1) / h
    return 0.0


def estimated_join_fifo_depths(model: ModelWrapper, graph, dma_bits: int = 64) -> dict[str, int]:
    """FIFO depths of the inputs of residual joins before simulation has sized them.

    The code generator starts from a whole frame on each join input (safe, never deadlocks);
    the sized FIFO holds only the skew between the two paths: what the short path delivers
    while the long one's sliding windows and pools take in their lookahead. Summing each
    path's :func:`lookahead` from the input gives that skew as a share of the frame; plus
    two pixels of slack it lands within a few percent of the simulated depths (ftbnn_small:
    2,306 estimated for 2,155 simulated), so the folder budgets block RAM for what the
    design will really hold, not for whole frames."""
    from hw_build.rtl import codegen

    delay: dict[str, float] = {graph.input_tensor: 0.0}
    for n in graph.nodes:
        ins = graph.streamed_inputs[n.name]
        d = max((delay.get(t, 0.0) for t in ins), default=0.0) + lookahead(graph.ops[n.name])
        for t in n.output:
            delay[t] = d
    by_tensor = {e.tensor: e for e in graph.edges}
    depths: dict[str, int] = {}
    for n in graph.nodes:
        ins = graph.streamed_inputs[n.name]
        if len(ins) < 2:
            continue
        latest = max(delay.get(t, 0.0) for t in ins)
        for t in ins:
            place = codegen.fifo_place(by_tensor[t], dma_bits)
            pixels = int(np.prod(model.get_tensor_shape(t)[1:-1])) or 1
            beats_per_pixel = max(1, place.beats // pixels)
            skew = latest - delay.get(t, 0.0)
            depths[t] = min(place.beats + 2, int(np.ceil(skew * place.beats)) + 2 * beats_per_pixel + 2)
    return depths


def edge_instances(model: ModelWrapper, dma_bits: int = 64,
                   fifo_depths: dict[str, int] | None = None) -> list[dict]:
    """The FIFOs, width converters and frame-boundary queue the code generator puts around
    the layers: [{instance, module, params, tensor}]. FIFO depths: ``fifo_depths``, else the
    ones the rtl step proved (model metadata), else the generator's static defaults (the
    fold step runs before FIFOs are sized)."""
    from hw_build.rtl import codegen
    from hw_build.rtl.encoding import verilog_name

    g = codegen.analyse(model)
    if fifo_depths is None:
        stored = model.get_metadata_prop(FIFO_DEPTHS_KEY)
        fifo_depths = json.loads(stored) if stored else estimated_join_fifo_depths(model, g, dma_bits)
    depths = codegen.default_fifo_depths(g, dma_bits)
    depths.update({k: int(v) for k, v in fifo_depths.items() if k in depths})
    frame_bits = int(np.prod(g.frame_shape)) * 8
    out = [{"instance": "tlast_queue", "module": "frame_tlast", "tensor": None,
            "params": {"WORDS_PER_FRAME": -(-frame_bits // dma_bits), "DEPTH": codegen.TLAST_QUEUE_DEPTH}}]
    for e in g.edges:
        place = codegen.fifo_place(e, dma_bits)
        if depths[e.tensor] > 0:
            out.append({"instance": f"{verilog_name(e.tensor)}_fifo", "module": "fifo", "tensor": e.tensor,
                        "params": {"WIDTH": place.width, "DEPTH": depths[e.tensor]}})
        if e.producer.node is None:
            conv = {"IN_BITS": dma_bits, "OUT_BITS": e.consumer.width, "FRAME_BITS": frame_bits}
        elif e.producer.width != e.consumer.width:
            conv = {"IN_BITS": e.producer.width, "OUT_BITS": e.consumer.width, "FRAME_BITS": 0}
        else:
            continue
        out.append({"instance": f"{verilog_name(e.tensor)}_width", "module": "stream_width_converter", "tensor": e.tensor,
                    "params": conv})
    return out


def estimate(model: ModelWrapper, clock_mhz: float, dma_bits: int = 64,
             fifo_depths: dict[str, int] | None = None) -> dict:
    """{"layers": [...], "edges": [...], "estimate": {cycles_per_frame, fps, latency_cycles,
    lut, ff, bram36, dsp}}; the totals include the edges (FIFOs, width converters)."""
    layers = []
    for node in model.graph.node:
        op = getCustomOp(node)
        res = layer_resources(op, model)
        fold = op.get_folding()
        layers.append({"name": node.name, "op": node.op_type, "pe": fold.get("PE", 1),
                       "simd": fold.get("SIMD", 1), "cycles": op.cycles(), **res})
    # a graph that is not a whole accelerator raises here (naming what is missing) rather than
    # being priced without its FIFOs and width converters
    edges = [{**e, **module_resources(e["module"], e["params"])}
             for e in edge_instances(model, dma_bits, fifo_depths)]
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
