// Text macros shared by the layer library: the AXI-Stream port conventions every layer
// follows, and small idioms that would otherwise be written out in each module. Every
// library module that uses them starts with `include "common.vh"; the guard makes a
// second inclusion in the same compilation a no-op.
//
// Plain Verilog-2001 macros (no token pasting, no SystemVerilog), so that Vivado, Yosys
// and Verilator read them alike. The port names are fixed: the code generator
// (hw_build.rtl.verilog) connects instances by these names.
`ifndef HW_BUILD_COMMON_VH
`define HW_BUILD_COMMON_VH

// Bits of a counter or address over 0..N-1; at least one, so N = 1 still declares a
// (constant) register rather than a zero-width one.
`define CLOG2_1(N) (((N) > 1) ? $clog2(N) : 1)

// Clock and active-low synchronous reset (first in every streaming module's port list).
`define CLK_RST_PORTS \
    input  wire clk, \
    input  wire rst_n

// The stream input s_axis, W bits a beat.
`define AXIS_SINK(W) \
    input  wire [(W)-1:0] s_axis_tdata, \
    input  wire           s_axis_tvalid, \
    output wire           s_axis_tready

// The stream output m_axis, W bits a beat.
`define AXIS_SOURCE(W) \
    output wire [(W)-1:0] m_axis_tdata, \
    output wire           m_axis_tvalid, \
    input  wire           m_axis_tready

// The whole port list of a one-input, one-output layer.
`define AXIS_PORTS(IN_W, OUT_W) \
    `CLK_RST_PORTS, \
    `AXIS_SINK(IN_W), \
    `AXIS_SOURCE(OUT_W)

// Two stream inputs s0_axis and s1_axis (joins).
`define AXIS_SINK_PAIR(W0, W1) \
    input  wire [(W0)-1:0] s0_axis_tdata, \
    input  wire            s0_axis_tvalid, \
    output wire            s0_axis_tready, \
    input  wire [(W1)-1:0] s1_axis_tdata, \
    input  wire            s1_axis_tvalid, \
    output wire            s1_axis_tready

// N stream outputs of W bits packed into one m_axis (forks): output i is the slice
// [i*W +: W] of m_axis_tdata and bit i of m_axis_tvalid / m_axis_tready.
`define AXIS_SOURCES(N, W) \
    output wire [(N)*(W)-1:0] m_axis_tdata, \
    output wire [(N)-1:0]     m_axis_tvalid, \
    input  wire [(N)-1:0]     m_axis_tready

// A constant function NAME that widens an IN_W-bit value to OUT_W >= IN_W bits, sign-
// extended when SIGNED is non-zero, else zero-extended. A function rather than a
// concatenation because OUT_W = IN_W would make a zero-width replication.
`define EXTEND_FUNCTION(NAME, IN_W, OUT_W, SIGNED) \
    function [(OUT_W)-1:0] NAME; \
        input [(IN_W)-1:0] v; \
        begin \
            NAME = {(OUT_W){(SIGNED) != 0 && v[(IN_W)-1]}}; \
            NAME[(IN_W)-1:0] = v; \
        end \
    endfunction

`endif
