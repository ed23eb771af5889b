"""Resource estimates and per-instance synthesis.

Fast: the cost model reproduces the stored Yosys calibration data within the tolerance it
states; the estimator sees the same FIFO / width-converter / layer instances the code
generator writes; synthesis results are summed, cached, attributed to layers and failures
named (with a stand-in for Yosys); ``ltp`` output parsing. Slow: a stitched design
synthesized instance by instance against the estimate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hw_build.errors import BuildError
from hw_build.estimate import cost_model, estimate, layer_resources
from hw_build.estimate import synth as hsynth
from hw_build.rtl import codegen, tools
from tests import rtl_cases as T

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "cost_model" / "synth_data.json"


# --------------------------------------------------------------------------- calibration data
def _calibration_rows() -> list[dict]:
    assert DATA.exists(), f"{DATA} is missing: run benchmarks/calibrate_cost_model.py sweep"
    return json.loads(DATA.read_text())


def test_calibration_data_covers_every_module():
    modules = {r["module"] for r in _calibration_rows()}
    assert set(cost_model.records()) <= modules, set(cost_model.records()) - modules


@pytest.mark.parametrize("module", sorted(cost_model.records()))
def test_estimate_reproduces_calibration_data(module):
    """Per module: the summed LUT estimate is within TOLERANCE["module_total"] of Yosys and
    the per-instance errors within TOLERANCE["instance_mean"] on average; BRAM36 is exact
    for most instances (it is a rule, not a fit)."""
    rows = [r for r in _calibration_rows() if r["module"] == module]
    est = [cost_model.module_resources(module, r["params"]) for r in rows]
    lut_est, lut_ref = sum(e["lut"] for e in est), sum(r["lut"] for r in rows)
    tol = cost_model.TOLERANCE
    assert abs(lut_est - lut_ref) <= tol["module_total"] * max(lut_ref, 100), (module, lut_est, lut_ref)
    big = [(e["lut"], r["lut"]) for e, r in zip(est, rows) if r["lut"] >= 100]
    if big:
        mean_err = np.mean([abs(a - b) / b for a, b in big])
        assert mean_err <= tol["instance_mean"], (module, mean_err)
    bram_est, bram_ref = sum(e["bram36"] for e in est), sum(r["bram36"] for r in rows)
    assert abs(bram_est - bram_ref) <= tol["module_total"] * max(bram_ref, 2), (module, bram_est, bram_ref)


def test_one_memory_rule_places_and_prices():
    """The ROM placement (rom_style) and the cost model's block RAM count are the same rule: the
    shapes where the placement once counted whole RAMB36 of one aspect ratio (32768 x 128: 120,
    Yosys 114; 9 x 16: 1, Yosys one RAMB18) now price as Yosys maps them."""
    from hw_build.rtl import memory

    assert cost_model.bram36 is memory.bram36
    assert memory.bram36(32768, 128) == 114 and memory.bram36(9, 16) == 0.5
    assert memory.bram36(512, 80) == 1.5 and memory.bram36(4096, 10) == 1.5 and memory.bram36(2048, 40) == 2.5
    # placement weighs the same prices: 256 x 300 is 1,200 LUTs or 4.5 BRAM36 (1,152 LUT-equivalents)
    assert memory.rom_logic_luts(256, 300) == 1200 and memory.bram36(256, 300) == 4.5
    assert memory.rom_style(256, 300) == "block" and memory.rom_style(64, 8) == "distributed"
    assert memory.rom_style(256, 300, "distributed") == "distributed"


def test_block_ram_tiling():
    assert cost_model.bram36(1024, 24) == 1.0        # 1K x 36 (or two 1K x 18 halves)
    assert cost_model.bram36(512, 36) == 0.5         # one RAMB18 in 512 x 36
    assert cost_model.bram36(1152, 128) == 6.0       # 512 x 72: three deep, two wide
    assert cost_model.bram36(0, 8) == 0.0


# --------------------------------------------------------------------------- estimator vs codegen
@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    model = T.plumbed(T.chain_graph(np.random.default_rng(3)), 64)
    out = tmp_path_factory.mktemp("chain_rtl")
    manifest = codegen.generate(model, out)
    return model, out, manifest


def test_estimate_totals_include_edges(chain):
    model, _, _ = chain
    est = estimate(model, 100.0)
    layer_lut = sum(layer["lut"] for layer in est["layers"])
    edge_lut = sum(e["lut"] for e in est["edges"])
    assert edge_lut > 0 and est["estimate"]["lut"] == pytest.approx(layer_lut + edge_lut, abs=1)
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(model.get_node_from_name(est["layers"][2]["name"]))
    assert layer_resources(op, model)["lut"] == est["layers"][2]["lut"]
    # a layer graph is priced with the plumbing the fold step will insert
    assert estimate(T.chain_graph(np.random.default_rng(3)), 100.0)["estimate"] == est["estimate"]


# --------------------------------------------------------------------------- synthesis plumbing
LTP_SAMPLE = """
8. Executing LTP pass (find longest path).

Longest topological path in mvtu (length=7):
    0: \\waddr [0]
    1: $abc$1.A [0] (via $abc$2)
"""


def test_lut_levels_are_parsed():
    assert tools.parse_ltp(LTP_SAMPLE) == 7
    assert tools.parse_ltp("Longest topological path in fifo (length=-1):\n") == 0   # no LUTs selected
    assert tools.parse_ltp("") == 0


def test_lutram_cells_count_their_sites():
    summary = tools.summarize_cells({"LUT6": 10, "RAM64M": 2, "RAM128X1D": 1, "SRLC32E": 3, "FDRE": 5,
                                     "RAMB18E1": 1, "RAMB36E1": 2, "DSP48E1": 1, "CARRY4": 4})
    assert summary == {"lut": 10 + 8 + 4 + 3, "ff": 5, "bram36": 2.5, "dsp": 1, "carry": 4}


def test_parse_instances_of_a_generated_top(chain):
    _, out, manifest = chain
    insts = hsynth.design_instances(out)
    kinds = {i.kind for i in insts}
    assert kinds == {"layer", "fifo", "converter", "other"}
    layers = {i.layer: i for i in insts if i.kind == "layer"}
    assert set(layers) == {layer["name"] for layer in manifest["layers"]}
    mvtu = layers["conv_mvtu"]
    assert mvtu.module == "mvtu" and mvtu.params["PE"] == 4 and mvtu.params["WEIGHTS_FILE"].endswith(".mem")
    assert set(mvtu.data_files) == {mvtu.params["WEIGHTS_FILE"], mvtu.params["THRESH_FILE"]}


def _fake_yosys(calls: list, fail: str | None = None):
    """A stand-in for tools.run_synth_job: cells from the parameters, so sums are checkable."""
    def run(job, work_dir, timeout=0):
        calls.append(job.label)
        if job.label == fail:
            raise tools.SynthFailure(job.label, "Yosys exited with status 1", Path(work_dir) / "yosys.log")
        n = 1 + len(job.params)
        cells = {"LUT6": 10 * n, "FDRE": n, "RAMB18E1": 1 if job.module == "mvtu" else 0}
        return {**tools.summarize_cells(cells), "lut_levels": n, "cells": cells, "seconds": 0.0}
    return run


def _use_fake_yosys(monkeypatch, fail: str | None = None) -> list:
    """Replace Yosys by :func:`_fake_yosys`; returns the list of job labels it runs."""
    calls: list = []
    monkeypatch.setattr(tools, "run_synth_job", _fake_yosys(calls, fail))
    monkeypatch.setattr(tools, "yosys_version", lambda: "fake 1.0")
    return calls


def test_synth_design_sums_caches_and_attributes(chain, tmp_path, monkeypatch):
    model, out, manifest = chain
    calls = _use_fake_yosys(monkeypatch)
    cache = tmp_path / "cache"
    result = hsynth.synth_design(out, tmp_path / "work", parallel=2, cache=cache, progress=False)
    insts = result["instances"]
    assert not result["failures"] and result["cached"] == 0
    assert result["lut"] == sum(i["lut"] for i in insts) and result["ff"] == sum(i["ff"] for i in insts)
    assert result["bram36"] == 0.5 * sum(1 for i in insts if i["module"] == "mvtu")
    assert result["lut_levels"] == max(i["lut_levels"] for i in insts)
    # identical instances (same module, parameters, memory contents) are synthesized once
    keys = {(i["module"], json.dumps(i["params"], sort_keys=True)) for i in insts}
    assert len(calls) == result["yosys_runs"] <= len(keys)
    # a rebuild is served from the cache
    calls.clear()
    again = hsynth.synth_design(out, tmp_path / "work", cache=cache, progress=False)
    assert calls == [] and again["cached"] == len(insts) and again["lut"] == result["lut"]
    # per-layer numbers go into the report's layer entries
    report = {"synth": again, **{k: v for k, v in estimate(model, 100.0).items() if k != "estimate"}}
    hsynth.attach_synth(report, out)
    conv = next(layer for layer in report["layers"] if layer["name"] == "conv_mvtu")
    inst = next(i for i in insts if i["layer"] == "conv_mvtu")
    assert conv["synth_lut"] == inst["lut"] and conv["synth_bram36"] == 0.5
    assert any("synth_lut" in e for e in report["edges"])


def test_a_changed_memory_file_is_synthesized_again(chain, tmp_path, monkeypatch):
    _, out, manifest = chain
    calls = _use_fake_yosys(monkeypatch)
    work = tmp_path / "rtl"
    import shutil

    shutil.copytree(out, work)
    hsynth.synth_design(work, tmp_path / "w", cache=tmp_path / "c", progress=False)
    mvtu = next(layer for layer in manifest["layers"] if layer["name"] == "conv_mvtu")
    wfile = work / mvtu["params"]["WEIGHTS_FILE"]
    lines = wfile.read_text().splitlines()
    lines[0] = "0" * len(lines[0]) if set(lines[0]) != {"0"} else "1" * len(lines[0])
    wfile.write_text("\n".join(lines) + "\n")
    calls.clear()
    hsynth.synth_design(work, tmp_path / "w", cache=tmp_path / "c", progress=False)
    assert calls == [mvtu["instance"]]


def test_a_failing_instance_is_named(chain, tmp_path, monkeypatch):
    _, out, _ = chain
    _use_fake_yosys(monkeypatch, fail="fc")
    result = hsynth.synth_design(out, tmp_path / "w", cache=tmp_path / "c", progress=False)
    assert set(result["failures"]) == {"fc"} and "status 1" in result["failures"]["fc"]
    row = next(i for i in result["instances"] if i["instance"] == "fc")
    assert row["error"] and "lut" not in row


def test_stale_synthesis_is_not_attached(chain, tmp_path):
    _, out, _ = chain
    report = {"synth": {"instances": [], "rtl_manifest_sha256": "0" * 64}, "layers": [{"name": "fc"}]}
    hsynth.attach_synth(report, out)
    assert report["synth_stale"] is True and "synth_lut" not in report["layers"][0]


def test_missing_layer_instance_is_an_error(tmp_path, chain):
    _, out, manifest = chain
    import shutil

    shutil.copytree(out, tmp_path / "rtl")
    top = tmp_path / "rtl" / "accel_top.v"
    top.write_text(top.read_text().replace(") fc (", ") fc_renamed ("))
    with pytest.raises(BuildError, match="fc"):
        hsynth.design_instances(tmp_path / "rtl")


# --------------------------------------------------------------------------- real Yosys
@pytest.mark.slow
def test_stitched_design_estimate_within_15_percent_of_yosys(tmp_path):
    """A small stitched design (the chain graph at a folding with real compute), each
    instance synthesized by Yosys: the estimate's LUT total is within 15 % of the sum."""
    model = T.plumbed(T.chain_graph(np.random.default_rng(5)), 64)
    out = tmp_path / "rtl"
    codegen.generate(model, out)
    result = hsynth.synth_design(out, tmp_path / "work", cache=tmp_path / "cache", progress=False)
    assert not result["failures"]
    est = estimate(model, 100.0)["estimate"]
    assert result["lut_levels"] > 0
    assert abs(est["lut"] - result["lut"]) <= 0.15 * result["lut"], (est["lut"], result["lut"])
    assert abs(est["bram36"] - result["bram36"]) <= max(0.15 * result["bram36"], 0.5)


def test_join_fifo_estimate_is_close_to_the_simulated_depth(tmp_path):
    """Before simulation sizes them, the folder prices a residual join's shortcut FIFO from
    the paths' lookahead: near the depth simulation proves (not a whole frame), never below
    what a plain edge gets, and the long path's input stays small."""
    from hw_build.fold.plumbing import estimated_join_fifo_depths, fifo_place, fifos
    from hw_build.rtl import sim

    model = T.residual_graph(np.random.default_rng(1))
    g = codegen.analyse(model)
    est = estimated_join_fifo_depths(model, g, 32)
    frames = T.random_frames(np.random.default_rng(2), 4, g.frame_shape)
    design = T.plumbed(model, 32)
    # the plumbing starts the join FIFOs at the estimate
    assert {t: fifos(design)[f"{t}_fifo"].depth() for t in est} == est
    proven = sim.size_fifos(design, tmp_path, frames)
    frame = fifo_place(next(e for e in g.edges if e.tensor == "shortcut"), 32).beats + 2
    assert set(est) == {"conv", "shortcut"}
    assert est["conv"] <= 4 and proven["shortcut_fifo"] <= est["shortcut"] < frame
    assert est["shortcut"] <= 1.5 * proven["shortcut_fifo"] + 4, (est, proven)
