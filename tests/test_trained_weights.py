"""Trained weights: the shipped BNN-PYNQ MNIST files, their compact format, and
``build.py --weights FILE`` (any path, recorded with its sha256, named errors)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames

from hw_build.export import export_module
from hw_build.streamline import streamline
from hw_build.tidy import tidy
from quant_models import data, train, zoo

ROOT = Path(__file__).resolve().parents[1]

#: test accuracy on the 1,000-image MNIST test split, as stated in README.md and
#: quant_models/weights/README.md (correct images out of 1,000)
SHIPPED_CORRECT = {"tfc_w1a1": 919, "sfc_w1a1": 932, "lfc_w1a1": 950}


def run_build(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Final weights and a checkpoint of tfc_w1a1 after a few training batches."""
    out = tmp_path_factory.mktemp("trained") / "somewhere" / "tfc_short.pt"
    assert train.main(["--model", "tfc_w1a1", "--batch-size", "32", "--limit-train", "128", "--limit-test", "64",
                       "--epochs", "1", "--threads", "1", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("name", sorted(SHIPPED_CORRECT))
def test_shipped_bnn_pynq_weights_score_their_stated_accuracy(name: str) -> None:
    path = zoo.weights_path(name)
    assert path.is_file() and path.stat().st_size < 4_000_000
    model = zoo.get(name, pretrained=True)
    assert model.trained and model.weights_file == path.resolve()
    x, y = data.load("mnist", "test")
    assert len(x) == 1000
    correct = train.count_correct(model, torch.from_numpy(x), torch.from_numpy(y))
    assert correct == SHIPPED_CORRECT[name], f"{name}: {correct}/1000"
    assert zoo.get(name, pretrained=False).trained is False


@pytest.mark.parametrize(
    "name", ["tfc_w1a1", "tfc_w2a2", pytest.param("ftbnn_tiny", marks=pytest.mark.slow)]  # ftbnn: minutes of streamline
)
def test_compact_weights_give_the_identical_integer_graph(name: str, tmp_path: Path) -> None:
    """int8 storage of constant-scale quantized weights changes nothing the hardware sees.

    The QONNX export still differs in the latent float initializers in front of each Quant
    node (that is the point of storing less), so the graphs are compared where the compiler
    has folded the quantizers into integer weights and thresholds: after tidy + streamline
    they are identical: the same nodes (byte for byte, once qonnx's random tensor names are
    made readable), the same integer initializers and the same tensor datatypes."""
    model = zoo.build(name, seed=3)
    with torch.no_grad():  # latent weights off the integer grid, as after training
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    model.eval()
    compact = zoo.compact_state_dict(model)
    assert any(value.dtype == torch.int8 for value in compact.values())
    torch.save(compact, tmp_path / "compact.pt")
    reloaded = zoo.get(name, weights=tmp_path / "compact.pt")
    graphs = []
    for label, module in (("float", model), ("compact", reloaded)):
        exported = export_module(module, module.input_shape, tmp_path / f"{label}.onnx")
        graphs.append(streamline(tidy(exported)).transform(GiveUniqueNodeNames()).transform(GiveReadableTensorNames()))
    first, second = graphs
    assert len(first.graph.node) > 3 and len(first.graph.initializer) > 3
    assert [n.SerializeToString() for n in first.graph.node] == [n.SerializeToString() for n in second.graph.node]
    assert [i.name for i in first.graph.initializer] == [i.name for i in second.graph.initializer]
    for initializer in first.graph.initializer:
        np.testing.assert_array_equal(first.get_initializer(initializer.name), second.get_initializer(initializer.name))
    tensors = first.get_all_tensor_names()
    assert tensors == second.get_all_tensor_names()
    assert [first.get_tensor_datatype(t) for t in tensors] == [second.get_tensor_datatype(t) for t in tensors]


def test_get_with_weights_from_anywhere(short_run: Path) -> None:
    final = zoo.get("tfc_w1a1", weights=short_run)
    from_checkpoint = zoo.get("tfc_w1a1", weights=short_run.with_suffix(".ckpt"))
    assert final.trained and final.weights_file == short_run.resolve()
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(final(x), from_checkpoint(x))  # int8 file and float checkpoint: same network
        assert not torch.equal(final(x), zoo.get("tfc_w1a1")(x))  # not the shipped weights


def test_weights_errors_name_the_file(short_run: Path, tmp_path: Path) -> None:
    with pytest.raises(zoo.WeightsError, match="does not exist"):
        zoo.get("tfc_w1a1", weights=tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(zoo.WeightsError, match="junk.pt' is not a PyTorch weights file"):
        zoo.get("tfc_w1a1", weights=tmp_path / "junk.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(zoo.WeightsError, match="holds no state_dict"):
        zoo.get("tfc_w1a1", weights=tmp_path / "list.pt")
    with pytest.raises(zoo.WeightsError, match="training checkpoint of 'tfc_w1a1', not 'sfc_w1a1'"):
        zoo.get("sfc_w1a1", weights=short_run.with_suffix(".ckpt"))
    with pytest.raises(zoo.WeightsError, match=r"does not hold weights of zoo model 'sfc_w1a1' \(.*wrong shape"):
        zoo.get("sfc_w1a1", weights=short_run)
    with pytest.raises(zoo.WeightsError, match="does not hold weights of zoo model 'ftbnn_tiny'.*missing"):
        zoo.get("ftbnn_tiny", weights=zoo.weights_path("groupnet_tiny"))


def test_build_records_the_weights_file_and_hash(short_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    proc = run_build("--model", "tfc_w1a1", "--board", "pynq-z2", "--weights", str(short_run),
                     "--output", str(out), "--until", "export", "--accuracy-images", "0")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["trained"] is True and "weights" not in report
    assert report["weights_file"] == str(short_run.resolve())
    assert report["weights_sha256"] == hashlib.sha256(short_run.read_bytes()).hexdigest()
    assert "SEEDED INITIAL WEIGHTS" not in proc.stdout + proc.stderr


def test_build_weights_errors(short_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    missing = run_build("--model", "tfc_w1a1", "--board", "pynq-z2", "--weights", str(tmp_path / "nope.pt"),
                        "--output", str(out))
    assert_user_error(missing, "nope.pt' does not exist", "python -m quant_models.train --model tfc_w1a1")
    assert not out.exists()  # refused before anything is written
    other = run_build("--model", "sfc_w1a1", "--board", "pynq-z2", "--weights", str(short_run),
                      "--output", str(out), "--until", "export")
    assert_user_error(other, "--weights:", "tfc_short.pt' does not hold weights of zoo model 'sfc_w1a1'")
    assert not (out / "intermediate" / "00_export.onnx").exists()
    onnx_file = run_build("--model", str(tmp_path / "m.onnx"), "--board", "pynq-z2", "--weights", str(short_run))
    assert_user_error(onnx_file, "--weights applies to zoo models only")
