"""Streamlining: from the tidy QONNX graph to an integer-only graph.

Canonicalization runs first (integer weights, BN/Sub/Div as Mul/Add, explicit padding,
sum pooling, raw-pixel input); then the move and absorb passes run together to a fixed
point; then every remaining node must be an integer operation (``assert_integer_only``).
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import ConvertDivToMul, ConvertSubToAdd, RemoveUnusedTensors
from qonnx.transformation.infer_shapes import InferShapes

from hw_build.streamline.absorb import (
    ChainToMultiThreshold,
    IntegerResidualAdd,
    RemoveIdentityThresholds,
    TailToLabelSelect,
)
from hw_build.streamline.canonicalize import (
    AveragePoolToSum,
    BatchNormsToAffine,
    ExplicitConvPadding,
    QuantizedWeightsToIntegers,
    RawPixelInput,
    RemoveNoOps,
)
from hw_build.streamline.check import assert_integer_only
from hw_build.streamline.move import (
    CollapseAffine,
    MoveAffinePastFork,
    MoveAffinePastLinear,
    MoveAffinePastPad,
    MoveAffinePastPooling,
    MoveAffinePastReshape,
)
from hw_build.streamline.types import InferIntegerTypes

CANONICALIZE: list[type[Transformation]] = [
    QuantizedWeightsToIntegers,
    BatchNormsToAffine,
    ConvertSubToAdd,
    ConvertDivToMul,
    ExplicitConvPadding,
    AveragePoolToSum,
    RemoveNoOps,
]

MOVE_AND_ABSORB: list[type[Transformation]] = [
    CollapseAffine,
    MoveAffinePastFork,
    ChainToMultiThreshold,
    IntegerResidualAdd,
    MoveAffinePastLinear,
    MoveAffinePastPad,
    MoveAffinePastPooling,
    MoveAffinePastReshape,
    RemoveIdentityThresholds,
    RemoveNoOps,
]

MAX_ROUNDS = 10_000


def run_to_fixed_point(model: ModelWrapper, passes: list[type[Transformation]]) -> ModelWrapper:
    """Apply each pass until none changes the graph (each pass changes one site per call)."""
    for _ in range(MAX_ROUNDS):
        changed = False
        for cls in passes:
            model, c = cls().apply(model)
            if c:
                InferIntegerTypes().apply(model)
                changed = True
                break
        if not changed:
            return model
    raise RuntimeError("streamlining did not converge")


def streamline(model: ModelWrapper) -> ModelWrapper:
    model = model.transform(InferShapes())
    model, _ = RawPixelInput().apply(model)
    InferIntegerTypes().apply(model)
    model = run_to_fixed_point(model, CANONICALIZE)
    model = model.transform(InferShapes())
    InferIntegerTypes().apply(model)
    model = run_to_fixed_point(model, MOVE_AND_ABSORB + [TailToLabelSelect])
    model = model.transform(RemoveUnusedTensors())
    assert_integer_only(model)
    return model
