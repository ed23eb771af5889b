"""The stream plumbing transformation (hw_build.fold.plumbing): FIFOs, width converters and
the DMA adapters as graph nodes, one FIFO per edge on the producer's side of its converter,
Python execution unchanged, and idempotent after refolding."""

from __future__ import annotations

import re

import numpy as np
from qonnx.custom_op.registry import getCustomOp

from hw_build.fold.plumbing import InsertStreamPlumbing, RemoveStreamPlumbing, fifos, is_plumbing, narrow_upsizer_fifos
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
    # the FIFO of an edge sits before its converter: on the wide side of a downsizer, the
    # narrow side of an upsizer; only the DMA's own upsizer (none here) has it after
    upsizers = 0
    for e in g.edges:
        fifo = fifos(design)[f"{codegen.verilog_name(e.tensor)}_fifo"]
        producer = 64 if e.producer.node is None else e.producer.width
        upsizers += e.producer.node is not None and producer < e.consumer.width
        dma_upsizer = e.producer.node is None and producer < e.consumer.width
        assert fifo.get_nodeattr("in_bits") == (e.consumer.width if dma_upsizer else producer), e.tensor
    assert upsizers, "the chain has no upsizer between layers: the check above would not see one"
    assert len(narrow_upsizer_fifos(design)) == upsizers
    assert narrow_upsizer_fifos(T.plumbed(layers, 64, narrow_upsizers=False)) == []


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


def test_every_op_class_has_a_record_a_module_and_a_test_builder():
    """What adding a layer means (hw_build/ops/__init__.py): an op class with a typed record of
    its Verilog module's parameters, and a randomized case builder in tests/rtl_cases.py (the
    plumbing modules are exercised by tests/test_rtl_plumbing.py and the generated tops)."""
    from hw_build.ops import LAYER_CLASSES
    from hw_build.rtl import library_files

    for name, cls in LAYER_CLASSES.items():
        assert cls.rtl_module in library_files() and cls.rtl_record is not None, name
        assert cls.plumbing or name in T.CASE_BUILDERS, f"{name} has no case builder in tests/rtl_cases.py"


def test_a_renamed_parameter_fails_loudly(monkeypatch):
    import dataclasses

    import pytest

    from hw_build.ops import LAYER_CLASSES, check_rtl_records, fifo

    renamed = dataclasses.make_dataclass("FifoParams", [("WIDTH", int), ("ENTRIES", int)], frozen=True)
    monkeypatch.setattr(fifo.Fifo, "rtl_record", renamed)
    assert LAYER_CLASSES["Fifo"] is fifo.Fifo
    with pytest.raises(ImportError, match=r"only in the record \['ENTRIES'\], only in the Verilog \['DEPTH'\]"):
        check_rtl_records()
    # and an op whose values miss a record field cannot be instantiated or priced
    design = T.plumbed(_chain(), 64)
    with pytest.raises(TypeError, match="missing"):
        next(iter(fifos(design).values())).rtl_params()


def test_records_are_read_from_the_verilog_and_held_to_the_op(monkeypatch):
    """A record is made from its module's header (types from the defaults); a record built
    from a missing module, features reading a parameter the module lacks, or parameter
    values naming one, fail at import (check_rtl_records), not when an instance is priced."""
    import dataclasses

    import pytest

    from hw_build.ops import check_rtl_records, fifo, mvtu
    from hw_build.ops.base import rtl_record

    assert [(f.name, f.type) for f in dataclasses.fields(fifo.FifoParams)] == [("WIDTH", int), ("DEPTH", int)]
    assert dataclasses.fields(mvtu.MvtuParams)[-2].type is str        # THRESH_STYLE = "auto"
    with pytest.raises(ImportError, match="no_such_module"):
        rtl_record("no_such_module")

    class MisreadParams(rtl_record("fifo")):
        def resource_features(self):
            return {"const": float(self.ENTRIES)}, {}, 0.0, 0.0

    monkeypatch.setattr(fifo.Fifo, "rtl_record", MisreadParams)
    with pytest.raises(ImportError, match=r"resource_features reads \['ENTRIES'\]"):
        check_rtl_records()
    monkeypatch.setattr(fifo.Fifo, "rtl_record", fifo.FifoParams)

    def misnamed_values(self, model=None):
        return {"WIDTH": 8, "ENTRIES": 2}

    monkeypatch.setattr(fifo.Fifo, "rtl_param_values", misnamed_values)
    with pytest.raises(ImportError, match=r"rtl_param_values returns \['ENTRIES'\] beyond and lacks \['DEPTH'\]"):
        check_rtl_records()


def test_folding_files_carry_fifo_depths(tmp_path):
    """folding.json lists every FIFO node with its depth; a folding file that gives a FIFO
    depth fixes it; a setting no node takes is an error, never ignored."""
    import json

    import pytest

    from hw_build import fold
    from hw_build.errors import BuildError

    design = fold.apply_folding_file(_chain(), _write(tmp_path, {"Defaults": {}, "conv_mvtu": {"PE": 8, "SIMD": 9},
                                                                  "conv_fifo": {"depth": 7}}), 64)
    cfg = fold.folding_config(design)
    assert cfg["conv_mvtu"]["PE"] == 8 and cfg["conv_fifo"] == {"depth": 7} and cfg["tlast_queue"] == {}
    assert fifos(design)["conv_fifo"].get_nodeattr("fixed_depth") == 1
    assert fifos(design)["pooled_fifo"].get_nodeattr("fixed_depth") == 0
    # the written config reads back to the same design
    again = fold.apply_folding_file(_chain(), _write(tmp_path, cfg), 64)
    assert fold.folding_config(again) == cfg
    for bad, message in [({"conv_fifo": {"PE": 2}}, "conv_fifo.PE: Fifo node 'conv_fifo' has no setting 'PE'"),
                         ({"conv_mvtu": {"depth": 3}}, "conv_mvtu.depth: 'conv_mvtu' is a layer, not a FIFO"),
                         ({"conv_fifo": {"depth": -1}}, "is not a FIFO depth"),
                         ({"nope_fifo": {"depth": 4}}, "'nope_fifo' is not a layer of this design")]:
        with pytest.raises(BuildError, match=re.escape(message)):
            fold.apply_folding_file(_chain(), _write(tmp_path, bad), 64)
    assert json.loads(json.dumps(cfg)) == cfg


def test_fifo_sizing_keeps_a_fixed_depth(tmp_path):
    from hw_build.fold.plumbing import set_fifo_depths
    from hw_build.rtl import sim

    design = T.plumbed(_chain(), 64)
    set_fifo_depths(design, {"conv_fifo": 9}, fixed=True)
    frames = T.random_frames(np.random.default_rng(5), 4, design.get_tensor_shape("pixels")[1:])
    depths = sim.size_fifos(design, tmp_path, frames, prove_stalls=0.0)
    assert depths["conv_fifo"] == 9 and fifos(design)["conv_fifo"].depth() == 9
    assert codegen.read_manifest(tmp_path)["fifos"]["conv_fifo"]["depth"] == 9


def _write(tmp_path, cfg: dict):
    import json

    path = tmp_path / "folding.json"
    path.write_text(json.dumps(cfg))
    return path
