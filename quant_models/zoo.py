"""The model zoo: every network the compiler is expected to build, by name.

``get(name)`` returns an ``nn.Module`` in eval mode carrying

* ``.dataset``: ``"mnist"``, ``"cifar10"`` or ``"imagenet"`` (what its input looks like),
* ``.input_shape``: e.g. ``(1, 1, 28, 28)``, float pixel/255 in NCHW,
* ``.trained``: True only when trained weights were loaded (shipped ones from
  ``quant_models/weights/<name>.pt``, or a file given as ``weights=``). Otherwise the weights are seeded (same name, same weights, every call)
  and the caller should warn loudly that accuracy numbers mean nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from brevitas.nn.quant_layer import QuantWeightBiasInputOutputLayer
from torch import nn

from quant_models import bnn_pynq
from quant_models.ftbnn import ftbnn_resnet18, ftbnn_small, ftbnn_tiny
from quant_models.groupnet import groupnet_resnet18, groupnet_small, groupnet_tiny
from quant_models.resnet import RESNET18, SMALL, TINY
from quant_models.seeding import randomize_untrained_, seed_for, seeded

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class UnknownModelError(ValueError):
    """The requested zoo name does not exist."""


@dataclass(frozen=True)
class ZooEntry:
    """How to build one zoo model and what its input is."""

    name: str
    family: str
    dataset: str
    input_shape: tuple[int, int, int, int]
    factory: Callable[[], nn.Module]


def _entries() -> dict[str, ZooEntry]:
    entries = [
        ZooEntry("ftbnn_tiny", "ftbnn", "mnist", TINY.input_shape, ftbnn_tiny),
        ZooEntry("ftbnn_small", "ftbnn", "cifar10", SMALL.input_shape, ftbnn_small),
        ZooEntry("ftbnn_resnet18", "ftbnn", "imagenet", RESNET18.input_shape, ftbnn_resnet18),
        ZooEntry("groupnet_tiny", "groupnet", "mnist", TINY.input_shape, groupnet_tiny),
        ZooEntry("groupnet_small", "groupnet", "cifar10", SMALL.input_shape, groupnet_small),
        ZooEntry(
            "groupnet_resnet18", "groupnet", "imagenet", RESNET18.input_shape, groupnet_resnet18
        ),
    ]
    for variant in bnn_pynq.VARIANTS.values():
        entries.append(
            ZooEntry(
                variant.name, "bnn_pynq", variant.dataset, variant.input_shape,
                # default argument binds this variant's name, not the loop's last one
                lambda name=variant.name: bnn_pynq.construct(name),
            )
        )
    return {entry.name: entry for entry in entries}


ENTRIES: dict[str, ZooEntry] = _entries()


def names() -> list[str]:
    """All zoo model names, in a stable order (ours first, then the BNN-PYNQ peers)."""
    return list(ENTRIES)


def entry(name: str) -> ZooEntry:
    """The zoo entry for ``name``; :class:`UnknownModelError` listing valid names otherwise."""
    try:
        return ENTRIES[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; valid zoo names are: {', '.join(names())}"
        ) from None


def weights_path(name: str) -> Path:
    """Where shipped weights for ``name`` live (they may not exist)."""
    return WEIGHTS_DIR / f"{name}.pt"


def _tag(model: nn.Module, zoo_entry: ZooEntry, trained: bool) -> nn.Module:
    model.zoo_name = zoo_entry.name
    model.dataset = zoo_entry.dataset
    model.input_shape = zoo_entry.input_shape
    model.trained = trained
    return model


def build(name: str, seed: int | None = None) -> nn.Module:
    """A freshly initialised model for training (train mode, default BN statistics).

    ``seed`` defaults to the per-name seed, so training runs start from the same weights.
    """
    zoo_entry = entry(name)
    with seeded(seed_for(name) if seed is None else seed):
        model = zoo_entry.factory()
    return _tag(model.train(), zoo_entry, trained=False)


def compact_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict with integer-valued quantized weights stored as int8.

    A weight quantizer with a constant scale of 1.0 and at most 8 bits (our binary
    convolutions, every BNN-PYNQ layer) only lets the integers ``quant_weight()`` through,
    and those integers are a fixed point of the quantizer (sign(+-1) = +-1,
    round(k) = k), so storing them in one byte gives the identical quantized model in a
    quarter of the space; ``load_state_dict`` casts them back to float. Layers whose scale
    comes from the weights' own statistics keep their float weights. Checkpoints for
    ``--resume`` keep the full float latent weights.
    """
    # a plain dict: the OrderedDict's per-module ``_metadata`` would double the file size
    state = dict(model.state_dict())
    for module_name, module in model.named_modules():
        if not isinstance(module, QuantWeightBiasInputOutputLayer):
            continue
        with torch.no_grad():
            quant = module.quant_weight()
        if float(quant.bit_width) > 8 or not bool(torch.all(quant.scale == 1.0)):
            continue
        key = f"{module_name}.weight" if module_name else "weight"
        state[key] = quant.value.detach().round().to(torch.int8)
    return state


class WeightsError(ValueError):
    """A weights file that cannot be loaded into the requested zoo model."""


def load_state(path: str | Path, name: str | None = None) -> dict[str, torch.Tensor]:
    """Read weights written by ``quant_models.train`` (a final state_dict or a checkpoint).

    With ``name``, a checkpoint saved for another zoo model is refused. Every problem is a
    :class:`WeightsError` naming the file and what to give instead.
    """
    path = Path(path)
    producer = f"python -m quant_models.train --model {name or 'NAME'}"
    if not path.is_file():
        raise WeightsError(
            f"weights file '{path}' does not exist or is not a file; give the .pt file (or the per-epoch "
            f".ckpt) that `{producer}` writes."
        )
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors for foreign files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightsError(
            f"'{path}' is not a PyTorch weights file this project can read ({reason[:200]}); give the .pt "
            f"file (or the per-epoch .ckpt) that `{producer}` writes."
        ) from None
    if isinstance(saved, dict) and isinstance(saved.get("model"), dict):
        saved_name = saved.get("model_name")
        if name is not None and saved_name is not None and saved_name != name:
            raise WeightsError(
                f"'{path}' is a training checkpoint of {saved_name!r}, not {name!r}; build it with "
                f"--model {saved_name}, or give weights trained for {name} (`{producer}`)."
            )
        saved = saved["model"]
    if not isinstance(saved, dict) or not saved or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in saved.items()
    ):
        raise WeightsError(
            f"'{path}' holds no state_dict (a dict of tensors); give the .pt file (or the per-epoch .ckpt) "
            f"that `{producer}` writes."
        )
    return saved


def _load_weights(model: nn.Module, name: str, path: Path) -> None:
    """Load ``path`` into ``model`` or raise a :class:`WeightsError` saying how they differ."""
    state = load_state(path, name)
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    reshaped = [
        f"{key} {list(state[key].shape)} (the model has {list(expected[key].shape)})"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    if missing or unexpected or reshaped:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", reshaped)):
            if keys:
                more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
                problems.append(f"{len(keys)} {label}: {', '.join(keys[:3])}{more}")
        raise WeightsError(
            f"'{path}' does not hold weights of zoo model {name!r} ({'; '.join(problems)}): it was "
            f"trained for another model or variant. Give weights from `python -m quant_models.train "
            f"--model {name}`, or build the model the file belongs to."
        )
    model.load_state_dict(state, strict=True)


def get(name: str, pretrained: bool = True, weights: str | Path | None = None) -> nn.Module:
    """Zoo model ``name`` in eval mode with ``.dataset``, ``.input_shape``, ``.trained`` and
    ``.weights_file`` (the file the weights came from, or None).

    ``weights``: a file written by ``quant_models.train`` (any path; final state_dict or
    checkpoint) to load instead of the shipped weights; a missing, unreadable or
    mismatched file raises :class:`WeightsError`. Otherwise, with ``pretrained=True`` the
    shipped weights are loaded where they exist (``.trained = True``). Otherwise, or when
    none are shipped, the model gets seeded initial weights and seeded random BatchNorm
    statistics (``.trained = False``), so it is deterministic and non-trivial but does not
    classify anything.
    """
    zoo_entry = entry(name)
    path = Path(weights) if weights is not None else weights_path(name)
    trained = weights is not None or (pretrained and path.is_file())
    with seeded(seed_for(name)) as generator:
        model = zoo_entry.factory()
        if trained:
            _load_weights(model, name, path)
        else:
            randomize_untrained_(model, generator)
    model = _tag(model.eval(), zoo_entry, trained=trained)
    model.weights_file = path.resolve() if trained else None
    return model
