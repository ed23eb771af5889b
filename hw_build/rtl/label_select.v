// Top-1 label: score[c] = A[c]*x[c] + B[c] (AFFINE = 1) or x[c]; output the first index
// of the maximum, one OUT_BITS label beat per frame. PE scores per beat, C/PE beats.
//
// Affine ROM (AFFINE = 1): word f holds A[f*PE + p] at [p*A_BITS +: A_BITS] and
// B[f*PE + p] at [PE*A_BITS + p*B_BITS +: B_BITS], two's complement.
//
// Pipeline: accept beat + ROM read -> scores -> beat maximum merged into the running
// maximum. Ties keep the earlier index (strict comparisons, lanes scanned upwards and
// earlier beats win), like numpy's argmax. One input beat per cycle.
`default_nettype none
`include "common.vh"

module label_select #(
    parameter C           = 10,
    parameter PE          = 1,
    parameter IN_BITS     = 8,
    parameter IN_SIGNED   = 1,
    parameter AFFINE      = 0,
    parameter A_BITS      = 2,
    parameter B_BITS      = 2,
    parameter SCORE_BITS  = 9,
    parameter OUT_BITS    = 4,
    parameter AFFINE_FILE = ""
) (
    `AXIS_PORTS(PE*IN_BITS, OUT_BITS)
);
    localparam FOLDS = C / PE;
    localparam FW    = `CLOG2_1(FOLDS);
    localparam ABW   = PE * (A_BITS + B_BITS);
    localparam integer LAST_FOLD_I = FOLDS - 1;
    localparam integer PE_I        = PE;
    localparam [FW-1:0]       LAST_FOLD = LAST_FOLD_I[FW-1:0];
    localparam [OUT_BITS-1:0] PE_O      = PE_I[OUT_BITS-1:0];

    reg                 out_valid;
    reg [OUT_BITS-1:0]  out_data;
    wire advance = !out_valid || m_axis_tready;
    wire in_fire = s_axis_tvalid && advance;
    assign s_axis_tready = advance;
    assign m_axis_tvalid = out_valid;
    assign m_axis_tdata  = out_data;

    // ------------------------------------------------------------ stage 1: beat + ROM word
    reg [FW-1:0]         fold;
    reg [OUT_BITS-1:0]   base;        // index of lane 0 of the accepted beat (fold*PE)
    reg                  v1, last1;
    reg [OUT_BITS-1:0]   base1;
    reg [PE*IN_BITS-1:0] x1;
    wire [ABW-1:0]       ab1;

    generate
        if (AFFINE != 0) begin : g_affine
            rom #(.WIDTH(ABW), .DEPTH(FOLDS), .INIT_FILE(AFFINE_FILE), .STYLE("distributed")) affine_rom (
                .clk(clk), .en(advance), .addr(fold), .data(ab1)
            );
        end else begin : g_identity
            assign ab1 = {ABW{1'b0}};
        end
    endgenerate

    always @(posedge clk) begin
        if (advance) begin
            x1    <= s_axis_tdata;
            base1 <= base;
            last1 <= (fold == LAST_FOLD);
        end
    end

    // ------------------------------------------------------------ stage 2: scores
    function [SCORE_BITS-1:0] widen_x;
        input [IN_BITS-1:0] v;
        begin
            widen_x = {SCORE_BITS{IN_SIGNED != 0 && v[IN_BITS-1]}};
            widen_x[IN_BITS-1:0] = v;
        end
    endfunction

    function [SCORE_BITS-1:0] widen_a;
        input [A_BITS-1:0] v;
        begin
            widen_a = {SCORE_BITS{v[A_BITS-1]}};
            widen_a[A_BITS-1:0] = v;
        end
    endfunction

    function [SCORE_BITS-1:0] widen_b;
        input [B_BITS-1:0] v;
        begin
            widen_b = {SCORE_BITS{v[B_BITS-1]}};
            widen_b[B_BITS-1:0] = v;
        end
    endfunction

    reg [PE*SCORE_BITS-1:0] scores;
    integer p;
    always @* begin
        for (p = 0; p < PE; p = p + 1)
            if (AFFINE != 0)
                scores[p*SCORE_BITS +: SCORE_BITS] =
                    widen_a(ab1[p*A_BITS +: A_BITS]) * widen_x(x1[p*IN_BITS +: IN_BITS])
                    + widen_b(ab1[PE*A_BITS + p*B_BITS +: B_BITS]);
            else
                scores[p*SCORE_BITS +: SCORE_BITS] = widen_x(x1[p*IN_BITS +: IN_BITS]);
    end

    reg                     v2, last2;
    reg [OUT_BITS-1:0]      base2;
    reg [PE*SCORE_BITS-1:0] scores2;
    always @(posedge clk) begin
        if (advance) begin
            scores2 <= scores;
            base2   <= base1;
            last2   <= last1;
        end
    end

    // ------------------------------------------------------------ stage 3: maximum
    reg signed [SCORE_BITS-1:0] beat_best, lane_score;
    reg [OUT_BITS-1:0]          beat_idx, lane_idx;
    integer q;
    always @* begin
        beat_best = scores2[SCORE_BITS-1:0];
        beat_idx  = base2;
        lane_idx  = base2;
        for (q = 1; q < PE; q = q + 1) begin
            lane_score = scores2[q*SCORE_BITS +: SCORE_BITS];
            lane_idx   = lane_idx + 1'b1;
            if (lane_score > beat_best) begin
                beat_best = lane_score;
                beat_idx  = lane_idx;
            end
        end
    end

    reg signed [SCORE_BITS-1:0] best;
    reg [OUT_BITS-1:0]          best_idx;
    wire first2 = (base2 == {OUT_BITS{1'b0}});
    wire take   = first2 || (beat_best > best);
    always @(posedge clk) begin
        if (advance && v2) begin
            if (take) begin
                best     <= beat_best;
                best_idx <= beat_idx;
            end
        end
        if (advance) out_data <= take ? beat_idx : best_idx;
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            fold      <= {FW{1'b0}};
            base      <= {OUT_BITS{1'b0}};
            v1        <= 1'b0;
            v2        <= 1'b0;
            out_valid <= 1'b0;
        end else if (advance) begin
            v1        <= in_fire;
            v2        <= v1;
            out_valid <= v2 && last2;
            if (in_fire) begin
                fold <= (fold == LAST_FOLD) ? {FW{1'b0}} : fold + 1'b1;
                base <= (fold == LAST_FOLD) ? {OUT_BITS{1'b0}} : base + PE_O;
            end
        end
    end
endmodule

`default_nettype wire
