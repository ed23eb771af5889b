"""Yosys ``synth_xilinx -family xc7`` reads and maps the library and generated tops, and the
cell counts are summarised into {lut, ff, bram36, dsp}."""

from __future__ import annotations

import numpy as np
import pytest

from hw_build.rtl import library_files, library_sources, tools
from tests import rtl_cases as T

STAT_SAMPLE = """
=== design hierarchy ===

        +----------Count including submodules.
        |
     2765 wires
     3542 cells
        1   BUFG
       95   CARRY4
     1419   FDRE
       17   FDSE
      237   LUT2
      488   LUT6
        3   RAMB18E1
        1   RAMB36E1
        2   DSP48E1
       29   RAM32M
       17 submodules
        1   $paramod$1aae6b1df42b805b1b335df99c7d234d7376a5e8\\sliding_window
"""


def test_cell_counts_are_summarised():
    cells = tools.parse_cells(STAT_SAMPLE)
    assert cells["LUT6"] == 488 and cells["RAMB18E1"] == 3 and "submodules" not in cells
    summary = tools.summarize_cells(cells)
    assert summary == {"lut": 237 + 488 + 4 * 29, "ff": 1436, "bram36": 2.5, "dsp": 2, "carry": 95}


def test_generated_top_synthesizes(tmp_path):
    T.generate(T.chain_graph(np.random.default_rng(0)), tmp_path, 64)
    result = tools.synth(tmp_path)
    assert result["lut"] > 300 and result["ff"] > 300
    assert result["dsp"] == 0            # binary layers need no multipliers
    assert result["cells"].get("CARRY4", 0) > 0


@pytest.mark.slow
def test_every_library_module_synthesizes(tmp_path):
    configs = {m: (m, {}) for m in library_files()}
    configs["mvtu_int"] = ("mvtu", {"BINARY": 0, "IN_BITS": 8, "W_BITS": 2, "W_SIGNED": 1, "ACC_BITS": 14,
                                    "NUM_THRESH": 3, "OUT_BITS": 2})
    configs["swc_shift"] = ("stream_width_converter", {"IN_BITS": 64, "OUT_BITS": 24, "FRAME_BITS": 1176})
    # a ROM without contents is all zeros, which synthesis rightly removes: give it some
    rng = np.random.default_rng(0)
    (tmp_path / "rom_test.mem").write_text("".join(f"{v:02x}\n" for v in rng.integers(0, 256, 16)))
    configs["rom"] = ("rom", {"WIDTH": 8, "DEPTH": 16, "INIT_FILE": "rom_test.mem"})
    results = tools.synth_modules(configs, tmp_path)
    for label, summary in results.items():
        assert summary["lut"] + summary["ff"] > 0, label


@pytest.mark.slow
def test_residual_top_synthesizes(tmp_path):
    T.generate(T.residual_graph(np.random.default_rng(0)), tmp_path, 32)
    result = tools.synth(tmp_path)
    assert result["lut"] > 100


def test_binary_mvtu_with_block_ram_weights_costs_at_most_1_6_luts_per_lane(tmp_path):
    """The bit-heap popcount (xnor_popcount.v, XNORs inside its first LUTs): a binary MVTU with
    block-RAM weights and 1,536 lanes (PE 8 x SIMD 192, one neuron fold: no input buffer; CNV's
    MVTU_3 has 3,072 lanes of the same kind) stays within 1.6 Yosys LUTs per lane, counters and
    thresholds included, and within 8 LUT levels. The adder tree it replaced cost 2.3 per lane
    on MVTU_3."""
    from qonnx.custom_op.registry import getCustomOp

    model, node, _ = T.mvtu_case(np.random.default_rng(7), "heap_cost", 576, 8, 8, 192, thresholds=1, frames=1)
    op = getCustomOp(node)
    op.set_nodeattr("mem_style", "block")
    params = op.rtl_params(model)
    files = []
    for name, lines in op.rtl_memories(model).items():
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        files.append(tmp_path / name)
    job = tools.SynthJob("heap_cost", "mvtu", tuple(params.items()), tuple(library_sources(["mvtu"])), tuple(files))
    result = tools.run_synth_job(job, tmp_path / "synth")
    lanes = params["PE"] * params["SIMD"]
    assert result["bram36"] > 0, "the weights are meant to be in block RAM"
    assert result["lut"] / lanes <= 1.6, f"{result['lut']} LUT for {lanes} lanes"
    assert result["lut_levels"] <= 8
