"""Bit-level encoding shared by the memory-file writers, the code generator and the simulator.

Stream convention (see hw_build/ops/base.py): element ``i`` of a beat sits at bits
``[i*b +: b]``, two's complement when the type is signed; a BIPOLAR element is one bit,
1 for +1 and 0 for -1. Memory words follow the same little-endian field packing.
"""

from __future__ import annotations

import re

import numpy as np
from qonnx.core.datatype import DataType

from hw_build.errors import BuildError

#: Verilog-2005 and SystemVerilog keywords (tools parse .v files with either rule set)
RESERVED = frozenset("""
    accept_on alias always always_comb always_ff always_latch and assert assign assume automatic before begin
    bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle checker class clocking
    cmos config const constraint context continue cover covergroup coverpoint cross deassign default defparam
    design disable dist do edge else end endcase endchecker endclass endclocking endconfig endfunction
    endgenerate endgroup endinterface endmodule endpackage endprimitive endprogram endproperty endspecify
    endsequence endtable endtask enum event eventually expect export extends extern final first_match for
    force foreach forever fork forkjoin function generate genvar global highz0 highz1 if iff ifnone
    ignore_bins illegal_bins implements implies import incdir include initial inout input inside instance
    int integer interconnect interface intersect join join_any join_none large let liblist library local
    localparam logic longint macromodule matches medium modport module nand negedge nettype new nexttime nmos
    nor noshowcancelled not notif0 notif1 null or output package packed parameter pmos posedge primitive
    priority program property protected pull0 pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent
    pure rand randc randcase randsequence rcmos real realtime ref reg reject_on release repeat restrict return
    rnmos rpmos rtran rtranif0 rtranif1 s_always s_eventually s_nexttime s_until s_until_with scalared
    sequence shortint shortreal showcancelled signed small soft solve specify specparam static string strong
    strong0 strong1 struct super supply0 supply1 sync_accept_on sync_reject_on table tagged task this
    throughout time timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior trireg type
    typedef union unique unique0 unsigned until until_with untyped use uwire var vectored virtual void wait
    wait_order wand weak weak0 weak1 while wildcard wire with within wor xnor xor
""".split())


def verilog_name(name: str) -> str:
    """A Verilog identifier (and file-name stem) for an ONNX node or tensor name."""
    ident = re.sub(r"\W", "_", name).strip("_") or "unnamed"
    if ident[0].isdigit():
        ident = "n_" + ident
    if ident in RESERVED:
        ident += "_"
    return ident


def signed_bits(lo: int, hi: int) -> int:
    """Bits of the smallest two's complement type that holds every value in [lo, hi]."""
    lo, hi = int(lo), int(hi)
    return max(int(hi).bit_length(), int(-lo - 1).bit_length() if lo < 0 else 0) + 1


def int_range(dtype: DataType) -> tuple[int, int]:
    """Value range of an integer (or bipolar) qonnx type."""
    if not dtype.is_integer():
        raise BuildError(f"datatype {dtype.name} is not an integer type; the RTL needs integer streams")
    return int(dtype.min()), int(dtype.max())


def element_codes(values: np.ndarray, dtype: DataType) -> np.ndarray:
    """Unsigned bit patterns (int64) of integer values in ``dtype``'s stream encoding."""
    vals = np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64)
    lo, hi = int_range(dtype)
    if vals.size and (vals.min() < lo or vals.max() > hi):
        raise BuildError(
            f"values in [{vals.min()}, {vals.max()}] do not fit datatype {dtype.name} [{lo}, {hi}]"
        )
    if dtype == DataType["BIPOLAR"]:
        return (vals > 0).astype(np.int64)
    return vals & ((1 << dtype.bitwidth()) - 1)


def decode_codes(codes: np.ndarray, dtype: DataType) -> np.ndarray:
    """Inverse of :func:`element_codes`: integer values (int64) from bit patterns."""
    codes = np.asarray(codes, dtype=np.int64)
    if dtype == DataType["BIPOLAR"]:
        return 2 * codes - 1
    bits = dtype.bitwidth()
    if dtype.signed():
        return np.where(codes >= (1 << (bits - 1)), codes - (1 << bits), codes)
    return codes


def twos_complement(values: np.ndarray, bits: int) -> np.ndarray:
    """``values`` (int64) as ``bits``-bit two's complement patterns; they must fit."""
    vals = np.asarray(values, dtype=np.int64)
    if vals.size and (vals.min() < -(1 << (bits - 1)) or vals.max() >= (1 << (bits - 1))):
        raise BuildError(f"values in [{vals.min()}, {vals.max()}] do not fit {bits}-bit two's complement")
    return vals & ((1 << bits) - 1)


def pack_fields(codes: np.ndarray, bits: int) -> np.ndarray:
    """Bit matrix [..., F*bits] (uint8 0/1) of unsigned codes [..., F]; field i at [i*bits +: bits]."""
    codes = np.asarray(codes, dtype=np.int64)
    shifts = np.arange(bits, dtype=np.int64)
    matrix = (codes[..., :, None] >> shifts) & 1
    return matrix.reshape(codes.shape[:-1] + (codes.shape[-1] * bits,)).astype(np.uint8)


def bits_to_hex(bit_matrix: np.ndarray) -> list[str]:
    """One hex string (ceil(bits/4) digits, most significant first) per row of a bit matrix."""
    rows = np.atleast_2d(np.asarray(bit_matrix, dtype=np.uint8))
    nbits = rows.shape[1]
    digits = max(1, -(-nbits // 4))
    pad = (-nbits) % 8
    if pad:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], pad), dtype=np.uint8)], axis=1)
    packed = np.packbits(rows, axis=1, bitorder="little")
    return [bytes(row[::-1]).hex()[-digits:] for row in packed]


def bits_to_ints(bit_matrix: np.ndarray) -> list[int]:
    """Python ints (bit 0 = column 0) of the rows of a bit matrix."""
    return [int(h, 16) for h in bits_to_hex(bit_matrix)]


def pack_stream(values: np.ndarray, dtype: DataType, elems_per_beat: int) -> list[int]:
    """Beats (Python ints) of a tensor streamed in row-major order, ``elems_per_beat`` per beat."""
    codes = element_codes(np.asarray(values).reshape(-1), dtype)
    if codes.size % elems_per_beat:
        raise BuildError(f"{codes.size} elements do not fill whole beats of {elems_per_beat}")
    return bits_to_ints(pack_fields(codes.reshape(-1, elems_per_beat), dtype.bitwidth()))


def unpack_stream(beats: list[int], dtype: DataType, elems_per_beat: int) -> np.ndarray:
    """Values (int64, flat) of a stream of beats; inverse of :func:`pack_stream`."""
    bits = dtype.bitwidth()
    mask = (1 << bits) - 1
    codes = np.array(
        [(beat >> (i * bits)) & mask for beat in beats for i in range(elems_per_beat)],
        dtype=np.int64,
    )
    return decode_codes(codes, dtype)
