"""Group-Net: structured binary networks with K binary branches (arXiv 1909.09934).

Each residual block is rebuilt from K binary bases that share one sign(x)::

              ┌─► pad(-1) ─► binary 3x3 conv_1 ─► BN_1 ─► (x lambda_1) ─► q_b ─┐
    x ─► sign ┼─► ...                                                         (sum) [x 1/K] ─► q_r ─┐
              └─► pad(-1) ─► binary 3x3 conv_K ─► BN_K ─► (x lambda_K) ─► q_b ─┘                  (+) ─► PReLU ─► q_out
    x ─► [avgpool ─► sign(x + b) ─► binary 1x1 conv ─► BN] ──────────────────────────────► q_r ─┘

``q_b`` (branch) and ``q_r`` (residual) are each ONE quantizer instance shared by all of
their inputs, so every addition in hardware adds integers of the same scale. With
``aggregation="scalars"`` the learned lambda_k multiply each branch before ``q_b`` (they
fold into that quantizer's thresholds); with ``aggregation="mean"`` the branches are
summed as integers and a constant 1/K follows the sum (it folds into ``q_r``).
"""

from __future__ import annotations

import torch
from torch import nn

from quant_models.layers import BinaryConv2d, MonotonePReLU, SignWithBias, block_shortcut, int_act
from quant_models.resnet import RESNET18, SMALL, TINY, BinaryResNet, ResNetSpec

AGGREGATIONS = ("scalars", "mean")


class GroupNetBlock(nn.Module):
    """K binary branches on a shared sign(x), aggregated, plus a (binary) shortcut."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        branches: int = 4,
        aggregation: str = "scalars",
        act_bits: int = 4,
    ) -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if branches < 1:
            raise ValueError(f"branches must be >= 1, got {branches}")
        self.aggregation = aggregation
        self.num_branches = branches
        # Group-Net binarizes the block input once and feeds the same bits to every base.
        self.sign = SignWithBias(in_channels, learn_bias=False)
        self.convs = nn.ModuleList(
            BinaryConv2d(in_channels, out_channels, 3, stride=stride) for _ in range(branches)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(out_channels) for _ in range(branches))
        if aggregation == "scalars":
            self.scales = nn.Parameter(torch.ones(branches))
        else:
            self.register_parameter("scales", None)
        self.branch_quant = int_act(act_bits)
        self.shortcut = block_shortcut(in_channels, out_channels, stride, kind="binary")
        self.residual_quant = int_act(act_bits)
        self.act = MonotonePReLU(out_channels)
        self.out_quant = int_act(act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bits = self.sign(x)
        total: torch.Tensor | None = None
        for index, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            branch = bn(conv(bits))
            if self.scales is not None:
                branch = branch * self.scales[index]
            branch = self.branch_quant(branch)
            total = branch if total is None else total + branch
        assert total is not None
        if self.scales is None:
            total = total * (1.0 / self.num_branches)
        shortcut = x if self.shortcut is None else self.shortcut(x)
        out = self.residual_quant(total) + self.residual_quant(shortcut)
        return self.out_quant(self.act(out))

    @torch.no_grad()
    def constrain_(self) -> None:
        """Keep the branch scalars non-negative (a dead branch is fine, a flipped one is not)."""
        if self.scales is not None:
            self.scales.clamp_(min=0.0)


class GroupNet(BinaryResNet):
    """A binary ResNet made of :class:`GroupNetBlock` s with K branches each."""

    def __init__(self, spec: ResNetSpec, branches: int = 4, aggregation: str = "scalars") -> None:
        def make_block(in_channels: int, out_channels: int, stride: int) -> nn.Module:
            return GroupNetBlock(
                in_channels, out_channels, stride, branches=branches,
                aggregation=aggregation, act_bits=spec.act_bits,
            )

        super().__init__(spec, make_block)
        self.branches = branches
        self.aggregation = aggregation


def groupnet_tiny() -> GroupNet:
    """MNIST 28x28x1 with K=2 bases (keeps CPU training and the PYNQ-Z2 footprint small)."""
    return GroupNet(TINY, branches=2)


def groupnet_small() -> GroupNet:
    """CIFAR-10 32x32x3 with K=4 bases."""
    return GroupNet(SMALL, branches=4)


def groupnet_resnet18() -> GroupNet:
    """ImageNet 224x224x3, ResNet-18 layout, K=4 bases."""
    return GroupNet(RESNET18, branches=4)
