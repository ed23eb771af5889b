"""What every vendor script needs: the RTL file list, the DMA/stream parameters, Tcl quoting."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from deploy.interface import ACCEL_CELL, DMA_CELL, IP_LIBRARY, IP_VENDOR, IP_VERSION, AcceleratorInterface
from hw_build import interface
from hw_build.boards import Board
from hw_build.errors import BuildError

__all__ = ["ACCEL_CELL", "BITFILE_BASENAME", "BITFILE_DIR", "DMA_CELL", "IP_LIBRARY", "IP_VENDOR", "IP_VERSION",
           "Port", "RtlSources", "Stream", "TopPorts", "load_design", "tcl_project_with_rtl", "top_ports"]

#: stream widths the AXI DMA supports on its stream side
DMA_STREAM_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)
MEMORY_SUFFIXES = (".mem", ".dat", ".hex", ".coe")
#: the design's Verilog: modules, and the include files (.vh) the library modules `include
VERILOG_SUFFIXES = (".v", ".sv", ".vh")

#: names the driver and the deploy package expect
BITFILE_DIR = "bitfile"
BITFILE_BASENAME = "accel"


def tcl_project_with_rtl(project: str, first_sources: str = "{}") -> str:
    """Tcl that creates the Vivado project ``project`` under $here and adds the design's
    Verilog (after ``first_sources``, a Tcl list), its include files and its memory
    initialization files; the IP and the kernel packaging scripts both start with it."""
    return f"""\
create_project -force {project} [file join $here {project}] -part $part
set_property target_language Verilog [current_project]
set sources {first_sources}
""" + """\
foreach f $rtl_files { lappend sources [file join $rtl_dir $f] }
add_files -norecurse $sources
# the library's include files: headers found next to the modules that `include them
foreach f [get_files -quiet *.vh] { set_property file_type {Verilog Header} $f }
if {[llength $mem_files]} {
    set mems {}
    foreach f $mem_files { lappend mems [file join $rtl_dir $f] }
    add_files -norecurse $mems
    # $readmemh finds these by file name during synthesis
    foreach f $mems { catch {set_property file_type {Memory Initialization Files} [get_files $f]} }
}
"""


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input" | "output" | "inout"
    width: int


@dataclass(frozen=True)
class Stream:
    """One AXI-Stream interface: ``<prefix>_tdata/tvalid/tready[/tlast]``."""

    prefix: str
    width: int
    has_tlast: bool

    def signals(self) -> list[str]:
        sigs = ["tdata", "tvalid", "tready"] + (["tlast"] if self.has_tlast else [])
        return [f"{self.prefix}_{s}" for s in sigs]


@dataclass(frozen=True)
class TopPorts:
    """The ports of the accelerator top, as the block design and kernel wrapper need them."""

    module: str
    ports: dict[str, Port]
    clock: str
    reset: str
    reset_active_low: bool
    s_axis: Stream  # the pixel input (slave)
    m_axis: Stream  # the label output (master)

    def as_dict(self) -> dict:
        return {
            "module": self.module,
            "clock": self.clock,
            "reset": self.reset,
            "reset_polarity": "ACTIVE_LOW" if self.reset_active_low else "ACTIVE_HIGH",
            "s_axis": {"prefix": self.s_axis.prefix, "width": self.s_axis.width, "tlast": self.s_axis.has_tlast},
            "m_axis": {"prefix": self.m_axis.prefix, "width": self.m_axis.width, "tlast": self.m_axis.has_tlast},
        }


def top_ports(record: AcceleratorInterface) -> TopPorts:
    """The top's ports as the interface record names them (both streams carry tlast)."""
    s_in = Stream(record.in_prefix, record.in_bits, True)
    s_out = Stream(record.out_prefix, record.out_bits, True)
    ports = {record.clock_port: Port(record.clock_port, "input", 1),
             record.reset_port: Port(record.reset_port, "input", 1)}
    for stream, direction in ((s_in, "input"), (s_out, "output")):
        back = "output" if direction == "input" else "input"
        for sig in stream.signals():
            width = stream.width if sig.endswith("_tdata") else 1
            ports[sig] = Port(sig, back if sig.endswith("_tready") else direction, width)
    return TopPorts(record.top, ports, record.clock_port, record.reset_port, record.reset_active_low, s_in, s_out)


@dataclass(frozen=True)
class RtlSources:
    top: str
    verilog: list[str]   # file names inside rtl/
    memories: list[str]  # memory init files inside rtl/ ($readmemh by file name)


def rtl_sources(rtl_dir: Path) -> RtlSources:
    """The files of the generated design: the code generator's manifest when there is one,
    otherwise every Verilog and memory-init file in ``rtl/``."""
    rtl_dir = Path(rtl_dir)
    if not rtl_dir.is_dir():
        raise BuildError(f"'{rtl_dir}' does not exist: run the build through the rtl step first.")
    manifest = rtl_dir / "rtl_manifest.json"
    if manifest.exists():
        info = json.loads(manifest.read_text())
        top = info.get("top", "accel_top")
        verilog = [f for f in info["files"] if f.endswith(VERILOG_SUFFIXES)]
        memories = list(info.get("memories", []))
    else:
        top = "accel_top"
        verilog = sorted(p.name for p in rtl_dir.iterdir() if p.suffix in VERILOG_SUFFIXES)
        memories = sorted(p.name for p in rtl_dir.iterdir() if p.suffix in MEMORY_SUFFIXES)
    missing = [f for f in verilog + memories if not (rtl_dir / f).exists()]
    if missing:
        raise BuildError(f"RTL files listed for {top} are missing from '{rtl_dir}': {missing}. "
                         "Regenerate the RTL (build step 'rtl').")
    if not verilog:
        raise BuildError(f"no Verilog files in '{rtl_dir}'.")
    return RtlSources(top, verilog, memories)


def check_streams(record: AcceleratorInterface, board: Board) -> None:
    if record.in_bits != board.dma_bits:
        raise BuildError(f"the accelerator input stream {record.in_prefix} is {record.in_bits} bits wide, "
                         f"but {board.name} moves {board.dma_bits}-bit words: regenerate the RTL for this board "
                         f"(dma_bits={board.dma_bits}).")
    if not board.is_alveo and record.out_bits not in DMA_STREAM_WIDTHS:
        raise BuildError(f"the AXI DMA cannot receive a {record.out_bits}-bit stream (it supports "
                         f"{', '.join(map(str, DMA_STREAM_WIDTHS))} bits).")


def load_design(build_dir: Path) -> tuple[RtlSources, AcceleratorInterface]:
    """The RTL files and the interface record (interface.json) of a build folder."""
    build_dir = Path(build_dir)
    src = rtl_sources(build_dir / "rtl")
    record = interface.read(build_dir)
    if record.top != src.top:
        raise BuildError(f"interface.json describes module {record.top}, rtl/ holds {src.top}: rerun the rtl step.")
    return src, record


def tcl_word(value: object) -> str:
    """A Tcl word that reads back as ``str(value)`` (braced unless it is a plain token)."""
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9_.:/+\-]+", text):
        return text
    if "{" in text or "}" in text or "\\" in text:
        return '"' + re.sub(r'([\\"$\[\]])', r"\\\1", text) + '"'
    return "{" + text + "}"


def tcl_list(items: list[str]) -> str:
    return "[list " + " ".join(tcl_word(i) for i in items) + "]" if items else "[list]"


def fmt_mhz(value: float) -> str:
    return f"{value:g}"


HEADER = """\
# Generated by hw_build.vivado for {model} on {board} ({part}); regenerate instead of editing.
"""
