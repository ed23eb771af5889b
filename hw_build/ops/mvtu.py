"""Matrix-vector-threshold unit: the compute layer of every Conv and fully-connected layer.

Per input vector ``x`` (MW elements) it computes MH accumulators and, when thresholds are
given, the activation level ``out[c] = sum_t (acc[c] >= T[c, t])``; without thresholds it
outputs the accumulator itself.

Two arithmetic modes:
- binary (``binary=1``): input and weights are bits, ``acc = popcount(xnor(x, w))``
  (bit 1 stands for +1, bit 0 for -1);
- integer: ``acc = sum(x * w)`` with signed/unsigned integer x and w.

Folding: ``SIMD`` input elements per beat, ``PE`` output channels computed in parallel.
Rows are split over PEs by ``row = nf * PE + p`` so output beat ``nf`` holds channels
``nf*PE .. nf*PE+PE-1``. The weight/threshold memory of PE ``p`` holds, for neuron fold
``nf`` and synapse fold ``sf``, the SIMD weights ``W[nf*PE+p, sf*SIMD : (sf+1)*SIMD]``.
Cycles per frame: ``num_vectors * (MH/PE) * (MW/SIMD)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qonnx.core.datatype import DataType

from hw_build.estimate.cost_model import Features, ModuleFeatures, clog2, ram_features, rom_features
from hw_build.ops.base import HWLayer, divisors, rtl_record


def threshold_levels(acc: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``out[..., c] = #{t : acc[..., c] >= thresholds[c, t]}`` (thresholds sorted per row).

    ``thresholds`` has one row per channel, or a single row shared by all channels.
    """
    acc = np.asarray(acc, dtype=np.int64)
    th = np.asarray(thresholds, dtype=np.int64)
    channels = acc.shape[-1]
    if th.shape[0] == 1:
        th = np.broadcast_to(th, (channels, th.shape[1]))
    out = np.empty(acc.shape, dtype=np.int64)
    for c in range(channels):
        out[..., c] = np.searchsorted(th[c], acc[..., c], side="right")
    return out


class MvtuParams(rtl_record("mvtu")):
    def folds(self) -> int:
        """mvtu.v FOLDS: synapse folds x neuron folds, the words of the weight ROM."""
        return max(1, self.MW // self.SIMD) * max(1, self.MH // self.PE)

    def weight_read_stages(self) -> int:
        """mvtu.v W_READ_STAGES: a LUT ROM of over 32 words has a data register after its decode."""
        return 2 if self.WEIGHT_STYLE != "block" and self.folds() > 32 else 1

    def heap_xnor(self) -> bool:
        """mvtu.v HEAP_XNOR: the XNORs inside the bit heap's first LUTs (xnor_popcount.v), where
        a weight bit comes from a register or one LUT6 of decode (block RAM, a 33-64 word ROM)."""
        return bool(self.BINARY) and (self.WEIGHT_STYLE == "block" or 32 < self.folds() <= 64)

    def heap_popcount(self) -> bool:
        """mvtu.v HEAP_POPCOUNT: binary lane sums by the bit heap, with the XNORs inside or behind
        a LUT ROM of 2-32 words; deeper LUT ROMs and constant weights keep the adder tree."""
        return self.heap_xnor() or (bool(self.BINARY) and 1 < self.folds() <= 32)

    def resource_features(self) -> ModuleFeatures:
        mw, mh, pe, simd = self.MW, self.MH, self.PE, self.SIMD
        binary = self.BINARY
        in_bits, w_bits, acc = self.IN_BITS, self.W_BITS, self.ACC_BITS
        nth, out_bits = self.NUM_THRESH, self.OUT_BITS
        sf, nf = max(1, mw // simd), max(1, mh // pe)
        lut: Features = {"const": 1.0}
        ff: Features = {"const": 1.0, "counters": clog2(sf) + clog2(nf) + clog2(sf * nf)}
        lut["counters"] = ff["counters"]
        w_stages = self.weight_read_stages()
        bram = rom_features(sf * nf, pe * simd * w_bits, self.WEIGHT_STYLE, "w", lut, ff, w_stages)
        if binary and "w_rom" in lut and sf * nf <= 32:
            # Yosys moves the ROM's output register to its address: a weight bit is then a
            # function of at most 5 address bits, which shares its LUT6 with the XNOR
            lut["w_rom_xnor"] = lut.pop("w_rom")
        xword = simd * in_bits
        if nf > 1:
            bram += ram_features(2 * sf, xword, "xbuf", lut, ff)
        ff["x_word"] = xword * w_stages      # the input word waits for the weights
        terms = pe * simd
        dsp = 0.0
        if binary and self.heap_popcount():
            # xnor_popcount.v: LUTs of a bit heap (about 4/3 per lane with the XNORs inside, one
            # more per lane where a LUT-ROM weight's decode and the XNOR come first), a final
            # adder per PE, registers after every few heap steps
            lut["heap_xnor" if self.heap_xnor() else "heap_bits"] = terms
            lut["heap_root"] = pe * clog2(simd + 1)
            ff["heap"] = terms
        elif binary:
            # XNOR with the weight feeds the popcount; a constant weight (one fold) is a wire
            lut["popcount_const_w" if sf * nf == 1 else "popcount"] = terms
            lut["tree_root"] = pe * acc
        else:
            pw = in_bits + w_bits + 2
            if self.W_BIPOLAR or self.IN_BIPOLAR:
                lut["negate"] = terms * pw
            elif min(w_bits, in_bits) <= 3:
                lut["shift_add"] = terms * pw * min(w_bits, in_bits)
            else:
                dsp = float(terms)          # a real multiplier: Yosys infers a DSP48 per product
            lut["int_tree"] = terms * pw
            ff["products"] = terms * pw
        lut["acc"] = pe * acc
        ff["acc"] = 2 * pe * acc
        if nth:
            bram += rom_features(nf, pe * nth * acc, self.THRESH_STYLE, "th", lut, ff)
            lut["compare" if nf > 1 else "compare_const"] = pe * nth * acc
            if nth > 1:
                lut["level_count"] = pe * nth
        ff["out"] = pe * out_bits
        return lut, ff, bram, dsp


#: terms per registered adder-tree stage of the RTL (mvtu.v SUM_GROUP), binary and integer
BINARY_SUM_GROUP = 48
INT_SUM_GROUP = 8


class MVTU(HWLayer):
    rtl_record = MvtuParams
    fold_attrs = ("PE", "SIMD")

    nodeattrs = {
        "MW": ("i", True, 0),
        "MH": ("i", True, 0),
        "SIMD": ("i", False, 1),
        "num_vectors": ("i", True, 1),
        "binary": ("i", False, 0),
        "w_dtype": ("s", True, ""),
        "acc_dtype": ("s", True, ""),
        "mem_style": ("s", False, "auto"),
    }

    def channels(self) -> int:
        return self.get_nodeattr("MH")

    def has_thresholds(self) -> bool:
        return len(self.onnx_node.input) > 2 and self.onnx_node.input[2] != ""

    def fold_options(self):
        return {"PE": divisors(self.get_nodeattr("MH")), "SIMD": divisors(self.get_nodeattr("MW"))}

    def in_beat_elems(self, index: int = 0) -> int:
        return self.get_nodeattr("SIMD")

    def out_beat_elems(self) -> int:
        return self.get_nodeattr("PE")

    def cycles(self) -> int:
        mw, mh = self.get_nodeattr("MW"), self.get_nodeattr("MH")
        return self.get_nodeattr("num_vectors") * (mh // self.get_nodeattr("PE")) * (
            mw // self.get_nodeattr("SIMD")
        )

    def accumulate(self, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Accumulators for input vectors x [..., MW] and weights [MH, MW]."""
        xf = x.astype(np.float64)
        wf = weights.astype(np.float64)
        # float64 matmul is exact for these integer magnitudes (< 2**53) and fast
        if self.get_nodeattr("binary"):
            mw = self.get_nodeattr("MW")
            # popcount(xnor) = x.w + (1-x).(1-w) = 2 x.w - sum(x) - sum(w) + MW
            acc = 2 * (xf @ wf.T) - xf.sum(-1, keepdims=True) - wf.sum(-1)[None, :] + mw
        else:
            acc = xf @ wf.T
        return np.rint(acc).astype(np.int64)

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = self.input_array(context)
        n = x.shape[0]
        mw, mh, nv = (self.get_nodeattr(a) for a in ("MW", "MH", "num_vectors"))
        weights = context[node.input[1]]
        acc = self.accumulate(x.reshape(n, nv, mw), weights)
        if self.has_thresholds():
            acc = threshold_levels(acc, context[node.input[2]])
        context[node.output[0]] = acc.reshape([n] + self.out_shape()[1:]).astype(np.float32)

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        from hw_build.rtl.encoding import int_range, signed_bits, verilog_name
        from hw_build.rtl.memory import rom_style

        w_dtype = DataType[self.get_nodeattr("w_dtype")]
        in_dtype = self.in_dtype()
        mw = self.get_nodeattr("MW")
        binary = int(self.get_nodeattr("binary"))
        bipolar = DataType["BIPOLAR"]
        if not binary and model is not None:
            # store the weights in the narrowest encoding their actual values allow (e.g. +-1
            # weights typed INT2 become one bipolar bit: a negation instead of a multiplier)
            values = np.unique(np.asarray(model.get_initializer(self.onnx_node.input[1])))
            if set(values.tolist()) <= {-1.0, 1.0}:
                w_dtype = bipolar
            elif values.size:
                from hw_build.ops.base import smallest_int_type

                w_dtype = smallest_int_type(int(values.min()), int(values.max()))
        if binary:
            in_bits = w_bits = 1
            lo, hi = 0, mw
            acc_bits = signed_bits(lo, hi + 1)
        else:
            in_bits, w_bits = in_dtype.bitwidth(), w_dtype.bitwidth()
            (xl, xh), (wl, wh) = int_range(in_dtype), int_range(w_dtype)
            corners = [xl * wl, xl * wh, xh * wl, xh * wh]
            lo, hi = mw * min(min(corners), 0), mw * max(max(corners), 0)
            # the RTL keeps full products (in_bits + w_bits + 2 bits) as adder-tree leaves
            acc_bits = max(signed_bits(lo, hi + 1), in_bits + w_bits + 2)
        num_thresh = 0
        if self.has_thresholds():
            if model is not None:
                num_thresh = int(np.atleast_2d(model.get_initializer(self.onnx_node.input[2])).shape[1])
            else:
                num_thresh = (1 << self.out_dtype().bitwidth()) - 1
        name = verilog_name(self.onnx_node.name)
        pe, simd, mh = self.get_nodeattr("PE"), self.get_nodeattr("SIMD"), self.get_nodeattr("MH")
        style = self.get_nodeattr("mem_style")
        return {
            "MW": mw,
            "MH": self.get_nodeattr("MH"),
            "PE": self.get_nodeattr("PE"),
            "SIMD": self.get_nodeattr("SIMD"),
            "BINARY": binary,
            "IN_BITS": in_bits,
            "IN_SIGNED": int(not binary and in_dtype.signed() and in_dtype != bipolar),
            "IN_BIPOLAR": int(not binary and in_dtype == bipolar),
            "W_BITS": w_bits,
            "W_SIGNED": int(not binary and w_dtype.signed() and w_dtype != bipolar),
            "W_BIPOLAR": int(not binary and w_dtype == bipolar),
            # exact reachable accumulator range [lo, hi], plus hi + 1 for clamped thresholds
            "ACC_BITS": acc_bits,
            "NUM_THRESH": num_thresh,
            "OUT_BITS": self.out_dtype().bitwidth(),
            "WEIGHTS_FILE": f"{name}_weights.mem",
            "THRESH_FILE": f"{name}_thresholds.mem" if num_thresh else "",
            # block RAM or LUTs for the weight ROM (mem_style, or the cheaper)
            "WEIGHT_STYLE": rom_style((mh // pe) * (mw // simd), pe * simd * w_bits, style),
            # mem_style is the folder's (or the folding file's) choice for the weights; the
            # thresholds are small next to them and always take the cheaper style
            "THRESH_STYLE": rom_style(mh // pe, pe * max(num_thresh, 1) * acc_bits),
            # terms summed between two pipeline registers: the widest group that Yosys maps
            # within 6 LUT levels (CNV's 384-lane binary layer: 48 -> 6 levels, one 384-term
            # tree 10; 27 eight-bit products: 8 -> 5, one tree 9)
            "SUM_GROUP": BINARY_SUM_GROUP if binary else INT_SUM_GROUP,
        }

    def rtl_memories(self, model) -> dict[str, list[str]]:
        from hw_build.rtl.encoding import (
            bits_to_hex,
            element_codes,
            pack_fields,
            twos_complement,
        )

        p = self.rtl_params(model)
        mw, mh, pe, simd = p["MW"], p["MH"], p["PE"], p["SIMD"]
        nf, sf = mh // pe, mw // simd
        # the weight encoding rtl_params chose
        if p["BINARY"] or (p["W_BITS"] == 1 and not p["W_SIGNED"] and not p["W_BIPOLAR"]):
            w_dtype = DataType["BINARY"]
        elif p["W_BIPOLAR"]:
            w_dtype = DataType["BIPOLAR"]
        else:
            w_dtype = DataType[f"{'INT' if p['W_SIGNED'] else 'UINT'}{p['W_BITS']}"]
        weights = np.asarray(model.get_initializer(self.onnx_node.input[1]))
        if weights.shape != (mh, mw):
            raise self.error(f"weights have shape {weights.shape}, expected {(mh, mw)}", "This is a compiler limitation; please report it with the model.")
        codes = element_codes(weights, w_dtype)
        # word nf*SF + sf holds W[nf*PE + p, sf*SIMD + s] at field p*SIMD + s
        words = codes.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
        memories = {p["WEIGHTS_FILE"]: bits_to_hex(pack_fields(words, p["W_BITS"]))}
        if p["NUM_THRESH"]:
            th = np.atleast_2d(np.asarray(model.get_initializer(self.onnx_node.input[2]), dtype=np.float64))
            th = np.broadcast_to(np.ceil(th), (mh, th.shape[1])).astype(np.int64)
            acc_bits = p["ACC_BITS"]
            if p["BINARY"]:
                lo, hi = 0, mw
            else:
                lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 2
            # acc >= t is always true below the reachable range and never true above it
            th = np.clip(th, lo, hi + 1)
            fields = twos_complement(th, acc_bits).reshape(nf, pe * p["NUM_THRESH"])
            memories[p["THRESH_FILE"]] = bits_to_hex(pack_fields(fields, acc_bits))
        return memories
