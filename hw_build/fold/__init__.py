"""Folding: PE/SIMD per layer. Reads and writes FINN's folding_config JSON format."""

from __future__ import annotations

import json
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_build.errors import BuildError


def layers(model: ModelWrapper) -> list:
    return [getCustomOp(n) for n in model.graph.node]


def bottleneck_cycles(model: ModelWrapper) -> int:
    return max(op.cycles() for op in layers(model))


def folding_config(model: ModelWrapper) -> dict:
    """FINN folding_config: {"Defaults": {}, node name: {"PE": .., "SIMD": ..}}."""
    cfg: dict = {"Defaults": {}}
    for op in layers(model):
        cfg[op.onnx_node.name] = op.get_folding()
    return cfg


def apply_folding_file(model: ModelWrapper, path: Path) -> ModelWrapper:
    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BuildError(f"cannot read folding file '{path}': {exc}.") from None
    ops = {op.onnx_node.name: op for op in layers(model)}
    problems = []
    for name, values in cfg.items():
        if name == "Defaults":
            continue
        if name not in ops:
            problems.append(f"'{name}' is not a layer of this design")
            continue
        options = ops[name].fold_options()
        for attr, value in values.items():
            if attr not in options:
                continue  # FINN configs carry other keys (ram_style, ...); ignore them
            if int(value) not in options[attr]:
                problems.append(f"{name}.{attr}={value} does not divide the layer (allowed: {options[attr]})")
            else:
                ops[name].set_nodeattr(attr, int(value))
    if problems:
        names = ", ".join(ops)
        raise BuildError(f"folding file '{path}': " + "; ".join(problems) + f". Layers of this design: {names}.")
    return model


def fold_for_cycles(model: ModelWrapper, target_cycles: int) -> ModelWrapper:
    """Give each layer the least parallelism whose cycles stay within ``target_cycles``.

    Among foldings of equal parallelism, SIMD is preferred (wider input, fewer PEs)."""
    for op in layers(model):
        options = op.fold_options()
        attrs = list(options)
        candidates = [{}]
        for attr in attrs:
            candidates = [dict(c, **{attr: v}) for c in candidates for v in options[attr]]

        def cost(c: dict) -> tuple:
            par = 1
            for v in c.values():
                par *= v
            return (par, -c.get("SIMD", 0))

        best = None
        for cand in sorted(candidates, key=cost):
            op.set_folding(**cand)
            if op.cycles() <= target_cycles:
                best = cand
                break
        if best is None:  # cannot reach the target: take the fastest folding
            best = max(candidates, key=cost)
        op.set_folding(**best)
    return model


#: share of the board's resources the folding may use (place-and-route needs headroom)
BUDGET_MARGIN = {"lut": 0.85, "bram36": 0.90, "dsp": 0.90}


def _fits(model: ModelWrapper, board) -> tuple[bool, dict]:
    from hw_build.estimate import estimate

    est = estimate(model, 100.0)["estimate"]
    ok = (est["lut"] <= BUDGET_MARGIN["lut"] * board.lut and est["bram36"] <= BUDGET_MARGIN["bram36"] * board.bram36
          and est["dsp"] <= BUDGET_MARGIN["dsp"] * board.dsp)
    return ok, est


def _candidate_cycles(model: ModelWrapper) -> list[int]:
    """Every cycle count some layer reaches with some folding, from the slowest layer's
    fastest folding upwards (a faster target would only make other layers needlessly fast)."""
    values: set[int] = set()
    floor = 0
    for op in layers(model):
        saved = op.get_folding()
        options = op.fold_options()
        cands = [{}]
        for attr, vals in options.items():
            cands = [dict(c, **{attr: v}) for c in cands for v in vals]
        fastest = None
        for c in cands:
            op.set_folding(**c)
            values.add(op.cycles())
            fastest = op.cycles() if fastest is None else min(fastest, op.cycles())
        floor = max(floor, fastest or 0)
        op.set_folding(**saved)
    return sorted(v for v in values if v >= floor)


def dma_cycles(model: ModelWrapper, board) -> int:
    """Cycles per frame the DMA stream needs to move one input frame (8-bit pixels)."""
    import math

    import numpy as np

    pixels = int(np.prod(model.get_tensor_shape(model.graph.input[0].name)[1:]))
    return math.ceil(pixels * 8 / board.dma_bits)


def fold_for_board(model: ModelWrapper, board, clock_mhz: float, target_fps: str) -> tuple[ModelWrapper, str]:
    """Fastest folding that fits the board (target 'max'), or the cheapest one reaching the
    target FPS. Layers are never made faster than the bottleneck needs, and with 'max' the
    compute is not made faster than the DMA stream can feed it (faster is unmeasurable area);
    an explicit --target-fps above the DMA rate is honoured and the report states the bound."""
    floor = dma_cycles(model, board)
    candidates = [c for c in _candidate_cycles(model) if c >= floor] or [max(_candidate_cycles(model))]
    if str(target_fps) == "max":
        lo, hi = 0, len(candidates) - 1
        fold_for_cycles(model, candidates[hi])
        ok, est = _fits(model, board)
        if not ok:
            raise BuildError(_does_not_fit(model, board, est))
        while lo < hi:  # smallest cycle target that still fits (cost falls as cycles grow)
            mid = (lo + hi) // 2
            fold_for_cycles(model, candidates[mid])
            if _fits(model, board)[0]:
                hi = mid
            else:
                lo = mid + 1
        fold_for_cycles(model, candidates[hi])
        return model, f"for the highest throughput that fits {board.name}"
    try:
        fps = float(target_fps)
    except ValueError:
        raise BuildError(f"--target-fps must be a number or 'max' (got '{target_fps}').") from None
    if fps <= 0:
        raise BuildError(f"--target-fps must be positive (got {target_fps}).")
    target = int(clock_mhz * 1e6 // fps)
    fold_for_cycles(model, max(target, 1))
    worst = max(layers(model), key=lambda op: op.cycles())
    if worst.cycles() > target:
        per_layer = "; ".join(f"{op.onnx_node.name}: {op.cycles()} cycles at its fastest"
                              for op in layers(model) if op.cycles() > target)
        raise BuildError(
            f"--target-fps {target_fps} needs at most {target} cycles per frame at {clock_mhz:g} MHz, "
            f"but these layers cannot go that fast even fully parallel: {per_layer}. The highest "
            f"reachable rate is {clock_mhz * 1e6 / worst.cycles():.0f} FPS; ask for less or raise --clock-mhz."
        )
    ok, est = _fits(model, board)
    if not ok:
        raise BuildError(_does_not_fit(model, board, est, f"at {target_fps} FPS "))
    return model, f"for {target_fps} FPS ({target} cycles/frame)"


def _does_not_fit(model: ModelWrapper, board, est: dict, what: str = "") -> str:
    from hw_build.estimate import layer_resources

    top = sorted(((layer_resources(op)["lut"], op.onnx_node.name) for op in layers(model)), reverse=True)[:5]
    return (f"the design {what}does not fit {board.name} ({board.part}): about {est['lut']:.0f} LUT of "
            f"{board.lut} (budget {BUDGET_MARGIN['lut']:.0%}) and {est['bram36']:.1f} BRAM36 of {board.bram36}. "
            f"Largest layers: {', '.join(f'{n} {lut} LUT' for lut, n in top)}. Use a lower --target-fps, "
            "a smaller model, or a bigger board (python build.py --list-boards).")
