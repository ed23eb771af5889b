"""Fold rule: window-parallel sliding windows.

The element-serial SlidingWindow emits at most C elements per beat, so a conv with few
input channels (an RGB stem: C = 3) needs K*K beats per output pixel whatever its MVTU's
SIMD (CNV-W1A1: 900 * 9 = 8,100 cycles per frame). A ParallelWindow emits up to the whole
K x K x C window per beat (hw_build.ops.parallel_window), which lets the MVTU behind it
take SIMD > C (SIMD dividing K*K*C).

Both ops compute the same stream; the folder picks per window node, for each cycle target:
the SlidingWindow while it reaches the target (it is the cheaper of the two), else the
ParallelWindow when that is faster. The node keeps its name (folding.json entries name it),
only its op type changes.
"""

from __future__ import annotations

import copy

from qonnx.custom_op.registry import getCustomOp

WINDOW_OPS = ("SlidingWindow", "ParallelWindow")


def _as(op, op_type: str):
    """``op``'s node as ``op_type`` (a detached copy), its SIMD set to a legal value."""
    node = copy.deepcopy(op.onnx_node)
    node.op_type = op_type
    alt = getCustomOp(node)
    alt.set_nodeattr("SIMD", max(alt.fold_options()["SIMD"]))
    return alt


def _fastest(op) -> int:
    saved = op.get_nodeattr("SIMD")
    op.set_nodeattr("SIMD", max(op.fold_options()["SIMD"]))
    cycles = op.cycles()
    op.set_nodeattr("SIMD", saved)
    return cycles


def eligible(op) -> bool:
    """A window node that may become a ParallelWindow (a 1x1 window is one pixel per beat already)."""
    return op.onnx_node.op_type in WINDOW_OPS and op.get_nodeattr("kernel") >= 2


def variants(op) -> list:
    """``op`` and, for a window node, the same node as the other window op (for the search of
    reachable cycle counts)."""
    if not eligible(op):
        return [op]
    other = "ParallelWindow" if op.onnx_node.op_type == "SlidingWindow" else "SlidingWindow"
    return [op, _as(op, other)]


def _switch(op, op_type: str) -> None:
    if op.onnx_node.op_type != op_type:
        op.onnx_node.op_type = op_type
        new = getCustomOp(op.onnx_node)
        new.set_nodeattr("SIMD", max(new.fold_options()["SIMD"]))


def choose_window_ops(model, target_cycles: int) -> None:
    """Make each window node the op that suits ``target_cycles``: a SlidingWindow while its
    fastest folding reaches the target, else a ParallelWindow if that is faster."""
    for node in model.graph.node:
        op = getCustomOp(node) if node.op_type in WINDOW_OPS else None
        if op is None or not eligible(op):
            continue
        serial = op if node.op_type == "SlidingWindow" else _as(op, "SlidingWindow")
        wide = op if node.op_type == "ParallelWindow" else _as(op, "ParallelWindow")
        serial_fastest = _fastest(serial)
        if serial_fastest <= target_cycles or _fastest(wide) >= serial_fastest:
            _switch(op, "SlidingWindow")
        else:
            _switch(op, "ParallelWindow")


def for_folding(op, values: dict):
    """The op a folding file's entry ``values`` asks for: a window node whose SIMD only the
    other window op allows (SIMD > C: a ParallelWindow of folding.json) becomes that op."""
    if not eligible(op) or "SIMD" not in values:
        return op
    try:
        simd = int(values["SIMD"])
    except (TypeError, ValueError):
        return op
    if simd in op.fold_options()["SIMD"]:
        return op
    other = "ParallelWindow" if op.onnx_node.op_type == "SlidingWindow" else "SlidingWindow"
    if simd in _as(op, other).fold_options()["SIMD"]:
        _switch(op, other)
        return getCustomOp(op.onnx_node)
    return op
