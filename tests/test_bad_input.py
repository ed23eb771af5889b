"""Bad input never crashes and never passes silently; valid input still builds.

Every case of tests/bad_input_cases.py runs build.py's ``main`` in this process (a subprocess per
case would cost seconds of torch import each) and must end with: exit status 1 (2 for a usage
error), no traceback, a message of at most 15 lines naming the culprit and the fix, no success
files, within 60 s. The controls are the same small model and options done right.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tests.bad_input_cases import BASE_SHAPE, Case, _foreign_folder, all_cases, write_cifar_folder

ROOT = Path(__file__).resolve().parents[1]
CASES = all_cases()
#: what a finished build (or a finished step's results) leaves; none may exist after a refusal
SUCCESS_FILES = ("dataflow.onnx", "folding.json", "deploy.zip", "report.html", "rtl/accel_top.v", "report.json")


def _cli_module():
    spec = importlib.util.spec_from_file_location("build_cli", ROOT / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CLI = _cli_module()


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str
    seconds: float


def _drop_console_handlers() -> None:
    # the flow's console handler writes to the sys.stdout of its first build; each run here has its own
    logger = logging.getLogger("hw_build")
    for handler in [h for h in logger.handlers if getattr(h, "_hw_console", False)]:
        logger.removeHandler(handler)


def run_cli(argv: list[str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    _drop_console_handlers()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = CLI.main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            status = exc.code
    _drop_console_handlers()
    return Result(int(status), out.getvalue(), err.getvalue(), time.perf_counter() - t0)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> Path:
    """The small valid model every graph case mutates (exported once)."""
    from tests.test_cli_errors import tiny_onnx

    return tiny_onnx("ok", tmp_path_factory.mktemp("base") / "tiny.onnx")


def _output_of(argv: list[str]) -> Path | None:
    return Path(argv[argv.index("--output") + 1]) if "--output" in argv and argv[argv.index("--output") + 1] else None


def assert_refused(case: Case, result: Result, out: Path | None, present: dict[str, bytes]) -> None:
    """``present``: the success-named files that were there before (the user's own, in folder cases)."""
    text = result.stdout + result.stderr
    assert result.status == case.status, f"{case.id}: exit {result.status}, expected {case.status}\n{text[-3000:]}"
    assert "Traceback" not in text, f"{case.id}: traceback\n{text[-3000:]}"
    assert "internal error" not in result.stderr, f"{case.id}: a user mistake reported as a compiler bug\n{text}"
    message = result.stderr.strip()
    assert message, f"{case.id}: no message on stderr"
    assert len(message.splitlines()) <= 15, f"{case.id}: message of {len(message.splitlines())} lines\n{message}"
    for needle in case.needles:
        assert needle in message, f"{case.id}: '{needle}' not in the message:\n{message}"
    assert result.seconds < 60, f"{case.id}: took {result.seconds:.0f} s"
    if out is not None and out.is_dir():
        for rel in SUCCESS_FILES:
            if rel == "report.json" and rel not in present:
                continue  # a refused build may write one, saying it failed (checked below)
            if rel in present:
                assert (out / rel).read_bytes() == present[rel], f"{case.id}: the user's {rel} was changed"
            else:
                assert not (out / rel).exists(), f"{case.id}: {rel} left behind as if the build had succeeded"
        report = out / "report.json"
        if report.exists() and "report.json" not in present:
            assert json.loads(report.read_text()).get("status") != "ok", case.id


@pytest.mark.parametrize("case", CASES, ids=[f"{c.family}-{c.id}" for c in CASES])
def test_bad_input_is_refused_clearly(case: Case, base_model: Path, tmp_path: Path) -> None:
    argv = case.make(base_model, tmp_path)
    out = _output_of(argv)
    present = {rel: (out / rel).read_bytes() for rel in SUCCESS_FILES if out is not None and (out / rel).is_file()}
    assert_refused(case, run_cli(argv), out, present)


def test_the_family_is_big_enough() -> None:
    families: dict[str, int] = {}
    for case in CASES:
        families[case.family] = families.get(case.family, 0) + 1
    assert len(CASES) >= 150, families
    assert len({(c.family, c.id) for c in CASES}) == len(CASES)


# ---------------------------------------------------------------- the user's folder survives

def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def test_a_folder_with_the_users_rtl_and_deploy_survives_byte_for_byte(base_model, tmp_path):
    out = _foreign_folder(tmp_path)
    before = _tree_digest(out)
    for extra in ([], ["--force"], ["--force", "--until", "export"]):
        result = run_cli(["--model", str(base_model), "--board", "pynq-z2", "--output", str(out), *extra])
        assert result.status == 1 and "Traceback" not in result.stderr, result.stderr
        assert _tree_digest(out) == before, extra


def test_force_builds_next_to_the_users_files_and_a_rebuild_removes_only_its_own(base_model, tmp_path):
    out = tmp_path / "mine"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "todo.txt").write_text("mine\n")
    (out / "model_copy.onnx").write_bytes(base_model.read_bytes())
    before = _tree_digest(out)
    argv = ["--model", str(base_model), "--board", "pynq-z2", "--output", str(out), "--until", "dataflow"]
    assert run_cli(argv).status == 1                 # not a build folder: refused without --force
    assert run_cli([*argv, "--force"]).status == 0
    assert (out / "dataflow.onnx").exists() and (out / "build_manifest.json").exists()
    # a rebuild that stops earlier removes the later steps' files, and only those
    assert run_cli([*argv[:-2], "--until", "tidy"]).status == 0
    assert not (out / "dataflow.onnx").exists() and not (out / "verify" / "dataflow.npy").exists()
    manifest = json.loads((out / "build_manifest.json").read_text())
    assert "notes/todo.txt" not in json.dumps(manifest)
    after = _tree_digest(out)
    assert {k: v for k, v in after.items() if k in before} == before
    # a file of the user's inside a folder a step writes: that step refuses rather than deleting it
    (out / "verify" / "my_labels.npy").write_bytes(b"mine")
    assert run_cli(argv).status == 0                 # verify/<stage>.npy files are named; others are left alone
    assert (out / "verify" / "my_labels.npy").read_bytes() == b"mine"


# ---------------------------------------------------------------- valid controls

def _control_model(base: Path, tmp: Path, mutate=None) -> Path:
    proto = onnx.load(str(base))
    if mutate is not None:
        mutate(proto)
    path = tmp / "control.onnx"
    onnx.save(proto, str(path))
    return path


def _declared_batch(value) -> callable:
    def mutate(proto: onnx.ModelProto) -> None:
        for vi in (proto.graph.input[0], proto.graph.output[0]):
            dim = vi.type.tensor_type.shape.dim[0]
            dim.Clear()
            if isinstance(value, str):
                dim.dim_param = value
            else:
                dim.dim_value = value
        for node in proto.graph.node:
            if node.op_type == "Reshape":
                init = next(i for i in proto.graph.initializer if i.name == node.input[1])
                shape = numpy_helper.to_array(init).copy()
                shape[0] = value if isinstance(value, int) else 0  # 0: ONNX's "copy this dimension"
                init.CopyFrom(numpy_helper.from_array(shape, init.name))
    return mutate


def _good_folding(tmp: Path) -> Path:
    path = tmp / "fold.json"
    path.write_text(json.dumps({"Defaults": {}, "MVTU_0": {"PE": 2, "SIMD": 8.0, "ram_style": "distributed",
                                                           "mem_mode": "const"}}))
    return path


def _good_inputs(tmp: Path, n: int) -> Path:
    rng = np.random.default_rng(3)
    x = (rng.integers(0, 256, size=(n,) + BASE_SHAPE[1:]) / 255.0).astype(np.float32)
    np.save(tmp / "in.npy", x[0] if n == 1 else x)
    return tmp / "in.npy"


CONTROLS = {
    "until_export": lambda b, t: ([], "export", None),
    "until_tidy": lambda b, t: ([], "tidy", None),
    "until_streamline_alias": lambda b, t: ([], "streamlined", None),
    "until_dataflow": lambda b, t: ([], "dataflow", None),
    "until_fold_max": lambda b, t: (["--target-fps", "max"], "fold", None),
    "until_fold_target": lambda b, t: (["--target-fps", "20000"], "fold", None),
    "until_fold_clock": lambda b, t: (["--clock-mhz", "150"], "fold", None),
    "until_fold_folding_file": lambda b, t: (["--folding", str(_good_folding(t))], "fold", None),
    "verify_input_batch": lambda b, t: (["--verify-input", str(_good_inputs(t, 5))], "dataflow", None),
    "verify_input_single_image": lambda b, t: (["--verify-input", str(_good_inputs(t, 1))], "dataflow", None),
    "verify_images_3": lambda b, t: (["--verify-images", "3"], "dataflow", None),
    "declared_batch_4": lambda b, t: ([], "dataflow", _declared_batch(4)),
    "dynamic_batch": lambda b, t: ([], "dataflow", _declared_batch("N")),
    "ir_version_8": lambda b, t: ([], "dataflow", lambda p: setattr(p, "ir_version", 8)),
    "empty_output_folder": lambda b, t: (["--output-exists"], "tidy", None),
    "force_into_unrelated_folder": lambda b, t: (["--force-unrelated"], "tidy", None),
}


@pytest.mark.parametrize("name", list(CONTROLS))
def test_valid_controls_still_build(name, base_model, tmp_path):
    options, until, mutate = CONTROLS[name](base_model, tmp_path)
    model = _control_model(base_model, tmp_path, mutate)
    out = tmp_path / "out"
    if "--output-exists" in options:
        out.mkdir()
        options = []
    if "--force-unrelated" in options:
        out.mkdir()
        (out / "readme.txt").write_text("the user's\n")
        options = ["--force"]
    result = run_cli(["--model", str(model), "--board", "pynq-z2", "--output", str(out), "--no-synth",
                      "--until", until, *options])
    assert result.status == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "ok"
    steps = json.loads((out / "steps.json").read_text())
    assert steps and all(s["status"] == "ok" for s in steps)
    if until in ("dataflow", "fold"):
        assert (out / "dataflow.onnx").exists()
    if until == "fold":
        assert report["estimate"]["cycles_per_frame"] > 0
    if name == "until_fold_folding_file":
        assert json.loads((out / "folding.json").read_text())["MVTU_0"]["PE"] == 2
    if mutate is not None and name != "ir_version_8":
        batch = report["batch"]
        assert batch["built"] == 1 and batch["declared"] == (4 if name == "declared_batch_4" else "dynamic")
        assert "built for batch 1" in batch["note"] and "built for batch 1" in (out / "build.log").read_text()
    if name == "force_into_unrelated_folder":
        assert (out / "readme.txt").read_text() == "the user's\n"


# ---------------------------------------------------------------- datasets

def test_cifar10_pickles_cannot_run_code(tmp_path):
    from quant_models import data

    marker = tmp_path / "pwned"
    folder = write_cifar_folder(tmp_path / "evil", evil=marker)
    with pytest.raises(data.UnsafeDatasetError, match="not loaded, as a crafted pickle can run code"):
        data.load("cifar10", "test", data_dir=folder)
    assert not marker.exists()
    for broken, needle in (("shape", "data shape"), ("list", "b'data'"), ("labels", "labels outside 0..9")):
        folder = write_cifar_folder(tmp_path / broken, broken=broken)
        with pytest.raises(data.UnsafeDatasetError, match=needle):
            data.load("cifar10", "train", data_dir=folder)
    x, y = data.load("cifar10", "test", data_dir=write_cifar_folder(tmp_path / "good"))
    assert x.shape == (2, 3, 32, 32) and list(y) == [1, 2]


@pytest.mark.slow
def test_a_crafted_cifar10_folder_fails_the_build_by_name(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("CIFAR10_DIR", str(write_cifar_folder(tmp_path / "evil", evil=marker)))
    result = run_cli(["--model", "cnv_w1a1", "--board", "pynq-z2", "--output", str(tmp_path / "b"),
                      "--until", "export"])
    assert result.status == 1 and "Traceback" not in result.stderr
    assert "test_batch" in result.stderr and "crafted pickle" in result.stderr
    assert not marker.exists()


# ---------------------------------------------------------------- residual nets: the root cause first

@pytest.fixture(scope="module")
def residual_model(tmp_path_factory) -> Path:
    """A one-block residual net written to the rules (binary 3x3 conv padded with -1, shared quantizer)."""
    import torch

    from tests.bnn_pynq_fixtures import export
    from tests.residual_models import ResidualNet, randomize

    torch.manual_seed(0)
    model = randomize(ResidualNet(1, [4], branches=1, prelu_after_add=False, act_bits=4), 0, BASE_SHAPE)
    return export(model, BASE_SHAPE, tmp_path_factory.mktemp("residual") / "res.onnx")


def _pad_with_zero(proto: onnx.ModelProto) -> None:
    pad = next(n for n in proto.graph.node if n.op_type == "Pad")
    value = next(i for i in proto.graph.initializer if i.name == pad.input[2])
    value.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(value)), value.name))


def _pad_inside_conv(proto: onnx.ModelProto) -> None:
    """What F.pad(value=0) or Conv2d(padding=1) exports: the conv pads its binary input with zeros."""
    pad = next(n for n in proto.graph.node if n.op_type == "Pad")
    conv = next(n for n in proto.graph.node if n.op_type == "Conv" and n.input[0] == pad.output[0])
    conv.input[0] = pad.input[0]
    for attr in conv.attribute:
        if attr.name == "pads":
            attr.ints[:] = [1, 1, 1, 1]
    proto.graph.node.remove(pad)


@pytest.mark.parametrize(("mutate", "needles"), [
    (_pad_with_zero, ("pad 'node_pad'", "binary activation", "with 0", "value=-1.0")),
    (_pad_inside_conv, ("conv 'node_Conv_84'", "with zeros", "value=-1.0")),
], ids=["pad_value_zero", "conv_zero_pads"])
def test_zero_padding_before_a_residual_add_is_named_as_the_padding(mutate, needles, residual_model, tmp_path):
    case = Case(mutate.__name__, "rules", lambda b, t: [], needles)
    argv = ["--model", str(_control_model(residual_model, tmp_path, mutate)), "--board", "pynq-z2", "--output",
            str(tmp_path / "out"), "--until", "dataflow"]
    result = run_cli(argv)
    assert_refused(case, result, tmp_path / "out", {})
    assert "residual add" not in result.stderr   # the padding, not the add it feeds, is the root cause


def test_the_residual_net_itself_builds(residual_model, tmp_path):
    result = run_cli(["--model", str(residual_model), "--board", "pynq-z2", "--output", str(tmp_path / "out"),
                      "--until", "dataflow"])
    assert result.status == 0, result.stderr
    assert (tmp_path / "out" / "dataflow.onnx").exists()
