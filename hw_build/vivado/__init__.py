"""The vivado step: vendor scripts that turn ``<build>/rtl`` into a bitstream.

- :func:`write_scripts` writes ``<build>/vivado/``: for Zynq boards, IP packaging, a block
  design (processing system + AXI DMA + accelerator) and the synthesis/implementation/
  bitstream run (:mod:`hw_build.vivado.zynq`); for Alveo cards, an RTL kernel, data
  movers and a ``v++`` link configuration (:mod:`hw_build.vivado.alveo`).
- :func:`run_vivado` runs them when the vendor tools are on PATH, copying the results to
  ``<build>/vivado/bitfile/``; otherwise it writes ``vivado/README.md`` with the exact
  commands. Returns ``"bitstream"`` or ``"scripts only"``.

Port names, widths, the clock and the DMA setup come from the build's interface record
(``interface.json``, :mod:`hw_build.interface`), written once by the rtl step.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from deploy.interface import INTERFACE_NAME, AcceleratorInterface
from hw_build.boards import Board
from hw_build.errors import BuildError
from hw_build.vivado import alveo, zynq
from hw_build.vivado import hwh as hwh_module
from hw_build.vivado.common import (
    BITFILE_BASENAME,
    BITFILE_DIR,
    check_streams,
    load_design,
    top_ports,
)
from hw_build.vivado.design_record import record_design

STATUS_BITSTREAM = "bitstream"
STATUS_SCRIPTS_ONLY = "scripts only"
VIVADO_DIR = "vivado"
#: what the simulated board serves where Vivado has not run: vivado/simulation/accel.{bit,hwh}
SIMULATION_DIR = "simulation"

__all__ = ["STATUS_BITSTREAM", "STATUS_SCRIPTS_ONLY", "required_tools", "run_vivado", "write_scripts"]


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
    sources, record = load_design(build_dir)
    if abs(record.clock_mhz - clock_mhz) > 1e-6:
        raise BuildError(f"interface.json was written for {record.clock_mhz:g} MHz, this build asks for "
                         f"{clock_mhz:g} MHz: rerun from the rtl step (--from rtl).")
    check_streams(record, board)
    ports = top_ports(record)
    model = _model_name(build_dir)
    if board.is_alveo:
        if not board.platform:
            raise BuildError(f"board {board.name} has no Vitis platform in hw_build/boards.py.")
        files = alveo.scripts(board, sources, record, model)
        tool, cmd, outputs = "vitis", alveo.command(), alveo.outputs()
    elif board.family in zynq.PS:
        if not board.board_part:
            raise BuildError(f"board {board.name} has no Vivado board part in hw_build/boards.py; the "
                             "processing system preset comes from it.")
        files = zynq.scripts(board, sources, record, model)
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
    if not board.is_alveo:
        summary["simulation"] = write_simulation_bitfile(build_dir, record)
    if board.is_alveo:
        summary["platform"] = board.platform
        summary["kernel"] = alveo.KERNEL
        summary["data_movers"] = {"mm2s": alveo.MM2S_CU, "s2mm": alveo.S2MM_CU, "memory": alveo.memory_bank(board)}
    else:
        summary["board_part"] = board.board_part
        summary["dma"] = {"cell": record.dma_cell, "ip": record.dma_vlnv, "mm2s_bits": record.in_bits,
                          "s2mm_bits": record.out_bits, "length_bits": record.dma_length_bits,
                          "max_transfer_bytes": record.max_transfer_bytes}
    _write_readme(build_dir, board, found=False)
    return summary


def write_simulation_bitfile(build_dir: Path, record: AcceleratorInterface) -> dict:
    """Run the block design's Tcl under stubbed Vivado commands and write what the simulated
    board serves: ``vivado/simulation/accel.hwh`` derived from the recorded design, and a
    stand-in ``accel.bit`` naming the interface record it belongs to."""
    design = record_design(Path(build_dir) / VIVADO_DIR)
    identity = hashlib.sha256((Path(build_dir) / INTERFACE_NAME).read_bytes()).hexdigest()
    out = Path(build_dir) / VIVADO_DIR / SIMULATION_DIR
    bit, hwh = hwh_module.write_simulation_bitfile(design, out, BITFILE_BASENAME, identity)
    dma = design.cell_of("axi_dma")
    return {"dir": f"{VIVADO_DIR}/{SIMULATION_DIR}", "files": [bit.name, hwh.name],
            "dma_ip": dma[0].vlnv if dma else None, "fclk_mhz": round(design.achieved_clock_mhz(), 6),
            "interface_sha256": identity}


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
