"""A hardware handoff (.hwh) derived from the design the Tcl builds (:mod:`.design_record`).

Vivado writes the .hwh of a block design next to the bitstream; pynq reads it to find the
IP cores, their drivers (by VLNV), register addresses, parameters and clocks. Where Vivado
has not run, the simulated board serves this derived one instead: the same elements and
parameters pynq's parsers (pynq 3.x ``HWH``, pynq 4.0 ``pynqmetadata``) read, with every
value taken from the recorded design, so what the Tcl says is what the driver sees.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from deploy.handoff import simulation_bitstream
from hw_build.vivado.design_record import CATALOG, PS_FACTS, DesignRecord, clock_divisors


def _module(parent: ET.Element, name: str, vlnv: str, **attrs: str) -> ET.Element:
    vendor, library, ip, version = vlnv.split(":")
    return ET.SubElement(parent, "MODULE", {
        "FULLNAME": f"/{name}", "HWVERSION": version, "INSTANCE": name, "IPTYPE": "PERIPHERAL",
        "IS_ENABLE": "1", "MODCLASS": "PERIPHERAL", "MODTYPE": ip, "VLNV": vlnv, **attrs})


def _parameters(module: ET.Element, params: dict[str, str]) -> None:
    el = ET.SubElement(module, "PARAMETERS")
    for k, v in params.items():
        ET.SubElement(el, "PARAMETER", {"NAME": k, "VALUE": str(v)})


def _ps_parameters(design: DesignRecord) -> dict[str, str]:
    ps = design.ps
    facts = PS_FACTS[ps.ip_name]
    params = {**CATALOG.get(ps.vlnv, {}), **ps.parameters}
    wanted = float(params[facts["freq"]])
    d0, d1 = clock_divisors(facts["pll_mhz"], wanted)
    params[facts["act"]] = f"{design.achieved_clock_mhz():.6f}"
    if ps.ip_name == "processing_system7":
        params.update({"PCW_FCLK0_PERIPHERAL_DIVISOR0": str(d0), "PCW_FCLK0_PERIPHERAL_DIVISOR1": str(d1),
                       "PCW_FPGA_FCLK0_ENABLE": "1", "PCW_FCLK0_PERIPHERAL_CLKSRC": "IO PLL",
                       "PCW_FCLK_CLK0_BUF": "TRUE"})
        for i in (1, 2, 3):
            params.update({f"PCW_FPGA_FCLK{i}_ENABLE": "0", f"PCW_FCLK{i}_PERIPHERAL_DIVISOR0": "1",
                           f"PCW_FCLK{i}_PERIPHERAL_DIVISOR1": "1", f"PCW_FCLK{i}_PERIPHERAL_CLKSRC": "IO PLL"})
    else:
        params.update({"PSU__CRL_APB__PL0_REF_CTRL__DIVISOR0": str(d0), "PSU__CRL_APB__PL0_REF_CTRL__DIVISOR1": str(d1),
                       "PSU__CRL_APB__PL0_REF_CTRL__SRCSEL": "IOPLL", "PSU__FPGA_PL0_ENABLE": "1"})
        for i in (1, 2, 3):
            params.update({f"PSU__FPGA_PL{i}_ENABLE": "0", f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR0": "1",
                           f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR1": "1"})
    return params


def _bus_interfaces(module: ET.Element, cell: str, design: DesignRecord) -> None:
    """The interface pins of ``cell`` that the Tcl connected, each named after its net."""
    el = ET.SubElement(module, "BUSINTERFACES")
    for a, b in design.intf_nets:
        for mine, other in ((a, b), (b, a)):
            if mine.split("/")[0] != cell:
                continue
            pin = mine.split("/")[1]
            master = pin.upper().startswith("M")
            driver = mine if master else other
            stream = "AXIS" in pin.upper()
            ET.SubElement(el, "BUSINTERFACE", {
                "BUSNAME": driver.replace("/", "_"), "NAME": pin, "TYPE": "MASTER" if master else "SLAVE",
                "VLNV": f"xilinx.com:interface:{'axis' if stream else 'aximm'}:1.0"})


def hwh_text(design: DesignRecord) -> str:
    """The .hwh (XML) of a recorded design."""
    root = ET.Element("EDKSYSTEM", {"EDWVERSION": "1.2", "TIMESTAMP": "derived from the Tcl by hw_build",
                                    "VIVADOVERSION": "none (hw_build.vivado.hwh)"})
    part = design.part or "unknown"
    ET.SubElement(root, "SYSTEMINFO", {"ARCH": "zynq" if design.ps.ip_name == "processing_system7" else "zynquplus",
                                       "DEVICE": part, "NAME": "accel_bd", "PACKAGE": "", "SPEEDGRADE": ""})
    ET.SubElement(root, "EXTERNALPORTS")
    ET.SubElement(root, "EXTERNALINTERFACES")
    modules = ET.SubElement(root, "MODULES")
    ps = design.ps
    facts = PS_FACTS[ps.ip_name]
    fclk_hz = str(int(round(design.achieved_clock_mhz() * 1e6)))
    for cell in design.cells.values():
        if cell is ps:
            mod = _module(modules, cell.name, cell.vlnv, IS_PL="FALSE", CONFIGURABLE="TRUE")
            _parameters(mod, _ps_parameters(design))
            ports = ET.SubElement(mod, "PORTS")
            ET.SubElement(ports, "PORT", {"CLKFREQUENCY": fclk_hz, "DIR": "O",
                                          "NAME": "FCLK_CLK0" if ps.ip_name == "processing_system7" else "pl_clk0",
                                          "SIGIS": "clk"})
            _bus_interfaces(mod, cell.name, design)
            mmap = ET.SubElement(mod, "MEMORYMAP")
            for target, (base, size) in design.addresses.items():
                ET.SubElement(mmap, "MEMRANGE", {
                    "ADDRESSBLOCK": "Reg", "BASENAME": "C_BASEADDR", "BASEVALUE": f"0x{base:08X}",
                    "HIGHNAME": "C_HIGHADDR", "HIGHVALUE": f"0x{base + size - 1:08X}", "INSTANCE": target,
                    "IS_DATA": "TRUE", "IS_INSTRUCTION": "TRUE", "MASTERBUSINTERFACE": facts["master"],
                    "MEMTYPE": "REGISTER", "SLAVEBUSINTERFACE": "S_AXI_LITE"})
            continue
        mod = _module(modules, cell.name, cell.vlnv)
        params = {**CATALOG.get(cell.vlnv, {}), **cell.parameters}
        if cell.vlnv == design.ip.vlnv:
            params = {**design.ip.user_parameters, **params}
        if cell.name in design.addresses:
            base, size = design.addresses[cell.name]
            params.update({"C_BASEADDR": f"0x{base:08X}", "C_HIGHADDR": f"0x{base + size - 1:08X}"})
        params["Component_Name"] = f"accel_bd_{cell.name}_0"
        _parameters(mod, params)
        ports = ET.SubElement(mod, "PORTS")
        for net in design.nets:
            for pin in net:
                if pin.split("/")[0] == cell.name and any(p.startswith(f"{ps.name}/") and "CLK" in p.upper()
                                                          for p in net):
                    ET.SubElement(ports, "PORT", {"CLKFREQUENCY": fclk_hz, "DIR": "I", "NAME": pin.split("/")[1],
                                                  "SIGIS": "clk"})
        _bus_interfaces(mod, cell.name, design)
    ET.indent(root, "  ")
    return '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_simulation_bitfile(design: DesignRecord, out_dir: Path, basename: str, identity: str) -> tuple[Path, Path]:
    """``<basename>.hwh`` derived from the design and ``<basename>.bit``: a stand-in that says
    it is one (the simulated board programs the RTL of the build with interface digest
    ``identity`` instead)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hwh = out_dir / f"{basename}.hwh"
    bit = out_dir / f"{basename}.bit"
    hwh.write_text(hwh_text(design))
    bit.write_bytes(simulation_bitstream(identity, design.part or "unknown"))
    return bit, hwh
