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
    parameter NUM_OUTPUTS = 2,
    parameter GROUP_BEATS = 1
) (
    `CLK_RST_PORTS,
    `AXIS_SINK(WIDTH),
    `AXIS_SOURCES(NUM_OUTPUTS, WIDTH)
);
    localparam BW = `CLOG2_1(GROUP_BEATS);
    localparam GW = `CLOG2_1(NUM_OUTPUTS);
    localparam integer LAST_BEAT_I  = GROUP_BEATS - 1;
    localparam integer LAST_GROUP_I = NUM_OUTPUTS - 1;
    localparam [BW-1:0] LAST_BEAT  = LAST_BEAT_I[BW-1:0];
    localparam [GW-1:0] LAST_GROUP = LAST_GROUP_I[GW-1:0];

    reg [BW-1:0] beat;   // beat within the current group of the current pixel
    reg [GW-1:0] group;  // the group (output) the next input beat belongs to

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

    always @(posedge clk) begin
        if (!rst_n) begin
            beat  <= {BW{1'b0}};
            group <= {GW{1'b0}};
        end else if (s_axis_tvalid && s_axis_tready) begin
            beat <= (beat == LAST_BEAT) ? {BW{1'b0}} : beat + 1'b1;
            if (beat == LAST_BEAT) group <= (group == LAST_GROUP) ? {GW{1'b0}} : group + 1'b1;
        end
    end
endmodule

`default_nettype wire
