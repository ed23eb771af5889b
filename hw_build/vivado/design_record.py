"""Run the generated Vivado Tcl (settings, IP packaging, block design) under a real Tcl
interpreter (Python's ``tkinter.Tcl()``) with the Vivado commands stubbed, and record the
design the scripts build: cells with their IP versions and CONFIG values, interface and
net connections, the address map, and the packaged accelerator IP.

The record is the one source of the simulated board's hardware handoff (:mod:`.hwh`): a
renamed cell, another IP version or a changed width in the Tcl changes the .hwh the
driver loads, exactly as a Vivado run would. The stubs check what Vivado would refuse
(unknown IP versions, missing cells, unconnected or mismatched streams) and raise
:class:`TclDesignError` with the Tcl error message.
"""

from __future__ import annotations

import fnmatch
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from deploy.handoff import Cell  # one block-design cell: name, VLNV, its CONFIG values
from hw_build.errors import BuildError

#: the IP catalog of the stubbed Vivado: VLNV -> default CONFIG values (what a cell has
#: before set_property; PG021 for the AXI DMA, PG082/PG201 for the processing systems)
CATALOG: dict[str, dict[str, str]] = {
    "xilinx.com:ip:axi_dma:7.1": {
        "c_include_sg": "1", "c_sg_length_width": "14", "c_sg_include_stscntrl_strm": "1",
        "c_include_mm2s": "1", "c_include_s2mm": "1", "c_m_axi_mm2s_data_width": "32",
        "c_m_axis_mm2s_tdata_width": "32", "c_m_axi_s2mm_data_width": "32", "c_s_axis_s2mm_tdata_width": "32",
        "c_include_mm2s_dre": "0", "c_include_s2mm_dre": "0", "c_mm2s_burst_size": "16",
        "c_s2mm_burst_size": "16", "c_addr_width": "32", "c_micro_dma": "0", "c_enable_multi_channel": "0",
        "c_num_mm2s_channels": "1", "c_num_s2mm_channels": "1", "c_single_interface": "0",
    },
    "xilinx.com:ip:processing_system7:5.5": {
        "PCW_FPGA0_PERIPHERAL_FREQMHZ": "50", "PCW_USE_M_AXI_GP0": "1", "PCW_USE_S_AXI_HP0": "0",
        "PCW_S_AXI_HP0_DATA_WIDTH": "64", "PCW_EN_CLK0_PORT": "1", "PCW_EN_RST0_PORT": "1",
    },
    "xilinx.com:ip:zynq_ultra_ps_e:3.5": {
        "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ": "100", "PSU__USE__M_AXI_GP0": "1", "PSU__USE__S_AXI_GP2": "0",
        "PSU__SAXIGP2__DATA_WIDTH": "128", "PSU__FPGA_PL0_ENABLE": "1",
    },
    "xilinx.com:ip:smartconnect:1.0": {"NUM_SI": "1", "NUM_MI": "1"},
    "xilinx.com:ip:proc_sys_reset:5.0": {},
}

#: PLL feeding FCLK0 / pl_clk0 and where the PS maps PL peripherals (GP0 / HPM0_FPD)
PS_FACTS = {
    "processing_system7": {"pll_mhz": 1000.0, "pl_base": 0x40400000, "master": "M_AXI_GP0",
                           "freq": "PCW_FPGA0_PERIPHERAL_FREQMHZ", "act": "PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ"},
    "zynq_ultra_ps_e": {"pll_mhz": 1500.0, "pl_base": 0xA0000000, "master": "M_AXI_HPM0_FPD",
                        "freq": "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ",
                        "act": "PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ"},
}
ADDRESS_RANGE = 0x10000


class TclDesignError(BuildError):
    """The Tcl failed as Vivado would fail on it."""


def clock_divisors(pll_mhz: float, wanted_mhz: float) -> tuple[int, int]:
    """The two 6-bit PS clock dividers closest to ``wanted_mhz`` (the first the smaller)."""
    best = min(((d0, d1) for d0 in range(1, 64) for d1 in range(1, 64) if d0 <= d1 or d1 == 1),
               key=lambda d: (abs(pll_mhz / (d[0] * d[1]) - wanted_mhz), d[1], d[0]))
    return best


@dataclass
class PackagedIp:
    """What package_ip.tcl made of rtl/: name, version, bus interfaces, user parameters."""

    vendor: str = ""
    library: str = ""
    name: str = ""
    version: str = ""
    bus_interfaces: dict[str, dict] = field(default_factory=dict)  # name -> {vlnv, ports, mode}
    user_parameters: dict[str, str] = field(default_factory=dict)

    @property
    def vlnv(self) -> str:
        return f"{self.vendor}:{self.library}:{self.name}:{self.version}"


@dataclass
class DesignRecord:
    part: str = ""
    board_part: str = ""
    cells: dict[str, Cell] = field(default_factory=dict)
    intf_nets: list[tuple[str, str]] = field(default_factory=list)  # ("cell/PIN", "cell/PIN")
    nets: list[list[str]] = field(default_factory=list)
    addresses: dict[str, tuple[int, int]] = field(default_factory=dict)  # cell -> (base, range)
    ip: PackagedIp = field(default_factory=PackagedIp)
    log: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)

    def cell_of(self, ip_name: str) -> list[Cell]:
        return [c for c in self.cells.values() if c.ip_name == ip_name]

    @property
    def ps(self) -> Cell:
        cells = [c for c in self.cells.values() if c.ip_name in PS_FACTS]
        if len(cells) != 1:
            raise TclDesignError(f"the block design has {len(cells)} processing systems, expected one")
        return cells[0]

    def achieved_clock_mhz(self) -> float:
        facts = PS_FACTS[self.ps.ip_name]
        d0, d1 = clock_divisors(facts["pll_mhz"], float(self.ps.parameters[facts["freq"]]))
        return facts["pll_mhz"] / (d0 * d1)


class _Vivado:
    """The stubbed Vivado commands, registered into one Tcl interpreter."""

    def __init__(self, tcl, catalog: dict[str, dict[str, str]]) -> None:
        self.tcl = tcl
        self.catalog = {k: dict(v) for k, v in catalog.items()}
        self.rec = DesignRecord()
        self.objects: dict[str, dict] = {}  # handle -> properties
        self.nested_depth = 0

    # -------------------------------------------------------------- helpers
    def split(self, text: str) -> list[str]:
        return [str(x) for x in self.tcl.splitlist(text)] if text else []

    def fail(self, message: str) -> None:
        raise TclDesignError(message)

    def options(self, args: tuple[str, ...], flags: set[str], valued: set[str]) -> tuple[dict, list[str]]:
        opts: dict[str, str | bool] = {}
        rest: list[str] = []
        it = iter(args)
        for a in it:
            if a in flags:
                opts[a] = True
            elif a in valued:
                opts[a] = next(it, "")
            else:
                rest.append(a)
        return opts, rest

    def objects_of(self, text: str) -> list[str]:
        handles = self.split(text)
        if not handles:
            self.fail("set_property: no objects given (the object query found nothing)")
        return handles

    # -------------------------------------------------------------- generic
    def noop(self, *args: str) -> str:
        return ""

    def puts(self, *args: str) -> str:
        words = [a for a in args if a != "-nonewline"]
        self.rec.log.append(words[-1] if words else "")
        return ""

    def current_project(self, *args: str) -> str:
        return "project"

    def current_fileset(self, *args: str) -> str:
        return "fileset"

    def create_project(self, *args: str) -> str:
        opts, rest = self.options(args, {"-force"}, {"-part"})
        if "-part" in opts:
            self.rec.part = str(opts["-part"])
        return "project"

    def get_param(self, *args: str) -> str:
        return ""

    def get_board_parts(self, *args: str) -> str:
        _, rest = self.options(args, {"-quiet"}, set())
        return rest[0] if rest else ""

    def set_property(self, *args: str) -> str:
        if args and args[0] == "-dict":
            pairs = self.split(args[1])
            targets = self.objects_of(args[2])
        else:
            pairs = [args[0], args[1]]
            targets = self.objects_of(args[2])
        for handle in targets:
            for key, value in zip(pairs[0::2], pairs[1::2]):
                self.set_one(handle, key, value)
        return ""

    def set_one(self, handle: str, key: str, value: str) -> None:
        kind, _, name = handle.partition(":")
        if handle == "project" and key == "board_part":
            self.rec.board_part = value
        elif kind == "cell":
            cell = self.rec.cells[name]
            if not key.startswith("CONFIG."):
                self.fail(f"set_property {key}: cells take CONFIG.* properties")
            param = key[len("CONFIG."):]
            defaults = self.catalog.get(cell.vlnv, {})
            if defaults and param not in defaults and cell.ip_name not in ("processing_system7", "zynq_ultra_ps_e"):
                self.fail(f"set_property {key}: {cell.vlnv} has no parameter {param}")
            cell.parameters[param] = value
        elif kind == "core":
            ip = self.rec.ip
            if key in ("name", "version"):
                setattr(ip, key, value)
        elif kind == "uparam":
            if key == "value":
                self.rec.ip.user_parameters[name] = value
        elif kind == "busparam":
            self.objects.setdefault(handle, {})[key] = value
        # other properties (file types, top, ip_repo_paths...) do not change the design

    def get_property(self, key: str, handle: str) -> str:
        kind, _, name = handle.partition(":")
        if kind == "cell" and key.startswith("CONFIG."):
            cell = self.rec.cells[name]
            param = key[len("CONFIG."):]
            if cell.ip_name in PS_FACTS and param == PS_FACTS[cell.ip_name]["act"]:
                return f"{self.rec.achieved_clock_mhz():.6f}"
            return cell.parameters.get(param, self.catalog.get(cell.vlnv, {}).get(param, ""))
        if kind == "pm":
            return name.split("|", 1)[1]
        if kind == "busif" and key == "name":
            return name
        return ""

    # -------------------------------------------------------------- IP packager
    def ipx(self, sub: str, *args: str) -> str:
        ip = self.rec.ip
        if sub == "package_project":
            opts, _ = self.options(args, {"-import_files", "-set_current"}, {"-root_dir", "-vendor", "-library",
                                                                             "-taxonomy"})
            ip.vendor, ip.library = str(opts.get("-vendor", "")), str(opts.get("-library", ""))
            return ""
        if sub in IPX_HANDLES:
            return IPX_HANDLES[sub].format(*args)
        if sub == "get_bus_interfaces":
            opts, rest = self.options(args, set(), {"-of_objects"})
            if rest:
                return f"busif:{rest[0]}" if rest[0] in ip.bus_interfaces else ""
            return " ".join(f"busif:{n}" for n in ip.bus_interfaces)
        if sub == "get_port_maps":
            opts, _ = self.options(args, set(), {"-of_objects"})
            bi = str(opts["-of_objects"])
            bi = bi.split(":", 1)[1] if ":" in bi else bi
            return " ".join(f"pm:{bi}|{p}" for p in ip.bus_interfaces[bi]["ports"])
        if sub == "infer_bus_interface":
            ports, vlnv = self.split(args[0]), args[1]
            if vlnv.endswith("axis_rtl:1.0"):
                name = ports[0].rsplit("_", 1)[0]
                mode = "slave" if name.startswith("s_") else "master"
            else:
                name, mode = ports[0], "slave"
            ip.bus_interfaces[name] = {"vlnv": vlnv, "ports": ports, "mode": mode}
            return ""
        if sub == "save_core":
            self.catalog[ip.vlnv] = dict(ip.user_parameters)
            return ""
        return ""  # associate_bus_interfaces, create_xgui_files, update_checksums, check_integrity

    # -------------------------------------------------------------- block design
    def get_ipdefs(self, *args: str) -> str:
        _, rest = self.options(args, {"-all"}, set())
        pattern = rest[0] if rest else "*"
        return " ".join(v for v in sorted(self.catalog) if fnmatch.fnmatchcase(v, pattern))

    def create_bd_cell(self, *args: str) -> str:
        opts, rest = self.options(args, set(), {"-type", "-vlnv"})
        vlnv, name = str(opts.get("-vlnv", "")), rest[0]
        if vlnv not in self.catalog:
            self.fail(f"create_bd_cell: IP definition '{vlnv}' for cell '{name}' is not in the IP catalog")
        if name in self.rec.cells:
            self.fail(f"create_bd_cell: a cell named '{name}' exists already")
        self.rec.cells[name] = Cell(name, vlnv)
        return f"cell:{name}"

    def get_bd_cells(self, *args: str) -> str:
        _, rest = self.options(args, {"-quiet"}, {"-hierarchical", "-filter"})
        return " ".join(f"cell:{n}" for n in rest if n in self.rec.cells)

    def get_bd_intf_pins(self, *args: str) -> str:
        opts, rest = self.options(args, set(), {"-of_objects", "-filter"})
        if "-of_objects" in opts:
            cell = str(opts["-of_objects"]).partition(":")[2]
            if cell != self.rec.cells.get(cell, Cell("", "")).name or self.rec.cells[cell].vlnv != self.rec.ip.vlnv:
                self.fail(f"get_bd_intf_pins -of_objects: '{cell}' is not a cell of the packaged accelerator")
            mode = "slave" if "Slave" in str(opts.get("-filter", "")) else "master"
            return " ".join(f"ipin:{cell}/{n}" for n, b in self.rec.ip.bus_interfaces.items()
                            if b["mode"] == mode and b["vlnv"].endswith("axis_rtl:1.0"))
        found = []
        for path in rest:
            cell = path.split("/")[0]
            if cell in self.rec.cells:
                found.append(f"ipin:{path}")
        return " ".join(found)

    def get_bd_pins(self, *args: str) -> str:
        return " ".join(f"pin:{p}" for p in args if p.split("/")[0] in self.rec.cells)

    def connect_bd_intf_net(self, a: str, b: str) -> str:
        if not a or not b:
            self.fail(f"connect_bd_intf_net: an interface pin does not exist ('{a}' to '{b}')")
        self.rec.intf_nets.append((a.partition(":")[2], b.partition(":")[2]))
        return ""

    def connect_bd_net(self, *args: str) -> str:
        pins = [p.partition(":")[2] for a in args for p in self.split(a)]
        if len(pins) < 2:
            self.fail(f"connect_bd_net: fewer than two pins exist among {list(args)}")
        self.rec.nets.append(pins)
        return ""

    def assign_bd_address(self, *args: str) -> str:
        facts = PS_FACTS[self.rec.ps.ip_name]
        base = facts["pl_base"]
        for cell in self.rec.cells.values():
            if cell.ip_name == "axi_dma":
                self.rec.addresses[cell.name] = (base, ADDRESS_RANGE)
                base += ADDRESS_RANGE
        return ""

    def validate_bd_design(self, *args: str) -> str:
        """What Vivado's validation would reject about the DMA's streams."""
        for dma in self.rec.cell_of("axi_dma"):
            cfg = {**self.catalog[dma.vlnv], **dma.parameters}
            for pin, key in (("M_AXIS_MM2S", "c_m_axis_mm2s_tdata_width"), ("S_AXIS_S2MM", "c_s_axis_s2mm_tdata_width")):
                peers = [b if a == f"{dma.name}/{pin}" else a for a, b in self.rec.intf_nets
                         if f"{dma.name}/{pin}" in (a, b)]
                if len(peers) != 1:
                    self.fail(f"validate_bd_design: {dma.name}/{pin} is not connected to one interface")
                cell, busif = peers[0].split("/")
                if self.rec.cells[cell].vlnv == self.rec.ip.vlnv:
                    width = self.stream_width(busif)
                    if width != int(cfg[key]):
                        self.fail(f"validate_bd_design: {dma.name}/{pin} is {cfg[key]} bits wide, "
                                  f"{cell}/{busif} {width} bits (TDATA_NUM_BYTES mismatch)")
        return ""

    def stream_width(self, busif: str) -> int:
        """Width of an accelerator stream, from the user parameters the packaged IP carries."""
        params = self.rec.ip.user_parameters
        key = "IN_BITS" if self.rec.ip.bus_interfaces[busif]["mode"] == "slave" else "OUT_BITS"
        if key not in params:
            self.fail(f"the packaged accelerator IP has no {key} parameter (package_ip.tcl)")
        return int(params[key])

    def get_files(self, *args: str) -> str:
        return " ".join(a for a in args if not a.startswith("-"))

    def make_wrapper(self, *args: str) -> str:
        return ""


TCL_COMMANDS = [
    "create_project", "set_property", "get_property", "current_project", "current_fileset", "get_param", "get_board_parts",
    "get_ipdefs", "create_bd_cell", "get_bd_cells", "get_bd_intf_pins", "get_bd_pins", "connect_bd_intf_net",
    "connect_bd_net", "assign_bd_address", "validate_bd_design", "get_files", "make_wrapper", "puts",
]
NO_OPS = ["set_param", "update_ip_catalog", "create_bd_design", "apply_bd_automation", "save_bd_design",
          "generate_target", "add_files", "update_compile_order", "close_project", "ipgui::add_param"]
#: ipx:: subcommands the record only answers, with a handle (``{0}``: their first argument)
#: for the commands after them to pass back
IPX_HANDLES = {
    "current_core": "core:accel",
    "add_user_parameter": "uparam:{0}",
    "get_bus_parameters": "",
    "add_bus_parameter": "busparam:{0}",
}
IPX_SUBCOMMANDS = ["package_project", "current_core", "add_user_parameter", "get_bus_interfaces", "get_port_maps",
                   "infer_bus_interface", "associate_bus_interfaces", "get_bus_parameters", "add_bus_parameter",
                   "create_xgui_files", "update_checksums", "check_integrity", "save_core"]


_ERROR = "__tcl_design_error__:"


def _register(tcl, name: str, fn) -> None:
    """A Tcl command ``name`` running ``fn``; a TclDesignError becomes a Tcl error with its
    message (tkinter drops the message of an exception raised inside a callback)."""

    def call(*args: str) -> str:
        try:
            return fn(*args)
        except TclDesignError as exc:
            return _ERROR + str(exc)

    py_name = "::__py_" + name.replace("::", "_")
    tcl.createcommand(py_name, call)
    tcl.eval(f"proc {name} {{args}} {{ set r [{py_name} {{*}}$args]; "
             f"if {{[string first \"{_ERROR}\" $r] == 0}} {{ error [string range $r {len(_ERROR)} end] }}; "
             "return $r }")


def record_design(vivado_dir: Path, catalog: dict[str, dict[str, str]] | None = None,
                  scripts: tuple[str, ...] = ("package_ip.tcl", "block_design.tcl")) -> DesignRecord:
    """Source the scripts of ``vivado_dir`` (each sources settings.tcl itself) under stubbed
    Vivado commands and return the design they build."""
    import tkinter

    vivado_dir = Path(vivado_dir)
    with tempfile.TemporaryDirectory(prefix="tcl_design.") as tmp:
        # a copy: the scripts compute their paths from [info script] and delete/create folders there
        work = Path(tmp) / "vivado"
        work.mkdir()
        for f in vivado_dir.glob("*.tcl"):
            shutil.copyfile(f, work / f.name)
        (Path(tmp) / "rtl").mkdir()
        tcl = tkinter.Tcl()
        viv = _Vivado(tcl, CATALOG if catalog is None else catalog)
        tcl.eval("namespace eval ipx {}; namespace eval ipgui {}")
        commands = {name: getattr(viv, name) for name in TCL_COMMANDS}
        commands.update({name: viv.noop for name in NO_OPS})
        commands.update({f"ipx::{sub}": (lambda *a, _s=sub: viv.ipx(_s, *a)) for sub in IPX_SUBCOMMANDS})
        for name, fn in commands.items():
            _register(tcl, name, fn)
        for script in scripts:
            path = work / script
            if not path.exists():
                raise TclDesignError(f"'{vivado_dir / script}' is missing: write the Vivado scripts first.")
            try:
                tcl.eval(f"source {{{path.as_posix()}}}")
            except tkinter.TclError as exc:
                raise TclDesignError(f"{script}: {exc}") from None
        for var in ("clock_mhz", "dma_length_bits", "top"):
            try:
                viv.rec.variables[var] = str(tcl.getvar(var))
            except tkinter.TclError:
                pass
    return viv.rec
