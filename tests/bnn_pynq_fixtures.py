"""BNN-PYNQ peers with seeded random weights and BatchNorm statistics, exported to QONNX."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch

INPUT_SHAPES = {"cnv": (1, 3, 32, 32), "tfc": (1, 1, 28, 28), "sfc": (1, 1, 28, 28), "lfc": (1, 1, 28, 28)}


def randomized_bnn_pynq(name: str, seed: int = 0, negative_gamma: bool = True) -> torch.nn.Module:
    """``name`` like 'cnv_1w1a'; BN gammas of both signs (exercises weight-row negation)."""
    from brevitas_examples.bnn_pynq import models

    torch.manual_seed(seed)
    model = getattr(models, name)(pretrained=False)
    gen = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 3)
            m.running_var.copy_(torch.rand(n, generator=gen) * 4 + 0.5)
            gamma = torch.rand(n, generator=gen) + 0.5
            if negative_gamma:
                gamma = gamma * torch.where(torch.rand(n, generator=gen) < 0.25, -1.0, 1.0)
            m.weight.data.copy_(gamma)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.5)
    return model.eval()


def export(model: torch.nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    from brevitas.export import export_qonnx

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.rand(*shape), str(path))
    return path


def random_images(shape: tuple[int, ...], n: int = 8, seed: int = 0) -> np.ndarray:
    """Float pixel/255 images (what the model takes), on the uint8 grid."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n,) + shape[1:]).astype(np.float32) / np.float32(255.0))


def torch_scores(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def is_top1(labels: np.ndarray, scores: np.ndarray, rtol: float = 1e-5) -> np.ndarray:
    best = scores.max(axis=1)
    picked = scores[np.arange(len(labels)), labels]
    return picked >= best - rtol * np.maximum(1.0, np.abs(best))


#: the BNN-PYNQ variants the front-end and RTL tests build (seed = index in this list)
VARIANTS = ["cnv_1w1a", "cnv_1w2a", "cnv_2w2a", "tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "lfc_1w2a"]


def exported_variant(variant: str, folder: Path) -> tuple[torch.nn.Module, Path, np.ndarray, Path]:
    """(model, QONNX file, 8 verify images, their .npy) of a seeded BNN-PYNQ variant in ``folder``."""
    shape = INPUT_SHAPES[variant.split("_")[0]]
    model = randomized_bnn_pynq(variant, seed=VARIANTS.index(variant))
    onnx_path = export(model, shape, folder / f"{variant}.onnx")
    x = random_images(shape, n=8, seed=1)
    np.save(folder / "in.npy", x)
    return model, onnx_path, x, folder / "in.npy"
