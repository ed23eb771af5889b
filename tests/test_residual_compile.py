"""Residual networks the tests build themselves compile to a verified dataflow graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper

from hw_build import build
from tests.bnn_pynq_fixtures import export, is_top1, torch_scores
from tests.residual_models import ResidualNet, randomize

CONFIGS = {
    # name: (input shape, widths, branches, prelu after add, activation bits)
    "ftbnn_like": ((1, 1, 16, 16), [8, 16], 1, True, 4),
    "prelu_before_add": ((1, 3, 16, 16), [8, 8], 1, False, 3),
    "groupnet_like_k3": ((1, 1, 16, 16), [8, 16], 3, True, 4),
}


def varied_images(shape, n: int, seed: int) -> np.ndarray:
    """Noise images of different brightness and contrast (pure noise all looks alike after
    global pooling), on the uint8 grid."""
    rng = np.random.default_rng(seed)
    noise = rng.random((n,) + shape[1:])
    base = rng.random((n, 1, 1, 1))
    contrast = rng.random((n, 1, 1, 1))
    x = np.clip(base + contrast * (noise - 0.5), 0, 1)
    return (np.rint(x * 255) / 255).astype(np.float32)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_residual_model_compiles_bit_exact(name, tmp_path):
    shape, widths, branches, after, bits = CONFIGS[name]
    torch.manual_seed(len(name))
    model = randomize(ResidualNet(shape[1], widths, branches, after, bits), seed=len(name), input_shape=shape)
    path = export(model, shape, tmp_path / f"{name}.onnx")
    x = varied_images(shape, n=16, seed=2)
    np.save(tmp_path / "in.npy", x)
    out = tmp_path / "b"
    build(str(path), "pynq-z2", output=out, until="dataflow", verify_input=tmp_path / "in.npy")
    labels = np.load(out / "verify" / "dataflow.npy")
    scores = torch_scores(model, x)
    assert is_top1(labels, scores).all()
    assert len(set(scores.argmax(1).tolist())) > 1  # a model that ignores its input proves nothing
    ops = [n.op_type for n in ModelWrapper(str(out / "dataflow.onnx")).graph.node]
    assert "AddStreams" in ops and "DuplicateStreams" in ops
    assert "MVTU" in ops and "SlidingWindow" in ops
