"""Standalone multi-threshold activation on an NHWC stream (e.g. the input quantizer).

``out[..., c] = #{t : x[..., c] >= T[c, t]}``; T has one row per channel or one shared row.
``PE`` channels per beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hw_build.ops.base import HWLayer
from hw_build.ops.mvtu import threshold_levels


class Thresholding(HWLayer):
    rtl_module = "thresholding"

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = np.rint(self.input_array(context)).astype(np.int64)
        out = threshold_levels(x, context[node.input[1]])
        context[node.output[0]] = out.astype(np.float32)

    def rtl_params(self, model=None) -> dict[str, Any]:
        from hw_build.rtl.encoding import int_range, rom_style, signed_bits, verilog_name

        in_dtype = self.in_dtype()
        if in_dtype.name == "BIPOLAR":
            raise ValueError(f"{self.onnx_node.name}: Thresholding RTL takes integer inputs, not BIPOLAR")
        lo, hi = int_range(in_dtype)
        if model is not None:
            num_thresh = int(np.atleast_2d(model.get_initializer(self.onnx_node.input[1])).shape[1])
        else:
            num_thresh = (1 << self.out_dtype().bitwidth()) - 1
        pe = self.get_nodeattr("PE")
        # thresholds are clamped to [lo, hi + 1], which this many bits hold
        t_bits = max(signed_bits(lo, hi + 1), in_dtype.bitwidth() + 1)
        return {
            "C": self.channels(), "PE": pe,
            "IN_BITS": in_dtype.bitwidth(), "IN_SIGNED": int(in_dtype.signed()),
            "NUM_THRESH": num_thresh, "T_BITS": t_bits,
            "OUT_BITS": self.out_dtype().bitwidth(),
            "THRESH_FILE": f"{verilog_name(self.onnx_node.name)}_thresholds.mem",
            "THRESH_STYLE": rom_style(self.channels() // pe, pe * num_thresh * t_bits),
        }

    def rtl_memories(self, model) -> dict[str, list[str]]:
        from hw_build.rtl.encoding import bits_to_hex, int_range, pack_fields, twos_complement

        p = self.rtl_params(model)
        c, pe, t = p["C"], p["PE"], p["NUM_THRESH"]
        lo, hi = int_range(self.in_dtype())
        th = np.atleast_2d(np.asarray(model.get_initializer(self.onnx_node.input[1]), dtype=np.float64))
        # x >= t for integer x is x >= ceil(t); outside the input range the answer is constant
        th = np.clip(np.broadcast_to(np.ceil(th), (c, th.shape[1])).astype(np.int64), lo, hi + 1)
        fields = twos_complement(th, p["T_BITS"]).reshape(c // pe, pe * t)
        return {p["THRESH_FILE"]: bits_to_hex(pack_fields(fields, p["T_BITS"]))}
