"""Brevitas quantizer definitions shared by the FTBNN and Group-Net models.

Each quantizer is chosen so that the QONNX export is something the compiler can turn
into integer hardware (see DESIGN.md, "Hardware-friendly modelling rules"):

* ``PixelQuant``: unsigned 8-bit with the constant scale 1/255, so the float input
  pixel/255 quantizes to exactly the raw uint8 pixel the accelerator receives.
* ``BinaryActQuant``: sign with a constant scale of 1.0 and a clipped straight-through
  gradient (hardtanh STE); exports as ``BipolarQuant``.
* ``BinaryWeightQuant``: sign weights with constant scale 1.0 (BIPOLAR in QONNX, not the
  Brevitas default of 0.1) and in-place clipping of the latent weights to [-1, 1].
* ``IntActQuant``: signed few-bit activations with a learned per-tensor scale that starts
  from a fixed ``max_val`` (deterministic, no runtime-statistics phase, so an untrained
  model exports the same scale it was built with).
* ``IntWeightQuant`` / ``IntWeightPerChannelQuant``: few-bit weights for the first and last
  layers, scale taken from the weight statistics (a constant in the export).
"""

from __future__ import annotations

from brevitas.inject.enum import ScalingImplType
from brevitas.quant import (
    Int8ActPerTensorFloatMinMaxInit,
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFloatMaxInit,
)


class PixelQuant(Uint8ActPerTensorFloatMaxInit):
    """Unsigned 8-bit, constant scale 1/255: pixel/255 in, the integer pixel inside."""

    scaling_impl_type = ScalingImplType.CONST
    max_val = 1.0


class BinaryActQuant(SignedBinaryActPerTensorConst):
    """sign(x) in {-1, +1} with constant scale 1.0 (QONNX ``BipolarQuant``)."""

    scaling_const = 1.0


class BinaryWeightQuant(SignedBinaryWeightPerTensorConst):
    """Binary weights with constant scale 1.0 so QONNX marks them BIPOLAR."""

    scaling_const = 1.0


class IntActQuant(Int8ActPerTensorFloatMinMaxInit):
    """Signed activation quantizer with a learned scale initialised from [-max_val, max_val]."""

    min_val = -2.0
    max_val = 2.0


class IntWeightQuant(Int8WeightPerTensorFloat):
    """Few-bit signed per-tensor weights (set ``weight_bit_width``) for first/last layers."""


class IntWeightPerChannelQuant(Int8WeightPerChannelFloat):
    """Few-bit signed per-output-channel weights for the stem convolution."""
