"""Verification of every stage against the reference on the same uint8 images.

A stage's label for an image is accepted when it is a top-1 class of the reference scores
(ties allowed). When a stage disagrees, the build fails naming the first layer whose
output differs from the previous stage's graph on that image."""

from __future__ import annotations

import json

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_build.errors import BuildError
from hw_build.execute import execute_dataflow, execute_graph

#: relative tolerance under which two reference scores count as a tie
TIE_RTOL = 1e-5


def to_nhwc(x_nchw: np.ndarray) -> np.ndarray:
    return x_nchw.transpose(0, 2, 3, 1) if x_nchw.ndim == 4 else x_nchw.reshape(x_nchw.shape[0], 1, 1, -1)


def accepted(labels: np.ndarray, ref_scores: np.ndarray) -> np.ndarray:
    """Per image: is ``labels`` a top-1 class of ``ref_scores`` (ties allowed)?"""
    best = ref_scores.max(axis=1)
    picked = ref_scores[np.arange(len(labels)), labels.astype(np.int64)]
    return picked >= best - TIE_RTOL * np.maximum(1.0, np.abs(best))


def check_stage(stage: str, labels: np.ndarray, ref_scores: np.ndarray) -> dict:
    ok = accepted(labels, ref_scores)
    return {"frames": int(len(labels)), "mismatches": int((~ok).sum()),
            "first_mismatch": int(np.argmin(ok)) if not ok.all() else None}


def streamlined_labels(model: ModelWrapper, images: np.ndarray) -> np.ndarray:
    out = execute_graph(model, images.astype(np.float32))
    return out[model.graph.output[0].name].reshape(-1).astype(np.int64)


def dataflow_labels(model: ModelWrapper, images: np.ndarray) -> np.ndarray:
    out = execute_dataflow(model, to_nhwc(images.astype(np.float32)))
    return out[model.graph.output[0].name].reshape(-1).astype(np.int64)


def first_divergence_streamlined(tidy: ModelWrapper, streamlined: ModelWrapper, image: np.ndarray) -> str:
    """Name the first threshold layer whose levels differ from the quantizer it replaced."""
    ref = execute_graph(tidy, image[None].astype(np.float32) / 255.0, full_context=True)
    ours = execute_graph(streamlined, image[None].astype(np.float32), full_context=True)
    table = json.loads(streamlined.get_metadata_prop("hw_build.mt_sources") or "{}")
    for node in streamlined.graph.node:
        if node.op_type != "MultiThreshold" or node.output[0] not in table:
            continue
        entry = table[node.output[0]]
        if entry["source"] not in ref or node.output[0] not in ours:
            continue
        a = np.array(entry["a"], dtype=np.float64)
        b = np.array(entry["b"], dtype=np.float64)
        level = ours[node.output[0]].astype(np.float64)
        shape = [1, -1] + [1] * (level.ndim - 2)
        real = level * (a.reshape(shape) if a.size > 1 else a) + (b.reshape(shape) if b.size > 1 else b)
        diff = ~np.isclose(real, ref[entry["source"]], rtol=1e-5, atol=1e-6)
        if diff.any():
            return (f"first diverging node: '{node.name}' (threshold layer replacing the quantizer that "
                    f"produces '{entry['source']}'), {int(diff.sum())} of {diff.size} values differ")
    return "no threshold layer differs; the difference arises in the final label selection"


def first_divergence_dataflow(streamlined: ModelWrapper, dataflow: ModelWrapper, image: np.ndarray) -> str:
    """Name the first hardware layer whose output differs from its streamlined tensor."""
    ref = execute_graph(streamlined, image[None].astype(np.float32), full_context=True)
    ours = execute_dataflow(dataflow, to_nhwc(image[None].astype(np.float32)), full_context=True)
    for node in dataflow.graph.node:
        op = getCustomOp(node)
        src = op.get_nodeattr("source")
        if not src or src not in ref:
            continue
        expected = ref[src]
        got = ours[node.output[0]]
        if expected.ndim == 4:
            expected = expected.transpose(0, 2, 3, 1)
        if node.op_type == "MVTU" and not op.has_thresholds() and op.get_nodeattr("binary"):
            w = dataflow.get_initializer(node.input[1])
            got = got - (w.shape[1] - w.sum(axis=1))  # hardware acc = acc + #(-1 weights)
        if expected.size != got.size:
            continue
        if expected.ndim == 4 or got.ndim != 4 or expected.shape[-1] == got.shape[-1]:
            same = np.array_equal(expected.reshape(got.shape), got)
        else:
            same = np.array_equal(np.sort(expected.reshape(-1)), np.sort(got.reshape(-1)))
        if not same:
            return f"first diverging node: hardware layer '{node.name}' ({op.describe()}) vs '{src}'"
    return "no hardware layer differs from its streamlined tensor"


def fail(stage: str, result: dict, detail: str) -> BuildError:
    return BuildError(
        f"verification of the {stage} graph failed: {result['mismatches']} of {result['frames']} "
        f"images get a label that is not a top-1 class of the reference (first: image "
        f"{result['first_mismatch']}); {detail}. This is a compiler bug or a model outside the "
        "supported rules; please report it with the model file."
    )
