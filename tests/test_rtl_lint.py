"""``verilator --lint-only -Wall`` is clean for every library module (default parameters and
the parameters the layer tests use) and for generated tops."""

from __future__ import annotations

import numpy as np
import pytest

from hw_build.rtl import codegen, library_files, tools
from tests import rtl_cases as T
from tests.test_rtl_layers import CASES
from tests.test_rtl_plumbing import BLOCKS


@pytest.mark.parametrize("module", sorted(library_files()))
def test_library_module_lints_clean_at_defaults(module):
    assert tools.lint_module(module) == []


def test_layer_instances_lint_clean(tmp_path):
    """All the parameter sets of the layer tests, as one harness."""
    info = codegen.generate_harness([(m, n) for m, n, _ in CASES.values()], tmp_path)
    assert tools.lint_files([tmp_path / f for f in info["files"]], info["top"]) == []


def test_plumbing_instances_lint_clean(tmp_path):
    info = T.plumbing_harness(BLOCKS, tmp_path)
    assert tools.lint_files([tmp_path / f for f in info["files"]], info["top"]) == []


@pytest.mark.parametrize("graph,dma_bits,depths", [
    (T.chain_graph, 64, None), (T.residual_graph, 32, {"shortcut_fifo": 17}), (T.chain_graph, 8, {"conv_fifo": 0})])
def test_generated_top_lints_clean(tmp_path, graph, dma_bits, depths):
    T.generate(graph(np.random.default_rng(0)), tmp_path, dma_bits, depths)
    assert tools.lint(tmp_path) == []


def test_lint_reports_problems(tmp_path):
    """The check itself can fail: an unused input is a -Wall warning."""
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input wire a, input wire b, output wire y);\n  assign y = a;\nendmodule\n")
    assert any("UNUSED" in line for line in tools.lint_files([bad], "bad"))


@pytest.mark.parametrize("params", [dict(N=1, OUT_BITS=1), dict(N=7, OUT_BITS=3, XNOR=0), dict(N=577, OUT_BITS=10)])
def test_structural_popcount_lints_clean(params):
    """xnor_popcount.v's bit heap itself (simulation models it behaviourally unless
    HW_BUILD_STRUCTURAL is defined; synthesis always builds it)."""
    assert tools.lint_module("xnor_popcount", params, defines=("HW_BUILD_STRUCTURAL",)) == []
