// Pipelined popcount of xnor(x, w) over N lanes, as a bit heap of look-up tables.
//
// Why not `+`: Yosys maps a tree of adders (or counters written with `+`) to carry chains
// with one LUT per sum bit, and ABC's area recovery splits the six-input counters that would
// absorb the XNORs into narrower shared LUTs; both cost about two LUTs per lane. Here every
// LUT uses all its inputs:
//   step 0      each group of three lanes (six inputs: x, w of each) -> its two-bit count,
//               two LUTs: the XNORs cost nothing extra (XNOR = 0: the lane bits as given)
//   steps 1..   every column of the bit heap (bits of equal weight) is cut into 6:3 counters
//               (three LUTs each; a leftover of 3..5 bits gets a 3:2, 4:3 or 5:3 counter, a
//               leftover of 1..2 bits waits), until no column holds more than two bits
//   final       the two remaining rows are added (one carry chain)
// (CNV MVTU_3 in benchmarks/anchors.py: 1.60 LUTs per lane, counters and thresholds included). Each LUT is a `lut6` instance (kept as its own hierarchy
// level, so synthesis cannot re-split it).
//
// Timing: every step is one LUT level; the heap is registered after every ROUNDS_PER_STAGE
// steps and at the output, so no path between registers is longer than ROUNDS_PER_STAGE LUTs
// (plus the final carry chain). TAG_BITS of side band (a valid flag, fold markers) travel
// through the same registers, so a user needs no copy of the latency arithmetic: the tag
// that entered with x and w leaves with their count. Registers advance when `ce` is high;
// the tags are cleared by reset.
//
// Bit-heap layout: the bits after step s (slot s) are one flat vector, column by column
// (column c holds bits of weight 2^c; columns at or above OUT_BITS are dropped, so the count
// is exact modulo 2^OUT_BITS). Within a column of slot s+1: the low outputs of its own
// counters, its bits that waited, the middle outputs of the counters of column c-1, the
// high outputs of those of column c-2. The constant functions below compute the heights.
`default_nettype none

// In Verilator simulation the count is behavioural, with the same registers (the thousands of LUT
// instances of a large design made its C++ model take many times longer to build); define
// HW_BUILD_STRUCTURAL (sim.py: HW_BUILD_SIM_STRUCTURAL=1) to simulate the heap itself, as the
// layer tests do. Synthesis always builds the heap.
`ifdef VERILATOR
`ifndef HW_BUILD_STRUCTURAL
`define XNOR_POPCOUNT_BEHAVIOURAL
`endif
`endif

module xnor_popcount #(
    parameter N                = 8,
    parameter OUT_BITS         = 4,    // at most 18; exact when 2^OUT_BITS > N
    parameter ROUNDS_PER_STAGE = 3,    // LUT levels between two registers
    parameter XNOR             = 1,    // 0: x holds the lane bits themselves (w unused)
    parameter TAG_BITS         = 1
) (
    input  wire                clk,
    input  wire                rst_n,
    input  wire                ce,
    input  wire [N-1:0]        x,
    input  wire [N-1:0]        w,
    input  wire [TAG_BITS-1:0] tag_in,
    output wire [OUT_BITS-1:0] count,
    output wire [TAG_BITS-1:0] tag_out
);
    localparam HB   = 14;                  // bits of one column height
    localparam MAXC = 20;                  // columns
    localparam G    = (N + 2) / 3;         // lane groups of step 0

    // ------------------------------------------------------------ heap schedule
    // Elaboration-time arithmetic only: integer results are stored in narrower table fields.
    /* verilator lint_off WIDTHTRUNC */
    /* verilator lint_off WIDTHEXPAND */
    /* verilator lint_off UNUSEDSIGNAL */
    localparam MAXS = 24;                  // slots (steps); a column of H bits needs about log2(H) + 2
    function integer col;                  // height of column c in a packed height vector
        input [MAXC*HB-1:0] hv;
        input integer c;
        begin
            col = (c >= 0 && c < MAXC) ? hv[c*HB +: HB] : 0;
        end
    endfunction

    // counters of a column of height h: full 6:3 ones, then one for a leftover of 3..5 bits
    function integer full6;  input integer h; begin full6 = h / 6; end endfunction
    function integer part;   input integer h; begin part = (h % 6 >= 3) ? h % 6 : 0; end endfunction
    function integer ncount; input integer h; begin ncount = full6(h) + (part(h) > 0 ? 1 : 0); end endfunction
    function integer waits;  input integer h; begin waits = (h % 6 >= 3) ? 0 : h % 6; end endfunction
    // counters with a third (weight-4) output: the 6:3 ones and a 4:3 or 5:3
    function integer nhigh;  input integer h; begin nhigh = full6(h) + (part(h) > 3 ? 1 : 0); end endfunction

    // every slot's column heights, computed once: slot s column c at [(s*MAXC + c)*HB +: HB]
    function [MAXS*MAXC*HB-1:0] all_heights;
        input integer unused_arg;
        reg [MAXC*HB-1:0] hv, nv;
        integer s, c, h;
        begin
            all_heights = 0;
            hv = {MAXC*HB{1'b0}};
            if (XNOR != 0) begin
                hv[0 +: HB] = G;
                if (OUT_BITS > 1) hv[HB +: HB] = (N % 3 == 1) ? G - 1 : G;
            end else hv[0 +: HB] = N;
            for (s = 0; s < MAXS; s = s + 1) begin
                all_heights[s*MAXC*HB +: MAXC*HB] = hv;
                nv = {MAXC*HB{1'b0}};
                for (c = 0; c < OUT_BITS; c = c + 1) begin
                    h = ncount(col(hv, c)) + waits(col(hv, c)) + ncount(col(hv, c - 1)) + nhigh(col(hv, c - 2));
                    nv[c*HB +: HB] = h;
                end
                hv = nv;
            end
        end
    endfunction

    localparam [MAXS*MAXC*HB-1:0] HEIGHTS = all_heights(0);

    // The tables are passed to the functions that read them (not read as localparams inside
    // a function body): Yosys re-evaluates a localparam's defining call at each such read,
    // which made elaboration take minutes.
    function integer h_of;                 // height of column c in slot s
        input [MAXS*MAXC*HB-1:0] hts;
        input integer s;
        input integer c;
        begin
            h_of = (c >= 0 && c < MAXC) ? hts[(s*MAXC + c)*HB +: HB] : 0;
        end
    endfunction

    function integer last_slot;            // first slot with at most two bits per column
        input [MAXS*MAXC*HB-1:0] hts;
        integer s, c, tall;
        begin
            last_slot = -1;
            for (s = MAXS - 1; s >= 0; s = s - 1) begin
                tall = 0;
                for (c = 0; c < OUT_BITS; c = c + 1) if (h_of(hts, s, c) > tall) tall = h_of(hts, s, c);
                if (tall <= 2) last_slot = s;
            end
        end
    endfunction

    // every slot's column offsets (from the start of the flat heap), computed once:
    // slot s column c at [(s*(MAXC+1) + c)*OB +: OB]; column OUT_BITS is the slot's end
    localparam OB = 24;
    function [MAXS*(MAXC+1)*OB-1:0] all_offsets;
        input [MAXS*MAXC*HB-1:0] hts;
        integer s, c, at;
        begin
            all_offsets = 0;
            at = 0;
            for (s = 0; s < MAXS; s = s + 1)
                for (c = 0; c <= MAXC; c = c + 1) begin
                    all_offsets[(s*(MAXC+1) + c)*OB +: OB] = at;
                    if (c < MAXC) at = at + h_of(hts, s, c);
                end
        end
    endfunction

    localparam [MAXS*(MAXC+1)*OB-1:0] OFFSETS = all_offsets(HEIGHTS);

    function integer col_off;              // first bit of column c of slot s, from the slot's start
        input [MAXS*(MAXC+1)*OB-1:0] offs;
        input integer s;
        input integer c;
        begin
            col_off = offs[(s*(MAXC+1) + c)*OB +: OB] - offs[(s*(MAXC+1))*OB +: OB];
        end
    endfunction

    function integer slot_off;             // first bit of slot s in the flat heap vector
        input [MAXS*(MAXC+1)*OB-1:0] offs;
        input integer s;
        begin
            slot_off = offs[(s*(MAXC+1))*OB +: OB];
        end
    endfunction

    function integer registered;           // slot s is held in a register
        input integer s;
        begin
            registered = ((s + 1) % ROUNDS_PER_STAGE == 0) ? 1 : 0;
        end
    endfunction

    /* verilator lint_on UNUSEDSIGNAL */
    /* verilator lint_on WIDTHEXPAND */
    /* verilator lint_on WIDTHTRUNC */

    // ------------------------------------------------------------ truth tables
    // Written out (from the counting definitions in the comments) rather than computed by a
    // loop: Yosys interprets constant-function loops slowly, and these are read for every LUT.
    function [63:0] count_table;           // bit j of the number of ones among inputs 0..k-1
        input integer k;
        input integer j;
        begin
            case (k*4 + j)
                3*4 + 0: count_table = 64'h9696969696969696;
                3*4 + 1: count_table = 64'he8e8e8e8e8e8e8e8;
                4*4 + 0: count_table = 64'h6996699669966996;
                4*4 + 1: count_table = 64'h7ee87ee87ee87ee8;
                4*4 + 2: count_table = 64'h8000800080008000;
                5*4 + 0: count_table = 64'h9669699696696996;
                5*4 + 1: count_table = 64'h177e7ee8177e7ee8;
                5*4 + 2: count_table = 64'he8808000e8808000;
                6*4 + 0: count_table = 64'h6996966996696996;
                6*4 + 1: count_table = 64'h8117177e177e7ee8;
                6*4 + 2: count_table = 64'hfee8e880e8808000;
                default: count_table = 64'd0;     // not used: counters have 3..6 inputs
            endcase
        end
    endfunction

    function [63:0] xnor_table;            // bit j of the number of lanes l < lanes with i[2l] == i[2l+1]
        input integer lanes;
        input integer j;
        begin
            case (lanes*2 + j)
                1*2 + 0: xnor_table = 64'h9999999999999999;
                2*2 + 0: xnor_table = 64'h6996699669966996;
                2*2 + 1: xnor_table = 64'h9009900990099009;
                3*2 + 0: xnor_table = 64'h9669699669969669;
                3*2 + 1: xnor_table = 64'hf99f90099009f99f;
                default: xnor_table = 64'd0;      // not used
            endcase
        end
    endfunction

`ifdef XNOR_POPCOUNT_BEHAVIOURAL
    localparam BEHAVIOURAL = 1;
`else
    localparam BEHAVIOURAL = 0;
`endif
    // what travels beside the heap: the tag, and in the behavioural model the count itself
    localparam SIDE  = TAG_BITS + (BEHAVIOURAL != 0 ? OUT_BITS : 0);
    localparam LAST  = last_slot(HEIGHTS);
    localparam TOTAL = slot_off(OFFSETS, LAST + 1);

    wire [TOTAL-1:0]                heap_d;   // each slot as its step computes it
    wire [TOTAL-1:0]                heap;     // each slot as the next step reads it
    wire [(LAST+1)*SIDE-1:0]        tags;     // the tag (and count) that goes with each slot
    wire [SIDE-1:0]                 side_in;

    genvar s, c, k, g;
    generate
        if (BEHAVIOURAL != 0) begin : g_model
            reg [OUT_BITS-1:0] total;
            integer l;
            always @* begin
                total = {OUT_BITS{1'b0}};
                for (l = 0; l < N; l = l + 1)
                    total = total + {{(OUT_BITS-1){1'b0}}, (XNOR != 0) ? ~(x[l] ^ w[l]) : x[l]};
            end
            assign side_in = {total, tag_in};
            assign heap_d = {TOTAL{1'b0}};
        end else begin : g_heap
            assign side_in = tag_in;
            // ------------------------------------------------------------ step 0: lane groups
            if (XNOR == 0) begin : g_bits
                // the lane bits are slot 0 (computed outside, e.g. a LUT-ROM weight bit's decode
                // sharing one LUT with its XNOR)
                assign heap_d[0 +: N] = x;
                wire unused = &{1'b0, w};
            end else begin : g_xnor
                for (g = 0; g < G; g = g + 1) begin : g_group
                    localparam LANES = (N - 3*g < 3) ? N - 3*g : 3;
                    wire [2*LANES-1:0] pairs;
                    for (k = 0; k < LANES; k = k + 1) begin : g_lane
                        assign pairs[2*k]     = x[3*g + k];
                        assign pairs[2*k + 1] = w[3*g + k];
                    end
                    lut6 #(.K(2*LANES), .INIT(xnor_table(LANES, 0))) lo (.i(pairs), .o(heap_d[g]));
                    if (LANES > 1 && OUT_BITS > 1) begin : g_hi
                        lut6 #(.K(2*LANES), .INIT(xnor_table(LANES, 1))) hi (.i(pairs), .o(heap_d[G + g]));
                    end
                end
            end

            // ------------------------------------------------------------ steps 1..LAST: counters
            for (s = 0; s < LAST; s = s + 1) begin : g_step
                localparam IN  = slot_off(OFFSETS, s);
                localparam OUT = slot_off(OFFSETS, s + 1);
                for (c = 0; c < OUT_BITS; c = c + 1) begin : g_col
                    localparam H      = h_of(HEIGHTS, s, c);
                    localparam NC     = ncount(H);
                    localparam FULL   = full6(H);
                    localparam WAIT   = waits(H);
                    localparam BASE   = IN + col_off(OFFSETS, s, c);
                    // where this column's outputs go in slot s + 1
                    localparam LOW_AT = OUT + col_off(OFFSETS, s + 1, c);
                    localparam MID_AT = OUT + col_off(OFFSETS, s + 1, c + 1) + ncount(h_of(HEIGHTS, s, c + 1)) + waits(h_of(HEIGHTS, s, c + 1));
                    localparam HI_AT  = OUT + col_off(OFFSETS, s + 1, c + 2) + ncount(h_of(HEIGHTS, s, c + 2)) + waits(h_of(HEIGHTS, s, c + 2))
                                        + ncount(h_of(HEIGHTS, s, c + 1));
                    for (k = 0; k < NC; k = k + 1) begin : g_counter
                        localparam SIZE = (k < FULL) ? 6 : part(H);
                        wire [SIZE-1:0] bits = heap[BASE + 6*k +: SIZE];
                        lut6 #(.K(SIZE), .INIT(count_table(SIZE, 0))) low (.i(bits), .o(heap_d[LOW_AT + k]));
                        if (c + 1 < OUT_BITS) begin : g_mid
                            lut6 #(.K(SIZE), .INIT(count_table(SIZE, 1))) mid (.i(bits), .o(heap_d[MID_AT + k]));
                        end
                        if (c + 2 < OUT_BITS && SIZE > 3) begin : g_high
                            lut6 #(.K(SIZE), .INIT(count_table(SIZE, 2))) high (.i(bits), .o(heap_d[HI_AT + k]));
                        end
                    end
                    if (WAIT > 0) begin : g_wait
                        assign heap_d[LOW_AT + NC +: WAIT] = heap[BASE + 6*FULL +: WAIT];
                    end
                end
            end
        end

        // ------------------------------------------------------------ registers between steps
        for (s = 0; s <= LAST; s = s + 1) begin : g_slot
            localparam AT    = slot_off(OFFSETS, s);
            localparam WIDTH = slot_off(OFFSETS, s + 1) - AT;
            wire [SIDE-1:0] side_prev;
            if (s == 0) begin : g_first
                assign side_prev = side_in;
            end else begin : g_next
                assign side_prev = tags[(s-1)*SIDE +: SIDE];
            end
            if (registered(s) != 0) begin : g_reg
                reg [SIDE-1:0] side_q;
                always @(posedge clk) begin
                    if (!rst_n) side_q <= {SIDE{1'b0}};
                    else if (ce) side_q <= side_prev;
                end
                assign tags[s*SIDE +: SIDE] = side_q;
                if (BEHAVIOURAL == 0) begin : g_bits
                    reg [WIDTH-1:0] q;
                    always @(posedge clk) if (ce) q <= heap_d[AT +: WIDTH];
                    assign heap[AT +: WIDTH] = q;
                end else begin : g_no_bits
                    assign heap[AT +: WIDTH] = heap_d[AT +: WIDTH];
                end
            end else begin : g_wire
                assign heap[AT +: WIDTH] = heap_d[AT +: WIDTH];
                assign tags[s*SIDE +: SIDE] = side_prev;
            end
        end

        // ------------------------------------------------------------ final: two rows added
        wire [OUT_BITS-1:0] row_a, row_b;
        for (c = 0; c < OUT_BITS; c = c + 1) begin : g_rows
            localparam H  = h_of(HEIGHTS, LAST, c);
            localparam AT = slot_off(OFFSETS, LAST) + col_off(OFFSETS, LAST, c);
            if (H > 0) begin : g_a
                assign row_a[c] = heap[AT];
            end else begin : g_a0
                assign row_a[c] = 1'b0;
            end
            if (H > 1) begin : g_b
                assign row_b[c] = heap[AT + 1];
            end else begin : g_b0
                assign row_b[c] = 1'b0;
            end
        end
        reg [OUT_BITS-1:0] count_q;
        reg [TAG_BITS-1:0] tag_out_q;
        wire [SIDE-1:0]    side_last = tags[LAST*SIDE +: SIDE];
        if (BEHAVIOURAL != 0) begin : g_model_count
            always @(posedge clk) if (ce) count_q <= side_last[SIDE-1 -: OUT_BITS];
        end else begin : g_heap_count
            always @(posedge clk) if (ce) count_q <= row_a + row_b;
        end
        always @(posedge clk) begin
            if (!rst_n) tag_out_q <= {TAG_BITS{1'b0}};
            else if (ce) tag_out_q <= side_last[TAG_BITS-1:0];
        end
        assign count   = count_q;
        assign tag_out = tag_out_q;
        if (BEHAVIOURAL != 0) begin : g_model_unused
            wire unused = &{1'b0, heap, row_a, row_b};
        end
    endgenerate
endmodule

`default_nettype wire
