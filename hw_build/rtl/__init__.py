"""RTL back end: the Verilog layer library (the .v files in this folder), the top-level
code generator, Verilator simulation, lint and Yosys synthesis helpers.

- :mod:`hw_build.rtl.codegen`  ``generate(model, out_dir, dma_bits)`` writes accel_top.v
- :mod:`hw_build.rtl.sim`      ``simulate_top``, ``simulate_layers``, ``size_fifos``
- :mod:`hw_build.rtl.tools`    ``lint``, ``synth``
"""

from __future__ import annotations

from pathlib import Path

LIBRARY_DIR = Path(__file__).resolve().parent


def library_files() -> dict[str, Path]:
    """Module name -> Verilog file of every library module."""
    return {p.stem: p for p in sorted(LIBRARY_DIR.glob("*.v"))}


#: library modules other modules instantiate (copied along with them)
MODULE_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "frame_tlast": ("fifo",),
    "mvtu": ("adder_tree", "rom"),
    "thresholding": ("rom", "adder_tree"),
    "label_select": ("rom",),
    "stream_width_converter": ("stream_downsizer", "stream_upsizer"),
}


def module_closure(modules: list[str] | set[str] | tuple[str, ...]) -> list[str]:
    """``modules`` and every library module they instantiate, directly or not (sorted)."""
    todo, done = list(modules), set()
    while todo:
        m = todo.pop()
        if m not in done:
            done.add(m)
            todo.extend(MODULE_DEPENDENCIES.get(m, ()))
    return sorted(done)
