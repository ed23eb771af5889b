"""Stream plumbing as graph nodes: the FIFOs, width converters and DMA adapters between the
layers of a folded hardware graph, inserted by one transformation so that code generation,
the estimate, synthesis and FIFO sizing all read the same nodes (and Netron shows them).

After :class:`InsertStreamPlumbing` the graph reads, for the graph input (raw uint8 pixels
arriving as DMA words) and each edge between layers::

    pixels -> TlastQueue -> [Fifo] -> DmaUnpack -> [Fifo] -> first layer
    t      -> [Fifo] -> [WidthConverter] -> [Fifo] -> consumer

with exactly one FIFO per edge, on the wide side of a downsizer and the narrow side of an
upsizer (:func:`fifo_place`), and a converter only where the producer's beats differ from
the consumer's. Every edge of the plumbed graph joins ports of equal width. The fold step runs it after folding (the
widths follow the folding); run it again after refolding: it first removes the plumbing
it finds (:class:`RemoveStreamPlumbing`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from hw_build.errors import BuildError
from hw_build.ops.base import DOMAIN
from hw_build.ops.fifo import DEFAULT_DEPTH
from hw_build.rtl.encoding import verilog_name


def is_plumbing(node) -> bool:
    return node.domain == DOMAIN and getattr(getCustomOp(node), "plumbing", False)


@dataclass
class FifoPlace:
    """Where an edge's FIFO sits relative to its width converter, and its beat geometry."""

    before_converter: bool   # on the producer side (the converter drains the FIFO)
    width: int               # bits per FIFO entry
    beats: int               # beats per frame through the FIFO


def fifo_place(e, dma_bits: int = 64, join: bool = False, narrow_upsizers: bool = True) -> FifoPlace:
    """Where the FIFO of an edge (a :class:`hw_build.rtl.codegen.Edge` of the layer graph)
    goes: the *wide* side of a downsizer, the *narrow* side of an upsizer, except in front
    of a residual join (``join``) or with ``narrow_upsizers`` off, where it stays on the
    wide side.

    A converter moves one beat per cycle on its narrow side, so on its wide side it takes
    (or gives) a beat only every few cycles. A layer that writes wide beats in bursts (a
    pool emits one beat per input beat on the last row and column of each window, nothing
    in between) straight into a downsizer is throttled to the downsizer's drain rate
    during every burst and runs slower than its cycles() (ftbnn_tiny: II 7,644 instead of
    7,056); behind a FIFO it writes the burst at full speed and the downsizer drains the
    FIFO while the layer works on.

    An upsizer's wide side gets a beat only every IN/OUT-ratio cycles, so a wide FIFO
    there would only ever hold what the narrow side buffers anyway, at the cost of a
    register of the wide word per entry (a 2-deep 576-bit FIFO is about 600 LUT, the
    narrow one a few). It holds the II unless a consumer that reads in bursts (a sliding
    window filling its line buffer) meets a producer with no slack: the upsizer hands out
    one wide beat per ratio cycles, so the burst stalls the producer, and a frame takes
    longer. FIFO sizing (``hw_build.rtl.sim.size_fifos``) measures that and then puts the
    upsizers' FIFOs back on the wide side. The shortcut FIFO of a residual join holds
    thousands of beats; it stays on the wide side, where its depth estimate
    (:func:`estimated_join_fifo_depths`) is made."""
    prod_width = dma_bits if e.producer.node is None else e.producer.width
    frame_bits = e.beats * e.consumer.width
    if prod_width > e.consumer.width:
        if e.producer.node is None:
            return FifoPlace(True, prod_width, -(-frame_bits // prod_width))
        return FifoPlace(True, prod_width, frame_bits // prod_width)
    if prod_width < e.consumer.width and e.producer.node is not None and narrow_upsizers and not join:
        return FifoPlace(True, prod_width, -(-frame_bits // prod_width))
    return FifoPlace(False, e.consumer.width, e.beats)


def estimated_join_fifo_depths(model: ModelWrapper, graph, dma_bits: int = 64) -> dict[str, int]:
    """FIFO depths of the inputs of residual joins (by tensor) before simulation sizes them.

    The sized FIFO holds only the skew between the two paths: what the short path delivers
    while the long one's sliding windows and pools take in their lookahead
    (``HWLayer.lookahead``). Summing each path's lookahead from the input gives that skew
    as a share of the frame; plus two pixels of slack it lands within a few percent of the
    simulated depths (ftbnn_small: 2,306 estimated for 2,155 simulated), so the folder
    budgets block RAM for what the design will really hold, not for whole frames."""
    delay: dict[str, float] = {graph.input_tensor: 0.0}
    for n in graph.nodes:
        ins = graph.streamed_inputs[n.name]
        d = max((delay.get(t, 0.0) for t in ins), default=0.0) + graph.ops[n.name].lookahead()
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
            place = fifo_place(by_tensor[t], dma_bits, join=True)
            pixels = int(np.prod(model.get_tensor_shape(t)[1:-1])) or 1
            beats_per_pixel = max(1, place.beats // pixels)
            skew = latest - delay.get(t, 0.0)
            depths[t] = min(place.beats + 2, int(np.ceil(skew * place.beats)) + 2 * beats_per_pixel + 2)
    return depths


class RemoveStreamPlumbing(Transformation):
    """Remove every plumbing node, reconnecting its consumer to its input: the layer graph."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        found = [n for n in graph.node if is_plumbing(n)]
        for node in found:
            src, dst = node.input[0], node.output[0]
            for other in graph.node:
                for i, t in enumerate(other.input):
                    if t == dst:
                        other.input[i] = src
            graph.node.remove(node)
            for vi in [v for v in graph.value_info if v.name == dst]:
                graph.value_info.remove(vi)
        return model, False


class InsertStreamPlumbing(Transformation):
    """Insert the TlastQueue, DmaUnpack, WidthConverters and Fifos of a folded layer graph.

    FIFO depths start at the static choice: 2 on plain edges (registered handshakes, full
    throughput), :func:`estimated_join_fifo_depths` on the inputs of a residual join;
    ``hw_build.rtl.sim.size_fifos`` measures and sets them."""

    def __init__(self, dma_bits: int = 64, narrow_upsizers: bool = True):
        super().__init__()
        if dma_bits <= 0 or dma_bits % 8:
            raise BuildError(f"dma_bits={dma_bits} is not a whole, positive number of bytes")
        self.dma_bits = dma_bits
        self.narrow_upsizers = narrow_upsizers

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        from hw_build.rtl import codegen

        model = model.transform(RemoveStreamPlumbing())
        g = codegen.analyse(model)
        joins = estimated_join_fifo_depths(model, g, self.dma_bits)
        taken = {n.name for n in model.graph.node} | {t for n in model.graph.node for t in (*n.input, *n.output)}
        chains: dict[str, list] = {}
        for e in g.edges:
            chains.setdefault(e.consumer.node.name, []).extend(self._edge_nodes(model, g, e, joins, taken))
        order = []
        for n in g.nodes:
            order += chains.get(n.name, []) + [n]
        del model.graph.node[:]
        model.graph.node.extend(order)
        return model, False

    def _edge_nodes(self, model: ModelWrapper, g, e, joins: dict[str, int], taken: set[str]) -> list:
        """The plumbing nodes of edge ``e``, rewiring its consumer to the last of them."""
        vt = verilog_name(e.tensor)
        shape = [1] + [int(d) for d in model.get_tensor_shape(e.tensor)[1:]]
        dtype = e.dtype.name
        place = fifo_place(e, self.dma_bits, join=e.tensor in joins, narrow_upsizers=self.narrow_upsizers)
        dma = e.producer.node is None
        frame_bits = e.beats * e.consumer.width
        in_width = self.dma_bits if dma else e.producer.width
        in_beats = -(-frame_bits // in_width)
        nodes = []
        src = e.tensor

        def add(op_type: str, name: str, out: str, in_bits: int, out_bits: int, in_beats: int,
                out_beats: int, **attrs) -> None:
            nonlocal src
            for what in (name, out):
                if what in taken:
                    raise BuildError(f"the stream plumbing of tensor {e.tensor!r} needs the name {what!r}, "
                                     "which the graph already uses; rename that node or tensor")
                taken.add(what)
            nodes.append(helper.make_node(
                op_type, [src], [out], name=name, domain=DOMAIN, in_shape=shape, out_shape=shape,
                in_dtype=dtype, out_dtype=dtype, in_bits=in_bits, out_bits=out_bits, in_frame_beats=in_beats,
                out_frame_beats=out_beats, edge=e.tensor, **attrs))
            model.set_tensor_shape(out, shape)
            model.set_tensor_datatype(out, e.dtype)
            src = out

        if dma:
            add("TlastQueue", "tlast_queue", f"{vt}_dma", in_width, in_width, in_beats, in_beats)
        depth = joins.get(e.tensor, DEFAULT_DEPTH)
        if place.before_converter:
            add("Fifo", f"{vt}_fifo", f"{vt}_q", place.width, place.width, place.beats, place.beats, depth=depth)
        if dma:
            add("DmaUnpack", f"{vt}_width", f"{vt}_px", in_width, e.consumer.width, in_beats, e.beats,
                frame_bits=frame_bits)
        elif in_width != e.consumer.width:
            add("WidthConverter", f"{vt}_width", f"{vt}_wc", in_width, e.consumer.width, in_beats, e.beats)
        if not place.before_converter:
            add("Fifo", f"{vt}_fifo", f"{vt}_q", place.width, place.width, place.beats, place.beats, depth=depth)
        e.consumer.node.input[list(e.consumer.node.input).index(e.tensor)] = src
        return nodes


def insert_stream_plumbing(model: ModelWrapper, dma_bits: int = 64, narrow_upsizers: bool = True) -> ModelWrapper:
    return model.transform(InsertStreamPlumbing(dma_bits, narrow_upsizers))


def narrow_upsizer_fifos(model: ModelWrapper) -> list[str]:
    """The FIFO nodes of the plumbed ``model`` that sit on the narrow side of an upsizer."""
    consumers = {t: n for n in model.graph.node for t in n.input}
    found = []
    for name, op in fifos(model).items():
        nxt = consumers.get(op.onnx_node.output[0])
        if nxt is not None and nxt.op_type == "WidthConverter" and \
                getCustomOp(nxt).get_nodeattr("in_bits") < getCustomOp(nxt).get_nodeattr("out_bits"):
            found.append(name)
    return found


def dma_bits_of(model: ModelWrapper) -> int:
    """The DMA word width the plumbing of ``model`` was inserted for (its TlastQueue's)."""
    queue = next((n for n in model.graph.node if n.op_type == "TlastQueue"), None)
    if queue is None:
        raise BuildError("the model has no stream plumbing (no TlastQueue node); run the fold step first")
    return int(getCustomOp(queue).get_nodeattr("in_bits"))


def fifos(model: ModelWrapper) -> dict:
    """FIFO node name -> its op (hw_build.ops.Fifo), in graph order."""
    return {n.name: getCustomOp(n) for n in model.graph.node if n.domain == DOMAIN and n.op_type == "Fifo"}


def set_fifo_depths(model: ModelWrapper, depths: dict[str, int], fixed: bool = False) -> None:
    """Set the ``depth`` of the named FIFO nodes (``fixed``: and mark it as the user's choice,
    which FIFO sizing keeps)."""
    ops = fifos(model)
    unknown = sorted(set(depths) - set(ops))
    if unknown:
        raise BuildError(f"no FIFO nodes {unknown} in this design; its FIFOs: {', '.join(ops) or 'none'} "
                         "(the fold step inserts them)")
    for name, depth in depths.items():
        if int(depth) < 0:
            raise BuildError(f"FIFO {name}: depth {depth} is negative")
        ops[name].set_nodeattr("depth", int(depth))
        if fixed:
            ops[name].set_nodeattr("fixed_depth", 1)
