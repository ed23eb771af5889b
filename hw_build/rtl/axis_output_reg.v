// Output register of a pipelined layer whose stages all advance together: it holds the
// output beat, and `advance` (the register is empty or being read this cycle) is the
// enable of the whole pipeline, so the layer's s_axis_tready is advance (joined with its
// other inputs' valids where it has several). One beat per cycle.
`default_nettype none
`include "common.vh"

module axis_output_reg #(
    parameter WIDTH = 8
) (
    `CLK_RST_PORTS,
    input  wire             in_valid,   // the pipeline's last stage holds a beat
    input  wire [WIDTH-1:0] in_data,    // that beat
    output wire             advance,
    `AXIS_SOURCE(WIDTH)
);
    reg             out_valid;
    reg [WIDTH-1:0] out_data;

    assign advance       = !out_valid || m_axis_tready;
    assign m_axis_tvalid = out_valid;
    assign m_axis_tdata  = out_data;

    always @(posedge clk) begin
        if (advance) out_data <= in_data;
    end

    always @(posedge clk) begin
        if (!rst_n) out_valid <= 1'b0;
        else if (advance) out_valid <= in_valid;
    end
endmodule

`default_nettype wire
