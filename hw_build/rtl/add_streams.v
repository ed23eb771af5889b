// Element-wise sum of two equally shaped streams (residual joins), PE elements per beat:
// out = a + b, each operand sign- or zero-extended, the sum kept in OUT_BITS.
//
// A beat is taken from both inputs in the same cycle; the output register frees itself
// every cycle it is read, so the layer passes one beat per cycle.
`default_nettype none
`include "common.vh"

module add_streams #(
    parameter PE       = 1,
    parameter A_BITS   = 4, parameter A_SIGNED = 0,   // operand a (input 0)
    parameter B_BITS   = 4, parameter B_SIGNED = 0,   // operand b (input 1)
    parameter OUT_BITS = 5
) (
    `CLK_RST_PORTS,
    `AXIS_SINK_PAIR(PE*A_BITS, PE*B_BITS),
    `AXIS_SOURCE(PE*OUT_BITS)
);
    // wide enough for both operands and the result, so the low OUT_BITS of the sum are exact
    localparam MAXAB = (A_BITS > B_BITS) ? A_BITS : B_BITS;
    localparam SUM   = (MAXAB > OUT_BITS) ? MAXAB : OUT_BITS;

    wire advance;
    wire fire = advance && s0_axis_tvalid && s1_axis_tvalid;

    assign s0_axis_tready = advance && s1_axis_tvalid;
    assign s1_axis_tready = advance && s0_axis_tvalid;

    `EXTEND_FUNCTION(widen_a, A_BITS, SUM, A_SIGNED)
    `EXTEND_FUNCTION(widen_b, B_BITS, SUM, B_SIGNED)

    reg [PE*OUT_BITS-1:0] sum;
    reg [SUM-1:0]         lane;
    integer p;
    always @* begin
        for (p = 0; p < PE; p = p + 1) begin
            lane = widen_a(s0_axis_tdata[p*A_BITS +: A_BITS]) + widen_b(s1_axis_tdata[p*B_BITS +: B_BITS]);
            sum[p*OUT_BITS +: OUT_BITS] = lane[OUT_BITS-1:0];
        end
    end

    axis_output_reg #(.WIDTH(PE*OUT_BITS)) out_reg (
        .clk(clk), .rst_n(rst_n), .in_valid(fire), .in_data(sum), .advance(advance),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

    // bits of an operand above OUT_BITS cannot change the low OUT_BITS of the sum
    wire unused = &{1'b0, lane};
endmodule

`default_nettype wire
