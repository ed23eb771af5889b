// Non-overlapping K x K pooling (kernel == stride), max or sum, PE channels per beat.
//
// Rows and columns that do not fill a whole window are dropped (floor mode). A line of
// partial results (one word per output column and channel fold, OFM_W*C/PE words) is
// updated read-modify-write as the K x K inputs of each window arrive; the K*K-th input
// of a window produces the output beat. The partial-result memory has an asynchronous
// read port (LUT RAM) so an input beat is combined with its partial result in the
// cycle it arrives: one input beat per cycle, whatever C/PE is.
`default_nettype none
`include "common.vh"

module pool #(
    parameter IFM_H    = 4, parameter IFM_W = 4, parameter C = 2,
    parameter K        = 2,
    parameter PE       = 1,
    parameter IN_BITS  = 4, parameter OUT_BITS = 4, parameter SIGNED = 0,
    parameter MODE_SUM = 0
) (
    `AXIS_PORTS(PE*IN_BITS, PE*OUT_BITS)
);
    localparam CF    = C / PE;
    localparam OFM_W = IFM_W / K;
    localparam OFM_H = IFM_H / K;
    localparam WORDS = OFM_W * CF;
    localparam WORD  = PE * OUT_BITS;
    localparam AW    = `CLOG2_1(WORDS);
    localparam CFW   = `CLOG2_1(CF);
    localparam XW    = `CLOG2_1(IFM_W);
    localparam YW    = `CLOG2_1(IFM_H);
    localparam KW    = `CLOG2_1(K);

    localparam integer LAST_CF_I = CF - 1;
    localparam integer LAST_X_I  = IFM_W - 1;
    localparam integer LAST_Y_I  = IFM_H - 1;
    localparam integer LAST_K_I  = K - 1;
    localparam integer USED_W_I  = OFM_W * K;
    localparam integer USED_H_I  = OFM_H * K;
    localparam integer CF_I      = CF;
    localparam [CFW-1:0] LAST_CF = LAST_CF_I[CFW-1:0];
    localparam [XW-1:0]  LAST_X  = LAST_X_I[XW-1:0];
    localparam [YW-1:0]  LAST_Y  = LAST_Y_I[YW-1:0];
    localparam [KW-1:0]  LAST_K  = LAST_K_I[KW-1:0];
    localparam [XW:0]    USED_W  = USED_W_I[XW:0];
    localparam [YW:0]    USED_H  = USED_H_I[YW:0];
    localparam [AW-1:0]  CF_A    = CF_I[AW-1:0];

    reg [WORD-1:0] partial [0:WORDS-1];

    reg [CFW-1:0] cf;
    reg [XW-1:0]  x;
    reg [YW-1:0]  y;
    reg [KW-1:0]  kx, ky;
    reg [AW-1:0]  col_base;           // (x / K) * CF
    reg           out_valid;
    reg [WORD-1:0] out_data;

    wire advance = !out_valid || m_axis_tready;
    wire in_fire = s_axis_tvalid && advance;
    assign s_axis_tready = advance;
    assign m_axis_tvalid = out_valid;
    assign m_axis_tdata  = out_data;

    wire [31:0]   cf_32  = {{(32-CFW){1'b0}}, cf};
    wire [AW-1:0] addr   = col_base + cf_32[AW-1:0];
    wire in_window = ({1'b0, x} < USED_W) && ({1'b0, y} < USED_H);
    wire first     = (kx == {KW{1'b0}}) && (ky == {KW{1'b0}});
    wire last      = (kx == LAST_K) && (ky == LAST_K);

    `EXTEND_FUNCTION(widen, IN_BITS, OUT_BITS, SIGNED)

    // combine the incoming beat with the window's partial result
    reg [WORD-1:0]     combined;
    reg [WORD-1:0]     old_word;
    reg [OUT_BITS-1:0] a, b;
    integer p;
    always @* begin
        old_word = partial[addr];
        for (p = 0; p < PE; p = p + 1) begin
            a = old_word[p*OUT_BITS +: OUT_BITS];
            b = widen(s_axis_tdata[p*IN_BITS +: IN_BITS]);
            if (first)
                combined[p*OUT_BITS +: OUT_BITS] = b;
            else if (MODE_SUM != 0)
                combined[p*OUT_BITS +: OUT_BITS] = a + b;
            else if (SIGNED != 0)
                combined[p*OUT_BITS +: OUT_BITS] = ($signed(b) > $signed(a)) ? b : a;
            else
                combined[p*OUT_BITS +: OUT_BITS] = (b > a) ? b : a;
        end
    end

    always @(posedge clk) begin
        if (in_fire && in_window) partial[addr] <= combined;
        if (advance) out_data <= combined;
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            cf        <= {CFW{1'b0}};
            x         <= {XW{1'b0}};
            y         <= {YW{1'b0}};
            kx        <= {KW{1'b0}};
            ky        <= {KW{1'b0}};
            col_base  <= {AW{1'b0}};
            out_valid <= 1'b0;
        end else begin
            if (advance) out_valid <= in_fire && in_window && last;
            if (in_fire) begin
                cf <= (cf == LAST_CF) ? {CFW{1'b0}} : cf + 1'b1;
                if (cf == LAST_CF) begin
                    if (x == LAST_X) begin
                        // next input row
                        x        <= {XW{1'b0}};
                        kx       <= {KW{1'b0}};
                        col_base <= {AW{1'b0}};
                        y        <= (y == LAST_Y) ? {YW{1'b0}} : y + 1'b1;
                        ky       <= (y == LAST_Y || ky == LAST_K) ? {KW{1'b0}} : ky + 1'b1;
                    end else begin
                        x  <= x + 1'b1;
                        kx <= (kx == LAST_K) ? {KW{1'b0}} : kx + 1'b1;
                        // past the last whole window col_base stops mattering (dropped columns)
                        if (kx == LAST_K) col_base <= col_base + CF_A;
                    end
                end
            end
        end
    end

    wire unused = &{1'b0, cf_32};
endmodule

`default_nettype wire
