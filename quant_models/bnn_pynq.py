"""BNN-PYNQ peers (CNV, TFC, SFC, LFC) from ``brevitas_examples.bnn_pynq``.

These are the reference networks FINN is measured on. Their pretrained weights are
downloaded from GitHub and that fails offline, so we build them with
``pretrained=False`` under a fixed per-name seed and give their BatchNorm layers seeded
random statistics (see :func:`quant_models.seeding.randomize_untrained_`): the result
is deterministic and exercises the compiler, but it classifies nothing. Some MNIST
variants have weights of our own, trained with ``quant_models.train`` and shipped in
``quant_models/weights/`` (``quant_models.zoo.get`` loads them; see its README).

Zoo names follow FINN's spelling (``cnv_w1a1``), Brevitas's functions use ``cnv_1w1a``.
The models take pixel/255 input and map it to [-1, 1] themselves (``2x - 1``).
"""

from __future__ import annotations

import re
from configparser import ConfigParser
from dataclasses import dataclass
from pathlib import Path

import brevitas_examples.bnn_pynq.models as bnn_models
from torch import nn

from quant_models.seeding import randomize_untrained_, seed_for, seeded

TRAINED = False
"""Brevitas's own pretrained BNN-PYNQ weights are never used here (not reachable offline)."""

UNTRAINED_NOTE = (
    "BNN-PYNQ models are built with pretrained=False (the pretrained download is not "
    "reachable offline); weights and BatchNorm statistics are seeded random values."
)

_BREVITAS_NAME = re.compile(r"^(cnv|tfc|sfc|lfc)_(\d)w(\d)a$")
_DATASETS = {"CIFAR10": "cifar10", "MNIST": "mnist"}


@dataclass(frozen=True)
class Variant:
    """One BNN-PYNQ network: zoo name, Brevitas factory name, dataset and input shape."""

    name: str
    brevitas_name: str
    dataset: str
    input_shape: tuple[int, int, int, int]


def _read_cfg(brevitas_name: str) -> ConfigParser:
    cfg = ConfigParser()
    cfg.read(Path(bnn_models.__file__).parent.parent / "cfg" / f"{brevitas_name}.ini")
    return cfg


def _discover() -> dict[str, Variant]:
    """Every variant Brevitas ships except the 4-bit ResNet-18 (not a binarized net)."""
    variants: dict[str, Variant] = {}
    for brevitas_name in bnn_models.__all__:
        match = _BREVITAS_NAME.match(brevitas_name)
        if match is None:
            continue
        arch, weight_bits, act_bits = match.groups()
        cfg = _read_cfg(brevitas_name)
        dataset = _DATASETS[cfg.get("MODEL", "DATASET").upper()]
        channels = cfg.getint("MODEL", "IN_CHANNELS")
        size = 32 if dataset == "cifar10" else 28
        name = f"{arch}_w{weight_bits}a{act_bits}"
        variants[name] = Variant(name, brevitas_name, dataset, (1, channels, size, size))
    return variants


VARIANTS: dict[str, Variant] = _discover()


def construct(name: str) -> nn.Module:
    """Brevitas's model for ``name`` with its default (unseeded) initialisation."""
    return getattr(bnn_models, VARIANTS[name].brevitas_name)(pretrained=False)


def build(name: str, randomize: bool = True) -> nn.Module:
    """Build BNN-PYNQ model ``name`` (e.g. ``cnv_w1a1``) with seeded weights, in eval mode.

    ``randomize=False`` keeps Brevitas's own BatchNorm initialisation (for training).
    """
    with seeded(seed_for(name)) as generator:
        model = construct(name)
        if randomize:
            randomize_untrained_(model, generator)
    return model.eval()
