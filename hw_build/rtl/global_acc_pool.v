// Global sum pooling: [H, W, C] -> [1, 1, C], PE channels per beat.
//
// One accumulator word per channel fold (C/PE words, asynchronous-read LUT RAM) is
// updated as each pixel passes; during the last pixel the final sums leave as output
// beats, so the layer takes one input beat per cycle and needs no extra pass.
`default_nettype none
`include "common.vh"

module global_acc_pool #(
    parameter PIXELS   = 4, parameter C = 2, parameter PE = 1,
    parameter IN_BITS  = 4, parameter SIGNED = 0,
    parameter OUT_BITS = 8
) (
    `AXIS_PORTS(PE*IN_BITS, PE*OUT_BITS)
);
    localparam CF   = C / PE;
    localparam WORD = PE * OUT_BITS;
    localparam CFW  = `CLOG2_1(CF);
    localparam PXW  = `CLOG2_1(PIXELS);

    reg  [WORD-1:0] sums [0:CF-1];
    wire [CFW-1:0]  cf;
    wire [PXW-1:0]  pixel;
    wire            cf_last, pixel_last;

    wire advance;
    wire in_fire = s_axis_tvalid && advance;
    assign s_axis_tready = advance;

    // the channel fold of the beat, and the pixel (advancing after its last fold)
    wrap_counter #(.N(CF)) cf_count (.clk(clk), .rst_n(rst_n), .en(in_fire), .count(cf), .last(cf_last));
    wrap_counter #(.N(PIXELS)) pixel_count (.clk(clk), .rst_n(rst_n), .en(in_fire && cf_last), .count(pixel), .last(pixel_last));

    `EXTEND_FUNCTION(widen, IN_BITS, OUT_BITS, SIGNED)

    reg [WORD-1:0] updated;
    reg [WORD-1:0] old_word;
    integer p;
    always @* begin
        old_word = sums[cf];
        for (p = 0; p < PE; p = p + 1)
            updated[p*OUT_BITS +: OUT_BITS] =
                (pixel == {PXW{1'b0}} ? {OUT_BITS{1'b0}} : old_word[p*OUT_BITS +: OUT_BITS])
                + widen(s_axis_tdata[p*IN_BITS +: IN_BITS]);
    end

    always @(posedge clk) begin
        if (in_fire) sums[cf] <= updated;
    end

    // the final sums leave with the last pixel
    axis_output_reg #(.WIDTH(WORD)) out_reg (
        .clk(clk), .rst_n(rst_n), .in_valid(in_fire && pixel_last), .in_data(updated), .advance(advance),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );
endmodule

`default_nettype wire
