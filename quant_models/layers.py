"""Building blocks shared by the FTBNN and Group-Net models.

Every module here is written so that its QONNX export only uses ops the compiler
supports (Conv, Gemm, BatchNormalization, Add, Mul, PRelu, Pad, MaxPool,
AveragePool, Reshape, Quant, BipolarQuant) and respects the modelling rules in
DESIGN.md: binary convolutions see a 1-bit input padded with -1, every Conv/Linear input
comes from an activation quantizer, per-channel non-linearities stay monotone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from torch import nn

from quant_models.quantizers import (
    BinaryActQuant,
    BinaryWeightQuant,
    IntActQuant,
    IntWeightPerChannelQuant,
    IntWeightQuant,
    PixelQuant,
)


def int_act(bit_width: int) -> QuantIdentity:
    """A signed few-bit activation quantizer with a learned per-tensor scale."""
    return QuantIdentity(act_quant=IntActQuant, bit_width=bit_width)


class MonotonePReLU(nn.PReLU):
    """Per-channel PReLU whose negative slope is kept >= 0.

    The compiler absorbs the PReLU into integer thresholds, which only works when the
    function is monotone increasing per channel. The slope is clamped at construction
    and by :meth:`clamp_` (called by the trainer after every optimizer step); the
    forward pass itself is a plain PReLU so that it exports to a single ``PRelu`` node.
    """

    def __init__(self, num_channels: int, init: float = 0.25) -> None:
        super().__init__(num_parameters=num_channels, init=max(init, 0.0))

    @torch.no_grad()
    def clamp_(self) -> None:
        self.weight.clamp_(min=0.0)


class SignWithBias(nn.Module):
    """sign(x + b) with a learned per-channel bias b (FTBNN / ReActNet style).

    The bias is a separate parameter added before the 1-bit quantizer, so the export is
    ``Add(const) -> BipolarQuant`` and the compiler folds the bias into the threshold.
    """

    def __init__(self, channels: int, learn_bias: bool = True) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1)) if learn_bias else None
        self.quant = QuantIdentity(act_quant=BinaryActQuant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is not None:
            x = x + self.bias
        return self.quant(x)


class BinaryConv2d(nn.Module):
    """Binary-weight convolution on a bipolar input, padded with -1.

    Zero is not a binary value, so a hardware XNOR-popcount engine cannot pad with it;
    we train with the same -1 padding the hardware uses (an explicit ``Pad`` node) and
    keep the convolution itself unpadded.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.pad = (kernel_size - 1) // 2
        self.conv = QuantConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=0,
            groups=groups,
            bias=False,
            weight_quant=BinaryWeightQuant,
        )
        nn.init.uniform_(self.conv.weight, -0.1, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, value=-1.0)
        return self.conv(x)


class Downsample(nn.Module):
    """Shortcut projection when a block changes resolution or width.

    ``kind="binary"`` (FTBNN's "going beyond"): 2x2 average pool -> sign(x + b) ->
    binary 1x1 conv -> BN, so the shortcut needs no multipliers either.
    ``kind="int"``: 2x2 average pool -> few-bit integer 1x1 conv -> BN (the average pool
    of a quantized activation is a legal integer-conv input for the compiler).
    The pool is skipped when the block keeps its resolution (stride 1).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, kind: str = "binary",
        int_weight_bits: int = 4,
    ) -> None:
        super().__init__()
        if kind not in ("binary", "int"):
            raise ValueError(f"downsample kind must be 'binary' or 'int', got {kind!r}")
        self.kind = kind
        self.pool = nn.AvgPool2d(kernel_size=stride, stride=stride) if stride > 1 else None
        if kind == "binary":
            self.sign = SignWithBias(in_channels)
            self.conv: nn.Module = BinaryConv2d(in_channels, out_channels, 1)
        else:
            self.sign = None
            self.conv = QuantConv2d(
                in_channels, out_channels, 1, bias=False,
                weight_quant=IntWeightPerChannelQuant, weight_bit_width=int_weight_bits,
            )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        if self.sign is not None:
            x = self.sign(x)
        return self.bn(self.conv(x))


def block_shortcut(in_channels: int, out_channels: int, stride: int, kind: str = "binary") -> Downsample | None:
    """The shortcut of a residual block: a :class:`Downsample` of ``kind`` where the block
    changes resolution or width, None (the identity) where it keeps both."""
    if stride != 1 or in_channels != out_channels:
        return Downsample(in_channels, out_channels, stride, kind=kind)
    return None


class Stem(nn.Module):
    """Input quantizer and the first (integer-weight) convolution.

    The model input is pixel/255; ``PixelQuant`` turns it into the raw 8-bit pixel the
    accelerator streams in. The conv pads with an explicit zero ``Pad`` (0 is a legal
    pixel), uses few-bit per-channel weights, then BN -> PReLU -> few-bit quantizer
    (optionally a 2x2 max pool for ImageNet-sized inputs).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        weight_bits: int = 4,
        act_bits: int = 4,
        max_pool: bool = False,
    ) -> None:
        super().__init__()
        self.input_quant = QuantIdentity(act_quant=PixelQuant)
        self.pad = (kernel_size - 1) // 2
        self.conv = QuantConv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=False,
            weight_quant=IntWeightPerChannelQuant, weight_bit_width=weight_bits,
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = MonotonePReLU(out_channels)
        self.out_quant = int_act(act_bits)
        self.pool = nn.MaxPool2d(2) if max_pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x)
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, value=0.0)
        x = self.out_quant(self.act(self.bn(self.conv(x))))
        if self.pool is not None:
            x = self.pool(x)
        return x


class GlobalAvgPool(nn.Module):
    """Global average pooling that exports as ``AveragePool`` (kernel == stride == H, W).

    ``nn.AdaptiveAvgPool2d(1)`` exports as ``ReduceMean``, which the compiler does not take.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=(int(x.shape[-2]), int(x.shape[-1])))


class Head(nn.Module):
    """Global average pool -> flatten -> few-bit linear classifier with a float bias."""

    def __init__(self, in_features: int, num_classes: int, weight_bits: int = 4) -> None:
        super().__init__()
        self.pool = GlobalAvgPool()
        self.fc = QuantLinear(
            in_features, num_classes, bias=True,
            weight_quant=IntWeightQuant, weight_bit_width=weight_bits,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))
