#!/usr/bin/env python3
"""What each reachable cycle target of a built design would cost, by the cost model the folder
uses: how far the fastest fitting folding is from the next faster ones.

    .venv/bin/python benchmarks/fold_candidates.py build/bench/groupnet_small_max [--min 8000 --max 40000]

Reads the build folder's lowered graph (intermediate/03_lower.onnx) and its board from
report.json; prints per candidate cycles/frame the FPS, the estimated LUT and BRAM36 after
weight-memory placement, and whether it is within the folder's budget.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("build", type=Path, help="a build folder (its lower step has run)")
    p.add_argument("--min", type=int, default=0, help="smallest cycle target to print")
    p.add_argument("--max", type=int, default=None, help="largest cycle target to print")
    args = p.parse_args()
    from qonnx.core.modelwrapper import ModelWrapper

    from hw_build import boards, fold

    lowered = args.build / "intermediate" / "03_lower.onnx"
    report = args.build / "report.json"
    if not lowered.exists() or not report.exists():
        print(f"{args.build} has no intermediate/03_lower.onnx or report.json: build it first", file=sys.stderr)
        return 2
    info = json.loads(report.read_text())
    board = boards.get(info["board"])
    model = ModelWrapper(str(lowered))
    budget = fold.BUDGET_MARGIN["lut"] * board.lut
    print(f"{info['model']} on {board.name} at {info['clock_mhz']:g} MHz; LUT budget {budget:,.0f}")
    print(f"{'cycles':>8s} {'FPS':>10s} {'est LUT':>9s} {'est BRAM36':>10s}  within budget")
    for cycles in fold._candidate_cycles(model):
        if cycles < args.min or (args.max is not None and cycles > args.max):
            continue
        fold.fold_for_cycles(model, cycles)
        ok, est = fold._fits(model, board)
        print(f"{cycles:8d} {info['clock_mhz'] * 1e6 / cycles:10,.0f} {est['lut']:9,.0f} {est['bram36']:10.1f}  {ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
