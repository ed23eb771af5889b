"""Vivado scripts for Zynq boards: package rtl/ as an IP, build a block design with the
processing system, an AXI DMA in simple mode and the accelerator between its MM2S and
S2MM streams, then synthesis, implementation, bitstream and the .bit/.hwh pair that PYNQ
loads.

Entry point: ``vivado -mode batch -source build_bitstream.tcl`` in ``<build>/vivado``.
"""

from __future__ import annotations

import re
from pathlib import Path

from deploy.interface import AcceleratorInterface
from hw_build.boards import Board
from hw_build.errors import BuildError
from hw_build.vivado.common import (
    BITFILE_BASENAME,
    BITFILE_DIR,
    HEADER,
    IP_LIBRARY,
    IP_VENDOR,
    IP_VERSION,
    RtlSources,
    fmt_mhz,
    tcl_list,
    tcl_project_with_rtl,
    tcl_word,
    top_ports,
)

#: processing-system specifics per family
PS = {
    "zynq7": {
        "ip": "processing_system7",
        "rule": "xilinx.com:bd_rule:processing_system7",
        "rule_config": '{make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"}',
        "config": {
            "PCW_USE_M_AXI_GP0": "1",
            "PCW_USE_S_AXI_HP0": "1",
            "PCW_S_AXI_HP0_DATA_WIDTH": "@MM_BITS@",
            "PCW_EN_CLK0_PORT": "1",
            "PCW_EN_RST0_PORT": "1",
            "PCW_FPGA0_PERIPHERAL_FREQMHZ": "@CLOCK_MHZ@",
        },
        "actual_clock": "CONFIG.PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ",
        "gp": "M_AXI_GP0", "gp_clk": "M_AXI_GP0_ACLK",
        "hp": "S_AXI_HP0", "hp_clk": "S_AXI_HP0_ACLK",
        "fclk": "FCLK_CLK0", "fresetn": "FCLK_RESET0_N",
        "addr_bits": 32,
        "hp_bits": (32, 64),
    },
    "zynqmp": {
        "ip": "zynq_ultra_ps_e",
        "rule": "xilinx.com:bd_rule:zynq_ultra_ps_e",
        "rule_config": '{apply_board_preset "1"}',
        "config": {
            "PSU__USE__M_AXI_GP0": "1",
            "PSU__USE__M_AXI_GP1": "0",
            "PSU__USE__M_AXI_GP2": "0",
            "PSU__USE__S_AXI_GP2": "1",
            "PSU__SAXIGP2__DATA_WIDTH": "@MM_BITS@",
            "PSU__FPGA_PL0_ENABLE": "1",
            "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ": "@CLOCK_MHZ@",
        },
        "actual_clock": "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ",
        "gp": "M_AXI_HPM0_FPD", "gp_clk": "maxihpm0_fpd_aclk",
        "hp": "S_AXI_HP0_FPD", "hp_clk": "saxihp0_fpd_aclk",
        "fclk": "pl_clk0", "fresetn": "pl_resetn0",
        "addr_bits": 64,
        "hp_bits": (32, 64, 128),
    },
}


def render(template: str, values: dict[str, object]) -> str:
    text = template
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise AssertionError(f"unfilled template fields {sorted(set(left))}")
    return text


SETTINGS = HEADER + """\
# Values every script of this folder reads; paths are relative to this folder, so the
# build folder can move.
set here [file dirname [file normalize [info script]]]
set rtl_dir [file normalize [file join $here .. rtl]]
set part @PART@
set board_part @BOARD_PART@
set clock_mhz @CLOCK_MHZ@
set top @TOP@
set top_clock @CLOCK@
set top_reset @RESET@
set top_reset_polarity @RESET_POLARITY@
set s_axis_prefix @S_PREFIX@
set m_axis_prefix @M_PREFIX@
set rtl_files @RTL_FILES@
set mem_files @MEM_FILES@
set ip_vendor @IP_VENDOR@
set ip_library @IP_LIBRARY@
set ip_version @IP_VERSION@
set ip_dir [file join $here ip]
set prj_name accel_prj
set prj_dir [file join $here $prj_name]
set bd_name accel_bd
set out_dir [file join $here @BITFILE_DIR@]
set out_name @BITFILE_BASENAME@
# AXI DMA (simple mode): stream widths are the accelerator's, the length register covers
# 2^@LENGTH_BITS@ - 1 bytes per transfer
set dma_mm2s_stream_bits @S_BITS@
set dma_s2mm_stream_bits @M_BITS@
set dma_mm_bits @MM_BITS@
set dma_length_bits @LENGTH_BITS@
set dma_addr_bits @ADDR_BITS@
# pynq's DMA driver binds this exact version only (any other gives a DefaultIP without sendchannel)
set dma_vlnv @DMA_VLNV@
set dma_cell @DMA_CELL@
set accel_cell @ACCEL_CELL@
# the interface record (interface.json) as IP parameters: they reach the .hwh, where the
# driver checks its accel.json against the bitstream it loads
set accel_interface [list @ACCEL_PARAMS@]
set jobs [expr {[info exists ::env(HW_BUILD_JOBS)] ? $::env(HW_BUILD_JOBS) : 2}]
"""

BUSIF_PROCS = """\
# the bus interface that maps a given physical port ("" if none)
proc busif_of_port {core port} {
    foreach bi [ipx::get_bus_interfaces -of_objects $core] {
        foreach pm [ipx::get_port_maps -of_objects $bi] {
            if {[get_property physical_name $pm] eq $port} { return [get_property name $bi] }
        }
    }
    return ""
}
# keep what the packager inferred; infer explicitly what it missed
proc ensure_busif {core port vlnv ports} {
    set bi [busif_of_port $core $port]
    if {$bi eq ""} {
        ipx::infer_bus_interface $ports $vlnv $core
        set bi [busif_of_port $core $port]
        if {$bi eq ""} { error "could not infer a $vlnv interface for $ports" }
    }
    return $bi
}
"""

PACKAGE_IP = HEADER + """\
# Package rtl/ (Verilog and memory init files) as a Vivado IP with the two AXI-Stream
# interfaces, the clock associated with both and the reset with the clock.
# Run alone: vivado -mode batch -source package_ip.tcl   (build_bitstream.tcl sources it)
source [file join [file dirname [file normalize [info script]]] settings.tcl]

""" + tcl_project_with_rtl("accel_ip_prj") + """\
set_property top $top [current_fileset]
update_compile_order -fileset sources_1

file delete -force $ip_dir
ipx::package_project -root_dir $ip_dir -vendor $ip_vendor -library $ip_library -taxonomy /UserIP \\
    -import_files -set_current true
set core [ipx::current_core]
set_property name $top $core
set_property display_name "hw_build accelerator ($top)" $core
set_property description "Streaming dataflow accelerator generated by hw_build" $core
set_property version $ip_version $core
set_property core_revision 1 $core
foreach {pname pvalue} $accel_interface {
    set param [ipx::add_user_parameter $pname $core]
    set_property value_resolve_type user $param
    set_property value $pvalue $param
    ipgui::add_param -name $pname -component $core
}

@BUSIF_PROCS@
set clk_if [ensure_busif $core $top_clock xilinx.com:signal:clock_rtl:1.0 [list $top_clock]]
set rst_if [ensure_busif $core $top_reset xilinx.com:signal:reset_rtl:1.0 [list $top_reset]]
set s_sigs @S_SIGS@
set m_sigs @M_SIGS@
set s_if [ensure_busif $core ${s_axis_prefix}_tdata xilinx.com:interface:axis_rtl:1.0 $s_sigs]
set m_if [ensure_busif $core ${m_axis_prefix}_tdata xilinx.com:interface:axis_rtl:1.0 $m_sigs]
ipx::associate_bus_interfaces -busif $s_if -clock $clk_if $core
ipx::associate_bus_interfaces -busif $m_if -clock $clk_if $core
ipx::associate_bus_interfaces -clock $clk_if -reset $rst_if $core
set polarity [ipx::get_bus_parameters POLARITY -of_objects [ipx::get_bus_interfaces $rst_if -of_objects $core]]
if {$polarity eq ""} {
    set polarity [ipx::add_bus_parameter POLARITY [ipx::get_bus_interfaces $rst_if -of_objects $core]]
}
set_property value $top_reset_polarity $polarity

ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::check_integrity $core
ipx::save_core $core
close_project
puts "packaged $ip_vendor:$ip_library:$top:$ip_version into $ip_dir (streams $s_if -> $m_if, clock $clk_if)"
"""

BLOCK_DESIGN = HEADER + """\
# Block design: @PS_IP@ (board preset of $board_part), AXI DMA in simple mode with its
# AXI-Lite on @GP@ and both memory ports on @HP@, the accelerator between MM2S and S2MM,
# everything on @FCLK@ at $clock_mhz MHz. Sourced by build_bitstream.tcl.
source [file join [file dirname [file normalize [info script]]] settings.tcl]

create_project -force $prj_name $prj_dir -part $part
if {[info exists ::env(HW_BUILD_BOARD_REPO)]} {
    set_param board.repoPaths [concat [get_param board.repoPaths] [list $::env(HW_BUILD_BOARD_REPO)]]
}
if {[llength [get_board_parts -quiet $board_part]] == 0} {
    error "Vivado has no board files for $board_part: install them (e.g. from https://github.com/Xilinx/XilinxBoardStore) and point HW_BUILD_BOARD_REPO at their folder; the processing system's DDR and MIO settings come from them."
}
set_property board_part $board_part [current_project]
set_property ip_repo_paths [list $ip_dir] [current_project]
update_ip_catalog -rebuild

# newest installed version of a Xilinx IP
proc ip_vlnv {name} {
    set defs [lsort -dictionary [get_ipdefs -all xilinx.com:ip:${name}:*]]
    if {[llength $defs] == 0} { error "IP $name is not installed in this Vivado" }
    return [lindex $defs end]
}

create_bd_design $bd_name

# ---- processing system
create_bd_cell -type ip -vlnv [ip_vlnv @PS_IP@] ps
apply_bd_automation -rule @PS_RULE@ -config @PS_RULE_CONFIG@ [get_bd_cells ps]
set_property -dict [list \\
@PS_CONFIG@
] [get_bd_cells ps]
set actual_mhz [get_property @PS_ACTUAL_CLOCK@ [get_bd_cells ps]]
if {$actual_mhz ne "" && abs($actual_mhz - $clock_mhz) > 0.5} {
    puts "WARNING: @FCLK@ runs at $actual_mhz MHz, the closest the PS clock dividers get to $clock_mhz MHz"
}

# ---- AXI DMA, simple (register) mode, no scatter-gather, the version pynq binds
if {[llength [get_ipdefs -all $dma_vlnv]] == 0} {
    error "$dma_vlnv is not installed in this Vivado; pynq's DMA driver binds only this version of the AXI DMA"
}
create_bd_cell -type ip -vlnv $dma_vlnv @DMA_CELL@
set_property -dict [list \\
    CONFIG.c_include_sg {0} \\
    CONFIG.c_sg_include_stscntrl_strm {0} \\
    CONFIG.c_sg_length_width $dma_length_bits \\
    CONFIG.c_addr_width $dma_addr_bits \\
    CONFIG.c_include_mm2s {1} \\
    CONFIG.c_include_s2mm {1} \\
    CONFIG.c_m_axi_mm2s_data_width $dma_mm_bits \\
    CONFIG.c_m_axis_mm2s_tdata_width $dma_mm2s_stream_bits \\
    CONFIG.c_m_axi_s2mm_data_width $dma_mm_bits \\
    CONFIG.c_s_axis_s2mm_tdata_width $dma_s2mm_stream_bits \\
    CONFIG.c_mm2s_burst_size {64} \\
    CONFIG.c_s2mm_burst_size {16} \\
] [get_bd_cells @DMA_CELL@]

# ---- the accelerator
create_bd_cell -type ip -vlnv $ip_vendor:$ip_library:$top:$ip_version @ACCEL_CELL@
set accel_in [get_bd_intf_pins -of_objects [get_bd_cells @ACCEL_CELL@] -filter {MODE == Slave}]
set accel_out [get_bd_intf_pins -of_objects [get_bd_cells @ACCEL_CELL@] -filter {MODE == Master}]
connect_bd_intf_net [get_bd_intf_pins @DMA_CELL@/M_AXIS_MM2S] $accel_in
connect_bd_intf_net $accel_out [get_bd_intf_pins @DMA_CELL@/S_AXIS_S2MM]

# ---- memory path: DMA MM2S + S2MM -> SmartConnect -> @HP@
create_bd_cell -type ip -vlnv [ip_vlnv smartconnect] mem_smc
set_property -dict [list CONFIG.NUM_SI {2} CONFIG.NUM_MI {1}] [get_bd_cells mem_smc]
connect_bd_intf_net [get_bd_intf_pins @DMA_CELL@/M_AXI_MM2S] [get_bd_intf_pins mem_smc/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins @DMA_CELL@/M_AXI_S2MM] [get_bd_intf_pins mem_smc/S01_AXI]
connect_bd_intf_net [get_bd_intf_pins mem_smc/M00_AXI] [get_bd_intf_pins ps/@HP@]

# ---- control path: @GP@ -> SmartConnect -> DMA AXI-Lite
create_bd_cell -type ip -vlnv [ip_vlnv smartconnect] ctrl_smc
set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {1}] [get_bd_cells ctrl_smc]
connect_bd_intf_net [get_bd_intf_pins ps/@GP@] [get_bd_intf_pins ctrl_smc/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins ctrl_smc/M00_AXI] [get_bd_intf_pins @DMA_CELL@/S_AXI_LITE]

# ---- one clock (@FCLK@) and its synchronised reset for everything
create_bd_cell -type ip -vlnv [ip_vlnv proc_sys_reset] rst_fclk0
set clk [get_bd_pins ps/@FCLK@]
connect_bd_net $clk [get_bd_pins ps/@GP_CLK@] [get_bd_pins ps/@HP_CLK@] \\
    [get_bd_pins @DMA_CELL@/s_axi_lite_aclk] [get_bd_pins @DMA_CELL@/m_axi_mm2s_aclk] \\
    [get_bd_pins @DMA_CELL@/m_axi_s2mm_aclk] [get_bd_pins mem_smc/aclk] [get_bd_pins ctrl_smc/aclk] \\
    [get_bd_pins @ACCEL_CELL@/$top_clock] [get_bd_pins rst_fclk0/slowest_sync_clk]
connect_bd_net [get_bd_pins ps/@FRESETN@] [get_bd_pins rst_fclk0/ext_reset_in]
connect_bd_net [get_bd_pins rst_fclk0/peripheral_aresetn] [get_bd_pins @DMA_CELL@/axi_resetn] \\
    [get_bd_pins mem_smc/aresetn] [get_bd_pins ctrl_smc/aresetn]
if {$top_reset_polarity eq "ACTIVE_LOW"} {
    connect_bd_net [get_bd_pins rst_fclk0/peripheral_aresetn] [get_bd_pins @ACCEL_CELL@/$top_reset]
} else {
    connect_bd_net [get_bd_pins rst_fclk0/peripheral_reset] [get_bd_pins @ACCEL_CELL@/$top_reset]
}

assign_bd_address
validate_bd_design
save_bd_design

set bd_file [get_files $bd_name.bd]
generate_target all $bd_file
set wrapper [make_wrapper -files $bd_file -top]
if {$wrapper eq "" || ![file exists $wrapper]} {
    set wrapper [lindex [glob -nocomplain [file join $prj_dir *.gen sources_1 bd $bd_name hdl ${bd_name}_wrapper.v] \\
                                       [file join $prj_dir *.srcs sources_1 bd $bd_name hdl ${bd_name}_wrapper.v]] 0]
}
add_files -norecurse $wrapper
set_property top ${bd_name}_wrapper [current_fileset]
update_compile_order -fileset sources_1
"""

BUILD = HEADER + """\
# Everything, in order: package the IP, build the block design, synthesis,
# implementation, write_bitstream, then copy the bitstream and the hardware handoff to
# bitfile/@BITFILE_BASENAME@.bit and bitfile/@BITFILE_BASENAME@.hwh (the names the deploy driver loads).
#
#   cd <build>/vivado && vivado -mode batch -source build_bitstream.tcl
#
# Environment: HW_BUILD_JOBS (parallel runs, default 2), HW_BUILD_BOARD_REPO (board files).
set script_dir [file dirname [file normalize [info script]]]
source [file join $script_dir settings.tcl]
source [file join $script_dir package_ip.tcl]
source [file join $script_dir block_design.tcl]

launch_runs synth_1 -jobs $jobs
wait_on_run synth_1
if {[get_property PROGRESS [get_runs synth_1]] ne "100%"} {
    error "synthesis failed: see [get_property DIRECTORY [get_runs synth_1]]/runme.log"
}
launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "implementation or write_bitstream failed: see [get_property DIRECTORY [get_runs impl_1]]/runme.log"
}

open_run impl_1
set reports [file join $here reports]
file mkdir $reports
report_utilization -file [file join $reports utilization.rpt]
report_utilization -hierarchical -file [file join $reports utilization_hierarchical.rpt]
report_timing_summary -file [file join $reports timing_summary.rpt]
set wns [get_property STATS.WNS [get_runs impl_1]]
if {$wns ne "" && $wns < 0} {
    puts "WARNING: timing not met at $clock_mhz MHz (WNS $wns ns): lower --clock-mhz and rebuild"
}

file mkdir $out_dir
set bit [lindex [glob -nocomplain [file join [get_property DIRECTORY [get_runs impl_1]] *.bit]] 0]
if {$bit eq ""} { error "write_bitstream produced no .bit file" }
file copy -force $bit [file join $out_dir $out_name.bit]
set hwh [lindex [glob -nocomplain \\
    [file join $prj_dir $prj_name.gen sources_1 bd $bd_name hw_handoff $bd_name.hwh] \\
    [file join $prj_dir $prj_name.srcs sources_1 bd $bd_name hw_handoff $bd_name.hwh]] 0]
if {$hwh eq ""} { error "no hardware handoff ($bd_name.hwh) found under $prj_dir" }
file copy -force $hwh [file join $out_dir $out_name.hwh]
set fh [open [file join $out_dir vivado_result.json] w]
puts $fh "{\\"part\\": \\"$part\\", \\"clock_mhz\\": $clock_mhz, \\"wns_ns\\": [expr {$wns eq "" ? "null" : $wns}]}"
close $fh
puts "bitstream: [file join $out_dir $out_name.bit] (+ .hwh)"
"""


def accel_parameters(record: AcceleratorInterface) -> dict[str, int]:
    """The interface facts the driver checks, as user parameters of the packaged IP (and so as
    PARAMETERs of the accelerator cell in the .hwh)."""
    h, w, c = record.frame_shape
    return {"IN_BITS": record.in_bits, "OUT_BITS": record.out_bits, "LABEL_BITS": record.label_bits,
            "FRAME_H": h, "FRAME_W": w, "FRAME_C": c, "WORDS_PER_FRAME": record.words_per_frame,
            "CYCLES_PER_FRAME": record.cycles_per_frame}


def scripts(board: Board, sources: RtlSources, record: AcceleratorInterface, model: str) -> dict[str, str]:
    """File name -> text of the Zynq scripts."""
    ps = PS[board.family]
    ports = top_ports(record)
    clock_mhz = record.clock_mhz
    mm_bits = record.dma_mm_bits
    if mm_bits not in ps["hp_bits"]:
        raise BuildError(f"{board.name}: {mm_bits}-bit DMA words do not fit the {ps['hp']} port "
                         f"(widths {ps['hp_bits']}); fix dma_bits in hw_build/boards.py.")
    config_lines = [f"    CONFIG.{k} {{{v}}} \\" for k, v in ps["config"].items()]
    values: dict[str, object] = {
        "PART": tcl_word(board.part), "BOARD_PART": tcl_word(board.board_part or ""),
        "CLOCK_MHZ": fmt_mhz(clock_mhz), "TOP": tcl_word(sources.top), "CLOCK": ports.clock, "RESET": ports.reset,
        "RESET_POLARITY": "ACTIVE_LOW" if ports.reset_active_low else "ACTIVE_HIGH",
        "S_PREFIX": ports.s_axis.prefix, "M_PREFIX": ports.m_axis.prefix,
        "S_SIGS": tcl_list(ports.s_axis.signals()), "M_SIGS": tcl_list(ports.m_axis.signals()),
        "RTL_FILES": tcl_list(sources.verilog), "MEM_FILES": tcl_list(sources.memories),
        "IP_VENDOR": IP_VENDOR, "IP_LIBRARY": IP_LIBRARY, "IP_VERSION": IP_VERSION,
        "BITFILE_DIR": BITFILE_DIR, "BITFILE_BASENAME": BITFILE_BASENAME,
        "S_BITS": ports.s_axis.width, "M_BITS": ports.m_axis.width, "MM_BITS": mm_bits,
        "LENGTH_BITS": record.dma_length_bits, "ADDR_BITS": ps["addr_bits"],
        "DMA_VLNV": record.dma_vlnv,
        "ACCEL_PARAMS": " ".join(f"{k} {v}" for k, v in accel_parameters(record).items()),
        "BUSIF_PROCS": BUSIF_PROCS.rstrip("\n"), "PS_IP": ps["ip"], "PS_RULE": ps["rule"], "PS_RULE_CONFIG": ps["rule_config"],
        "PS_CONFIG": "\n".join(config_lines), "PS_ACTUAL_CLOCK": ps["actual_clock"],
        "GP": ps["gp"], "GP_CLK": ps["gp_clk"], "HP": ps["hp"], "HP_CLK": ps["hp_clk"],
        "FCLK": ps["fclk"], "FRESETN": ps["fresetn"], "DMA_CELL": record.dma_cell,
        "ACCEL_CELL": record.accel_cell,
        "model": model, "board": board.name, "part": board.part,
    }
    # the PS config block refers to other fields: fill those first
    values["PS_CONFIG"] = render(str(values["PS_CONFIG"]), {"MM_BITS": mm_bits, "CLOCK_MHZ": fmt_mhz(clock_mhz)})

    def fill(t: str) -> str:
        return render(t.replace("{model}", model).replace("{board}", board.name).replace("{part}", board.part),
                      values)

    return {
        "settings.tcl": fill(SETTINGS),
        "package_ip.tcl": fill(PACKAGE_IP),
        "block_design.tcl": fill(BLOCK_DESIGN),
        "build_bitstream.tcl": fill(BUILD),
    }


def outputs() -> list[str]:
    return [f"{BITFILE_DIR}/{BITFILE_BASENAME}.bit", f"{BITFILE_DIR}/{BITFILE_BASENAME}.hwh"]


def command() -> list[str]:
    return ["vivado", "-mode", "batch", "-nojournal", "-log", "vivado.log", "-source", "build_bitstream.tcl"]


def readme_steps(vivado_dir: Path) -> str:
    return (
        "1. Install Vivado (2020.2 or newer; the WebPACK edition covers the xc7z020) and the board files\n"
        "   for this board (https://github.com/Xilinx/XilinxBoardStore); if they are not in Vivado's\n"
        "   default board repository, `export HW_BUILD_BOARD_REPO=/path/to/board_files`.\n"
        f"2. `cd {vivado_dir}` and run\n\n"
        "       vivado -mode batch -source build_bitstream.tcl\n\n"
        "   (`HW_BUILD_JOBS=8` runs synthesis/implementation on 8 threads). It packages ../rtl as an\n"
        "   IP (package_ip.tcl), builds the block design (block_design.tcl), runs synthesis,\n"
        "   implementation and write_bitstream, and writes bitfile/accel.bit and bitfile/accel.hwh\n"
        "   plus reports/ (utilization, timing).\n"
        "3. Rebuild the deploy package so it contains the bitstream: `python build.py ... --from deploy`.\n"
    )
