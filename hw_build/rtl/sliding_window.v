// Sliding-window generator (im2col on a stream).
//
// Input: an IFM_H x IFM_W x C image, SIMD channels per beat (NHWC order). Output: for
// every output pixel (oy, ox) its K x K x C window in (kh, kw, c) order, SIMD channels
// per beat; positions outside the image (padding) carry PAD_VALUE.
//
// Full throughput: a circular line buffer of NROWS image rows. The writer stores
// incoming rows while the reader emits the windows of the current output row, which
// needs K rows; with NROWS >= K + STRIDE the other slots receive the rows of the next
// output row at the same time, so neither side waits in steady state. Across a frame
// boundary the next frame's first output row needs its rows (0..K-1-PAD_T) while the
// last output row of the frame still holds its own: the generator (SlidingWindow.
// line_buffer_rows) makes NROWS large enough for both, so the layer runs at
// max(input beats, output beats) per frame with frames back to back.
//
// Bookkeeping is per row: `avail` counts complete rows at or after the reader's low
// watermark `low_row` (the first row still needed). The writer may fill a slot while
// avail < NROWS; the reader starts a beat when all rows of the current output row's
// windows are complete, and releases rows when it finishes an output row. Rows that are
// never needed (below the last window) are released before they arrive, which makes
// avail negative for a while; the writer then just skips over them.
//
// Memory: NROWS*IFM_W*(C/SIMD) words of SIMD*BITS bits, one write port and one
// synchronous read port (block RAM or LUT RAM).
`default_nettype none

module sliding_window #(
    parameter IFM_H     = 4,
    parameter IFM_W     = 4,
    parameter C         = 2,
    parameter K         = 3,
    parameter STRIDE    = 1,
    parameter PAD_T     = 1,
    parameter PAD_L     = 1,
    parameter OFM_H     = 4,
    parameter OFM_W     = 4,
    parameter SIMD      = 1,
    parameter BITS      = 1,
    parameter PAD_VALUE = 0,
    parameter NROWS     = K + STRIDE   // line-buffer rows, >= K + STRIDE (see above)
) (
    input  wire                 clk,
    input  wire                 rst_n,
    input  wire [SIMD*BITS-1:0] s_axis_tdata,
    input  wire                 s_axis_tvalid,
    output wire                 s_axis_tready,
    output wire [SIMD*BITS-1:0] m_axis_tdata,
    output wire                 m_axis_tvalid,
    input  wire                 m_axis_tready
);
    localparam CF        = C / SIMD;
    localparam ROW_BEATS = IFM_W * CF;
    localparam DEPTH     = NROWS * ROW_BEATS;
    localparam WORD      = SIMD * BITS;
    localparam AW        = (DEPTH > 1) ? $clog2(DEPTH) : 1;
    localparam RBW       = (ROW_BEATS > 1) ? $clog2(ROW_BEATS) : 1;
    localparam CFW       = (CF > 1) ? $clog2(CF) : 1;
    localparam KW        = (K > 1) ? $clog2(K) : 1;
    localparam OXW       = (OFM_W > 1) ? $clog2(OFM_W) : 1;
    localparam OYW       = (OFM_H > 1) ? $clog2(OFM_H) : 1;
    localparam SLW       = (NROWS > 1) ? $clog2(NROWS) : 1;
    // signed row/column coordinates (padding makes them negative), and row counts
    localparam SPAN      = IFM_H + IFM_W + PAD_T + PAD_L + 2 * K + 2 * STRIDE + NROWS;
    localparam RW0       = $clog2(SPAN + 1) + 2;
    localparam RW        = (RW0 > AW + 1) ? RW0 : AW + 1;

    localparam integer LAST_ROW_BEAT_I = ROW_BEATS - 1;
    localparam integer LAST_CF_I       = CF - 1;
    localparam integer LAST_K_I        = K - 1;
    localparam integer LAST_OX_I       = OFM_W - 1;
    localparam integer LAST_OY_I       = OFM_H - 1;
    localparam integer ROW_BEATS_I     = ROW_BEATS;
    localparam [RBW-1:0] LAST_ROW_BEAT = LAST_ROW_BEAT_I[RBW-1:0];
    localparam [CFW-1:0] LAST_CF       = LAST_CF_I[CFW-1:0];
    localparam [KW-1:0]  LAST_K        = LAST_K_I[KW-1:0];
    localparam [OXW-1:0] LAST_OX       = LAST_OX_I[OXW-1:0];
    localparam [OYW-1:0] LAST_OY       = LAST_OY_I[OYW-1:0];

    localparam integer H_I        = IFM_H;
    localparam integer W_I        = IFM_W;
    localparam integer NROWS_I    = NROWS;
    localparam integer STRIDE_I   = STRIDE;
    localparam integer KM1_I      = K - 1;
    localparam integer NEG_PAD_T_I = -PAD_T;
    localparam integer NEG_PAD_L_I = -PAD_L;
    localparam integer CF_I       = CF;
    localparam signed [RW-1:0] H_S        = H_I[RW-1:0];
    localparam signed [RW-1:0] W_S        = W_I[RW-1:0];
    localparam signed [RW-1:0] NROWS_S    = NROWS_I[RW-1:0];
    localparam signed [RW-1:0] STRIDE_S   = STRIDE_I[RW-1:0];
    localparam signed [RW-1:0] KM1_S      = KM1_I[RW-1:0];
    localparam signed [RW-1:0] NEG_PAD_T  = NEG_PAD_T_I[RW-1:0];
    localparam signed [RW-1:0] NEG_PAD_L  = NEG_PAD_L_I[RW-1:0];
    localparam signed [RW-1:0] ZERO_S     = {RW{1'b0}};
    localparam signed [RW-1:0] ONE_S      = {{(RW-1){1'b0}}, 1'b1};
    localparam [AW-1:0] ROW_BEATS_A = ROW_BEATS_I[AW-1:0];
    localparam [AW-1:0] CF_A        = CF_I[AW-1:0];

    localparam integer PAD_VALUE_I = PAD_VALUE;
    localparam [BITS-1:0] PAD_ELEM = PAD_VALUE_I[BITS-1:0];
    localparam [WORD-1:0] PAD_WORD = {SIMD{PAD_ELEM}};

    reg [WORD-1:0] mem [0:DEPTH-1];

    reg signed [RW-1:0] avail;        // complete rows at or after low_row
    wire                row_written;  // the writer completes a row this cycle
    wire                row_released; // the reader finishes an output row this cycle
    wire signed [RW-1:0] release_rows;

    // ------------------------------------------------------------------ writer
    // rows go to consecutive slots, so the write address simply runs through the buffer
    localparam integer LAST_ADDR_I = DEPTH - 1;
    localparam [AW-1:0] LAST_ADDR = LAST_ADDR_I[AW-1:0];
    reg [RBW-1:0] wr_beat;
    reg [AW-1:0]  wr_addr;
    wire wr_fire = s_axis_tvalid && s_axis_tready;

    assign s_axis_tready = (avail < NROWS_S);
    assign row_written   = wr_fire && (wr_beat == LAST_ROW_BEAT);

    always @(posedge clk) begin
        if (wr_fire) mem[wr_addr] <= s_axis_tdata;
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            wr_beat <= {RBW{1'b0}};
            wr_addr <= {AW{1'b0}};
        end else if (wr_fire) begin
            wr_beat <= (wr_beat == LAST_ROW_BEAT) ? {RBW{1'b0}} : wr_beat + 1'b1;
            wr_addr <= (wr_addr == LAST_ADDR) ? {AW{1'b0}} : wr_addr + 1'b1;
        end
    end

    // ------------------------------------------------------------------ reader
    reg [OYW-1:0]       oy;
    reg [OXW-1:0]       ox;
    reg [KW-1:0]        kh, kw;
    reg [CFW-1:0]       cf;
    reg signed [RW-1:0] row_lo;       // oy*STRIDE - PAD_T
    reg signed [RW-1:0] col_lo;       // ox*STRIDE - PAD_L
    reg signed [RW-1:0] low_row;      // first image row still needed, clamp(row_lo, 0, H)
    reg [SLW-1:0]       low_slot;     // line-buffer slot of low_row

    reg                 out_valid;
    reg                 out_pad;
    reg [WORD-1:0]      out_word;
    wire advance = !out_valid || m_axis_tready;

    // rows the current output row needs, counted from low_row
    wire signed [RW-1:0] row_hi   = (row_lo + KM1_S < H_S) ? row_lo + KM1_S : H_S - ONE_S;
    wire signed [RW-1:0] rows_needed = row_hi - low_row + ONE_S;
    wire rows_ready = (rows_needed <= ZERO_S) || (avail >= rows_needed);
    wire rd_fire    = advance && rows_ready;

    wire last_cf  = (cf == LAST_CF);
    wire last_kw  = (kw == LAST_K);
    wire last_kh  = (kh == LAST_K);
    wire last_ox  = (ox == LAST_OX);
    wire last_oy  = (oy == LAST_OY);
    wire end_of_row = last_cf && last_kw && last_kh && last_ox;
    assign row_released = rd_fire && end_of_row;

    // position of the current beat in the image
    wire signed [RW-1:0] row = row_lo + {{(RW-KW){1'b0}}, kh};
    wire signed [RW-1:0] col = col_lo + {{(RW-KW){1'b0}}, kw};
    wire is_pad = (row < ZERO_S) || (row >= H_S) || (col < ZERO_S) || (col >= W_S);
    wire signed [RW-1:0] slot_offset = row - low_row;
    wire signed [RW-1:0] slot_sum    = slot_offset + {{(RW-SLW){1'b0}}, low_slot};
    wire signed [RW-1:0] slot_wrap   = (slot_sum >= NROWS_S) ? slot_sum - NROWS_S : slot_sum;
    wire [AW-1:0] slot_a = slot_wrap[AW-1:0];
    wire [AW-1:0] col_a  = col[AW-1:0];
    wire [31:0]   cf_32  = {{(32-CFW){1'b0}}, cf};
    wire [AW-1:0] rd_addr = slot_a * ROW_BEATS_A + col_a * CF_A + cf_32[AW-1:0];

    // low watermark after this output row
    wire signed [RW-1:0] next_row_lo  = last_oy ? NEG_PAD_T : row_lo + STRIDE_S;
    wire signed [RW-1:0] next_low_row = (next_row_lo < ZERO_S) ? ZERO_S
                                      : (next_row_lo > H_S) ? H_S : next_row_lo;
    // at the end of a frame every remaining row of the frame is released
    assign release_rows = last_oy ? H_S - low_row : next_low_row - low_row;
    wire signed [RW-1:0] slot_next = ({{(RW-SLW){1'b0}}, low_slot} + release_rows) % NROWS_S;

    always @(posedge clk) begin
        if (advance) begin
            out_word <= mem[rd_addr];
            out_pad  <= is_pad;
        end
    end

    assign m_axis_tvalid = out_valid;
    assign m_axis_tdata  = out_pad ? PAD_WORD : out_word;

    always @(posedge clk) begin
        if (!rst_n) begin
            oy        <= {OYW{1'b0}};
            ox        <= {OXW{1'b0}};
            kh        <= {KW{1'b0}};
            kw        <= {KW{1'b0}};
            cf        <= {CFW{1'b0}};
            row_lo    <= NEG_PAD_T;
            col_lo    <= NEG_PAD_L;
            low_row   <= ZERO_S;
            low_slot  <= {SLW{1'b0}};
            out_valid <= 1'b0;
        end else begin
            if (advance) out_valid <= rd_fire;
            if (rd_fire) begin
                cf <= last_cf ? {CFW{1'b0}} : cf + 1'b1;
                if (last_cf) begin
                    kw <= last_kw ? {KW{1'b0}} : kw + 1'b1;
                    if (last_kw) begin
                        kh <= last_kh ? {KW{1'b0}} : kh + 1'b1;
                        if (last_kh) begin
                            ox     <= last_ox ? {OXW{1'b0}} : ox + 1'b1;
                            col_lo <= last_ox ? NEG_PAD_L : col_lo + STRIDE_S;
                            if (last_ox) begin
                                oy       <= last_oy ? {OYW{1'b0}} : oy + 1'b1;
                                row_lo   <= next_row_lo;
                                low_row  <= last_oy ? ZERO_S : next_low_row;
                                low_slot <= slot_next[SLW-1:0];
                            end
                        end
                    end
                end
            end
        end
    end

    // ------------------------------------------------------------------ shared row count
    always @(posedge clk) begin
        if (!rst_n) avail <= ZERO_S;
        else avail <= avail + (row_written ? ONE_S : ZERO_S) - (row_released ? release_rows : ZERO_S);
    end

    wire unused = &{1'b0, slot_wrap, col, cf_32, slot_next};
endmodule

`default_nettype wire
