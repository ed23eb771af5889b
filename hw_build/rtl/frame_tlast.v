// Frame-boundary sideband of the accelerator top: remembers s_axis_tlast of the last
// input word of every frame and hands it back with that frame's output beat, so a DMA
// receive transfer ends where the send transfer ended.
//
// The input side only watches the handshake (in_fire); in_ready drops when the flag
// queue is full (DEPTH frames in flight), which stalls the input instead of losing a flag.
`default_nettype none
`include "common.vh"

module frame_tlast #(
    parameter WORDS_PER_FRAME = 4,
    parameter DEPTH           = 32    // frames in flight (flag queue entries)
) (
    `CLK_RST_PORTS,
    input  wire in_fire,      // an input word is accepted
    input  wire in_tlast,     // its tlast
    output wire in_ready,     // room for one more frame's flag
    input  wire out_fire,     // an output beat (one per frame) is accepted
    output wire out_tlast     // tlast for that output beat
);
    localparam WW = `CLOG2_1(WORDS_PER_FRAME);
    localparam integer LAST_WORD_I = WORDS_PER_FRAME - 1;
    localparam [WW-1:0] LAST_WORD = LAST_WORD_I[WW-1:0];

    reg [WW-1:0] word;
    wire frame_end = in_fire && (word == LAST_WORD);
    wire flag_valid;

    always @(posedge clk) begin
        if (!rst_n) word <= {WW{1'b0}};
        else if (in_fire) word <= (word == LAST_WORD) ? {WW{1'b0}} : word + 1'b1;
    end

    fifo #(.WIDTH(1), .DEPTH(DEPTH)) flags (
        .clk(clk), .rst_n(rst_n),
        .s_axis_tdata(in_tlast), .s_axis_tvalid(frame_end), .s_axis_tready(in_ready),
        .m_axis_tdata(out_tlast), .m_axis_tvalid(flag_valid), .m_axis_tready(out_fire)
    );

    // the label of a frame never comes before its last input word, so a flag is always there
    wire unused = &{1'b0, flag_valid};
endmodule

`default_nettype wire
