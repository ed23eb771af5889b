// Channel concatenation of two streams (the join of a grouped convolution's branches):
// per pixel, BEATS0 beats from input 0, then BEATS1 beats from input 1, on one output.
//
// Every output beat is one input beat, so this is a multiplexer: only the input whose
// turn it is sees ready, and a beat leaves its input exactly when the output takes it
// (back-pressure never loses or repeats a beat). Not registered (one beat per cycle, no
// latency): the FIFOs the generator puts on every edge keep the combinational paths short.
`default_nettype none
`include "common.vh"

module channel_concat #(
    parameter WIDTH  = 8,
    parameter BEATS0 = 1, parameter BEATS1 = 1    // beats of a pixel from input 0, then input 1
) (
    `CLK_RST_PORTS,
    `AXIS_SINK_PAIR(WIDTH, WIDTH),
    `AXIS_SOURCE(WIDTH)
);
    localparam BEATS = BEATS0 + BEATS1;
    localparam CW = `CLOG2_1(BEATS);
    localparam integer FIRST1_I = BEATS0;
    localparam [CW-1:0] FIRST1 = FIRST1_I[CW-1:0];

    wire [CW-1:0] beat;  // output beat within the current pixel
    wire          beat_last;
    wire          from1 = (beat >= FIRST1);

    assign m_axis_tdata   = from1 ? s1_axis_tdata : s0_axis_tdata;
    assign m_axis_tvalid  = from1 ? s1_axis_tvalid : s0_axis_tvalid;
    assign s0_axis_tready = !from1 && m_axis_tready;
    assign s1_axis_tready = from1 && m_axis_tready;

    wrap_counter #(.N(BEATS)) beat_count (.clk(clk), .rst_n(rst_n), .en(m_axis_tvalid && m_axis_tready), .count(beat), .last(beat_last));

    wire unused = &{1'b0, beat_last};
endmodule

`default_nettype wire
