"""Standalone multi-threshold activation on an NHWC stream (e.g. the input quantizer).

``out[..., c] = #{t : x[..., c] >= T[c, t]}``; T has one row per channel or one shared row.
``PE`` channels per beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hw_build.estimate.cost_model import Features, ModuleFeatures, clog2, rom_features
from hw_build.ops.base import HWLayer, rtl_record
from hw_build.ops.mvtu import threshold_levels


class ThresholdingParams(rtl_record("thresholding")):
    def resource_features(self) -> ModuleFeatures:
        c, pe, in_bits = self.C, self.PE, self.IN_BITS
        nth, t_bits, out_bits = self.NUM_THRESH, self.T_BITS, self.OUT_BITS
        folds = max(1, c // pe)
        style = self.THRESH_STYLE
        lut: Features = {"const": 1.0, "fold": clog2(folds)}
        ff: Features = {"const": 1.0, "fold": clog2(folds), "out": pe * out_bits}
        bram = 0.0
        if self.SEARCH:
            levels = clog2(nth + 1)
            for k in range(levels):
                # each lane keeps only its own slice of its stage ROM
                for _ in range(pe):
                    bram += rom_features(folds << k, t_bits, style, "stage", lut, ff)
            lut["search_compare"] = pe * levels * t_bits
            ff["pipeline"] = levels * pe * (in_bits + levels) + levels * clog2(folds)
        else:
            bram += rom_features(folds, pe * nth * t_bits, style, "th", lut, ff)
            lut["compare" if folds > 1 else "compare_const"] = pe * nth * t_bits
            if nth > 1:
                lut["level_count"] = pe * nth
            ff["x"] = pe * in_bits
        return lut, ff, bram, 0.0


class Thresholding(HWLayer):
    rtl_record = ThresholdingParams

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = np.rint(self.input_array(context)).astype(np.int64)
        out = threshold_levels(x, context[node.input[1]])
        context[node.output[0]] = out.astype(np.float32)

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        from hw_build.rtl.encoding import int_range, signed_bits, verilog_name
        from hw_build.rtl.memory import rom_style

        in_dtype = self.in_dtype()
        if in_dtype.name == "BIPOLAR":
            raise self.error("Thresholding RTL takes integer inputs, not BIPOLAR", "This is a compiler limitation; please report it with the model.")
        lo, hi = int_range(in_dtype)
        if model is not None:
            num_thresh = int(np.atleast_2d(model.get_initializer(self.onnx_node.input[1])).shape[1])
        else:
            num_thresh = (1 << self.out_dtype().bitwidth()) - 1
        pe, c = self.get_nodeattr("PE"), self.channels()
        # thresholds are clamped to [lo, hi + 1], which this many bits hold
        t_bits = max(signed_bits(lo, hi + 1), in_dtype.bitwidth() + 1)
        levels = int(num_thresh).bit_length()
        if levels > self.out_dtype().bitwidth():
            raise self.error(f"{num_thresh} thresholds do not fit {self.out_dtype().name}", "This is a compiler limitation; please report it with the model.")
        # many thresholds (an input quantizer has 255): binary search, one compare per stage
        search = 3 < num_thresh < 512
        name = verilog_name(self.onnx_node.name)
        if search:
            style = rom_style((c // pe) << (levels - 1), pe * t_bits)
        else:
            style = rom_style(c // pe, pe * num_thresh * t_bits)
        return {
            "C": c, "PE": pe,
            "IN_BITS": in_dtype.bitwidth(), "IN_SIGNED": int(in_dtype.signed()),
            "NUM_THRESH": num_thresh, "T_BITS": t_bits,
            "OUT_BITS": self.out_dtype().bitwidth(),
            "SEARCH": int(search),
            # with SEARCH the module reads <prefix>_s<stage>.mem, one file per search stage
            "THRESH_FILE": f"{name}_thresholds" if search else f"{name}_thresholds.mem",
            "THRESH_STYLE": style,
        }

    def rtl_memories(self, model) -> dict[str, list[str]]:
        from hw_build.rtl.encoding import bits_to_hex, int_range, pack_fields, twos_complement

        p = self.rtl_params(model)
        c, pe, t, t_bits = p["C"], p["PE"], p["NUM_THRESH"], p["T_BITS"]
        lo, hi = int_range(self.in_dtype())
        th = np.atleast_2d(np.asarray(model.get_initializer(self.onnx_node.input[1]), dtype=np.float64))
        # x >= t for integer x is x >= ceil(t); outside the input range the answer is constant.
        # The count of passed thresholds does not depend on their order, so sort them.
        th = np.sort(np.clip(np.broadcast_to(np.ceil(th), (c, th.shape[1])).astype(np.int64), lo, hi + 1), axis=1)
        if not p["SEARCH"]:
            fields = twos_complement(th, t_bits).reshape(c // pe, pe * t)
            return {p["THRESH_FILE"]: bits_to_hex(pack_fields(fields, t_bits))}
        levels = int(t).bit_length()
        padded = np.full((c, (1 << levels) - 1), hi + 1, dtype=np.int64)   # never passed
        padded[:, :t] = th
        codes = twos_complement(padded, t_bits).reshape(c // pe, pe, -1)
        memories = {}
        for k in range(levels):
            b = levels - 1 - k
            # stage k compares with T[j*2^(b+1) + 2^b - 1] for the 2^k prefixes j
            idx = np.arange(1 << k) * (1 << (b + 1)) + (1 << b) - 1
            words = codes[:, :, idx].transpose(0, 2, 1).reshape(-1, pe)
            memories[f"{p['THRESH_FILE']}_s{k}.mem"] = bits_to_hex(pack_fields(words, t_bits))
        return memories
