"""Bad input gets one clear paragraph on stderr, exit status 1, no traceback, and no
dataflow.onnx left behind as if the build had succeeded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import torch
from brevitas.nn import QuantIdentity, QuantLinear
from brevitas.quant import SignedBinaryWeightPerTensorConst
from onnx import helper

from tests.bnn_pynq_fixtures import export, randomized_bnn_pynq

ROOT = Path(__file__).resolve().parents[1]


def run_build(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str, out: Path | None = None,
                      status: int = 1) -> None:
    """status 1: a problem with the model or a file; 2: an option value that cannot mean anything."""
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    if out is not None:
        assert not (out / "dataflow.onnx").exists()


class TinyMLP(torch.nn.Module):
    """8x8 single-channel input; optional extras that break the hardware rules."""

    def __init__(self, variant: str):
        super().__init__()
        self.variant = variant
        self.inp = QuantIdentity(bit_width=8, return_quant_tensor=False)
        binary = {"weight_quant": SignedBinaryWeightPerTensorConst, "weight_scaling_const": 1.0}
        self.fc1 = QuantLinear(64, 16, bias=False, **binary)
        self.bn = torch.nn.BatchNorm1d(16)
        self.prelu = torch.nn.PReLU(16, init=-0.5)
        self.float_fc = torch.nn.Linear(64, 64)
        self.q_a = QuantIdentity(bit_width=4, max_val=2.0)
        self.q_b = QuantIdentity(bit_width=4, max_val=5.0)
        self.act = QuantIdentity(bit_width=2)
        self.fc2 = QuantLinear(16, 10, bias=False, **binary)
        self.bad_fc = QuantLinear(64, 16, bias=False, weight_bit_width=1)  # default quantizer: scale inf

    def forward(self, x):
        x = self.inp(x.view(x.shape[0], -1))
        if self.variant == "float_layer":
            x = self.float_fc(x)
        y = self.bn(self.bad_fc(x) if self.variant == "inf_scale" else self.fc1(x))
        if self.variant == "prelu":
            y = self.prelu(y)
        if self.variant == "scales":
            y = self.q_a(y) + self.q_b(y * 0.5)
        return self.fc2(self.act(y))


def tiny_onnx(variant: str, path: Path) -> Path:
    torch.manual_seed(0)
    model = TinyMLP(variant).eval()
    with torch.no_grad():
        model.bn.running_var.fill_(2.0)
    export(model, (1, 1, 8, 8), path)
    if variant == "scales":
        # Brevitas gives both quantizers the same scale here; make the second one differ, as
        # two independently trained quantizers would
        proto = onnx.load(str(path))
        add = [n for n in proto.graph.node if n.op_type == "Add"][0]
        second = [n for n in proto.graph.node if n.output[0] == add.input[1]][0]
        proto.graph.initializer.append(onnx.numpy_helper.from_array(np.array(0.25, dtype=np.float32), "other_scale"))
        second.input[1] = "other_scale"
        onnx.save(proto, str(path))
    return path


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_text("this is not onnx")
    out = tmp_path / "b"
    proc = run_build("--model", str(bad), "--board", "pynq-z2", "--output", str(out))
    assert_user_error(proc, "is not a valid ONNX model", out=out)


def test_unknown_board_and_model(tmp_path):
    assert_user_error(run_build("--model", "tfc_w1a1", "--board", "pynq-z9"), "unknown board 'pynq-z9'", "pynq-z2")
    assert_user_error(run_build("--model", "no_such_net", "--board", "pynq-z2", "--output", str(tmp_path / "b")),
                      "no_such_net")


def test_unmappable_op_names_node(tmp_path):
    path = export(randomized_bnn_pynq("tfc_1w1a"), (1, 1, 28, 28), tmp_path / "tfc.onnx")
    proto = onnx.load(str(path))
    old_out = proto.graph.output[0]
    proto.graph.node.append(helper.make_node("Softmax", [old_out.name], ["probs"], name="final_softmax"))
    proto.graph.output.remove(old_out)
    proto.graph.output.append(helper.make_tensor_value_info("probs", onnx.TensorProto.FLOAT, [1, 10]))
    onnx.save(proto, str(path))
    out = tmp_path / "b"
    proc = run_build("--model", str(path), "--board", "pynq-z2", "--output", str(out))
    assert_user_error(proc, "final_softmax", "Softmax", out=out)


@pytest.mark.parametrize(
    ("variant", "needles"),
    [
        ("float_layer", ["floating-point weights", "QuantLinear"]),
        ("prelu", ["not monotone", "PReLU", "slope >= 0"]),
        ("scales", ["residual add", "different scales", "shared quantizer"]),
        ("inf_scale", ["weight quantizer", "not a finite", "SignedBinaryWeightPerTensorConst"]),
    ],
)
def test_model_rule_violations(variant, needles, tmp_path):
    path = tiny_onnx(variant, tmp_path / f"{variant}.onnx")
    out = tmp_path / "b"
    proc = run_build("--model", str(path), "--board", "pynq-z2", "--output", str(out), "--until", "dataflow")
    assert_user_error(proc, *needles, out=out)
    assert "streamline" in (out / "steps.json").read_text()


def test_the_same_tiny_model_builds_when_it_follows_the_rules(tmp_path):
    path = tiny_onnx("ok", tmp_path / "ok.onnx")
    out = tmp_path / "b"
    proc = run_build("--model", str(path), "--board", "pynq-z2", "--output", str(out), "--until", "dataflow")
    assert proc.returncode == 0, proc.stderr
    assert (out / "dataflow.onnx").exists()


def test_list_commands():
    proc = run_build("--list-boards")
    assert proc.returncode == 0 and "xc7z020clg400-1" in proc.stdout and "u280" in proc.stdout
    proc = run_build("--list-steps")
    assert proc.returncode == 0 and proc.stdout.split()[0] == "export" and "dataflow" in proc.stdout


# --------------------------------------------------------------------------- folding requests
@pytest.fixture(scope="module")
def tfc_lowered(tmp_path_factory) -> tuple[Path, Path]:
    """A TFC build stopped after lowering: the fold step can be rerun on it many times."""
    tmp = tmp_path_factory.mktemp("fold_errors")
    onnx_path = export(randomized_bnn_pynq("tfc_1w1a", seed=5), (1, 1, 28, 28), tmp / "tfc.onnx")
    proc = run_build("--model", str(onnx_path), "--board", "pynq-z2", "--output", str(tmp / "b"), "--until", "lower")
    assert proc.returncode == 0, proc.stderr
    return onnx_path, tmp / "b"


def run_fold(tfc_lowered, *args: str) -> subprocess.CompletedProcess:
    onnx_path, out = tfc_lowered
    return run_build("--model", str(onnx_path), "--board", "pynq-z2", "--output", str(out), "--from", "fold",
                     "--until", "fold", *args)


def test_unreachable_target_fps_names_the_slow_layers(tfc_lowered):
    proc = run_fold(tfc_lowered, "--target-fps", "1e9")
    # 0.1 cycles per frame: every layer is too slow even fully parallel; the message says how
    # fast the design can go and what to change
    assert_user_error(proc, "--target-fps 1e9", "cycles at its fastest", "MVTU_0", "highest reachable rate",
                      "raise --clock-mhz")
    assert_user_error(run_fold(tfc_lowered, "--target-fps", "fast"), "must be a number or 'max'", status=2)
    assert_user_error(run_fold(tfc_lowered, "--target-fps", "-5"), "must be positive", status=2)


def test_bad_folding_file_names_every_problem(tfc_lowered, tmp_path):
    cfg = {"Defaults": {}, "MVTU_0": {"PE": 7, "SIMD": 49}, "MVTU_9": {"PE": 1},
           "MVTU_1": {"PE": 1, "SIMD": 1, "ram_style": "flash"}}
    path = tmp_path / "fold.json"
    path.write_text(__import__("json").dumps(cfg))
    proc = run_fold(tfc_lowered, "--folding", str(path))
    assert_user_error(proc, "MVTU_0.PE=7 does not divide the layer (allowed: [1, 2, 4, 8, 16, 32, 64])",
                      "'MVTU_9' is not a layer of this design", "MVTU_1.ram_style='flash'",
                      "Layers of this design: ")
    path.write_text("{not json")
    assert_user_error(run_fold(tfc_lowered, "--folding", str(path)), "cannot read folding file")


def test_model_too_big_for_the_board_even_fully_folded(tfc_lowered, monkeypatch, tmp_path):
    """A board smaller than the fully folded design: the message gives the usage against the
    budget, the largest layers by the resource that overflows, and what to do."""
    import shutil

    from hw_build import boards, build
    from hw_build.errors import BuildError

    onnx_path, lowered = tfc_lowered
    out = tmp_path / "b"
    shutil.copytree(lowered, out)
    tiny = boards.Board("tiny-test", "xc7z007sclg400-1", "zynq7", 100.0, 800, 1_600, 1, 10, 64)
    monkeypatch.setitem(boards.BOARDS, "tiny-test", tiny)
    with pytest.raises(BuildError) as err:
        build(str(onnx_path), "tiny-test", output=out, start="fold", until="fold")
    text = str(err.value)
    assert "does not fit tiny-test (xc7z007sclg400-1)" in text
    assert "LUT of 800 (budget 85%)" in text and "Largest layers by LUT: MVTU_0" in text
    assert "bigger board" in text
