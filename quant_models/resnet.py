"""A binary ResNet skeleton (stem -> stages of residual blocks -> pooled classifier).

FTBNN and Group-Net differ only in the residual block; both reuse this skeleton and the
three size presets below so that ``*_tiny``, ``*_small`` and ``*_resnet18`` mean the same
shapes for every family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from quant_models.layers import Head, MonotonePReLU, Stem


@dataclass(frozen=True)
class ResNetSpec:
    """Shape of a binary ResNet.

    ``stages`` lists ``(channels, blocks, stride of the first block)``; one block holds
    one binary 3x3 convolution with its own shortcut (Bi-Real/FTBNN style), so ResNet-18's
    sixteen 3x3 convolutions are four stages of four blocks.
    """

    in_channels: int
    num_classes: int
    input_size: int
    stem_channels: int
    stages: tuple[tuple[int, int, int], ...]
    stem_kernel: int = 3
    stem_stride: int = 1
    stem_max_pool: bool = False
    act_bits: int = 4
    stem_weight_bits: int = 4
    head_weight_bits: int = 4

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.in_channels, self.input_size, self.input_size)


# MNIST 28x28x1: 16@28 -> 32@14 -> 64@7, five binary convolutions (a PYNQ-Z2 holds it easily).
TINY = ResNetSpec(
    in_channels=1, num_classes=10, input_size=28, stem_channels=16,
    stages=((16, 1, 1), (32, 2, 2), (64, 2, 2)),
)

# CIFAR-10 32x32x3: 32@32 -> 64@16 -> 128@8, six binary convolutions (~0.3 Mbit weights).
SMALL = ResNetSpec(
    in_channels=3, num_classes=10, input_size=32, stem_channels=32,
    stages=((32, 2, 1), (64, 2, 2), (128, 2, 2)),
)

# ImageNet 224x224x3, ResNet-18 layout: 7x7/2 stem, 2x2 max pool, 4 x 4 binary convs.
# The max pool is 2x2/2 instead of ResNet's 3x3/2 padded one (same 56x56 output) because
# the hardware pool takes kernel == stride without padding.
RESNET18 = ResNetSpec(
    in_channels=3, num_classes=1000, input_size=224, stem_channels=64,
    stages=((64, 4, 1), (128, 4, 2), (256, 4, 2), (512, 4, 2)),
    stem_kernel=7, stem_stride=2, stem_max_pool=True, head_weight_bits=8,
)

BlockFactory = Callable[[int, int, int], nn.Module]
"""``make_block(in_channels, out_channels, stride) -> nn.Module``."""


class BinaryResNet(nn.Module):
    """Stem, residual stages built by ``make_block``, global-average-pool classifier."""

    def __init__(self, spec: ResNetSpec, make_block: BlockFactory, width: float = 1.0) -> None:
        super().__init__()
        self.spec = spec

        def widen(channels: int) -> int:
            return max(1, int(round(channels * width)))

        stem_out = widen(spec.stem_channels)
        self.stem = Stem(
            spec.in_channels, stem_out, kernel_size=spec.stem_kernel, stride=spec.stem_stride,
            weight_bits=spec.stem_weight_bits, act_bits=spec.act_bits,
            max_pool=spec.stem_max_pool,
        )
        blocks: list[nn.Module] = []
        channels = stem_out
        for stage_channels, num_blocks, first_stride in spec.stages:
            out_channels = widen(stage_channels)
            for index in range(num_blocks):
                stride = first_stride if index == 0 else 1
                blocks.append(make_block(channels, out_channels, stride))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = Head(channels, spec.num_classes, weight_bits=spec.head_weight_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    @torch.no_grad()
    def constrain_(self) -> None:
        """Re-apply the hardware constraints (monotone PReLU, non-negative scalars).

        The trainer calls this after every optimizer step; the compiler refuses
        per-channel functions that are not monotone increasing.
        """
        for module in self.modules():
            if isinstance(module, MonotonePReLU):
                module.clamp_()
            elif module is not self and hasattr(module, "constrain_"):
                module.constrain_()
