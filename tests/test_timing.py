"""The timing estimate (hw_build.estimate.timing), its report block, and the LUT-level limit of
the generated RTL (Yosys, slow)."""

from __future__ import annotations

import numpy as np
import pytest
from qonnx.custom_op.registry import getCustomOp

from hw_build import boards
from hw_build.estimate import timing
from hw_build.rtl import library_files, module_closure, tools
from tests import rtl_cases as T

CARRY_SAMPLE = """
Longest topological path in sliding_window (length=3):
    0: $auto$1.CI
"""


def test_each_board_gets_its_family_and_speed_grade():
    assert timing.model_for(boards.get("pynq-z2").part, "zynq7").name == "7series-1"
    assert timing.model_for(boards.get("ultra96").part, "zynqmp").name == "ultrascale+-1"
    assert timing.model_for(boards.get("u250").part, "alveo").name == "ultrascale+-2"
    assert timing.model_for(boards.get("kv260").part, "zynqmp").name == "ultrascale+-2"


def test_path_delay_is_the_documented_sum():
    m = timing.MODELS["7series-1"]
    expected = (m.clk_to_q_ns + m.net_ns + 5 * (m.lut_ns + m.net_ns)
                + m.carry_entry_ns + 2 * m.carry_per_cell_ns + m.net_ns + m.setup_ns + m.clock_uncertainty_ns)
    assert m.path_ns(5, 3) == pytest.approx(expected)
    assert m.fmax_mhz(5, 3) == pytest.approx(1000 / expected)
    # no carry chain: no carry term at all; deeper logic is slower
    assert m.path_ns(5, 0) < m.path_ns(5, 1) < m.path_ns(5, 3) < m.path_ns(6, 3)
    # a path that starts at a block RAM starts later
    assert m.path_ns(5, 3, bram=True) - m.path_ns(5, 3) == pytest.approx(m.bram_clk_to_q_ns - m.clk_to_q_ns)
    # UltraScale+ CARRY8 covers two CARRY4 cells of the xc7 mapping
    u = timing.MODELS["ultrascale+-2"]
    assert u.path_ns(4, 4) - u.path_ns(4, 1) == pytest.approx(u.carry_per_cell_ns)


def _synth(levels: dict[str, tuple[int, int]], bram: tuple[str, ...] = ()) -> dict:
    return {"instances": [{"instance": name, "module": "mvtu" if name.startswith("MVTU") else "fifo",
                           "layer": name if name.startswith("MVTU") else None, "lut_levels": lv,
                           "carry_chain": cc, "bram36": 1.0 if name in bram else 0.0}
                          for name, (lv, cc) in levels.items()]}


def test_timing_block_names_the_slowest_instance_and_warns_above_the_estimate():
    synth = _synth({"MVTU_0": (6, 4), "MVTU_1": (8, 1), "x_fifo": (3, 2)})
    ok = timing.timing_block(synth, "xc7z020clg400-1", "zynq7", 100.0)
    m = timing.MODELS["7series-1"]
    slow = max(("MVTU_0", (6, 4)), ("MVTU_1", (8, 1)), key=lambda kv: m.path_ns(*kv[1]))[0]
    assert ok["slowest_instance"] == slow and ok["lut_levels_max"] == 8 and ok["carry_chain_max"] == 4
    assert ok["fmax_mhz_estimate"] == pytest.approx(min(m.fmax_mhz(6, 4), m.fmax_mhz(8, 1)), abs=0.05)
    assert ok["over_limit"] == [] and "warning" not in ok and not ok["clock_above_estimate"]
    assert "estimate" in ok["basis"] and ok["model"]["name"] == "7series-1"
    assert {r["instance"] for r in ok["instances"]} == {"MVTU_0", "MVTU_1", "x_fifo"}
    fast = timing.timing_block(synth, "xc7z020clg400-1", "zynq7", 400.0)
    assert fast["clock_above_estimate"] and slow in fast["warning"] and "estimate" in fast["warning"]
    deep = timing.timing_block(_synth({"MVTU_2": (9, 0)}), "xc7z020clg400-1", "zynq7", 100.0)
    assert deep["over_limit"] == ["MVTU_2"]
    # a shallower instance whose path starts at a block RAM can be the slowest
    ram = timing.timing_block(_synth({"MVTU_0": (6, 1), "MVTU_1": (5, 1)}, bram=("MVTU_1",)),
                              "xc7z020clg400-1", "zynq7", 100.0)
    assert ram["slowest_instance"] == "MVTU_1"


def test_failed_instances_are_left_out():
    synth = _synth({"MVTU_0": (6, 4)})
    synth["instances"].append({"instance": "MVTU_1", "module": "mvtu", "layer": "MVTU_1", "error": "oom"})
    block = timing.timing_block(synth, "xc7z020clg400-1", "zynq7", 100.0)
    assert [r["instance"] for r in block["instances"]] == ["MVTU_0"]


def test_carry_chain_is_parsed():
    assert tools.parse_ltp(CARRY_SAMPLE) == 3
    assert "ltp -noff t:CARRY4" in tools.SynthJob("a", "fifo", (), ()).script()


def test_report_html_shows_the_timing_block(tmp_path):
    from hw_build.report import write_html

    block = timing.timing_block(_synth({"MVTU_0": (6, 4)}), "xc7z020clg400-1", "zynq7", 400.0)
    write_html({"model": "m", "board": "pynq-z2", "timing": block}, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    assert "Timing (estimate until Vivado runs)" in text and "MVTU_0" in text and "7series-1" in text
    assert "above the estimated Fmax" in text


# --------------------------------------------------------------------------- real Yosys
def _levels(case, tmp_path) -> dict:
    model, node, _ = case
    op = getCustomOp(node)
    files = []
    for name, lines in op.rtl_memories(model).items():
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        files.append(tmp_path / name)
    lib = library_files()
    job = tools.SynthJob(node.name, op.rtl_module, tuple(op.rtl_params(model).items()),
                         tuple(lib[m] for m in module_closure([op.rtl_module])), tuple(files))
    return tools.run_synth_job(job, tmp_path / "run")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["swg_cnv3", "swg_pad_stride2", "mvtu_bin_384", "mvtu_int_27", "pwin_cnv0",
                                  "pwin_cnv1"])
def test_generated_instances_stay_within_8_lut_levels(name, tmp_path):
    """The address and counter logic of sliding windows (14 LUT levels before the reader was
    made all-registers) and the adder trees of wide MVTUs (10 before the registered stages)."""
    rng = np.random.default_rng(0)
    cases = {
        "swg_cnv3": lambda: T.sliding_window_case(rng, "swg_cnv3", 12, 12, 128, 3, 1, simd=16),
        "swg_pad_stride2": lambda: T.sliding_window_case(rng, "swg_pad_stride2", 224, 224, 3, 7, 2, (3, 3, 3, 3),
                                                         simd=3, dtype="UINT8"),
        # window-parallel windows (issue 13): CNV's RGB stem whole-window, its second conv 3 beats per window
        "pwin_cnv0": lambda: T.parallel_window_case(rng, "pwin_cnv0", 32, 32, 3, 3, dtype="UINT8"),
        "pwin_cnv1": lambda: T.parallel_window_case(rng, "pwin_cnv1", 30, 30, 64, 3, simd=192),
        "mvtu_bin_384": lambda: T.mvtu_case(rng, "mvtu_bin_384", 1152, 8, 1, 384, thresholds=1),
        "mvtu_int_27": lambda: T.mvtu_case(rng, "mvtu_int_27", 27, 16, 2, 27, binary=False, in_dtype="UINT8",
                                           w_dtype="INT2", thresholds=1,
                                           weights=2 * rng.integers(0, 2, size=(16, 27)) - 1),
    }
    result = _levels(cases[name](), tmp_path)
    assert 0 < result["lut_levels"] <= timing.LUT_LEVEL_LIMIT, result["lut_levels"]
