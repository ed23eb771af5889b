// Read-only memory with a registered read port (block RAM or LUT ROM), initialised from
// a $readmemh file. STYLE "block" / "distributed" asks the synthesis tool for block RAM
// or LUTs (through rom_style/ram_style attributes); anything else leaves the choice to
// the tool.
//
// READ_STAGES = 2 adds a second register on the read data (data two enabled clocks after
// addr). A LUT ROM needs it to end in a real data register: synthesis merges the first
// read register into the memory (Yosys memory_dff) and then implements that as a register
// on the address, which leaves the ROM's whole decode in front of the logic reading
// `data` (a binary MVTU's weight ROM: address register, decode, XNOR and popcount, 10 LUT
// levels in one stage).
`default_nettype none
`include "common.vh"

module rom #(
    parameter WIDTH     = 8,
    parameter DEPTH     = 16,
    parameter INIT_FILE = "",
    parameter STYLE     = "auto",
    parameter READ_STAGES = 1          // 1 or 2 registers on the read data
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
            if (READ_STAGES > 1) begin : g_data_register \
                reg [WIDTH-1:0] q2; \
                always @(posedge clk) if (en) q2 <= q; \
                assign data = q2; \
            end else begin : g_read_register \
                assign data = q; \
            end

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
            if (READ_STAGES > 1 && DEPTH > 64 && DEPTH <= 256) begin : g_banked
                // Banks of 64 words, each registered (a bit of a bank is a function of six
                // address bits), then a second stage picks the bank. Read as one deep ROM
                // with a second data register, Yosys still put the whole decode in one stage
                // (ftbnn_small's 144-word MVTU_6: 10 LUT levels; banked: 8, the same LUTs).
                localparam AW = `CLOG2_1(DEPTH);
                localparam BW = AW - 6;
                localparam BANKS = (DEPTH + 63) / 64;
                reg [BANKS*WIDTH-1:0] banks_q;
                reg [BW-1:0]          bank_q;
                reg [WIDTH-1:0]       q2;
                initial begin
                    if (INIT_FILE != "") $readmemh(INIT_FILE, mem);
                end
                genvar b;
                for (b = 0; b < BANKS; b = b + 1) begin : g_bank
                    localparam integer BASE = b * 64;
                    wire [AW-1:0] word = {BASE[AW-1:6], addr[5:0]};
                    always @(posedge clk) if (en) banks_q[b*WIDTH +: WIDTH] <= mem[word];
                end
                always @(posedge clk) if (en) bank_q <= addr[AW-1:6];
                always @(posedge clk) if (en) q2 <= banks_q[bank_q*WIDTH +: WIDTH];
                assign data = q2;
            end else begin : g_port
                `ROM_READ_PORT
            end
        end else begin : g_auto
            reg [WIDTH-1:0] mem [0:DEPTH-1];
            `ROM_READ_PORT
        end
    endgenerate
`undef ROM_READ_PORT
endmodule

`default_nettype wire
