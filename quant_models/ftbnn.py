"""FTBNN: binary residual networks with explicit non-linearity (arXiv 2010.09294).

One block (Bi-Real/FTBNN style, one binary conv per shortcut)::

    x ──► sign(x + b) ──► pad(-1) ──► binary 3x3 conv ──► BN ──► q ─┐
    │                                                              (+) ──► FPReLU ──► q_out
    └──► [avgpool ──► sign(x + b') ──► binary 1x1 conv ──► BN] ──► q ─┘

``q`` is ONE shared quantizer module applied to both addends, so the hardware adds two
integers of the same scale. FPReLU is a per-channel PReLU with its negative slope kept
>= 0, so the compiler can absorb it into thresholds. The options cover the paper's
"going beyond" variants: binary or integer downsampling, G groups with a width
multiplier, and the non-linearity before or after the addition.
"""

from __future__ import annotations

import torch
from torch import nn

from quant_models.layers import BinaryConv2d, MonotonePReLU, SignWithBias, block_shortcut, int_act
from quant_models.resnet import RESNET18, SMALL, TINY, BinaryResNet, ResNetSpec


class FTBNNBlock(nn.Module):
    """sign(x + b) -> binary 3x3 conv -> BN -> shared-quantized add -> FPReLU -> quantizer."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        groups: int = 1,
        downsample: str = "binary",
        nonlinearity: str = "after",
        act_bits: int = 4,
    ) -> None:
        super().__init__()
        if nonlinearity not in ("before", "after"):
            raise ValueError(f"nonlinearity must be 'before' or 'after', got {nonlinearity!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"channels ({in_channels} -> {out_channels}) must be divisible by groups={groups}"
            )
        self.nonlinearity = nonlinearity
        self.sign = SignWithBias(in_channels)
        self.conv = BinaryConv2d(in_channels, out_channels, 3, stride=stride, groups=groups)
        self.bn = nn.BatchNorm2d(out_channels)
        self.shortcut = block_shortcut(in_channels, out_channels, stride, kind=downsample)
        self.add_quant = int_act(act_bits)
        self.act = MonotonePReLU(out_channels)
        self.out_quant = int_act(act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(self.sign(x)))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        if self.nonlinearity == "before":
            y = self.act(y)
        out = self.add_quant(y) + self.add_quant(shortcut)
        if self.nonlinearity == "after":
            out = self.act(out)
        return self.out_quant(out)


class FTBNN(BinaryResNet):
    """A binary ResNet made of :class:`FTBNNBlock` s.

    ``groups`` > 1 with ``width`` > 1 is the paper's group execution (wider layers at about
    the same cost): every binary 3x3 conv becomes ``groups`` independent convs on
    channels/groups inputs each (the 1x1 downsampling shortcut stays dense). The compiler
    maps each group to its own sliding-window + XNOR-popcount branch between a channel
    split and a channel concatenation (at most 16 groups); the zoo entries use groups=1.
    """

    def __init__(
        self,
        spec: ResNetSpec,
        groups: int = 1,
        width: float = 1.0,
        downsample: str = "binary",
        nonlinearity: str = "after",
    ) -> None:
        def make_block(in_channels: int, out_channels: int, stride: int) -> nn.Module:
            return FTBNNBlock(
                in_channels, out_channels, stride, groups=groups, downsample=downsample,
                nonlinearity=nonlinearity, act_bits=spec.act_bits,
            )

        super().__init__(spec, make_block, width=width)
        self.groups = groups
        self.downsample_kind = downsample
        self.nonlinearity = nonlinearity


def ftbnn_tiny() -> FTBNN:
    """MNIST 28x28x1: 16@28 -> 32@14 -> 64@7."""
    return FTBNN(TINY)


def ftbnn_small() -> FTBNN:
    """CIFAR-10 32x32x3, sized for a PYNQ-Z2."""
    return FTBNN(SMALL)


def ftbnn_resnet18() -> FTBNN:
    """ImageNet 224x224x3 in the ResNet-18 layout (for Alveo boards)."""
    return FTBNN(RESNET18)
