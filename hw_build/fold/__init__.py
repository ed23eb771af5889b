"""Folding: PE/SIMD per layer, then the stream plumbing for that folding
(:mod:`hw_build.fold.plumbing`). Reads and writes FINN's folding_config JSON format, FIFO
depths included."""

from __future__ import annotations

import json
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_build.errors import BuildError


def nodes(model: ModelWrapper) -> list:
    """The op of every node, the stream plumbing included."""
    return [getCustomOp(n) for n in model.graph.node]


def layers(model: ModelWrapper) -> list:
    """The ops of the network's layers (the nodes that fold), without the stream plumbing."""
    return [op for op in nodes(model) if not op.plumbing]


def bottleneck_cycles(model: ModelWrapper) -> int:
    return max(op.cycles() for op in layers(model))


#: FINN's ram_style values and the weight memory style they select
RAM_STYLES = {"auto": "auto", "block": "block", "distributed": "distributed", "ultra": "block"}


def _has_weight_memory(op) -> bool:
    return "mem_style" in op.get_nodeattr_types()


def weight_style(op, model: ModelWrapper | None = None) -> str | None:
    """Where a layer's weight ROM goes ("block" or "distributed"), None without one."""
    if not _has_weight_memory(op):
        return None
    return op.rtl_params(model)["WEIGHT_STYLE"]


def folding_config(model: ModelWrapper) -> dict:
    """FINN folding_config: {"Defaults": {}, node name: {"PE": .., "SIMD": .., "ram_style": ..}}
    (ram_style: where the layer's weights went, block RAM or LUTs), every FIFO node with its
    {"depth": ..}, the other plumbing nodes with {}."""
    cfg: dict = {"Defaults": {}}
    for op in nodes(model):
        cfg[op.onnx_node.name] = op.get_folding()
        style = weight_style(op, model)
        if style is not None:
            cfg[op.onnx_node.name]["ram_style"] = style
        if op.onnx_node.op_type == "Fifo":
            cfg[op.onnx_node.name]["depth"] = op.depth()
    return cfg


def read_folding_file(path: Path) -> dict[str, dict]:
    """Read a FINN folding_config file and check its structure: a JSON object mapping layer
    names to objects whose PE/SIMD are positive whole numbers and whose ram_style is a string.
    Which layers exist and which values divide them is checked against the design at fold."""
    import math

    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BuildError(f"cannot read folding file '{path}': {exc}. It must be a FINN folding_config JSON "
                         'object such as {"Defaults": {}, "MVTU_0": {"PE": 4, "SIMD": 8}}.') from None
    example = '{"Defaults": {}, "MVTU_0": {"PE": 4, "SIMD": 8}}'
    if not isinstance(cfg, dict):
        raise BuildError(f"folding file '{path}' holds a JSON {type(cfg).__name__}, not an object mapping layer "
                         f"names to their folding, e.g. {example}.")
    problems = []
    for name, values in cfg.items():
        if not isinstance(values, dict):
            problems.append(f"'{name}' maps to a JSON {type(values).__name__}, not an object like "
                            '{"PE": 4, "SIMD": 8}')
            continue
        for attr, value in values.items():
            if attr in ("PE", "SIMD"):
                whole = (isinstance(value, int) and not isinstance(value, bool)) or (
                    isinstance(value, float) and math.isfinite(value) and value.is_integer())
                if not whole or value < 1:
                    problems.append(f"{name}.{attr}={json.dumps(value)} is not a positive whole number")
            elif attr == "ram_style" and not isinstance(value, str):
                problems.append(f"{name}.ram_style={json.dumps(value)} is not a string "
                                f"(one of {sorted(RAM_STYLES)})")
    if problems:
        raise BuildError(f"folding file '{path}': " + "; ".join(problems[:8]) + ". Write PE and SIMD as whole "
                         "numbers (python build.py writes folding.json in this format).")
    return cfg


def apply_folding_file(model: ModelWrapper, path: Path, dma_bits: int = 64) -> ModelWrapper:
    """The layer graph ``model`` folded as the file says, with its stream plumbing; FIFO depths
    the file gives (``{"depth": N}`` on a FIFO node, as folding.json writes them) are fixed:
    FIFO sizing keeps them."""
    from hw_build.fold.plumbing import insert_stream_plumbing, set_fifo_depths
    from hw_build.fold.window_parallel import for_folding

    cfg = read_folding_file(path)
    ops = {op.onnx_node.name: op for op in layers(model)}
    problems = []
    plumbing_entries = {}
    for name, values in cfg.items():
        if name == "Defaults":
            continue
        if name not in ops:
            plumbing_entries[name] = values   # checked once the plumbing is in the graph
            continue
        if "depth" in values:
            problems.append(f"{name}.depth: '{name}' is a layer, not a FIFO")
        ops[name] = for_folding(ops[name], values)   # SIMD > C: a window-parallel window
        options = ops[name].fold_options()
        for attr, value in values.items():
            if attr == "ram_style" and _has_weight_memory(ops[name]):
                if value not in RAM_STYLES:
                    problems.append(f"{name}.ram_style='{value}' is not one of {sorted(RAM_STYLES)}")
                else:
                    ops[name].set_nodeattr("mem_style", RAM_STYLES[value])
                continue
            if attr not in options:
                continue  # FINN configs carry other keys (mem_mode, ...); ignore them
            if int(value) not in options[attr]:
                problems.append(f"{name}.{attr}={value} does not divide the layer (allowed: {options[attr]})")
            else:
                ops[name].set_nodeattr(attr, int(value))
    # the plumbing follows the folding (the values above that were valid): FIFO entries name it
    model = insert_stream_plumbing(model, dma_bits)
    plumbing = {op.onnx_node.name: op for op in nodes(model) if op.plumbing}
    depths = {}
    for name, values in plumbing_entries.items():
        if name not in plumbing:
            problems.append(f"'{name}' is not a layer of this design")
            continue
        is_fifo = plumbing[name].onnx_node.op_type == "Fifo"
        for attr, value in values.items():
            if attr == "depth" and is_fifo:
                if not isinstance(value, int) or value < 0:
                    problems.append(f"{name}.depth={value!r} is not a FIFO depth (a whole number >= 0)")
                else:
                    depths[name] = value
            else:
                problems.append(f"{name}.{attr}: {plumbing[name].onnx_node.op_type} node '{name}' has "
                                f"no setting {attr!r}" + (" (a FIFO takes only 'depth')" if is_fifo else ""))
    set_fifo_depths(model, depths, fixed=True)
    if problems:
        names = ", ".join(ops)
        raise BuildError(f"folding file '{path}': " + "; ".join(problems) + f". Layers of this design: {names}.")
    return model


def fold_for_cycles(model: ModelWrapper, target_cycles: int) -> ModelWrapper:
    """Give each layer the least parallelism whose cycles stay within ``target_cycles``.

    Among foldings of equal parallelism, SIMD is preferred (wider input, fewer PEs). A
    window node becomes the window op that suits the target (hw_build.fold.window_parallel)."""
    from hw_build.fold.window_parallel import choose_window_ops

    choose_window_ops(model, target_cycles)
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


def _within_budget(est: dict, board) -> bool:
    return all(est[k] <= BUDGET_MARGIN[k] * getattr(board, k) for k in BUDGET_MARGIN)


def _fits(model: ModelWrapper, board) -> tuple[bool, dict]:
    """Place the weights (:func:`balance_weight_memories`) and check the budget."""
    balance_weight_memories(model, board)
    from hw_build.estimate import estimate

    est = estimate(model, 100.0, board.dma_bits)["estimate"]
    return _within_budget(est, board), est


def balance_weight_memories(model: ModelWrapper, board) -> None:
    """Choose block RAM or LUTs for every weight ROM so that the design fits the budget.

    Each layer first takes the style that is cheaper on its own (a block RAM counted as 256
    LUTs). When the design then needs more block RAM than the budget (deep, narrow ROMs of a
    slow folding), the ROMs that cost the fewest LUTs per block RAM saved move to LUTs; when
    it needs too many LUTs, the ROMs that save the most LUTs per block RAM move to block RAM
    while block RAMs are left. The first fitting assignment wins; otherwise the one left is
    the closest, and the caller reports the overrun."""
    from hw_build.estimate import estimate, layer_resources

    mvtus = [op for op in layers(model) if _has_weight_memory(op)]
    for op in mvtus:
        op.set_nodeattr("mem_style", "auto")
    est = estimate(model, 100.0, board.dma_bits)["estimate"]
    if _within_budget(est, board) or not mvtus:
        return
    options = {}
    for op in mvtus:
        res = {}
        for style in ("block", "distributed"):
            op.set_nodeattr("mem_style", style)
            res[style] = layer_resources(op, model)
        op.set_nodeattr("mem_style", "auto")
        options[op.onnx_node.name] = (op, weight_style(op, model), res)
    lut, bram = est["lut"], est["bram36"]
    lut_budget, bram_budget = BUDGET_MARGIN["lut"] * board.lut, BUDGET_MARGIN["bram36"] * board.bram36
    if bram > bram_budget:
        moves = []
        for op, style, res in options.values():
            saved = res["block"]["bram36"] - res["distributed"]["bram36"]
            if style == "block" and saved > 0:
                moves.append(((res["distributed"]["lut"] - res["block"]["lut"]) / saved, op, res))
        for _, op, res in sorted(moves, key=lambda m: m[0]):
            if bram <= bram_budget:
                break
            op.set_nodeattr("mem_style", "distributed")
            lut += res["distributed"]["lut"] - res["block"]["lut"]
            bram -= res["block"]["bram36"] - res["distributed"]["bram36"]
    elif lut > lut_budget:
        moves = []
        for op, style, res in options.values():
            saved = res["distributed"]["lut"] - res["block"]["lut"]
            added = res["block"]["bram36"] - res["distributed"]["bram36"]
            if style == "distributed" and saved > 0:
                moves.append((saved / max(added, 0.5), op, res))
        for _, op, res in sorted(moves, key=lambda m: -m[0]):
            if lut <= lut_budget:
                break
            added = res["block"]["bram36"] - res["distributed"]["bram36"]
            if bram + added > bram_budget:
                continue
            op.set_nodeattr("mem_style", "block")
            lut -= res["distributed"]["lut"] - res["block"]["lut"]
            bram += added


def _candidate_cycles(model: ModelWrapper) -> list[int]:
    """Every cycle count some layer reaches with some folding, from the slowest layer's
    fastest folding upwards (a faster target would only make other layers needlessly fast)."""
    from hw_build.fold.window_parallel import variants

    values: set[int] = set()
    floor = 0
    for layer in layers(model):
        fastest = None
        for op in variants(layer):   # a window node: either window op
            saved = op.get_folding()
            options = op.fold_options()
            cands = [{}]
            for attr, vals in options.items():
                cands = [dict(c, **{attr: v}) for c in cands for v in vals]
            for c in cands:
                op.set_folding(**c)
                values.add(op.cycles())
                fastest = op.cycles() if fastest is None else min(fastest, op.cycles())
            op.set_folding(**saved)
        floor = max(floor, fastest or 0)
    return sorted(v for v in values if v >= floor)


def dma_cycles(model: ModelWrapper, board) -> int:
    """Cycles per frame the DMA stream needs to move one input frame (8-bit pixels): the frame
    format of the interface record (deploy.interface), which the rtl step writes once RTL exists."""
    import numpy as np

    from deploy.interface import words_per_frame

    pixels = int(np.prod(model.get_tensor_shape(model.graph.input[0].name)[1:]))
    return words_per_frame(pixels, board.dma_bits)


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
        _fits(model, board)  # the weight memory placement of this folding (the last probe was another)
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

    over = [k for k in ("lut", "bram36", "dsp") if est[k] > BUDGET_MARGIN[k] * getattr(board, k)] or ["lut"]
    unit = {"lut": "LUT", "bram36": "BRAM36", "dsp": "DSP"}
    res = [(layer_resources(op, model), op.onnx_node.name) for op in layers(model)]
    largest = "; ".join(
        f"by {unit[k]}: " + ", ".join(f"{n} {r[k]:g}" for r, n in sorted(res, key=lambda x: -x[0][k])[:5] if r[k] > 0)
        for k in over)
    usage = ", ".join(f"{est[k]:,.1f} {unit[k]} of {getattr(board, k):,} (budget {BUDGET_MARGIN[k]:.0%})"
                      for k in ("lut", "bram36", "dsp"))
    return (f"the design {what}does not fit {board.name} ({board.part}): {usage}, with every weight memory "
            f"placed where it costs least. Largest layers {largest}. Use a lower --target-fps, a smaller "
            "model, or a bigger board (python build.py --list-boards).")
