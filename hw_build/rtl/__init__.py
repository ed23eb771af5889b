"""RTL back end: the Verilog layer library (the .v files in this folder), the top-level
code generator, Verilator simulation, lint and Yosys synthesis helpers.

- :mod:`hw_build.rtl.codegen`  ``generate(model, out_dir)`` writes accel_top.v of a plumbed graph
- :mod:`hw_build.rtl.sim`      ``simulate_top``, ``simulate_layers``, ``size_fifos``
- :mod:`hw_build.rtl.tools`    ``lint``, ``synth``
- :mod:`hw_build.rtl.memory`   where a ROM goes (block RAM or LUTs) and what it costs
- :mod:`hw_build.rtl.verilog`  instance and stream-wire text in the library's port conventions

A module's parameters and the library modules it instantiates are read from its Verilog
(:func:`module_parameters`, :func:`module_dependencies`). The modules share text macros
from the include files (:func:`library_includes`), which travel with every module.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

LIBRARY_DIR = Path(__file__).resolve().parent


def library_files() -> dict[str, Path]:
    """Module name -> Verilog file of every library module."""
    return {p.stem: p for p in sorted(LIBRARY_DIR.glob("*.v"))}


def library_includes() -> list[Path]:
    """The library's include files (``*.vh``: the text macros its modules share). Every set
    of library sources handed to a tool, copied or hashed carries them too; the tools find
    them by name next to the modules (``-I`` of their folder, or the working directory)."""
    return sorted(LIBRARY_DIR.glob("*.vh"))


def is_include(path: str | Path) -> bool:
    """An include file: present next to the sources, but not itself a compilation unit."""
    return Path(path).suffix == ".vh"


def _module_text(module: str) -> str:
    lib = library_files()
    if module not in lib:
        raise KeyError(f"no Verilog module {module!r} in the RTL library ({LIBRARY_DIR})")
    text = lib[module].read_text()
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)


@functools.cache
def module_parameters(module: str) -> tuple[str, ...]:
    """The ``parameter`` names of library module ``module``'s header, in order."""
    text = _module_text(module)
    m = re.search(rf"\bmodule\s+{module}\s*#\s*\((.*?)\)\s*\(", text, re.S)
    return tuple(re.findall(r"\bparameter\s+(?:integer\s+)?(\w+)", m.group(1))) if m else ()


@functools.cache
def module_dependencies(module: str) -> tuple[str, ...]:
    """The library modules ``module`` instantiates (read from its Verilog)."""
    lib = library_files()
    found = re.findall(r"^\s*(\w+)\s*#\s*\(", _module_text(module), re.M)
    return tuple(sorted({m for m in found if m in lib and m != module}))


def module_closure(modules: list[str] | set[str] | tuple[str, ...]) -> list[str]:
    """``modules`` and every library module they instantiate, directly or not (sorted)."""
    todo, done = list(modules), set()
    while todo:
        m = todo.pop()
        if m not in done:
            done.add(m)
            todo.extend(module_dependencies(m))
    return sorted(done)


def library_sources(modules: list[str] | set[str] | tuple[str, ...]) -> list[Path]:
    """The files ``modules`` need: the include files, then the Verilog of every module in
    their :func:`module_closure`."""
    lib = library_files()
    return library_includes() + [lib[m] for m in module_closure(modules)]
