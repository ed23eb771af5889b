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
// watermark (the first row still needed). The writer may fill a slot while
// avail < NROWS; the reader starts a beat when all rows of the current output row's
// windows are complete, and releases rows when it finishes an output row. Rows that are
// never needed (below the last window) are released before they arrive, which makes
// avail negative for a while; the writer then just skips over them.
//
// Timing: every quantity the reader needs for a beat is a register, so no multiplier,
// modulo or chain of coordinate arithmetic sits between registers. Rows go to
// consecutive slots, so image row r of frame f lives in slot (f*IFM_H + r) mod NROWS and
// every step of the reader moves the read address by a constant modulo DEPTH (next beat
// +1, next kernel row +ROW_BEATS, next window +STRIDE*CF, next output row
// +STRIDE*ROW_BEATS, next frame a constant): one add and one wrap-around select. The
// per-output-row row counts (rows needed, rows released) depend only on oy; they come
// from a table indexed by the oy register two rows ahead of use.
//
// Memory: NROWS*IFM_W*(C/SIMD) words of SIMD*BITS bits, one write port and one
// synchronous read port (block RAM or LUT RAM).
`default_nettype none
`include "common.vh"

module sliding_window #(
    parameter IFM_H     = 4, parameter IFM_W = 4, parameter C = 2,
    parameter K         = 3, parameter STRIDE = 1,
    parameter PAD_T     = 1, parameter PAD_L = 1,
    parameter OFM_H     = 4, parameter OFM_W = 4,
    parameter SIMD      = 1,
    parameter BITS      = 1, parameter PAD_VALUE = 0,
    parameter NROWS     = K + STRIDE   // line-buffer rows, >= K + STRIDE (see above)
) (
    `AXIS_PORTS(SIMD*BITS, SIMD*BITS)
);
    localparam CF        = C / SIMD;
    localparam ROW_BEATS = IFM_W * CF;
    localparam DEPTH     = NROWS * ROW_BEATS;
    localparam WORD      = SIMD * BITS;
    localparam AW        = `CLOG2_1(DEPTH);
    localparam RBW       = `CLOG2_1(ROW_BEATS);
    localparam CFW       = `CLOG2_1(CF);
    localparam KW        = `CLOG2_1(K);
    localparam OXW       = `CLOG2_1(OFM_W);
    localparam OYW       = `CLOG2_1(OFM_H);
    // signed row/column coordinates (padding makes them negative), and row counts
    localparam SPAN      = IFM_H + IFM_W + PAD_T + PAD_L + 2 * K + 2 * STRIDE + NROWS;
    localparam RW        = $clog2(SPAN + 1) + 2;

    localparam integer LAST_ROW_BEAT_I = ROW_BEATS - 1;
    localparam integer LAST_CF_I       = CF - 1;
    localparam integer LAST_K_I        = K - 1;
    localparam integer LAST_OX_I       = OFM_W - 1;
    localparam integer LAST_OY_I       = OFM_H - 1;
    localparam [RBW-1:0] LAST_ROW_BEAT = LAST_ROW_BEAT_I[RBW-1:0];
    localparam [CFW-1:0] LAST_CF       = LAST_CF_I[CFW-1:0];
    localparam [KW-1:0]  LAST_K        = LAST_K_I[KW-1:0];
    localparam [OXW-1:0] LAST_OX       = LAST_OX_I[OXW-1:0];
    localparam [OYW-1:0] LAST_OY       = LAST_OY_I[OYW-1:0];

    localparam integer H_I         = IFM_H;
    localparam integer W_I         = IFM_W;
    localparam integer NROWS_I     = NROWS;
    localparam integer STRIDE_I    = STRIDE;
    localparam integer NEG_PAD_T_I = -PAD_T;
    localparam integer NEG_PAD_L_I = -PAD_L;
    localparam signed [RW-1:0] H_S       = H_I[RW-1:0];
    localparam signed [RW-1:0] W_S       = W_I[RW-1:0];
    localparam signed [RW-1:0] NROWS_S   = NROWS_I[RW-1:0];
    localparam signed [RW-1:0] STRIDE_S  = STRIDE_I[RW-1:0];
    localparam signed [RW-1:0] NEG_PAD_T = NEG_PAD_T_I[RW-1:0];
    localparam signed [RW-1:0] NEG_PAD_L = NEG_PAD_L_I[RW-1:0];
    localparam signed [RW-1:0] ZERO_S    = {RW{1'b0}};
    localparam signed [RW-1:0] ONE_S     = {{(RW-1){1'b0}}, 1'b1};

    localparam integer PAD_VALUE_I = PAD_VALUE;
    localparam [BITS-1:0] PAD_ELEM = PAD_VALUE_I[BITS-1:0];
    localparam [WORD-1:0] PAD_WORD = {SIMD{PAD_ELEM}};

    // ---------------------------------------------------------------- address steps
    // v mod DEPTH in [0, DEPTH) for any integer v
    function integer wrap;
        input integer v;
        begin
            wrap = ((v % DEPTH) + DEPTH) % DEPTH;
        end
    endfunction

    localparam integer STEP_KROW_I  = wrap(ROW_BEATS);
    localparam integer STEP_WIN_I   = wrap(STRIDE * CF);
    localparam integer STEP_OROW_I  = wrap(STRIDE * ROW_BEATS);
    // last output row (row_lo = (OFM_H-1)*STRIDE - PAD_T) to the next frame's first
    // (row_lo = -PAD_T): IFM_H - (OFM_H-1)*STRIDE rows further on
    localparam integer STEP_FRAME_I = wrap((IFM_H - (OFM_H - 1) * STRIDE) * ROW_BEATS);
    // address of (row -PAD_T, column -PAD_L) in the first frame
    localparam integer RBASE0_I     = wrap(-PAD_T * ROW_BEATS - PAD_L * CF);
    localparam integer ONE_I        = wrap(1);
    localparam [AW-1:0] RBASE0 = RBASE0_I[AW-1:0];
    // each step as (step, step - DEPTH), AW+2 bits two's complement
    localparam integer STEP_BEAT_W_I  = ONE_I - DEPTH;
    localparam integer STEP_KROW_W_I  = STEP_KROW_I - DEPTH;
    localparam integer STEP_WIN_W_I   = STEP_WIN_I - DEPTH;
    localparam integer STEP_OROW_W_I  = STEP_OROW_I - DEPTH;
    localparam integer STEP_FRAME_W_I = STEP_FRAME_I - DEPTH;
    // each step as (step, step - DEPTH); the second in AW+2 bits two's complement
    localparam [AW-1:0] STEP_BEAT    = ONE_I[AW-1:0];
    localparam [AW+1:0] STEP_BEAT_W  = STEP_BEAT_W_I[AW+1:0];
    localparam [AW-1:0] STEP_KROW    = STEP_KROW_I[AW-1:0];
    localparam [AW+1:0] STEP_KROW_W  = STEP_KROW_W_I[AW+1:0];
    localparam [AW-1:0] STEP_WIN     = STEP_WIN_I[AW-1:0];
    localparam [AW+1:0] STEP_WIN_W   = STEP_WIN_W_I[AW+1:0];
    localparam [AW-1:0] STEP_OROW    = STEP_OROW_I[AW-1:0];
    localparam [AW+1:0] STEP_OROW_W  = STEP_OROW_W_I[AW+1:0];
    localparam [AW-1:0] STEP_FRAME   = STEP_FRAME_I[AW-1:0];
    localparam [AW+1:0] STEP_FRAME_W = STEP_FRAME_W_I[AW+1:0];

    // (x + step) mod DEPTH for x in [0, DEPTH): both sums side by side, then one select
    // (without wrap-around x + step < DEPTH, so the AW-bit sum is exact)
    function [AW-1:0] step_addr;
        input [AW-1:0] x;
        input [AW-1:0] step;       // in [0, DEPTH)
        input [AW+1:0] step_wrap;  // step - DEPTH
        reg   [AW-1:0] plain;
        reg   [AW+1:0] wrapped;
        begin
            plain     = x + step;
            wrapped   = {2'b00, x} + step_wrap;
            step_addr = wrapped[AW+1] ? plain : wrapped[AW-1:0];
        end
    endfunction

    // ---------------------------------------------------------------- per-output-row counts
    function integer clampi;
        input integer v, lo, hi;
        begin
            clampi = (v < lo) ? lo : (v > hi) ? hi : v;
        end
    endfunction

    // (elaboration-time functions: only the low RW bits of their integers are kept)
    /* verilator lint_off UNUSEDSIGNAL */
    // rows output row oy needs beyond the low watermark (<= 0: none)
    function signed [RW-1:0] rows_needed_at;
        input integer oy;
        integer lo, hi, n;
        begin
            lo = oy * STRIDE - PAD_T;
            hi = (lo + K - 1 < IFM_H) ? lo + K - 1 : IFM_H - 1;
            n  = hi - clampi(lo, 0, IFM_H) + 1;
            rows_needed_at = n[RW-1:0];
        end
    endfunction

    // rows released when output row oy is done (the rest of the frame after the last one)
    function signed [RW-1:0] rows_released_at;
        input integer oy;
        integer low, n;
        begin
            low = clampi(oy * STRIDE - PAD_T, 0, IFM_H);
            n   = (oy == OFM_H - 1) ? IFM_H - low : clampi(oy * STRIDE - PAD_T + STRIDE, 0, IFM_H) - low;
            rows_released_at = n[RW-1:0];
        end
    endfunction
    /* verilator lint_on UNUSEDSIGNAL */

    reg [WORD-1:0] mem [0:DEPTH-1];

    reg signed [RW-1:0] avail;        // complete rows at or after the low watermark
    wire                row_written;  // the writer completes a row this cycle
    wire                row_released; // the reader finishes an output row this cycle

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
    reg signed [RW-1:0] row, col;     // image position of the current beat
    // read addresses (mod DEPTH) of the current beat, of (kw, c) = 0 in its kernel row,
    // of (kh, kw, c) = 0 in its window and of the output row's column -PAD_L
    reg [AW-1:0]        addr, kbase, wbase, rbase;
    // rows the current output row needs (none: <= 0) and releases, and the next row's
    reg signed [RW-1:0] need_now, need_next;
    reg                 none_now, none_next;
    reg signed [RW-1:0] rel_now, rel_next;      // minus the rows released
    reg signed [RW-1:0] wrel_now, wrel_next;    // one minus the rows released

    reg                 out_valid;
    reg                 out_pad;
    reg [WORD-1:0]      out_word;
    wire advance = !out_valid || m_axis_tready;

    wire rows_ready = none_now || (avail >= need_now);
    wire rd_fire    = advance && rows_ready;

    wire last_cf  = (cf == LAST_CF);
    wire last_kw  = (kw == LAST_K);
    wire last_kh  = (kh == LAST_K);
    wire last_ox  = (ox == LAST_OX);
    wire last_oy  = (oy == LAST_OY);
    wire step_kh  = last_cf && last_kw;            // next kernel row
    wire step_win = step_kh && last_kh;            // next window
    wire step_row = step_win && last_ox;           // next output row
    assign row_released = rd_fire && step_row;

    wire is_pad = row[RW-1] || (row >= H_S) || col[RW-1] || (col >= W_S);

    wire [AW-1:0] addr_next  = step_addr(addr, STEP_BEAT, STEP_BEAT_W);
    wire [AW-1:0] kbase_next = step_addr(kbase, STEP_KROW, STEP_KROW_W);
    wire [AW-1:0] wbase_next = step_addr(wbase, STEP_WIN, STEP_WIN_W);
    wire [AW-1:0] rbase_next = last_oy ? step_addr(rbase, STEP_FRAME, STEP_FRAME_W)
                                       : step_addr(rbase, STEP_OROW, STEP_OROW_W);
    wire signed [RW-1:0] row_lo_next = last_oy ? NEG_PAD_T : row_lo + STRIDE_S;
    wire signed [RW-1:0] col_lo_next = col_lo + STRIDE_S;

    // the counts of the output row after the next one, a table of the oy register
    reg signed [RW-1:0] need_ahead, rel_ahead, wrel_ahead;
    reg                 none_ahead;
    wire [31:0]         oy_32 = {{(32-OYW){1'b0}}, oy};
    integer             i;
    always @* begin
        need_ahead = rows_needed_at(0);
        rel_ahead  = -rows_released_at(0);
        for (i = 0; i < OFM_H; i = i + 1) begin
            if (oy_32 == i) begin
                need_ahead = rows_needed_at((i + 2) % OFM_H);
                rel_ahead  = -rows_released_at((i + 2) % OFM_H);
            end
        end
        none_ahead = (need_ahead <= ZERO_S);
        wrel_ahead = rel_ahead + ONE_S;
    end

    always @(posedge clk) begin
        if (advance) begin
            out_word <= mem[addr];
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
            row       <= NEG_PAD_T;
            col       <= NEG_PAD_L;
            addr      <= RBASE0;
            kbase     <= RBASE0;
            wbase     <= RBASE0;
            rbase     <= RBASE0;
            need_now  <= rows_needed_at(0);
            none_now  <= (rows_needed_at(0) <= ZERO_S);
            rel_now   <= -rows_released_at(0);
            wrel_now  <= ONE_S - rows_released_at(0);
            need_next <= rows_needed_at(1 % OFM_H);
            none_next <= (rows_needed_at(1 % OFM_H) <= ZERO_S);
            rel_next  <= -rows_released_at(1 % OFM_H);
            wrel_next <= ONE_S - rows_released_at(1 % OFM_H);
            out_valid <= 1'b0;
        end else begin
            if (advance) out_valid <= rd_fire;
            if (rd_fire) begin
                cf <= last_cf ? {CFW{1'b0}} : cf + 1'b1;
                if (last_cf) kw <= last_kw ? {KW{1'b0}} : kw + 1'b1;
                if (step_kh) kh <= last_kh ? {KW{1'b0}} : kh + 1'b1;
                if (step_win) ox <= last_ox ? {OXW{1'b0}} : ox + 1'b1;
                if (step_row) begin
                    oy        <= last_oy ? {OYW{1'b0}} : oy + 1'b1;
                    row_lo    <= row_lo_next;
                    row       <= row_lo_next;
                    col_lo    <= NEG_PAD_L;
                    col       <= NEG_PAD_L;
                    rbase     <= rbase_next;
                    wbase     <= rbase_next;
                    kbase     <= rbase_next;
                    addr      <= rbase_next;
                    need_now  <= need_next;
                    none_now  <= none_next;
                    rel_now   <= rel_next;
                    wrel_now  <= wrel_next;
                    need_next <= need_ahead;
                    none_next <= none_ahead;
                    rel_next  <= rel_ahead;
                    wrel_next <= wrel_ahead;
                end else if (step_win) begin
                    row    <= row_lo;
                    col_lo <= col_lo_next;
                    col    <= col_lo_next;
                    wbase  <= wbase_next;
                    kbase  <= wbase_next;
                    addr   <= wbase_next;
                end else if (step_kh) begin
                    row   <= row + ONE_S;
                    col   <= col_lo;
                    kbase <= kbase_next;
                    addr  <= kbase_next;
                end else begin
                    if (last_cf) col <= col + ONE_S;
                    addr <= addr_next;
                end
            end
        end
    end

    // ------------------------------------------------------------------ shared row count
    // one adder: the change is one of four registered values
    wire signed [RW-1:0] avail_change = row_written ? (row_released ? wrel_now : ONE_S)
                                                    : (row_released ? rel_now : ZERO_S);
    always @(posedge clk) begin
        if (!rst_n) avail <= ZERO_S;
        else avail <= avail + avail_change;
    end
endmodule

`default_nettype wire
