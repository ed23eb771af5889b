// First-word-fall-through AXI-Stream FIFO.
//
// Storage is a simple dual-port memory with a synchronous read port, so deep FIFOs
// infer block RAM and shallow ones LUT RAM or flip-flops. The read port is addressed
// with the *next* head pointer every cycle, so the registered read data always holds
// the current head entry; a write into the entry that becomes the head in the same
// cycle (FIFO empty or about to be) is forwarded through a bypass register because the
// memory returns the old contents (read-first).
//
// DEPTH = 2, the default on every edge between layers, is two plain registers instead:
// the head drives m_axis_tdata directly and takes the input or the second entry, which
// costs one LUT and two flip-flops per bit where the memory version needs about two and
// four (a 576-bit window stream: ~600 LUT instead of ~1,000).
//
// s_axis_tready and m_axis_tvalid come straight from the occupancy register, so a FIFO
// breaks the combinational ready/valid chains between layers. With DEPTH >= 2 it
// passes one beat per cycle; DEPTH = 1 halves the throughput (no simultaneous push
// into a full FIFO) and is only meant for flag queues.
`default_nettype none
`include "common.vh"

module fifo #(
    parameter WIDTH = 8, parameter DEPTH = 2
) (
    `AXIS_PORTS(WIDTH, WIDTH)
);
    localparam AW = `CLOG2_1(DEPTH);
    localparam CW = $clog2(DEPTH + 1);
    localparam integer LAST_ADDR_I = DEPTH - 1;
    localparam [AW-1:0] LAST_ADDR = LAST_ADDR_I[AW-1:0];
    localparam integer FULL_I = DEPTH;
    localparam [CW-1:0] FULL = FULL_I[CW-1:0];

    reg [CW-1:0]    count /* verilator public_flat_rd */;

    wire push = s_axis_tvalid && s_axis_tready;
    wire pop  = m_axis_tvalid && m_axis_tready;

    assign s_axis_tready = (count != FULL);
    assign m_axis_tvalid = (count != {CW{1'b0}});

    always @(posedge clk) begin
        if (!rst_n) begin
            count <= {CW{1'b0}};
        end else begin
            if (push && !pop) count <= count + 1'b1;
            else if (pop && !push) count <= count - 1'b1;
        end
    end

    generate
        if (DEPTH == 2) begin : g_regs
            localparam [CW-1:0] ONE = {{(CW-1){1'b0}}, 1'b1};
            reg [WIDTH-1:0] head;   // oldest entry
            reg [WIDTH-1:0] tail;   // the second entry while two are held
            assign m_axis_tdata = head;
            always @(posedge clk) begin
                // the head takes the second entry when it leaves with two held, else the
                // input when it is empty or leaves now
                if (pop && count == FULL) head <= tail;
                else if (push && (count == {CW{1'b0}} || (count == ONE && pop))) head <= s_axis_tdata;
                if (push && ((count == ONE && !pop) || (count == FULL && pop))) tail <= s_axis_tdata;
            end
        end else begin : g_ram
            reg [WIDTH-1:0] mem [0:DEPTH-1];
            reg [AW-1:0]    wr_ptr;
            reg [AW-1:0]    rd_ptr;
            reg [WIDTH-1:0] rd_data;
            reg [WIDTH-1:0] bypass_data;
            reg             bypass;

            wire [AW-1:0] wr_ptr_inc = (wr_ptr == LAST_ADDR) ? {AW{1'b0}} : wr_ptr + 1'b1;
            wire [AW-1:0] rd_ptr_inc = (rd_ptr == LAST_ADDR) ? {AW{1'b0}} : rd_ptr + 1'b1;
            wire [AW-1:0] rd_ptr_next = pop ? rd_ptr_inc : rd_ptr;

            assign m_axis_tdata = bypass ? bypass_data : rd_data;

            always @(posedge clk) begin
                if (push) mem[wr_ptr] <= s_axis_tdata;
                rd_data     <= mem[rd_ptr_next];
                bypass      <= push && (wr_ptr == rd_ptr_next);
                bypass_data <= s_axis_tdata;
            end

            always @(posedge clk) begin
                if (!rst_n) begin
                    wr_ptr <= {AW{1'b0}};
                    rd_ptr <= {AW{1'b0}};
                end else begin
                    if (push) wr_ptr <= wr_ptr_inc;
                    if (pop) rd_ptr <= rd_ptr_next;
                end
            end
        end
    endgenerate
endmodule

`default_nettype wire
