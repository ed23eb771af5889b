// Read-only memory with a registered read port (block RAM or LUT ROM), initialised from
// a $readmemh file. STYLE "block" / "distributed" asks the synthesis tool for block RAM
// or LUTs (through rom_style/ram_style attributes); anything else leaves the choice to
// the tool.
`default_nettype none
`include "common.vh"

module rom #(
    parameter WIDTH     = 8,
    parameter DEPTH     = 16,
    parameter INIT_FILE = "",
    parameter STYLE     = "auto"
) (
    input  wire                     clk,
    input  wire                     en,     // read enable (pipeline advance)
    input  wire [`CLOG2_1(DEPTH)-1:0] addr,
    output wire [WIDTH-1:0]         data
);
    // Strings of different lengths compare zero-extended, which is what is meant here.
    /* verilator lint_off WIDTHEXPAND */
    localparam IS_BLOCK       = (STYLE == "block");
    localparam IS_DISTRIBUTED = (STYLE == "distributed");
    /* verilator lint_on WIDTHEXPAND */

    // The branches differ only in the synthesis attributes on `mem` (attributes cannot be
    // chosen by a parameter); this is their common part: contents and the registered read.
`define ROM_READ_PORT \
            reg [WIDTH-1:0] q; \
            initial begin \
                if (INIT_FILE != "") $readmemh(INIT_FILE, mem); \
            end \
            always @(posedge clk) if (en) q <= mem[addr]; \
            assign data = q;

    generate
        if (IS_BLOCK) begin : g_block
            (* rom_style = "block", ram_style = "block" *) reg [WIDTH-1:0] mem [0:DEPTH-1];
            `ROM_READ_PORT
        end else if (IS_DISTRIBUTED) begin : g_distributed
            // Vivado's rom_style "distributed" means LUTs; Yosys reads it as LUT RAM, which a
            // ROM cannot use, and calls plain logic "logic"
`ifdef YOSYS
            (* ram_style = "logic" *)
`else
            (* rom_style = "distributed" *)
`endif
            reg [WIDTH-1:0] mem [0:DEPTH-1];
            `ROM_READ_PORT
        end else begin : g_auto
            reg [WIDTH-1:0] mem [0:DEPTH-1];
            `ROM_READ_PORT
        end
    endgenerate
`undef ROM_READ_PORT
endmodule

`default_nettype wire
