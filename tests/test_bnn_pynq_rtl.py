"""Slow: the BNN-PYNQ CNV and FC families (1- and 2-bit, seeded random weights and BN
statistics) through the command line to verified RTL, the way users run them:

    build.py --model X.onnx --board pynq-z2 --until verify --verify-input in.npy

Every RTL label equals the Python dataflow label and is a top-1 class of the PyTorch model,
with random stalls on the AXI streams, and the measured II is the folding's bottleneck."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.bnn_pynq_fixtures import INPUT_SHAPES, export, is_top1, random_images, randomized_bnn_pynq, torch_scores

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["cnv_1w1a", "cnv_1w2a", "cnv_2w2a", "tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "lfc_1w2a"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_bnn_pynq_variant_to_verified_rtl(variant, tmp_path):
    shape = INPUT_SHAPES[variant.split("_")[0]]
    model = randomized_bnn_pynq(variant, seed=VARIANTS.index(variant))
    onnx_path = export(model, shape, tmp_path / f"{variant}.onnx")
    x = random_images(shape, n=8, seed=1)
    np.save(tmp_path / "in.npy", x)
    out = tmp_path / "build"
    proc = subprocess.run([sys.executable, str(ROOT / "build.py"), "--model", str(onnx_path), "--board", "pynq-z2",
                           "--until", "verify", "--verify-input", str(tmp_path / "in.npy"), "--output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rtl = np.load(out / "verify" / "rtlsim.npy")
    np.testing.assert_array_equal(rtl, np.load(out / "verify" / "dataflow.npy"))
    assert is_top1(rtl, torch_scores(model, x)).all()
    report = json.loads((out / "report.json").read_text())
    sim = report["rtlsim"]
    assert sim["frames"] == 8 and sim["mismatches"] == 0
    # the hardware runs at the speed its folding says (the TFC family is fed by the DMA
    # faster than its bottleneck only when the folding is slower than the stream)
    designed = report["estimate"]["cycles_per_frame"]
    expected = max(designed, report["dma"]["cycles_per_frame"])
    assert abs(sim["ii_cycles"] - expected) <= 0.05 * expected, (sim["ii_cycles"], designed, report["dma"])
