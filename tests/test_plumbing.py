"""The stream plumbing transformation (hw_build.fold.plumbing): FIFOs, width converters and
the DMA adapters as graph nodes, one FIFO per edge on the wider side of its converter,
Python execution unchanged, and idempotent after refolding."""

from __future__ import annotations

import numpy as np
from qonnx.custom_op.registry import getCustomOp

from hw_build.fold.plumbing import InsertStreamPlumbing, RemoveStreamPlumbing, fifos, is_plumbing
from hw_build.rtl import codegen
from tests import rtl_cases as T


def _chain():
    return T.chain_graph(np.random.default_rng(3))


def test_every_edge_gets_one_fifo_and_converters_where_widths_differ():
    layers = _chain()
    g = codegen.analyse(layers)
    design = T.plumbed(layers, 64)
    pg = codegen.analyse(design)
    # every edge of the plumbed graph joins equal widths
    assert all(e.producer.node is None or e.producer.width == e.consumer.width for e in pg.edges)
    assert [n.name for n in design.graph.node if not is_plumbing(n)] == [n.name for n in layers.graph.node]
    assert sorted(op.get_nodeattr("edge") for op in fifos(design).values()) == sorted(e.tensor for e in g.edges)
    converters = {getCustomOp(n).get_nodeattr("edge") for n in design.graph.node if n.op_type == "WidthConverter"}
    assert converters == {e.tensor for e in g.edges if e.producer.node is not None
                          and e.producer.width != e.consumer.width}
    first = [n.op_type for n in design.graph.node[:4]]
    assert first[0] == "TlastQueue" and "DmaUnpack" in first
    # the FIFO of an edge sits on the wide side: before a downsizer, after an upsizer
    for e in g.edges:
        fifo = fifos(design)[f"{codegen.verilog_name(e.tensor)}_fifo"]
        wide = max(64 if e.producer.node is None else e.producer.width, e.consumer.width)
        assert fifo.get_nodeattr("in_bits") == wide, e.tensor


def test_python_execution_is_unchanged():
    layers = _chain()
    frames = T.random_frames(np.random.default_rng(4), 3, layers.get_tensor_shape("pixels")[1:])
    np.testing.assert_array_equal(T.execute_graph(T.plumbed(layers, 64), frames), T.execute_graph(layers, frames))


def test_rerun_after_refolding_replaces_the_plumbing():
    design = T.plumbed(_chain(), 64)
    getCustomOp(design.get_node_from_name("conv_mvtu")).set_nodeattr("PE", 16)
    again = design.transform(InsertStreamPlumbing(64))
    fresh = _chain()
    getCustomOp(fresh.get_node_from_name("conv_mvtu")).set_nodeattr("PE", 16)
    fresh = T.plumbed(fresh, 64)
    assert [(n.op_type, n.name, list(n.input)) for n in again.graph.node] == \
        [(n.op_type, n.name, list(n.input)) for n in fresh.graph.node]
    stripped = again.transform(RemoveStreamPlumbing())
    assert [list(n.input) for n in stripped.graph.node] == [list(n.input) for n in _chain().graph.node]
