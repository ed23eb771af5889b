"""Non-overlapping K x K pooling (kernel == stride) on an NHWC stream: max or sum.

Rows/columns that do not fill a whole window are dropped (ONNX floor mode).
``PE`` channels per beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hw_build.estimate.cost_model import FF_MEMORY_BITS, Features, ModuleFeatures, clog2, lutram_luts
from hw_build.ops.base import HWLayer, rtl_record


class PoolParams(rtl_record("pool")):
    def resource_features(self) -> ModuleFeatures:
        w, c, k, pe = self.IFM_W, self.C, self.K, self.PE
        out_bits = self.OUT_BITS
        words = max(1, w // k) * max(1, c // pe)
        word = pe * out_bits
        # the partial-result line has an asynchronous read port: LUT RAM (or FFs when tiny)
        lut: Features = {"const": 1.0, "counters": clog2(words) + clog2(w) + clog2(self.IFM_H),
                         "combine": word}
        ff: Features = {"const": 1.0, "counters": lut["counters"], "out": word}
        if words * word <= FF_MEMORY_BITS or words <= 2:
            lut["line_ff"] = words * word
            ff["line_ff"] = words * word
        else:
            lut["line_lutram"] = lutram_luts(words, word) / 2     # async read: half the sites of SDP
        return lut, ff, 0.0, 0.0


class Pool(HWLayer):
    rtl_record = PoolParams

    nodeattrs = {"kernel": ("i", True, 2), "mode": ("s", False, "max")}

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = np.rint(self.input_array(context)).astype(np.int64)
        k = self.get_nodeattr("kernel")
        n, h, w, c = x.shape
        oh, ow = h // k, w // k
        win = x[:, : oh * k, : ow * k, :].reshape(n, oh, k, ow, k, c)
        out = win.max(axis=(2, 4)) if self.get_nodeattr("mode") == "max" else win.sum(axis=(2, 4))
        context[node.output[0]] = out.astype(np.float32)

    def lookahead(self) -> float:
        """The window's rows but one."""
        return (self.get_nodeattr("kernel") - 1) / self.in_shape()[1]

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        _, h, w, c = self.in_shape()
        mode_sum = int(self.get_nodeattr("mode") == "sum")
        in_dtype = self.in_dtype()
        if mode_sum and in_dtype.name == "BIPOLAR":
            raise self.error("sum pooling of BIPOLAR values is not supported in RTL",
                             "Quantize the pooled activation to an integer type (bit width >= 2) or use max pooling.")
        if self.out_dtype().bitwidth() < in_dtype.bitwidth():
            raise self.error("output type narrower than the input type", "This is a compiler limitation; please report it with the model.")
        return {
            "IFM_H": h, "IFM_W": w, "C": c, "K": self.get_nodeattr("kernel"),
            "PE": self.get_nodeattr("PE"), "IN_BITS": in_dtype.bitwidth(),
            "OUT_BITS": self.out_dtype().bitwidth(),
            # BIPOLAR codes (1 = +1) order like unsigned bits, so max works on them
            "SIGNED": int(in_dtype.signed() and in_dtype.name != "BIPOLAR"),
            "MODE_SUM": mode_sum,
        }
