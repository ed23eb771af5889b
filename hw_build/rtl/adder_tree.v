// Combinational sum of N terms as a balanced tree whose adders grow one bit per level
// (capped at OUT_BITS; the result is exact modulo 2^OUT_BITS). One-bit unsigned terms
// (popcounts) are first counted in groups of six, a 6-input/3-output function that maps
// to three LUT6s, which halves the LUTs of a plain tree of one-bit adders.
//
// All levels live in one flat vector (`levels`) whose layout the constant functions
// below compute, so no hierarchical references into generate blocks are needed.
`default_nettype none

module adder_tree #(
    parameter N        = 8,
    parameter IN_BITS  = 1,
    parameter SIGNED   = 0,
    parameter OUT_BITS = 4
) (
    input  wire [N*IN_BITS-1:0] terms,
    output wire [OUT_BITS-1:0]  sum
);
    // popcount groups: only for one-bit unsigned terms
    localparam GROUP   = (IN_BITS == 1 && SIGNED == 0 && N > 2) ? 6 : 1;
    localparam N0      = (N + GROUP - 1) / GROUP;                 // nodes at level 0
    localparam W0_FULL = (GROUP == 6) ? 3 : IN_BITS;
    localparam W0      = (W0_FULL < OUT_BITS) ? W0_FULL : OUT_BITS; // width at level 0

    function integer clog2i;
        input integer v;
        integer r;
        begin
            r = 0;
            while ((1 << r) < v) r = r + 1;
            clog2i = r;
        end
    endfunction

    localparam LEVELS = clog2i(N0);

    // nodes at a level: ceil(N0 / 2^level)
    function integer nodes;
        input integer level;
        begin
            nodes = (N0 + (1 << level) - 1) >> level;
        end
    endfunction

    // node width at a level
    function integer width;
        input integer level;
        begin
            width = (W0 + level < OUT_BITS) ? W0 + level : OUT_BITS;
        end
    endfunction

    // first bit of a level in the flat vector
    function integer offset;
        input integer level;
        integer k;
        begin
            offset = 0;
            for (k = 0; k < level; k = k + 1) offset = offset + nodes(k) * width(k);
        end
    endfunction

    localparam TOTAL = offset(LEVELS + 1);
    wire [TOTAL-1:0] levels;

    genvar i, l;
    generate
        // ------------------------------------------------------------ level 0
        if (GROUP == 6) begin : g_popcount
            for (i = 0; i < N0; i = i + 1) begin : g_group
                localparam FIRST = i * 6;
                localparam COUNT = (N - FIRST < 6) ? N - FIRST : 6;
                reg [2:0] group_sum;
                integer b;
                always @* begin
                    group_sum = 3'd0;
                    for (b = 0; b < COUNT; b = b + 1) group_sum = group_sum + {2'b00, terms[FIRST + b]};
                end
                if (W0 == 3) begin : g_full
                    assign levels[i*W0 +: W0] = group_sum;
                end else begin : g_capped
                    assign levels[i*W0 +: W0] = group_sum[W0-1:0];
                    wire unused = &{1'b0, group_sum};
                end
            end
        end else if (W0 == IN_BITS) begin : g_terms
            assign levels[0 +: N*IN_BITS] = terms;
        end else begin : g_terms_capped
            for (i = 0; i < N; i = i + 1) begin : g_term
                assign levels[i*W0 +: W0] = terms[i*IN_BITS +: W0];
            end
            wire unused = &{1'b0, terms};
        end

        // ------------------------------------------------------------ levels 1..LEVELS
        for (l = 1; l <= LEVELS; l = l + 1) begin : g_level
            localparam WI = width(l - 1);
            localparam WO = width(l);
            localparam IN_OFF  = offset(l - 1);
            localparam OUT_OFF = offset(l);
            for (i = 0; i < nodes(l); i = i + 1) begin : g_node
                wire [WI-1:0] a = levels[IN_OFF + (2*i)*WI +: WI];
                wire [WO-1:0] a_ext;
                wire [WO-1:0] b_ext;
                if (WO > WI) begin : g_grow
                    assign a_ext = {SIGNED != 0 && a[WI-1], a};
                end else begin : g_keep
                    assign a_ext = a;
                end
                if (2*i + 1 < nodes(l - 1)) begin : g_pair
                    wire [WI-1:0] b = levels[IN_OFF + (2*i + 1)*WI +: WI];
                    if (WO > WI) begin : g_grow
                        assign b_ext = {SIGNED != 0 && b[WI-1], b};
                    end else begin : g_keep
                        assign b_ext = b;
                    end
                end else begin : g_single
                    assign b_ext = {WO{1'b0}};
                end
                assign levels[OUT_OFF + i*WO +: WO] = a_ext + b_ext;
            end
        end

        // ------------------------------------------------------------ result
        localparam WR = width(LEVELS);
        wire [WR-1:0] root = levels[offset(LEVELS) +: WR];
        if (WR < OUT_BITS) begin : g_extend
            assign sum = {{(OUT_BITS - WR){SIGNED != 0 && root[WR-1]}}, root};
        end else begin : g_exact
            assign sum = root;
        end
    endgenerate
endmodule

`default_nettype wire
