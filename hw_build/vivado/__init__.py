"""The vivado step: vendor scripts that turn ``<build>/rtl`` into a bitstream.

- :func:`write_scripts` writes ``<build>/vivado/``: for Zynq boards, IP packaging, a block
  design (processing system + AXI DMA + accelerator) and the synthesis/implementation/
  bitstream run (:mod:`hw_build.vivado.zynq`); for Alveo cards, an RTL kernel, data
  movers and a ``v++`` link configuration (:mod:`hw_build.vivado.alveo`).
- :func:`run_vivado` runs them when the vendor tools are on PATH, copying the results to
  ``<build>/vivado/bitfile/``; otherwise it writes ``vivado/README.md`` with the exact
  commands. Returns ``"bitstream"`` or ``"scripts only"``.

Port names and widths come from parsing the generated ``accel_top.v``
(:mod:`hw_build.vivado.ports`), never from assumptions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from hw_build.boards import Board
from hw_build.errors import BuildError
from hw_build.vivado import alveo, zynq
from hw_build.vivado.common import (
    BITFILE_DIR,
    DMA_CELL,
    DMA_LENGTH_BITS,
    check_streams,
    load_design,
)
from hw_build.vivado.ports import TopPorts, read_top_ports

STATUS_BITSTREAM = "bitstream"
STATUS_SCRIPTS_ONLY = "scripts only"
VIVADO_DIR = "vivado"

__all__ = ["STATUS_BITSTREAM", "STATUS_SCRIPTS_ONLY", "TopPorts", "read_top_ports", "required_tools",
           "run_vivado", "write_scripts"]


def _model_name(build_dir: Path) -> str:
    report = build_dir / "report.json"
    if report.exists():
        try:
            return str(json.loads(report.read_text()).get("model") or build_dir.name)
        except json.JSONDecodeError:
            pass
    return build_dir.name


def write_scripts(build_dir: Path, board: Board, clock_mhz: float) -> dict:
    """Write the vendor scripts for ``board`` into ``<build_dir>/vivado/`` (replacing what
    was there, except a ``bitfile/`` from an earlier run) and return a summary for
    report.json: tool, entry command, files, part, clock, stream widths and DMA setup."""
    build_dir = Path(build_dir)
    if clock_mhz <= 0:
        raise BuildError(f"the fabric clock must be positive (got {clock_mhz} MHz).")
    sources, ports = load_design(build_dir)
    check_streams(ports, board)
    model = _model_name(build_dir)
    if board.is_alveo:
        if not board.platform:
            raise BuildError(f"board {board.name} has no Vitis platform in hw_build/boards.py.")
        files = alveo.scripts(board, clock_mhz, sources, ports, model)
        tool, cmd, outputs = "vitis", alveo.command(), alveo.outputs()
    elif board.family in zynq.PS:
        if not board.board_part:
            raise BuildError(f"board {board.name} has no Vivado board part in hw_build/boards.py; the "
                             "processing system preset comes from it.")
        files = zynq.scripts(board, clock_mhz, sources, ports, model)
        tool, cmd, outputs = "vivado", zynq.command(), zynq.outputs()
    else:
        raise BuildError(f"no Vivado flow for board family '{board.family}' ({board.name}).")

    out = build_dir / VIVADO_DIR
    out.mkdir(parents=True, exist_ok=True)
    for p in out.iterdir():  # stale scripts of another board or an older generator
        if p.is_file() and p.suffix in (".tcl", ".v", ".xml", ".cpp", ".cfg", ".sh", ".md"):
            p.unlink()
    for name, text in files.items():
        (out / name).write_text(text)
    if "build_xclbin.sh" in files:
        (out / "build_xclbin.sh").chmod(0o755)
    summary = {
        "tool": tool,
        "dir": VIVADO_DIR,
        "command": " ".join(cmd),
        "scripts": sorted(files),
        "outputs": outputs,
        "part": board.part,
        "clock_mhz": clock_mhz,
        "top": ports.as_dict(),
        "rtl_files": sources.verilog,
        "memory_files": sources.memories,
    }
    if board.is_alveo:
        summary["platform"] = board.platform
        summary["kernel"] = alveo.KERNEL
        summary["data_movers"] = {"mm2s": alveo.MM2S_CU, "s2mm": alveo.S2MM_CU, "memory": alveo.memory_bank(board)}
    else:
        summary["board_part"] = board.board_part
        summary["dma"] = {"cell": DMA_CELL, "mm2s_bits": ports.s_axis.width, "s2mm_bits": ports.m_axis.width,
                          "length_bits": DMA_LENGTH_BITS, "max_transfer_bytes": 2**DMA_LENGTH_BITS - 1}
    _write_readme(build_dir, board, found=False)
    return summary


def required_tools(board: Board) -> list[str]:
    return ["vivado", "v++"] if board.is_alveo else ["vivado"]


def _write_readme(build_dir: Path, board: Board, found: bool, note: str = "") -> None:
    vivado_dir = (build_dir / VIVADO_DIR).resolve()
    tools = required_tools(board)
    steps = alveo.readme_steps(vivado_dir, board) if board.is_alveo else zynq.readme_steps(vivado_dir)
    outputs = alveo.outputs() if board.is_alveo else zynq.outputs()
    if found:
        status = f"The build ran {' and '.join(tools)}; the results are in `{BITFILE_DIR}/`.{note}\n"
    else:
        status = (f"**Status: scripts only.** {' and '.join(f'`{t}`' for t in tools)} "
                  f"{'was' if len(tools) == 1 else 'were'} not on PATH when this build ran, so no bitstream "
                  f"was made.{note} The scripts here are complete: run them on a machine with the "
                  "vendor tools as follows.\n")
    text = (
        f"# Bitstream for {_model_name(build_dir)} on {board.name} ({board.part})\n\n"
        f"{status}\n"
        "## How to make it\n\n"
        f"{steps}\n"
        "## What comes out\n\n"
        + "".join(f"- `{o}`\n" for o in outputs)
        + "\nThe deploy driver (`deploy/driver.py`, `Accelerator(bitfile)`) loads exactly these names.\n"
        "Alternatively, set up the tools on the build machine and rerun `python build.py ... --from vivado`:\n"
        "the vivado step runs them itself when they are on PATH.\n"
    )
    (build_dir / VIVADO_DIR / "README.md").write_text(text)


def run_vivado(build_dir: Path, board: Board, *, timeout_s: float | None = None) -> str:
    """Run the scripts from :func:`write_scripts` if the vendor tools are on PATH.

    Returns ``"bitstream"`` when ``vivado/bitfile/`` holds the results, ``"scripts only"``
    when the tools are missing (``vivado/README.md`` then says how to run the scripts).
    Raises BuildError when a tool runs and fails (with the tail of its log)."""
    build_dir = Path(build_dir)
    vdir = build_dir / VIVADO_DIR
    entry = "build_xclbin.sh" if board.is_alveo else "build_bitstream.tcl"
    if not (vdir / entry).exists():
        raise BuildError(f"'{vdir / entry}' is missing: write the scripts first (write_scripts).")
    missing = [t for t in required_tools(board) if shutil.which(t) is None]
    if missing:
        _write_readme(build_dir, board, found=False)
        return STATUS_SCRIPTS_ONLY
    cmd = alveo.command() if board.is_alveo else zynq.command()
    log_path = vdir / "run.log"
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(cmd, cwd=vdir, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s,
                                  env=dict(os.environ))
        except subprocess.TimeoutExpired:
            raise BuildError(f"{cmd[0]} did not finish within {timeout_s:.0f} s; see {log_path}.") from None
    outputs = alveo.outputs() if board.is_alveo else zynq.outputs()
    missing_out = [o for o in outputs if not (vdir / o).exists()]
    if proc.returncode != 0 or missing_out:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise BuildError(f"'{' '.join(cmd)}' in {vdir} failed (exit {proc.returncode}"
                         f"{', missing ' + ', '.join(missing_out) if missing_out else ''}); last lines of "
                         f"{log_path}:\n{tail}")
    _write_readme(build_dir, board, found=True)
    return STATUS_BITSTREAM
