// Channel split (the input of a grouped convolution): each pixel's channels arrive as
// NUM_OUTPUTS groups of GROUP_BEATS beats each; group g's beats go, unchanged, to output g
// (port slice [g*WIDTH +: WIDTH] / bit g of the packed m_axis_* vectors).
//
// Every beat belongs to exactly one output, so this is a demultiplexer: the beat is
// offered only to its group's output and consumed when that output takes it; the other
// outputs see no valid, so back-pressure on one group never loses or repeats a beat.
// Not registered (one beat per cycle, no latency): the FIFOs the generator puts on every
// edge keep the combinational ready path short.
`default_nettype none
`include "common.vh"

module channel_split #(
    parameter WIDTH       = 8,
    parameter NUM_OUTPUTS = 2, parameter GROUP_BEATS = 1    // a pixel: NUM_OUTPUTS groups of GROUP_BEATS beats
) (
    `CLK_RST_PORTS,
    `AXIS_SINK(WIDTH),
    `AXIS_SOURCES(NUM_OUTPUTS, WIDTH)
);
    localparam BW = `CLOG2_1(GROUP_BEATS);
    localparam GW = `CLOG2_1(NUM_OUTPUTS);

    wire [BW-1:0] beat;   // beat within the current group of the current pixel
    wire [GW-1:0] group;  // the group (output) the next input beat belongs to
    wire          beat_last, group_last;
    wire          fire = s_axis_tvalid && s_axis_tready;
    wrap_counter #(.N(GROUP_BEATS)) beat_count (.clk(clk), .rst_n(rst_n), .en(fire), .count(beat), .last(beat_last));
    wrap_counter #(.N(NUM_OUTPUTS)) group_count (.clk(clk), .rst_n(rst_n), .en(fire && beat_last), .count(group), .last(group_last));

    // one-hot select of the current group's output
    reg [NUM_OUTPUTS-1:0] select;
    integer g;
    always @* begin
        for (g = 0; g < NUM_OUTPUTS; g = g + 1)
            select[g] = (group == g[GW-1:0]);
    end

    assign m_axis_tdata  = {NUM_OUTPUTS{s_axis_tdata}};
    assign m_axis_tvalid = select & {NUM_OUTPUTS{s_axis_tvalid}};
    assign s_axis_tready = |(select & m_axis_tready);

    // the counters' own wrap-around is all that uses beat and the last group
    wire unused = &{1'b0, beat, group_last};
endmodule

`default_nettype wire
