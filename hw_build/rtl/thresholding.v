// Multi-threshold activation: out[c] = #{t : x[c] >= T[c][t]}, PE channels per beat.
//
// Thresholds live in a ROM with one word per channel fold (C/PE words); word f holds,
// for lane p and threshold t, T[f*PE + p][t] at bits [(p*NUM_THRESH + t)*T_BITS +: T_BITS]
// as a T_BITS two's complement number (the generator clamps thresholds to the input
// range plus one, so T_BITS = input bits + 1 always suffices).
//
// Pipeline (one beat per cycle): accept a beat and read the ROM word of its fold ->
// compare and count -> output register. All stages advance together when the output
// register is free or being read, so s_axis_tready = !m_axis_tvalid || m_axis_tready.
`default_nettype none

module thresholding #(
    parameter C           = 4,
    parameter PE          = 2,
    parameter IN_BITS     = 8,
    parameter IN_SIGNED   = 0,
    parameter NUM_THRESH  = 1,
    parameter T_BITS      = 9,
    parameter OUT_BITS    = 1,
    parameter THRESH_FILE = "",
    parameter THRESH_STYLE = "auto"    // rom STYLE
) (
    input  wire                   clk,
    input  wire                   rst_n,
    input  wire [PE*IN_BITS-1:0]  s_axis_tdata,
    input  wire                   s_axis_tvalid,
    output wire                   s_axis_tready,
    output wire [PE*OUT_BITS-1:0] m_axis_tdata,
    output wire                   m_axis_tvalid,
    input  wire                   m_axis_tready
);
    localparam FOLDS  = C / PE;
    localparam FW     = (FOLDS > 1) ? $clog2(FOLDS) : 1;
    localparam TWORD  = PE * NUM_THRESH * T_BITS;
    localparam integer LAST_FOLD_I = FOLDS - 1;
    localparam [FW-1:0] LAST_FOLD = LAST_FOLD_I[FW-1:0];

    reg [FW-1:0]          fold;
    reg [PE*IN_BITS-1:0]  x_q;
    reg                   x_valid;
    wire [TWORD-1:0]      th_q;
    reg [PE*OUT_BITS-1:0] out_data;
    reg                   out_valid;

    wire advance = !out_valid || m_axis_tready;
    wire in_fire = s_axis_tvalid && advance;

    assign s_axis_tready = advance;
    assign m_axis_tvalid = out_valid;
    assign m_axis_tdata  = out_data;

    function signed [T_BITS-1:0] widen;
        input [IN_BITS-1:0] v;
        begin
            widen = {T_BITS{IN_SIGNED != 0 && v[IN_BITS-1]}};
            widen[IN_BITS-1:0] = v;
        end
    endfunction

    // level of every lane: thresholds are ascending, so the count of passed ones is the level
    reg [PE*OUT_BITS-1:0] level;
    reg [OUT_BITS-1:0]    count;
    reg signed [T_BITS-1:0] xv;
    integer p, t;
    always @* begin
        level = {PE*OUT_BITS{1'b0}};
        for (p = 0; p < PE; p = p + 1) begin
            xv = widen(x_q[p*IN_BITS +: IN_BITS]);
            count = {OUT_BITS{1'b0}};
            for (t = 0; t < NUM_THRESH; t = t + 1)
                if (xv >= $signed(th_q[(p*NUM_THRESH + t)*T_BITS +: T_BITS]))
                    count = count + 1'b1;
            level[p*OUT_BITS +: OUT_BITS] = count;
        end
    end

    rom #(.WIDTH(TWORD), .DEPTH(FOLDS), .INIT_FILE(THRESH_FILE), .STYLE(THRESH_STYLE)) threshold_rom (
        .clk(clk), .en(advance), .addr(fold), .data(th_q)
    );

    always @(posedge clk) begin
        if (advance) begin
            x_q  <= s_axis_tdata;
            out_data <= level;
        end
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            fold      <= {FW{1'b0}};
            x_valid   <= 1'b0;
            out_valid <= 1'b0;
        end else if (advance) begin
            x_valid   <= in_fire;
            out_valid <= x_valid;
            if (in_fire) fold <= (fold == LAST_FOLD) ? {FW{1'b0}} : fold + 1'b1;
        end
    end
endmodule

`default_nettype wire
