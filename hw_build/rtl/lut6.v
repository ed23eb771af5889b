// One K-input look-up table given by its truth table: o = INIT[i] (i[0] the least
// significant input). Kept as its own hierarchy level so that synthesis maps it to exactly
// one LUT, whatever its neighbours: ABC's area recovery otherwise splits wide counters into
// shared two-input XORs and narrower LUTs, which costs about half as many LUTs again in
// XNOR-popcounts (xnor_popcount.v). Vivado and Yosys both honour keep_hierarchy; the synthesis
// script flattens the mapped netlist afterwards so that LUT levels are counted across it.
`default_nettype none

(* keep_hierarchy *)
module lut6 #(
    parameter K = 6,                       // inputs used (1..6)
    parameter [63:0] INIT = 64'd0          // truth table; entries at or beyond 2^K are unused
) (
    input  wire [K-1:0] i,
    output wire         o
);
    wire [63:0] table_bits = INIT;
    /* verilator lint_off WIDTHEXPAND */
    assign o = table_bits[i];          // an index of K < 6 bits reads the first 2^K entries
    /* verilator lint_on WIDTHEXPAND */
endmodule

`default_nettype wire
