// AXI-Stream width converter for any input and output widths.
//
// The stream is a little-endian bit sequence: bit 0 of a beat comes first. This is
// exactly the hardware-layer stream convention (element i of a beat at [i*b +: b], beat j
// before beat j+1), so repacking bits repacks elements without knowing their width.
//
// FRAME_BITS = 0: a continuous bit stream (both widths must divide the frame size).
// FRAME_BITS > 0: frames of FRAME_BITS payload bits, each padded to whole input beats
// (e.g. 64-bit DMA words carrying 784 pixels); the pad bits of a frame's last input beat
// are dropped. FRAME_BITS must be a multiple of OUT_BITS.
//
// Implementations, cheapest first:
// - equal widths: wires;
// - IN a multiple of OUT: stream_downsizer (one word register, a slice mux);
// - OUT a multiple of IN: stream_upsizer (collect R beats);
// - otherwise, unpadded, with a small least common multiple L (e.g. 64 -> 24 bits,
//   L = 192): upsize to L bits, then downsize (flip-flops instead of shifters, and a
//   frame is a whole number of L-bit blocks because it is one of both widths);
// - otherwise a bit buffer filled from the bottom (`fill` bits valid, the bits above
//   `fill` kept zero so a new beat can be OR-ed in at position `fill`); positions are
//   multiples of UNIT (the gcd of the widths), which keeps the shifters small. The buffer
//   holds IN_BITS + 2*OUT_BITS bits: enough that s_axis_tready depends on registers only
//   while the faster side still moves one beat per cycle.
// All of them pass one beat per cycle on the faster side.
`default_nettype none
`include "common.vh"

module stream_width_converter #(
    parameter IN_BITS = 64, parameter OUT_BITS = 24,
    parameter FRAME_BITS = 0
) (
    `AXIS_PORTS(IN_BITS, OUT_BITS)
);
    function integer gcd;
        input integer a;
        input integer b;
        integer x, y, t;
        begin
            x = a;
            y = b;
            while (y != 0) begin
                t = x % y;
                x = y;
                y = t;
            end
            gcd = x;
        end
    endfunction

    // payload bits in the last input beat of a frame
    localparam LAST_KEEP  = (FRAME_BITS == 0 || FRAME_BITS % IN_BITS == 0)
                            ? IN_BITS : FRAME_BITS % IN_BITS;
    localparam PADDED     = (LAST_KEEP != IN_BITS);
    localparam UNIT       = gcd(gcd(IN_BITS, OUT_BITS), LAST_KEEP);
    localparam IN_U       = IN_BITS / UNIT;
    localparam OUT_U      = OUT_BITS / UNIT;
    localparam KEEP_U     = LAST_KEEP / UNIT;
    localparam BUF_U      = IN_U + 2 * OUT_U;
    localparam BUF_BITS   = BUF_U * UNIT;
    localparam FW         = $clog2(BUF_U + 1);
    localparam BEATS      = (FRAME_BITS == 0) ? 1 : (FRAME_BITS + IN_BITS - 1) / IN_BITS;
    localparam BW         = `CLOG2_1(BEATS);
    localparam integer LAST_BEAT_I = BEATS - 1;
    localparam [BW-1:0] LAST_BEAT = LAST_BEAT_I[BW-1:0];
    localparam integer IN_FW_I = IN_U;
    localparam [FW-1:0] IN_FW = IN_FW_I[FW-1:0];
    localparam integer OUT_FW_I = OUT_U;
    localparam [FW-1:0] OUT_FW = OUT_FW_I[FW-1:0];
    localparam integer KEEP_FW_I = KEEP_U;
    localparam [FW-1:0] KEEP_FW = KEEP_FW_I[FW-1:0];
    localparam integer ROOM_FW_I = BUF_U - IN_U;
    localparam [FW-1:0] ROOM_FW = ROOM_FW_I[FW-1:0];
    localparam LCM_BITS  = IN_BITS / gcd(IN_BITS, OUT_BITS) * OUT_BITS;
    localparam MAX_BITS  = (IN_BITS > OUT_BITS) ? IN_BITS : OUT_BITS;
    localparam USE_DOWN  = (IN_BITS % OUT_BITS == 0) && (IN_BITS != OUT_BITS || PADDED);
    localparam USE_UP    = !PADDED && (OUT_BITS % IN_BITS == 0) && (IN_BITS != OUT_BITS);
    localparam USE_LCM   = !PADDED && !USE_DOWN && !USE_UP && (IN_BITS != OUT_BITS)
                           && (LCM_BITS <= 8 * MAX_BITS);

    generate
        if (IN_BITS == OUT_BITS && !PADDED) begin : g_pass
            // same width, nothing to drop: a wire
            assign m_axis_tdata  = s_axis_tdata;
            assign m_axis_tvalid = s_axis_tvalid;
            assign s_axis_tready = m_axis_tready;
            wire unused = &{1'b0, clk, rst_n};
        end else if (USE_DOWN) begin : g_down
            stream_downsizer #(.IN_BITS(IN_BITS), .OUT_BITS(OUT_BITS), .FRAME_BITS(FRAME_BITS)) down (
                .clk(clk), .rst_n(rst_n),
                .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
                .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
            );
        end else if (USE_UP) begin : g_up
            stream_upsizer #(.IN_BITS(IN_BITS), .OUT_BITS(OUT_BITS)) up (
                .clk(clk), .rst_n(rst_n),
                .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
                .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
            );
        end else if (USE_LCM) begin : g_lcm
            wire [LCM_BITS-1:0] block_tdata;
            wire                block_tvalid, block_tready;
            stream_upsizer #(.IN_BITS(IN_BITS), .OUT_BITS(LCM_BITS)) up (
                .clk(clk), .rst_n(rst_n),
                .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
                .m_axis_tdata(block_tdata), .m_axis_tvalid(block_tvalid), .m_axis_tready(block_tready)
            );
            stream_downsizer #(.IN_BITS(LCM_BITS), .OUT_BITS(OUT_BITS), .FRAME_BITS(0)) down (
                .clk(clk), .rst_n(rst_n),
                .s_axis_tdata(block_tdata), .s_axis_tvalid(block_tvalid), .s_axis_tready(block_tready),
                .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
            );
        end else begin : g_shift
            reg [BUF_BITS-1:0] buffer;
            reg [FW-1:0]       fill;     // valid bits in buffer, in UNITs
            reg [BW-1:0]       beat;     // input beat index within the frame

            wire in_fire  = s_axis_tvalid && s_axis_tready;
            wire out_fire = m_axis_tvalid && m_axis_tready;
            wire last_in  = PADDED && (beat == LAST_BEAT);

            assign s_axis_tready = (fill <= ROOM_FW);
            assign m_axis_tvalid = (fill >= OUT_FW);
            assign m_axis_tdata  = buffer[OUT_BITS-1:0];

            // the incoming beat with its pad bits cleared, widened to the buffer
            wire [BUF_BITS-1:0] keep_mask = last_in
                ? {{(BUF_BITS - LAST_KEEP){1'b0}}, {LAST_KEEP{1'b1}}}
                : {{(BUF_BITS - IN_BITS){1'b0}}, {IN_BITS{1'b1}}};
            wire [BUF_BITS-1:0] in_wide = {{(BUF_BITS - IN_BITS){1'b0}}, s_axis_tdata} & keep_mask;

            wire [BUF_BITS-1:0] shifted   = out_fire ? (buffer >> OUT_BITS) : buffer;
            wire [FW-1:0]       remaining = out_fire ? fill - OUT_FW : fill;
            wire [FW-1:0]       added     = last_in ? KEEP_FW : IN_FW;

            // insert position in bits; a multiple of UNIT
            wire [BUF_BITS-1:0] inserted = in_wide << (remaining * UNIT);

            always @(posedge clk) begin
                if (!rst_n) begin
                    buffer <= {BUF_BITS{1'b0}};
                    fill   <= {FW{1'b0}};
                    beat   <= {BW{1'b0}};
                end else begin
                    if (in_fire) begin
                        buffer <= shifted | inserted;
                        fill   <= remaining + added;
                        beat   <= (beat == LAST_BEAT) ? {BW{1'b0}} : beat + 1'b1;
                    end else begin
                        buffer <= shifted;
                        fill   <= remaining;
                    end
                end
            end
        end
    endgenerate
endmodule

`default_nettype wire
