"""Sharded RTL simulation on Ray (build.py --accuracy-shards N).

Fast-ish (a local Ray): a small generated design's frames split over 3 Ray tasks give the
labels of one simulation. Slow: ftbnn_tiny's accuracy run on the 1,000 MNIST test images
over 4 Ray tasks writes the same verify/accuracy_rtlsim.npy and report.json accuracy as the
single-process run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hw_build import distributed
from hw_build.rtl import sim
from tests import rtl_cases as T

ROOT = Path(__file__).resolve().parents[1]


def test_sharded_simulation_gives_the_single_process_labels(tmp_path):
    model = T.chain_graph(np.random.default_rng(7))
    out = tmp_path / "rtl"
    manifest = T.generate(model, out, 64)
    frames = T.random_frames(np.random.default_rng(8), 10, manifest["frame_shape"])
    single, _ = sim.simulate_top(out, frames, stall_in=0.0, stall_out=0.0, seed=3)
    done: list = []
    sharded = distributed.simulate_top_sharded(out, frames, 3, None, progress=lambda d, t: done.append((d, t)),
                                               stall_in=0.0, stall_out=0.0, seed=3)
    assert sharded.dtype == np.int64 and sharded.shape == (10,)
    np.testing.assert_array_equal(sharded, single)
    assert done[-1] == (3, 3)


def test_shards_must_be_positive(tmp_path):
    proc = subprocess.run([sys.executable, "build.py", "--model", "tfc_w1a1", "--board", "pynq-z2", "--output",
                           str(tmp_path / "b"), "--accuracy-shards", "0"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    # an option value that cannot mean anything is a usage error (exit 2), checked before any step runs
    assert proc.returncode == 2 and "--accuracy-shards" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_ftbnn_tiny_accuracy_over_4_ray_tasks_equals_one_process(tmp_path):
    out = tmp_path / "ftbnn_tiny"
    build = [sys.executable, "build.py", "--model", "ftbnn_tiny", "--board", "pynq-z2", "--output", str(out)]
    proc = subprocess.run([*build, "--until", "verify"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    single = np.load(out / "verify" / "accuracy_rtlsim.npy")
    acc1 = json.loads((out / "report.json").read_text())["accuracy"]
    assert acc1["images"] == 1000 and acc1["shards"] == 1
    proc = subprocess.run([*build, "--from", "verify", "--until", "verify", "--accuracy-shards", "4"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "in 4 Ray tasks" in (out / "build.log").read_text()
    sharded = np.load(out / "verify" / "accuracy_rtlsim.npy")
    acc4 = json.loads((out / "report.json").read_text())["accuracy"]
    assert sharded.dtype == single.dtype == np.int64 and sharded.shape == (1000,)
    np.testing.assert_array_equal(sharded, single)
    assert acc4["shards"] == 4
    same = ("dataset", "images", "reference", "rtlsim", "rtlsim_vs_reference_mismatches")
    assert {k: acc4[k] for k in same} == {k: acc1[k] for k in same}
