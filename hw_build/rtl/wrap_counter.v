// Counter over 0..N-1 that wraps to 0 after N-1: the beat, fold, word and pixel counters of
// the layers. `last` (the count is N-1) is what they act on: the end of a pixel, a fold,
// a frame. A counter that only counts when another one wraps (en = fire && inner's last)
// makes nested loops.
`default_nettype none
`include "common.vh"

module wrap_counter #(
    parameter N = 2
) (
    `CLK_RST_PORTS,
    input  wire                   en,     // count this cycle
    output reg  [`CLOG2_1(N)-1:0] count,
    output wire                   last    // count == N-1
);
    localparam W = `CLOG2_1(N);
    localparam integer LAST_I = N - 1;
    localparam [W-1:0] LAST = LAST_I[W-1:0];

    assign last = (count == LAST);

    always @(posedge clk) begin
        if (!rst_n) count <= {W{1'b0}};
        else if (en) count <= last ? {W{1'b0}} : count + 1'b1;
    end
endmodule

`default_nettype wire
