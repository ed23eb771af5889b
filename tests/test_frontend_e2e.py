"""End to end through the front end: BNN-PYNQ models (CNV and FC families, 1- and 2-bit)
with seeded random weights and BN statistics, built to the dataflow graph through
build.py's API; every dataflow label must be a top-1 class of the PyTorch model."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper

from hw_build import build
from tests.bnn_pynq_fixtures import (
    INPUT_SHAPES,
    VARIANTS,
    export,
    exported_variant,
    is_top1,
    randomized_bnn_pynq,
    torch_scores,
)


@pytest.mark.parametrize("variant", VARIANTS)
def test_dataflow_labels_match_pytorch(variant, tmp_path):
    model, onnx_path, x, x_file = exported_variant(variant, tmp_path)
    out = tmp_path / "build"
    report = build(str(onnx_path), "pynq-z2", output=out, until="dataflow", verify_input=x_file)
    labels = np.load(out / "verify" / "dataflow.npy")
    assert labels.dtype == np.int64 and labels.shape == (8,)
    scores = torch_scores(model, x)
    assert is_top1(labels, scores).all(), (labels, scores.argmax(1))
    for stage in ("reference", "streamlined", "dataflow"):
        assert np.load(out / "verify" / f"{stage}.npy").shape == (8,)
    assert report["verify"]["dataflow"]["mismatches"] == 0
    assert (out / "dataflow.onnx").exists()


def test_cnv_dataflow_is_hardware_only_and_fast(tmp_path):
    shape = INPUT_SHAPES["cnv"]
    model = randomized_bnn_pynq("cnv_1w1a", seed=7)
    onnx_path = export(model, shape, tmp_path / "cnv.onnx")
    t0 = time.perf_counter()
    build(str(onnx_path), "pynq-z2", output=tmp_path / "b", until="dataflow")
    seconds = time.perf_counter() - t0
    df = ModelWrapper(str(tmp_path / "b" / "dataflow.onnx"))
    assert {n.domain for n in df.graph.node} == {"hw_build.ops"}
    ops = [n.op_type for n in df.graph.node]
    assert ops.count("MVTU") == 9 and ops.count("SlidingWindow") == 6 and ops.count("Pool") == 2
    # well under 30 s on the 2-core CI machine (typically ~3 s)
    assert seconds < 30
    steps = json.loads((tmp_path / "b" / "steps.json").read_text())
    assert [s["step"] for s in steps] == ["export", "tidy", "streamline", "lower"]
    assert all(s["status"] == "ok" for s in steps)


def test_resume_from_fold_and_folding_file(tmp_path):
    shape = INPUT_SHAPES["tfc"]
    onnx_path = export(randomized_bnn_pynq("tfc_1w1a", seed=3), shape, tmp_path / "tfc.onnx")
    out = tmp_path / "b"
    build(str(onnx_path), "pynq-z2", output=out, until="lower")
    assert not (out / "folding.json").exists()
    report = build(str(onnx_path), "pynq-z2", output=out, start="fold", until="fold")
    cfg = json.loads((out / "folding.json").read_text())
    assert "MVTU_0" in cfg and set(cfg["MVTU_0"]) == {"PE", "SIMD", "ram_style"}
    assert cfg["MVTU_0"]["ram_style"] in ("block", "distributed")
    assert report["estimate"]["cycles_per_frame"] == max(layer["cycles"] for layer in report["layers"])
    # a FINN-style folding file is honoured exactly
    cfg["MVTU_0"] = {"PE": 16, "SIMD": 49}
    (tmp_path / "fold.json").write_text(json.dumps(cfg))
    report = build(str(onnx_path), "pynq-z2", output=out, start="fold", until="fold", folding=tmp_path / "fold.json")
    mvtu0 = [layer for layer in report["layers"] if layer["name"] == "MVTU_0"][0]
    assert (mvtu0["pe"], mvtu0["simd"], mvtu0["cycles"]) == (16, 49, 64)
    # FINN's ram_style places the weights; the written folding.json says where they went
    for style in ("block", "distributed"):
        cfg["MVTU_0"] = {"PE": 16, "SIMD": 49, "ram_style": style}
        (tmp_path / "fold.json").write_text(json.dumps(cfg))
        build(str(onnx_path), "pynq-z2", output=out, start="fold", until="fold", folding=tmp_path / "fold.json")
        assert json.loads((out / "folding.json").read_text())["MVTU_0"]["ram_style"] == style
