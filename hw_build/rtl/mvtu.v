// Matrix-vector-threshold unit: MH x MW matrix times a stream of MW-element vectors,
// optionally followed by multi-thresholding.
//
// Folding: SIMD input elements per beat, PE output channels computed in parallel. For
// each vector the unit walks neuron folds nf = 0..NF-1 (NF = MH/PE) and, inside each,
// synapse folds sf = 0..SF-1 (SF = MW/SIMD): one PE x SIMD fold per cycle, so a vector
// takes NF*SF cycles. With NF > 1 the input vectors go through two banks of SF words
// (one filling from the stream while the other is replayed NF times); with NF = 1 the
// words are used straight from the stream.
//
// Weight ROM: word nf*SF + sf holds W[nf*PE + p][sf*SIMD + s] at bits
// [(p*SIMD + s)*W_BITS +: W_BITS]. Threshold ROM (NUM_THRESH > 0): word nf holds
// T[nf*PE + p][t] at [(p*NUM_THRESH + t)*ACC_BITS +: ACC_BITS], two's complement.
//
// Arithmetic: BINARY = 1: bits, term = xnor(x, w), acc = popcount. Otherwise integer
// terms x*w where an element is two's complement (*_SIGNED), unsigned, or bipolar
// (*_BIPOLAR: bit 1 = +1, bit 0 = -1). The accumulator is ACC_BITS two's complement;
// the generator sizes it for the exact reachable range (wrap-around is harmless since
// the final value fits).
//
// Pipeline, all stages advancing together when the output register is free:
//   issue   (counters, ROM/buffer read addresses)
//   read    input word and weights (block RAM, or a LUT ROM of at most 32 words)
//   A       the same; a LUT ROM of over 32 words delivers its weights here, one stage
//           later (rom READ_STAGES 2: a data register between its decode and the XNOR)
//   B       integer mode only: registered products (binary mode: xnor feeds C directly)
//   C       per-lane adder-tree sums, in ceil(log_SUM_GROUP(SIMD)) registered stages
//   acc     accumulate over synapse folds; threshold word read
//   out     thresholds compared (or accumulator resized), output register
`default_nettype none
`include "common.vh"

module mvtu #(
    parameter MW           = 4, parameter MH = 4,         // matrix: MH rows (outputs) x MW columns
    parameter PE           = 2, parameter SIMD = 2,       // folding
    parameter BINARY       = 1,
    parameter IN_BITS      = 1, parameter IN_SIGNED = 0, parameter IN_BIPOLAR = 0,
    parameter W_BITS       = 1, parameter W_SIGNED  = 0, parameter W_BIPOLAR  = 0,
    parameter ACC_BITS     = 4,
    parameter NUM_THRESH   = 0, parameter OUT_BITS = 4,
    parameter WEIGHTS_FILE = "",     parameter THRESH_FILE  = "",        // ROM contents
    parameter WEIGHT_STYLE = "auto", parameter THRESH_STYLE = "auto",    // rom STYLE: "block", "distributed" or "auto"
    parameter SUM_GROUP    = 32         // terms (or partial sums) added between two registers
) (
    `AXIS_PORTS(SIMD*IN_BITS, PE*OUT_BITS)
);
    localparam SF     = MW / SIMD;
    localparam NF     = MH / PE;
    localparam FOLDS  = SF * NF;
    localparam SW     = `CLOG2_1(SF);
    localparam NW     = `CLOG2_1(NF);
    localparam AW     = `CLOG2_1(FOLDS);
    localparam XWORD  = SIMD * IN_BITS;
    localparam WWORD  = PE * SIMD * W_BITS;
    // bits of one term: an xnor bit, or a full product of the decoded operands
    localparam PW     = IN_BITS + W_BITS + 2;
    // factors of at most this many bits are multiplied by shift-and-add
    localparam SMALL_BITS = 3;
    localparam TERM   = BINARY ? 1 : PW;
    localparam TH_N   = (NUM_THRESH > 0) ? NUM_THRESH : 1;
    localparam TWORD  = PE * TH_N * ACC_BITS;
    localparam integer LAST_SF_I = SF - 1;
    localparam [SW-1:0] LAST_SF = LAST_SF_I[SW-1:0];
    localparam integer LAST_NF_I = NF - 1;
    localparam [NW-1:0] LAST_NF = LAST_NF_I[NW-1:0];
    localparam integer LAST_ADDR_I = FOLDS - 1;
    localparam [AW-1:0] LAST_ADDR = LAST_ADDR_I[AW-1:0];
    // A LUT-ROM weight word of up to 32 folds is a 5-input function per bit, which shares
    // one LUT6 with its XNOR; deeper ones get a data register after the ROM's decode (rom.v
    // READ_STAGES), else decode, XNOR and popcount make one stage 9-10 LUT levels deep.
    /* verilator lint_off WIDTHEXPAND */
    localparam W_READ_STAGES = (WEIGHT_STYLE == "block" || FOLDS <= 32) ? 1 : 2;
    // Binary lane sums: a bit-heap popcount of LUTs (xnor_popcount.v). The XNORs go inside the
    // heap's first LUTs (CNV MVTU_3: 1.60 LUTs per lane with its counters) where a weight bit arrives from a
    // register or one LUT6 of decode: block RAM, or a LUT ROM of 33-64 words. Behind a LUT ROM
    // of 2-32 words the XNOR shares a LUT with the weight's decode (a 5-input function) outside
    // the heap, which counts those bits. Deeper LUT ROMs (a bank or multiplexer stage before the
    // XNOR) and constant weights (one fold) keep the adder tree: synthesis merges the XNOR
    // into both the last decode step and the first counters there, which measured cheaper.
    localparam HEAP_XNOR     = (BINARY != 0 && (WEIGHT_STYLE == "block" || (FOLDS > 32 && FOLDS <= 64))) ? 1 : 0;
    localparam HEAP_POPCOUNT = (HEAP_XNOR != 0 || (BINARY != 0 && FOLDS > 1 && FOLDS <= 32)) ? 1 : 0;
    /* verilator lint_on WIDTHEXPAND */
    localparam HEAP_LEVELS   = 3;       // LUT levels between the heap's registers

    // ---------------------------------------------------------------- control
    reg                   out_valid;
    reg [PE*OUT_BITS-1:0] out_data;
    wire advance = !out_valid || m_axis_tready;

    reg [SW-1:0] sf;
    reg [NW-1:0] nf;
    reg [AW-1:0] waddr;
    wire         vector_ready;    // the input words of the current fold are there
    wire         vector_done = (sf == LAST_SF) && (nf == LAST_NF);
    wire         issue       = advance && vector_ready;

    assign m_axis_tvalid = out_valid;
    assign m_axis_tdata  = out_data;

    always @(posedge clk) begin
        if (!rst_n) begin
            sf    <= {SW{1'b0}};
            nf    <= {NW{1'b0}};
            waddr <= {AW{1'b0}};
        end else if (issue) begin
            waddr <= (waddr == LAST_ADDR) ? {AW{1'b0}} : waddr + 1'b1;
            if (sf == LAST_SF) begin
                sf <= {SW{1'b0}};
                nf <= (nf == LAST_NF) ? {NW{1'b0}} : nf + 1'b1;
            end else begin
                sf <= sf + 1'b1;
            end
        end
    end

    // ---------------------------------------------------------------- read stage, stage A
    reg             r_valid, r_first, r_last;
    reg [NW-1:0]    r_nf;
    wire [XWORD-1:0] r_x;
    wire            a_valid, a_first, a_last;
    wire [NW-1:0]   a_nf;
    wire [WWORD-1:0] a_w;
    wire [XWORD-1:0] a_x;

    rom #(.WIDTH(WWORD), .DEPTH(FOLDS), .INIT_FILE(WEIGHTS_FILE), .STYLE(WEIGHT_STYLE),
          .READ_STAGES(W_READ_STAGES)) weight_rom (
        .clk(clk), .en(advance), .addr(waddr), .data(a_w)
    );

    always @(posedge clk) begin
        if (advance) begin
            r_first <= (sf == {SW{1'b0}});
            r_last  <= (sf == LAST_SF);
            r_nf    <= nf;
        end
    end

    generate
        if (W_READ_STAGES > 1) begin : g_weight_wait
            // the input word and the fold's flags wait for the weight ROM's data register
            reg [XWORD-1:0] x_q;
            reg             valid_q, first_q, last_q;
            reg [NW-1:0]    nf_q;
            always @(posedge clk) begin
                if (advance) begin
                    x_q     <= r_x;
                    first_q <= r_first;
                    last_q  <= r_last;
                    nf_q    <= r_nf;
                end
            end
            always @(posedge clk) begin
                if (!rst_n) valid_q <= 1'b0;
                else if (advance) valid_q <= r_valid;
            end
            assign a_x     = x_q;
            assign a_valid = valid_q;
            assign a_first = first_q;
            assign a_last  = last_q;
            assign a_nf    = nf_q;
        end else begin : g_weight_ready
            assign a_x     = r_x;
            assign a_valid = r_valid;
            assign a_first = r_first;
            assign a_last  = r_last;
            assign a_nf    = r_nf;
        end
    endgenerate

    generate
        if (NF > 1) begin : g_input_buffer
            // Two vector banks: the stream fills one while the neuron folds replay the other,
            // so input is taken whenever it comes (one vector per NF*SF cycles on average)
            // instead of in bursts during the first neuron fold only.
            localparam VW = $clog2(2 * SF);
            localparam integer SF_I = SF;
            localparam [VW-1:0] SF_V = SF_I[VW-1:0];
            reg [XWORD-1:0] vector [0:2*SF-1];
            reg [XWORD-1:0] x_word;
            reg [SW-1:0]    wr_idx;
            reg             wr_bank, rd_bank;
            reg [1:0]       full;
            wire [31:0]     wr_idx_32 = {{(32-SW){1'b0}}, wr_idx};
            wire [31:0]     sf_32     = {{(32-SW){1'b0}}, sf};
            wire [VW-1:0]   wr_addr   = (wr_bank ? SF_V : {VW{1'b0}}) + wr_idx_32[VW-1:0];
            wire [VW-1:0]   rd_addr   = (rd_bank ? SF_V : {VW{1'b0}}) + sf_32[VW-1:0];
            wire            wr_fire   = s_axis_tvalid && !full[wr_bank];
            wire            wr_done   = wr_fire && (wr_idx == LAST_SF);
            wire            rd_done   = issue && vector_done;

            assign s_axis_tready = !full[wr_bank];
            assign vector_ready  = full[rd_bank];

            always @(posedge clk) begin
                if (wr_fire) vector[wr_addr] <= s_axis_tdata;
                if (advance) x_word <= vector[rd_addr];
            end
            assign r_x = x_word;

            always @(posedge clk) begin
                if (!rst_n) begin
                    wr_idx  <= {SW{1'b0}};
                    wr_bank <= 1'b0;
                    rd_bank <= 1'b0;
                    full    <= 2'b00;
                end else begin
                    if (wr_fire) wr_idx <= wr_done ? {SW{1'b0}} : wr_idx + 1'b1;
                    if (wr_done) wr_bank <= !wr_bank;
                    if (rd_done) rd_bank <= !rd_bank;
                    // a bank is filled only while empty and released only while full: never both
                    full[0] <= (full[0] || (wr_done && !wr_bank)) && !(rd_done && !rd_bank);
                    full[1] <= (full[1] || (wr_done && wr_bank)) && !(rd_done && rd_bank);
                end
            end
            wire unused = &{1'b0, wr_idx_32, sf_32};
        end else begin : g_stream
            // one neuron fold: each input word is used once, straight from the stream
            reg [XWORD-1:0] x_word;
            always @(posedge clk) if (advance) x_word <= s_axis_tdata;
            assign r_x           = x_word;
            assign s_axis_tready = advance;
            assign vector_ready  = s_axis_tvalid;
            wire unused = &{1'b0, vector_done};
        end
    endgenerate

    // ---------------------------------------------------------------- stage B: terms
    function signed [PW-1:0] product;
        input [IN_BITS-1:0] xe;
        input [W_BITS-1:0]  we;
        reg signed [IN_BITS:0] xs;
        reg signed [W_BITS:0]  ws;
        reg signed [PW-1:0]    xw, ww;
        integer                k;
        begin
            // decode both operands into one extra bit of two's complement
            if (IN_BIPOLAR != 0) xs = xe[0] ? 1 : -1;
            else xs = {IN_SIGNED != 0 && xe[IN_BITS-1], xe};
            if (W_BIPOLAR != 0) ws = we[0] ? 1 : -1;
            else ws = {W_SIGNED != 0 && we[W_BITS-1], we};
            xw = {PW{xs[IN_BITS]}};
            xw[IN_BITS:0] = xs;
            ww = {PW{ws[W_BITS]}};
            ww[W_BITS:0] = ws;
            // +-1 factors become a conditional negation instead of a multiplier
            if (W_BIPOLAR != 0) product = we[0] ? xw : -xw;
            else if (IN_BIPOLAR != 0) product = xe[0] ? ww : -ww;
            // a factor of a few bits: shift-and-add (a handful of LUTs, where a tool would
            // otherwise spend a DSP slice on each product)
            else if (W_BITS <= SMALL_BITS && W_BITS <= IN_BITS) begin
                product = {PW{1'b0}};
                for (k = 0; k < W_BITS; k = k + 1)
                    if (ws[k]) product = product + (xw << k);
                if (ws[W_BITS]) product = product - (xw << W_BITS);
            end else if (IN_BITS <= SMALL_BITS) begin
                product = {PW{1'b0}};
                for (k = 0; k < IN_BITS; k = k + 1)
                    if (xs[k]) product = product + (ww << k);
                if (xs[IN_BITS]) product = product - (ww << IN_BITS);
            end else product = xs * ws;
        end
    endfunction

    reg [PE*SIMD*TERM-1:0] terms;
    reg [PE*SIMD*TERM-1:0] b_terms;
    reg                    b_valid, b_first, b_last;
    reg [NW-1:0]           b_nf;
    generate
        if (BINARY != 0) begin : g_xnor
            // one vector operation (IN_BITS = W_BITS = 1): bit p*SIMD + s pairs x[s] with
            // weight (p, s). Same logic as a per-bit loop, but a simulator model compiles
            // far faster than PE*SIMD unrolled single-bit assignments.
            always @* terms = ~({PE{a_x}} ^ a_w);
            // xnor feeds the popcount directly: one LUT level, no register needed
            always @* begin
                b_terms = terms;
                b_valid = a_valid;
                b_first = a_first;
                b_last  = a_last;
                b_nf    = a_nf;
            end
        end else begin : g_multiply
            integer p, s;
            always @* begin
                for (p = 0; p < PE; p = p + 1)
                    for (s = 0; s < SIMD; s = s + 1)
                        terms[(p*SIMD + s)*TERM +: TERM] =
                            product(a_x[s*IN_BITS +: IN_BITS], a_w[(p*SIMD + s)*W_BITS +: W_BITS]);
            end
            // products are registered before the adder tree (multipliers are slow)
            always @(posedge clk) begin
                if (advance) begin
                    b_terms <= terms;
                    b_first <= a_first;
                    b_last  <= a_last;
                    b_nf    <= a_nf;
                end
            end
            always @(posedge clk) begin
                if (!rst_n) b_valid <= 1'b0;
                else if (advance) b_valid <= a_valid;
            end
        end
    endgenerate

    // ---------------------------------------------------------------- stage C: lane sums
    // Each lane's SIMD terms are summed in STAGES registered stages: every stage adds groups
    // of at most SUM_GROUP of its inputs, so the logic between two registers stays a few LUTs
    // deep however wide SIMD is (one stage, the plain tree, while SIMD <= SUM_GROUP).
    // Stage s has sum_nodes(s) inputs of sum_width(s) bits (stage 0: the terms).
    function integer sum_nodes;
        input integer s;
        integer k;
        begin
            sum_nodes = SIMD;
            for (k = 0; k < s; k = k + 1) sum_nodes = (sum_nodes + SUM_GROUP - 1) / SUM_GROUP;
        end
    endfunction

    function integer sum_stages;
        input integer unused_arg;
        begin
            sum_stages = 1;
            while (sum_nodes(sum_stages) > 1) sum_stages = sum_stages + 1;
        end
    endfunction

    // bits of a node at stage s: exact for the terms it covers, at most ACC_BITS
    function integer sum_width;
        input integer s;
        integer covered, k, w;
        begin
            covered = 1;
            for (k = 0; k < s; k = k + 1) covered = (covered * SUM_GROUP < SIMD) ? covered * SUM_GROUP : SIMD;
            w = 0;
            while ((1 << w) < covered + 1) w = w + 1;    // clog2(covered + 1)
            if (s == 0) sum_width = TERM;
            else if (BINARY != 0) sum_width = (w < ACC_BITS) ? w : ACC_BITS;
            else sum_width = (TERM + w < ACC_BITS) ? TERM + w : ACC_BITS;
        end
    endfunction

    function integer sum_offset;
        input integer s;
        integer k;
        begin
            sum_offset = 0;
            for (k = 1; k < s; k = k + 1) sum_offset = sum_offset + sum_nodes(k) * sum_width(k);
        end
    endfunction

    localparam STAGES    = sum_stages(0);
    localparam SUM_TOTAL = sum_offset(STAGES + 1);   // registered bits of stages 1..STAGES

    wire [PE*ACC_BITS-1:0] c_sums;
    wire                   c_valid, c_first, c_last;
    wire [NW-1:0]          c_nf;
    genvar g, st, nd;
    generate
        if (HEAP_POPCOUNT != 0) begin : g_heap
            // one bit-heap popcount per PE (xnor_popcount.v), the XNORs inside its first LUTs; the
            // fold's flags ride through PE 0's pipeline as its tag
            localparam CW = sum_width(STAGES);
            localparam TAG = 3 + NW;
            wire [TAG-1:0] tag_out;
            for (g = 0; g < PE; g = g + 1) begin : g_lane
                wire [CW-1:0] lane_count;
                // the input word (XNOR inside the heap) or this PE's XNOR bits
                wire [SIMD-1:0] heap_x = (HEAP_XNOR != 0) ? a_x : b_terms[g*SIMD +: SIMD];
                wire [(g == 0 ? TAG : 1)-1:0] lane_tag;
                if (g == 0) begin : g_flags
                    xnor_popcount #(.N(SIMD), .OUT_BITS(CW), .ROUNDS_PER_STAGE(HEAP_LEVELS), .XNOR(HEAP_XNOR), .TAG_BITS(TAG)) popcount (
                        .clk(clk), .rst_n(rst_n), .ce(advance), .x(heap_x), .w(a_w[g*SIMD +: SIMD]),
                        .tag_in({a_valid, a_first, a_last, a_nf}), .count(lane_count), .tag_out(lane_tag)
                    );
                    assign tag_out = lane_tag;
                end else begin : g_count
                    xnor_popcount #(.N(SIMD), .OUT_BITS(CW), .ROUNDS_PER_STAGE(HEAP_LEVELS), .XNOR(HEAP_XNOR), .TAG_BITS(1)) popcount (
                        .clk(clk), .rst_n(rst_n), .ce(advance), .x(heap_x), .w(a_w[g*SIMD +: SIMD]),
                        .tag_in(1'b0), .count(lane_count), .tag_out(lane_tag)
                    );
                    wire unused = &{1'b0, lane_tag};
                end
                if (CW < ACC_BITS) begin : g_extend
                    assign c_sums[g*ACC_BITS +: ACC_BITS] = {{(ACC_BITS - CW){1'b0}}, lane_count};
                end else begin : g_exact
                    assign c_sums[g*ACC_BITS +: ACC_BITS] = lane_count;
                end
            end
            assign {c_valid, c_first, c_last, c_nf} = tag_out;
            wire unused_terms = &{1'b0, b_terms, b_valid, b_first, b_last, b_nf};
        end else begin : g_tree
            for (g = 0; g < PE; g = g + 1) begin : g_lane
                reg [SUM_TOTAL-1:0] stage_q;    // the registered node sums of stages 1..STAGES
                for (st = 0; st < STAGES; st = st + 1) begin : g_stage
                    localparam NI = sum_nodes(st);
                    localparam WI = sum_width(st);
                    localparam NO = sum_nodes(st + 1);
                    localparam WO = sum_width(st + 1);
                    wire [NI*WI-1:0] stage_in;
                    if (st == 0) begin : g_terms
                        assign stage_in = b_terms[g*SIMD*TERM +: SIMD*TERM];
                    end else begin : g_sums
                        assign stage_in = stage_q[sum_offset(st) +: NI*WI];
                    end
                    for (nd = 0; nd < NO; nd = nd + 1) begin : g_node
                        localparam FIRST = nd * SUM_GROUP;
                        localparam COUNT = (NI - FIRST < SUM_GROUP) ? NI - FIRST : SUM_GROUP;
                        wire [WO-1:0] node_sum;
                        adder_tree #(
                            .N        (COUNT),
                            .IN_BITS  (WI),
                            .SIGNED   (BINARY == 0),
                            .OUT_BITS (WO)
                        ) tree (
                            .terms (stage_in[FIRST*WI +: COUNT*WI]),
                            .sum   (node_sum)
                        );
                        always @(posedge clk) begin
                            if (advance) stage_q[sum_offset(st + 1) + nd*WO +: WO] <= node_sum;
                        end
                    end
                end
                localparam WR = sum_width(STAGES);
                wire [WR-1:0] root = stage_q[sum_offset(STAGES) +: WR];
                if (WR < ACC_BITS) begin : g_extend
                    assign c_sums[g*ACC_BITS +: ACC_BITS] = {{(ACC_BITS - WR){BINARY == 0 && root[WR-1]}}, root};
                end else begin : g_exact
                    assign c_sums[g*ACC_BITS +: ACC_BITS] = root;
                end
            end

            // the fold's flags travel with its sums
            reg [STAGES:1] st_valid, st_first, st_last;
            reg [NW-1:0]   st_nf [1:STAGES];
            integer        q, qv;    // one loop variable per always block (one driver each)
            always @(posedge clk) begin
                if (advance) begin
                    st_first[1] <= b_first;
                    st_last[1]  <= b_last;
                    st_nf[1]    <= b_nf;
                    for (q = 2; q <= STAGES; q = q + 1) begin
                        st_first[q] <= st_first[q-1];
                        st_last[q]  <= st_last[q-1];
                        st_nf[q]    <= st_nf[q-1];
                    end
                end
            end
            always @(posedge clk) begin
                if (!rst_n) st_valid <= {STAGES{1'b0}};
                else if (advance) begin
                    st_valid[1] <= b_valid;
                    for (qv = 2; qv <= STAGES; qv = qv + 1) st_valid[qv] <= st_valid[qv-1];
                end
            end
            assign c_valid = st_valid[STAGES];
            assign c_first = st_first[STAGES];
            assign c_last  = st_last[STAGES];
            assign c_nf    = st_nf[STAGES];
        end
    endgenerate

    // ---------------------------------------------------------------- accumulate
    // the threshold word is read in parallel, so the ROM's output register lines up with acc
    reg [PE*ACC_BITS-1:0] acc;
    reg                   acc_valid;   // acc holds a finished neuron fold
    wire [TWORD-1:0]      acc_th;
    integer r;
    always @(posedge clk) begin
        if (advance && c_valid) begin
            for (r = 0; r < PE; r = r + 1)
                acc[r*ACC_BITS +: ACC_BITS] <= c_first
                    ? c_sums[r*ACC_BITS +: ACC_BITS]
                    : acc[r*ACC_BITS +: ACC_BITS] + c_sums[r*ACC_BITS +: ACC_BITS];
        end
    end

    generate
        if (NUM_THRESH > 0) begin : g_thresholds
            rom #(.WIDTH(TWORD), .DEPTH(NF), .INIT_FILE(THRESH_FILE), .STYLE(THRESH_STYLE)) threshold_rom (
                .clk(clk), .en(advance), .addr(c_nf), .data(acc_th)
            );
        end else begin : g_no_thresholds
            assign acc_th = {TWORD{1'b0}};
            wire unused = &{1'b0, c_nf, acc_th};
        end
    endgenerate

    // ---------------------------------------------------------------- output
    wire [PE*OUT_BITS-1:0] result;
    generate
        for (g = 0; g < PE; g = g + 1) begin : g_result
            wire signed [ACC_BITS-1:0] lane = acc[g*ACC_BITS +: ACC_BITS];
            if (NUM_THRESH > 0) begin : g_level
                // the level is the number of thresholds passed (a popcount, not a chain)
                reg [NUM_THRESH-1:0] passed;
                integer t;
                always @* begin
                    for (t = 0; t < NUM_THRESH; t = t + 1)
                        passed[t] = lane >= $signed(acc_th[(g*TH_N + t)*ACC_BITS +: ACC_BITS]);
                end
                adder_tree #(.N(NUM_THRESH), .IN_BITS(1), .SIGNED(0), .OUT_BITS(OUT_BITS)) counter (
                    .terms(passed), .sum(result[g*OUT_BITS +: OUT_BITS])
                );
            end else if (OUT_BITS > ACC_BITS) begin : g_extend
                // the accumulator itself, sign-extended to the output type
                assign result[g*OUT_BITS +: OUT_BITS] = {{(OUT_BITS - ACC_BITS){lane[ACC_BITS-1]}}, lane};
            end else begin : g_truncate
                assign result[g*OUT_BITS +: OUT_BITS] = lane[OUT_BITS-1:0];
                if (OUT_BITS < ACC_BITS) begin : g_unused
                    wire unused = &{1'b0, lane};
                end
            end
        end
    endgenerate

    always @(posedge clk) begin
        if (advance) out_data <= result;
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            r_valid   <= 1'b0;
            acc_valid <= 1'b0;
            out_valid <= 1'b0;
        end else if (advance) begin
            r_valid   <= issue;
            acc_valid <= c_valid && c_last;
            out_valid <= acc_valid;
        end
    end
endmodule

`default_nettype wire
