"""What the driver reads from a bitstream and its hardware handoff (.hwh) before pynq loads
them, so that a mismatch is a named error instead of a hang or a wrong label: the AXI DMA
cells with their IP versions and parameters, the accelerator cell's interface parameters,
and the PL clock the processing system was configured for.

Also the simulation stand-in bitstream: a valid .bit header (pynq parses it) whose design
field says it is one and names the build (its interface record's digest); it carries no
configuration data. Plain stdlib: it runs on the board.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

SIM_DESIGN_PREFIX = "hw_build_simulation"


class HandoffError(RuntimeError):
    """The bitstream or its .hwh is not what the deploy package describes."""


@dataclass
class Cell:
    name: str
    vlnv: str
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def ip_name(self) -> str:
        parts = self.vlnv.split(":")
        return parts[2] if len(parts) == 4 else ""

    @property
    def version(self) -> str:
        return self.vlnv.split(":")[-1]


@dataclass
class Handoff:
    path: Path
    cells: dict[str, Cell]
    ps: Cell | None

    def cells_of(self, ip_name: str) -> list[Cell]:
        return [c for c in self.cells.values() if c.ip_name == ip_name]

    def pl_clock_mhz(self, index: int = 0) -> tuple[float | None, float | None]:
        """(requested, achieved) FCLK<index> / pl_clk<index> in MHz as the PS was configured."""
        if self.ps is None:
            return None, None
        p = self.ps.parameters
        keys = {"processing_system7": (f"PCW_FPGA{index}_PERIPHERAL_FREQMHZ", f"PCW_ACT_FPGA{index}_PERIPHERAL_FREQMHZ"),
                "zynq_ultra_ps_e": (f"PSU__CRL_APB__PL{index}_REF_CTRL__FREQMHZ",
                                    f"PSU__CRL_APB__PL{index}_REF_CTRL__ACT_FREQMHZ")}.get(self.ps.ip_name)
        if keys is None:
            return None, None

        def num(key: str) -> float | None:
            try:
                return float(p[key])
            except (KeyError, ValueError):
                return None

        return num(keys[0]), num(keys[1])


def read_handoff(path: Path) -> Handoff:
    path = Path(path)
    if not path.exists():
        raise HandoffError(f"'{path}' is missing: pynq needs the hardware handoff file next to the bitstream "
                           "(same name, .hwh). Copy both from the build's vivado/bitfile/.")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise HandoffError(f"'{path}' is not a valid .hwh (XML): {exc}. Copy it again from the build.") from None
    cells: dict[str, Cell] = {}
    ps = None
    for mod in root.iter("MODULE"):
        name = mod.get("INSTANCE") or ""
        params = {p.get("NAME", ""): p.get("VALUE", "") for p in mod.iter("PARAMETER")}
        # bus-interface parameters are nested deeper; keep only the module's own
        own = mod.find("PARAMETERS")
        if own is not None:
            params = {p.get("NAME", ""): p.get("VALUE", "") for p in own.findall("PARAMETER")}
        cell = Cell(name, mod.get("VLNV") or "", params)
        cells[name] = cell
        if mod.get("MODTYPE") in ("processing_system7", "zynq_ultra_ps_e"):
            ps = cell
    return Handoff(path, cells, ps)


def simulation_bitstream(identity: str, part: str) -> bytes:
    """A .bit pynq can parse whose design field names it a simulation stand-in of the build
    whose interface record has digest ``identity``; no configuration data."""
    def fld(tag: bytes, text: str) -> bytes:
        data = text.encode("ascii") + b"\0"
        return tag + struct.pack(">h", len(data)) + data

    head = struct.pack(">h", 9) + bytes.fromhex("0ff00ff00ff00ff000") + struct.pack(">h", 1)
    return (head + fld(b"a", f"{SIM_DESIGN_PREFIX};identity={identity};Version=none")
            + fld(b"b", part) + fld(b"c", "2026/01/01") + fld(b"d", "00:00:00") + b"e" + struct.pack(">i", 0))


def bitstream_design(path: Path) -> str:
    """The design field of a .bit header ("" when there is none)."""
    data = Path(path).read_bytes()[:4096]
    pos = data.find(b"a\0")
    if pos < 0:
        return ""
    n = struct.unpack(">h", data[pos + 1:pos + 3])[0]
    return data[pos + 3:pos + 3 + n].rstrip(b"\0").decode("ascii", "replace")


def simulation_identity(path: Path) -> str | None:
    """The build digest of a simulation stand-in bitstream, None for a real bitstream."""
    design = bitstream_design(path)
    if not design.startswith(SIM_DESIGN_PREFIX):
        return None
    fields = dict(f.split("=", 1) for f in design.split(";")[1:] if "=" in f)
    return fields.get("identity", "")
