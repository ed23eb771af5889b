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

from tests.bnn_pynq_fixtures import VARIANTS, exported_variant, is_top1, torch_scores

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_bnn_pynq_variant_to_verified_rtl(variant, tmp_path):
    model, onnx_path, x, x_file = exported_variant(variant, tmp_path)
    out = tmp_path / "build"
    proc = subprocess.run([sys.executable, str(ROOT / "build.py"), "--model", str(onnx_path), "--board", "pynq-z2",
                           "--until", "verify", "--verify-input", str(x_file), "--output", str(out)],
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
    assert sim["ii_cycles"] == expected, (sim["ii_cycles"], designed, report["dma"])
