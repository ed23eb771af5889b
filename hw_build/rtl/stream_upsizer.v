// Width up-conversion by a whole ratio (OUT_BITS = R * IN_BITS): R input beats, the first
// in the lowest bits, leave as one output beat.
//
// The first R-1 beats are collected in `parts`; the R-th goes straight into the output
// register together with them, so input runs at one beat per cycle while the previous
// output word waits to be read.
`default_nettype none
`include "common.vh"

module stream_upsizer #(
    parameter IN_BITS = 8, parameter OUT_BITS = 64
) (
    `AXIS_PORTS(IN_BITS, OUT_BITS)
);
    localparam R  = OUT_BITS / IN_BITS;
    localparam CW = `CLOG2_1(R);
    localparam integer LAST_I = R - 1;
    localparam [CW-1:0] LAST = LAST_I[CW-1:0];

    reg [OUT_BITS-IN_BITS-1:0] parts;
    reg [CW-1:0]               count;
    reg [OUT_BITS-1:0]         out_data;
    reg                        out_valid;

    wire completing = (count == LAST);
    wire in_fire    = s_axis_tvalid && s_axis_tready;

    assign s_axis_tready = !completing || !out_valid || m_axis_tready;
    assign m_axis_tvalid = out_valid;
    assign m_axis_tdata  = out_data;

    // one enable per slot (a variable part-select would put a mux on every bit)
    integer k;
    always @(posedge clk) begin
        for (k = 0; k < R - 1; k = k + 1)
            if (in_fire && count == k[CW-1:0]) parts[k*IN_BITS +: IN_BITS] <= s_axis_tdata;
        if (in_fire && completing) out_data <= {s_axis_tdata, parts};
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            count     <= {CW{1'b0}};
            out_valid <= 1'b0;
        end else begin
            if (in_fire) count <= completing ? {CW{1'b0}} : count + 1'b1;
            if (in_fire && completing) out_valid <= 1'b1;
            else if (m_axis_tready) out_valid <= 1'b0;
        end
    end
endmodule

`default_nettype wire
