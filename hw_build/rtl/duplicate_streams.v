// Fan-out of one stream to NUM_OUTPUTS streams (residual forks); every output sees every
// beat. Output i is port slice [i*WIDTH +: WIDTH] / bit i of the packed m_axis_* vectors.
//
// A beat is consumed once every output has taken it; `sent` remembers which outputs
// already did, so a slow consumer never makes a fast one see a beat twice. Outputs are
// not registered (one beat per cycle, no latency): the FIFOs the generator puts on
// every edge keep the combinational ready path short.
`default_nettype none
`include "common.vh"

module duplicate_streams #(
    parameter WIDTH = 8, parameter NUM_OUTPUTS = 2
) (
    `CLK_RST_PORTS,
    `AXIS_SINK(WIDTH),
    `AXIS_SOURCES(NUM_OUTPUTS, WIDTH)
);
    reg  [NUM_OUTPUTS-1:0] sent;
    wire [NUM_OUTPUTS-1:0] taken = sent | (m_axis_tvalid & m_axis_tready);

    assign m_axis_tvalid = {NUM_OUTPUTS{s_axis_tvalid}} & ~sent;
    assign m_axis_tdata  = {NUM_OUTPUTS{s_axis_tdata}};
    assign s_axis_tready = &taken;

    always @(posedge clk) begin
        if (!rst_n || s_axis_tready) sent <= {NUM_OUTPUTS{1'b0}};
        else sent <= taken;
    end
endmodule

`default_nettype wire
