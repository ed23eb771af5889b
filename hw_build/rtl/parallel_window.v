// Window-parallel sliding-window generator: line buffers plus a K x K register window.
//
// Input: an IFM_H x IFM_W x C image, one whole pixel (C elements) per beat (NHWC order).
// Output: for every output pixel (oy, ox) its K x K x C window in (kh, kw, c) order,
// SIMD elements per beat (SIMD divides K*K*C: F = K*K*C/SIMD beats per window, F = 1 for
// the whole window in one beat); positions outside the image carry PAD_VALUE. The same
// stream the element-serial sliding_window produces, only wider beats.
//
// The unit scans the padded image in raster order, one position per cycle: the rows and
// columns the windows need, plus any image rows/columns below or right of the last window
// (consumed and dropped). At an image position it takes one input beat, at a padding
// position it inserts PAD_VALUE without input. Each scanned pixel enters the bottom-right
// corner of the window register, whose rows come from K-1 line buffers (one word per
// padded column, the K-1 rows above, async-read LUT RAM, read-modify-written in place).
// When the position completes the window of an output pixel (bottom-right corner at
// (oy*STRIDE + K-1, ox*STRIDE + K-1)), the window is emitted in F beats and the scan
// waits for its last beat, so a frame takes
//     SCAN_H * SCAN_W + OFM_H * OFM_W * (F - 1)
// cycles with frames back to back (ParallelWindow.cycles()).
//
// Timing: the stride phases are down-counters, the image/padding test compares the
// position counters with constants; the output is a registered F:1 multiplexer.
`default_nettype none
`include "common.vh"

module parallel_window #(
    parameter IFM_H     = 4, parameter IFM_W = 4,     // input image
    parameter C         = 2,
    parameter K         = 3, parameter STRIDE = 1,    // window
    parameter PAD_T     = 1, parameter PAD_L  = 1,    // padding above and left
    parameter OFM_H     = 4, parameter OFM_W  = 4,    // output pixels
    parameter SIMD      = 6,
    parameter BITS      = 1,
    parameter PAD_VALUE = 0
) (
    `AXIS_PORTS(C*BITS, SIMD*BITS)
);
    localparam PIX    = C * BITS;
    localparam WIN    = K * K * PIX;
    localparam WORD   = SIMD * BITS;
    localparam F      = (K * K * C) / SIMD;
    // padded rows / columns the windows need, and the scanned region
    localparam NEED_H = (OFM_H - 1) * STRIDE + K;
    localparam NEED_W = (OFM_W - 1) * STRIDE + K;
    localparam SCAN_H = (PAD_T + IFM_H > NEED_H) ? PAD_T + IFM_H : NEED_H;
    localparam SCAN_W = (PAD_L + IFM_W > NEED_W) ? PAD_L + IFM_W : NEED_W;
    localparam YW     = `CLOG2_1(SCAN_H);
    localparam XW     = `CLOG2_1(SCAN_W);
    localparam PH     = (K > STRIDE) ? K : STRIDE;
    localparam PW     = `CLOG2_1(PH);
    localparam JW     = `CLOG2_1(F);
    localparam LBW    = (K - 1) * PIX;

    localparam integer LAST_Y_I  = SCAN_H - 1;
    localparam integer LAST_X_I  = SCAN_W - 1;
    localparam integer HIT_Y_I   = NEED_H - 1;      // last row / column a window ends on
    localparam integer HIT_X_I   = NEED_W - 1;
    localparam integer TOP_I     = PAD_T;
    localparam integer BOT_I     = PAD_T + IFM_H;   // first row below the image
    localparam integer LEFT_I    = PAD_L;
    localparam integer RIGHT_I   = PAD_L + IFM_W;
    localparam integer KM1_I     = K - 1;
    localparam integer SM1_I     = STRIDE - 1;
    localparam integer LAST_J_I  = F - 1;
    localparam [YW-1:0] LAST_Y   = LAST_Y_I[YW-1:0];
    localparam [XW-1:0] LAST_X   = LAST_X_I[XW-1:0];
    localparam [PW-1:0] PH_KM1   = KM1_I[PW-1:0];
    localparam [PW-1:0] PH_SM1   = SM1_I[PW-1:0];
    localparam [JW-1:0] LAST_J   = LAST_J_I[JW-1:0];

    localparam integer PAD_VALUE_I = PAD_VALUE;
    localparam [BITS-1:0] PAD_ELEM = PAD_VALUE_I[BITS-1:0];
    localparam [PIX-1:0]  PAD_PIX  = {C{PAD_ELEM}};

    // ------------------------------------------------------------------ scan position
    reg [YW-1:0] py;
    reg [XW-1:0] px;
    reg [PW-1:0] yph, xph;          // rows / columns until the next window row / column
    wire [31:0]  py_32 = {{(32-YW){1'b0}}, py};
    wire [31:0]  px_32 = {{(32-XW){1'b0}}, px};
    wire row_in, col_in;
    generate
        if (PAD_T > 0) begin : g_pad_top
            assign row_in = (py_32 >= TOP_I) && (py_32 < BOT_I);
        end else begin : g_no_pad_top
            assign row_in = (py_32 < BOT_I);
        end
        if (PAD_L > 0) begin : g_pad_left
            assign col_in = (px_32 >= LEFT_I) && (px_32 < RIGHT_I);
        end else begin : g_no_pad_left
            assign col_in = (px_32 < RIGHT_I);
        end
    endgenerate
    wire pad_pos = !(row_in && col_in);
    wire hit     = (yph == {PW{1'b0}}) && (py_32 <= HIT_Y_I) && (xph == {PW{1'b0}}) && (px_32 <= HIT_X_I);

    // ------------------------------------------------------------------ handshake
    reg              out_valid;
    reg [WORD-1:0]   out_data;
    reg              busy;          // the window register holds a window not fully emitted
    reg [JW-1:0]     j;             // its next beat
    wire advance = !out_valid || m_axis_tready;
    wire emit    = busy && advance;
    wire last_j  = (j == LAST_J);
    wire free    = !busy || (emit && last_j);
    wire step    = free && (pad_pos || s_axis_tvalid);

    assign s_axis_tready = free && !pad_pos;
    assign m_axis_tvalid = out_valid;
    assign m_axis_tdata  = out_data;

    wire [PIX-1:0] pixel = pad_pos ? PAD_PIX : s_axis_tdata;

    // ------------------------------------------------------------------ line buffers
    // word px holds column px of the K-1 rows above the scan row, the nearest at bits [0 +: PIX]
    reg  [LBW-1:0] lines [0:SCAN_W-1];
    wire [LBW-1:0] above = lines[px];
    wire [LBW-1:0] lines_next;
    generate
        if (K > 2) begin : g_shift_lines
            assign lines_next = {above[(K-2)*PIX-1:0], pixel};
        end else begin : g_one_line
            assign lines_next = pixel;
            wire unused = &{1'b0, above};
        end
    endgenerate

    always @(posedge clk) begin
        if (step) lines[px] <= lines_next;
    end

    // ------------------------------------------------------------------ window register
    // pixel (kh, kw) of the window at bits [(kh*K + kw)*PIX +: PIX]: kh = 0 is the oldest row
    reg  [WIN-1:0] window;
    reg  [WIN-1:0] window_next;
    integer kh, kw;
    always @* begin
        for (kh = 0; kh < K; kh = kh + 1) begin
            for (kw = 0; kw < K - 1; kw = kw + 1)
                window_next[(kh*K + kw)*PIX +: PIX] = window[(kh*K + kw + 1)*PIX +: PIX];
            if (kh == K - 1) window_next[(kh*K + K - 1)*PIX +: PIX] = pixel;
            else window_next[(kh*K + K - 1)*PIX +: PIX] = above[(K - 2 - kh)*PIX +: PIX];
        end
    end

    always @(posedge clk) begin
        if (step) window <= window_next;
    end

    // ------------------------------------------------------------------ output beats
    reg [WORD-1:0] chunk;
    integer q;
    always @* begin
        chunk = window[WORD-1:0];
        for (q = 1; q < F; q = q + 1)
            if (j == q[JW-1:0]) chunk = window[q*WORD +: WORD];
    end

    always @(posedge clk) begin
        if (emit) out_data <= chunk;
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            py        <= {YW{1'b0}};
            px        <= {XW{1'b0}};
            yph       <= PH_KM1;
            xph       <= PH_KM1;
            busy      <= 1'b0;
            j         <= {JW{1'b0}};
            out_valid <= 1'b0;
        end else begin
            if (advance) out_valid <= busy;
            if (emit) j <= last_j ? {JW{1'b0}} : j + 1'b1;
            if (step) busy <= hit;
            else if (emit && last_j) busy <= 1'b0;
            if (step) begin
                if (px == LAST_X) begin
                    px  <= {XW{1'b0}};
                    xph <= PH_KM1;
                    if (py == LAST_Y) begin
                        py  <= {YW{1'b0}};
                        yph <= PH_KM1;
                    end else begin
                        py  <= py + 1'b1;
                        yph <= (yph == {PW{1'b0}}) ? PH_SM1 : yph - 1'b1;
                    end
                end else begin
                    px  <= px + 1'b1;
                    xph <= (xph == {PW{1'b0}}) ? PH_SM1 : xph - 1'b1;
                end
            end
        end
    end
endmodule

`default_nettype wire
