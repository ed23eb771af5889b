"""Yosys ``synth_xilinx -family xc7`` reads and maps the library and generated tops, and the
cell counts are summarised into {lut, ff, bram36, dsp}."""

from __future__ import annotations

import numpy as np
import pytest

from hw_build.rtl import library_files, tools
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
