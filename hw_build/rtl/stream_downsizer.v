// Width down-conversion by a whole ratio (IN_BITS = R * OUT_BITS): each input beat leaves
// as R output beats, lowest bits first. With FRAME_BITS > 0, frames are padded to whole
// input beats and only the payload slices of a frame's last input beat are sent.
//
// One word register: a new input beat is taken in the cycle its predecessor's last slice
// leaves, so the output runs at one beat per cycle.
`default_nettype none
`include "common.vh"

module stream_downsizer #(
    parameter IN_BITS = 64, parameter OUT_BITS = 8,
    parameter FRAME_BITS = 0
) (
    `AXIS_PORTS(IN_BITS, OUT_BITS)
);
    localparam R         = IN_BITS / OUT_BITS;
    localparam LAST_KEEP = (FRAME_BITS == 0 || FRAME_BITS % IN_BITS == 0) ? IN_BITS : FRAME_BITS % IN_BITS;
    localparam PADDED    = (LAST_KEEP != IN_BITS);
    localparam BEATS     = PADDED ? (FRAME_BITS + IN_BITS - 1) / IN_BITS : 1;
    localparam RW        = `CLOG2_1(R);
    localparam BW        = `CLOG2_1(BEATS);
    localparam integer LAST_SLICE_I = R - 1;
    localparam integer PAD_SLICE_I  = LAST_KEEP / OUT_BITS - 1;
    localparam integer LAST_BEAT_I  = BEATS - 1;
    localparam [RW-1:0] LAST_SLICE = LAST_SLICE_I[RW-1:0];
    localparam [RW-1:0] PAD_SLICE  = PAD_SLICE_I[RW-1:0];
    localparam [BW-1:0] LAST_BEAT  = LAST_BEAT_I[BW-1:0];

    reg [IN_BITS-1:0] word;
    reg               full;
    reg [RW-1:0]      slice;
    reg [RW-1:0]      last_slice;     // of the word held
    reg [BW-1:0]      beat;           // input beat within the frame

    wire out_fire  = full && m_axis_tready;
    wire emptying  = out_fire && (slice == last_slice);
    wire in_fire   = s_axis_tvalid && s_axis_tready;

    assign s_axis_tready = !full || emptying;
    assign m_axis_tvalid = full;
    assign m_axis_tdata  = word[slice*OUT_BITS +: OUT_BITS];

    always @(posedge clk) begin
        if (in_fire) word <= s_axis_tdata;
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            full       <= 1'b0;
            slice      <= {RW{1'b0}};
            last_slice <= LAST_SLICE;
            beat       <= {BW{1'b0}};
        end else if (in_fire) begin
            full       <= 1'b1;
            slice      <= {RW{1'b0}};
            last_slice <= (PADDED && beat == LAST_BEAT) ? PAD_SLICE : LAST_SLICE;
            beat       <= (beat == LAST_BEAT) ? {BW{1'b0}} : beat + 1'b1;
        end else if (emptying) begin
            full <= 1'b0;
        end else if (out_fire) begin
            slice <= slice + 1'b1;
        end
    end
endmodule

`default_nettype wire
