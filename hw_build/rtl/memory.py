"""Where a memory goes and what it costs: the one rule that places a ROM (block RAM or
LUTs) and prices it, used by the layers' ``rtl_params`` (``rom_style``) and by the cost
model (hw_build.estimate.cost_model), so folding places and budgets by the same numbers.

Block RAM count follows Yosys's mapping (checked with ``synth_xilinx -family xc7`` on rom.v
in block style): the width is covered by slices of any RAMB18E1/RAMB36E1 aspect ratio,
each slice stacked deep enough for the depth, the cheapest combination (a RAMB18 counts
0.5). Yosys: 9x16 one RAMB18 (0.5), 512x80 three RAMB18 (1.5), 4096x10 1.5, 2048x40 2.5.
"""

from __future__ import annotations

import functools
import math

#: (depth, width) shapes of a RAMB18E1 and a RAMB36E1 in simple-dual-port / ROM use
RAMB18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
RAMB36_SHAPES = ((32768, 1), (16384, 2), (8192, 4), (4096, 9), (2048, 18), (1024, 36), (512, 72))

#: LUTs one 36-kbit block RAM is worth when choosing where a ROM goes (LUTs are the scarcer
#: resource on the Zynq-7000 parts: the xc7z020 has 53,200 LUTs and 140 BRAM36)
LUTS_PER_BRAM36 = 256


def bram36(depth: int, width: int) -> float:
    """Block RAMs (RAMB18 = 0.5) of a depth x width memory, tiled as Yosys does: 128 bits x 32K
    words = 14 slices of 4K x 9 (8 RAMB36 each) plus one of 16K x 2 (2) = 114 RAMB36, not 128;
    the 1M x 1 weight ROM of a fully folded LFC layer is 32 RAMB36 (32K x 1 shapes)."""
    if depth * width == 0:
        return 0.0
    return _bram_cover(depth, width)


@functools.lru_cache(maxsize=4096)
def _bram_cover(depth: int, width: int) -> float:
    tiles = [(size * math.ceil(depth / d), w) for shapes, size in ((RAMB18_SHAPES, 0.5), (RAMB36_SHAPES, 1.0))
             for d, w in shapes]
    best = [0.0] + [math.inf] * width          # best[b]: cheapest cover of b bits
    for b in range(1, width + 1):
        best[b] = min(cost + best[max(0, b - w)] for cost, w in tiles)
    return best[width]


def rom_logic_luts(depth: int, width: int) -> float:
    """LUTs of a ROM in logic with random contents: one LUT6 per bit per 64 words (the F7/F8
    multiplexers join up to four) and a 4:1 multiplexer LUT per bit per further 256 words."""
    if depth <= 1:
        return 0.0
    if depth <= 64:
        return float(width)
    return width * (math.ceil(depth / 64) + math.ceil(depth / 256) - 1)


def rom_style(depth: int, width: int, requested: str = "auto") -> str:
    """Where a ROM goes: "block" or "distributed" (LUTs). ``requested`` (a layer's ``mem_style``)
    wins unless it is "auto"; then the cheaper by :func:`rom_logic_luts` against
    :data:`LUTS_PER_BRAM36` x :func:`bram36`."""
    if requested in ("block", "distributed"):
        return requested
    if requested in ("lut", "lutram"):
        return "distributed"
    return "block" if rom_logic_luts(depth, width) > LUTS_PER_BRAM36 * bram36(depth, width) else "distributed"
