// Multi-threshold activation: out[c] = #{t : x[c] >= T[c][t]}, PE channels per beat.
//
// Thresholds are T_BITS two's complement numbers (the generator clamps them to the
// input range plus one, so T_BITS = input bits + 1 suffices). Two implementations:
//
// SEARCH = 0, all thresholds at once: a ROM word per channel fold (C/PE words) holds
//   T[f*PE + p][t] at bits [(p*NUM_THRESH + t)*T_BITS +: T_BITS]; every lane compares
//   against all of them and counts the passes with a popcount tree. Pipeline: accept beat
//   + ROM read -> compare and count -> output register.
//
// SEARCH = 1, binary search over thresholds sorted ascending, for many thresholds (an
//   8-bit input quantizer has 255): the thresholds are padded to 2^LEVELS - 1 with
//   never-passed values and stage k (k = 0..LEVELS-1) decides result bit b = LEVELS-1-k by
//   one comparison with T[prefix + 2^b - 1]. Stage k's thresholds sit in their own ROM
//   (file THRESH_FILE + "_s<k>.mem": THRESH_FILE is a name prefix here), word f*2^k + j holding, for
//   lane p, T[f*PE + p][j*2^(b+1) + 2^b - 1] at [p*T_BITS +: T_BITS]; each lane reads its
//   own word (the lanes' prefixes differ), so each lane has a copy of the ROM of which
//   synthesis keeps only that lane's bits. One compare per lane and stage instead of
//   NUM_THRESH, and the thresholds sit in deep narrow ROMs instead of one very wide one.
//   The result leaves LEVELS + 1 cycles after the beat.
//
// All stages advance together when the output register is free or being read, so
// s_axis_tready = !m_axis_tvalid || m_axis_tready; one beat per cycle either way.
`default_nettype none
`include "common.vh"

module thresholding #(
    parameter C            = 4, parameter PE = 2,
    parameter IN_BITS      = 8, parameter IN_SIGNED = 0,
    parameter NUM_THRESH   = 1, parameter T_BITS = 9,
    parameter OUT_BITS     = 1,
    parameter SEARCH       = 0,
    parameter THRESH_FILE  = "", parameter THRESH_STYLE = "auto"    // rom STYLE
) (
    `AXIS_PORTS(PE*IN_BITS, PE*OUT_BITS)
);
    localparam FOLDS  = C / PE;
    localparam FW     = `CLOG2_1(FOLDS);
    localparam LEVELS = $clog2(NUM_THRESH + 1);
    localparam integer LAST_FOLD_I = FOLDS - 1;
    localparam [FW-1:0] LAST_FOLD = LAST_FOLD_I[FW-1:0];

    reg [FW-1:0]          fold;
    reg [PE*OUT_BITS-1:0] out_data;
    reg                   out_valid;

    wire advance = !out_valid || m_axis_tready;
    wire in_fire = s_axis_tvalid && advance;

    assign s_axis_tready = advance;
    assign m_axis_tvalid = out_valid;
    assign m_axis_tdata  = out_data;

    `EXTEND_FUNCTION(widen, IN_BITS, T_BITS, IN_SIGNED)

    always @(posedge clk) begin
        if (!rst_n) fold <= {FW{1'b0}};
        else if (in_fire) fold <= (fold == LAST_FOLD) ? {FW{1'b0}} : fold + 1'b1;
    end

    genvar p, k;
    generate
        if (SEARCH == 0) begin : g_parallel
            localparam TWORD = PE * NUM_THRESH * T_BITS;
            wire [TWORD-1:0]      th_q;
            reg  [PE*IN_BITS-1:0] x_q;
            reg                   x_valid;
            wire [PE*OUT_BITS-1:0] level;

            rom #(.WIDTH(TWORD), .DEPTH(FOLDS), .INIT_FILE(THRESH_FILE), .STYLE(THRESH_STYLE)) threshold_rom (
                .clk(clk), .en(advance), .addr(fold), .data(th_q)
            );

            for (p = 0; p < PE; p = p + 1) begin : g_lane
                reg [NUM_THRESH-1:0] passed;
                integer t;
                always @* begin
                    for (t = 0; t < NUM_THRESH; t = t + 1)
                        passed[t] = $signed(widen(x_q[p*IN_BITS +: IN_BITS]))
                                    >= $signed(th_q[(p*NUM_THRESH + t)*T_BITS +: T_BITS]);
                end
                adder_tree #(.N(NUM_THRESH), .IN_BITS(1), .SIGNED(0), .OUT_BITS(OUT_BITS)) counter (
                    .terms(passed), .sum(level[p*OUT_BITS +: OUT_BITS])
                );
            end

            always @(posedge clk) begin
                if (advance) begin
                    x_q      <= s_axis_tdata;
                    out_data <= level;
                end
            end
            always @(posedge clk) begin
                if (!rst_n) begin
                    x_valid   <= 1'b0;
                    out_valid <= 1'b0;
                end else if (advance) begin
                    x_valid   <= in_fire;
                    out_valid <= x_valid;
                end
            end
        end else begin : g_search
            localparam XW = PE * IN_BITS;
            localparam PW = PE * LEVELS;
            // register set k = the beat entering stage k: input, fold, result bits so far
            reg  [LEVELS*XW-1:0]        x_all;
            reg  [LEVELS*FW-1:0]        fold_all;
            reg  [LEVELS*PW-1:0]        prefix_all;
            reg  [LEVELS-1:0]           valid_all;
            wire [LEVELS*PE*T_BITS-1:0] th_all;     // stage k, lane p: its threshold
            wire [LEVELS*PW-1:0]        next_all;   // prefix after stage k's comparison
            reg  [PE*OUT_BITS-1:0]      level;

            for (k = 0; k < LEVELS; k = k + 1) begin : g_stage
                localparam B = LEVELS - 1 - k;      // the result bit this stage decides
                localparam DEPTH = FOLDS << k;
                localparam RW = `CLOG2_1(DEPTH);
                localparam [7:0] DIGIT = 8'd48 + k;
                for (p = 0; p < PE; p = p + 1) begin : g_lane
                    wire [LEVELS-1:0] prefix = prefix_all[k*PW + p*LEVELS +: LEVELS];
                    wire [T_BITS-1:0] th     = th_all[(k*PE + p)*T_BITS +: T_BITS];
                    wire              pass   = $signed(widen(x_all[k*XW + p*IN_BITS +: IN_BITS])) >= $signed(th);
                    assign next_all[k*PW + p*LEVELS +: LEVELS] = prefix | ({{(LEVELS-1){1'b0}}, pass} << B);

                    // word fold*2^k + (the k result bits above bit B), read as the beat enters
                    wire [31:0] addr;
                    if (k == 0) begin : g_first
                        assign addr = {{(32-FW){1'b0}}, fold};
                    end else begin : g_next
                        wire [31:0] f32 = {{(32-FW){1'b0}}, fold_all[(k-1)*FW +: FW]};
                        wire [31:0] j32 = {{(32-k){1'b0}}, next_all[(k-1)*PW + p*LEVELS + B + 1 +: k]};
                        assign addr = (f32 << k) | j32;
                    end
                    wire [PE*T_BITS-1:0] word;
                    rom #(
                        .WIDTH     (PE * T_BITS),
                        .DEPTH     (DEPTH),
                        .INIT_FILE ({THRESH_FILE, "_s", DIGIT, ".mem"}),
                        .STYLE     (THRESH_STYLE)
                    ) stage_rom (
                        .clk(clk), .en(advance), .addr(addr[RW-1:0]), .data(word)
                    );
                    assign th_all[(k*PE + p)*T_BITS +: T_BITS] = word[p*T_BITS +: T_BITS];
                    wire unused = &{1'b0, addr, word};
                end
            end

            integer q, r;
            always @* begin
                level = {PE*OUT_BITS{1'b0}};
                for (q = 0; q < PE; q = q + 1)
                    for (r = 0; r < LEVELS; r = r + 1)
                        level[q*OUT_BITS + r] = next_all[(LEVELS-1)*PW + q*LEVELS + r];
            end

            always @(posedge clk) begin
                if (advance) begin
                    x_all[0 +: XW]      <= s_axis_tdata;
                    fold_all[0 +: FW]   <= fold;
                    prefix_all[0 +: PW] <= {PW{1'b0}};
                    for (q = 1; q < LEVELS; q = q + 1) begin
                        x_all[q*XW +: XW]      <= x_all[(q-1)*XW +: XW];
                        fold_all[q*FW +: FW]   <= fold_all[(q-1)*FW +: FW];
                        prefix_all[q*PW +: PW] <= next_all[(q-1)*PW +: PW];
                    end
                    out_data <= level;
                end
            end
            always @(posedge clk) begin
                if (!rst_n) begin
                    valid_all <= {LEVELS{1'b0}};
                    out_valid <= 1'b0;
                end else if (advance) begin
                    valid_all[0] <= in_fire;
                    for (q = 1; q < LEVELS; q = q + 1) valid_all[q] <= valid_all[q-1];
                    out_valid <= valid_all[LEVELS-1];
                end
            end
        end
    endgenerate
endmodule

`default_nettype wire
