"""ResNet-18-class models on Alveo boards to verified RTL (slow: minutes to tens of minutes each).

`build.py --model M --board B --until verify`: the RTL simulation's labels equal the Python
dataflow graph's and the reference on every verify frame, and the measured initiation
interval equals the designed cycles per frame.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["ftbnn_resnet18", "groupnet_resnet18"])
@pytest.mark.parametrize("board", ["u250", "u280"])
def test_resnet18_to_verified_rtl_on_alveo(model, board, tmp_path):
    out = tmp_path / f"{model}-{board}"
    proc = subprocess.run([sys.executable, "build.py", "--model", model, "--board", board, "--output", str(out),
                           "--until", "verify", "--verify-images", "3"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    steps = json.loads((out / "steps.json").read_text())
    assert [s["step"] for s in steps][-1] == "verify" and all(s["status"] == "ok" for s in steps)
    verify = report["verify"]
    assert verify["rtlsim"]["frames"] == 3 and verify["rtlsim"]["mismatches"] == 0
    assert verify["rtlsim"]["mismatches_vs_dataflow"] == 0 and verify["dataflow"]["mismatches"] == 0
    assert report["rtlsim"]["mismatches"] == 0
    assert report["rtlsim"]["ii_cycles"] == report["estimate"]["cycles_per_frame"]
