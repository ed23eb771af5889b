"""Deterministic weight initialisation for models that have no shipped weights.

The compiler and its tests need models whose integer thresholds are not all the same
value, even without trained weights. Untrained models are therefore built under a fixed
seed (the same name gives the same weights every call, without disturbing the caller's
random state) and their BatchNorm statistics are drawn from seeded random values.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from quant_models.layers import MonotonePReLU, SignWithBias


def seed_for(name: str) -> int:
    """A stable per-name seed (the same on every machine and Python run)."""
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


@contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Run a block under ``torch.manual_seed(seed)`` and restore the caller's RNG afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        yield generator


@torch.no_grad()
def randomize_untrained_(model: nn.Module, generator: torch.Generator) -> None:
    """Give an untrained model seeded, non-trivial per-channel parameters.

    BatchNorm: running mean ~ N(0, 0.1^2), running var ~ U(0.5, 2), gamma ~ U(0.5, 1.5)
    (positive), beta ~ N(0, 0.1^2). Our own models also get PReLU slopes ~ U(0, 0.5)
    (monotone), sign biases ~ N(0, 0.1^2) and Group-Net branch scalars ~ U(0.5, 1.5).
    """

    def uniform(shape: torch.Size, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator)

    def normal(shape: torch.Size, std: float) -> torch.Tensor:
        return std * torch.randn(shape, generator=generator)

    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(normal(module.running_mean.shape, 0.1))
            module.running_var.copy_(uniform(module.running_var.shape, 0.5, 2.0))
            if module.affine:
                module.weight.copy_(uniform(module.weight.shape, 0.5, 1.5))
                module.bias.copy_(normal(module.bias.shape, 0.1))
        elif isinstance(module, MonotonePReLU):
            module.weight.copy_(uniform(module.weight.shape, 0.0, 0.5))
        elif isinstance(module, SignWithBias) and module.bias is not None:
            module.bias.copy_(normal(module.bias.shape, 0.1))
        scales = getattr(module, "scales", None)
        if isinstance(scales, nn.Parameter):
            scales.copy_(uniform(scales.shape, 0.5, 1.5))
