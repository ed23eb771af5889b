"""Sliding-window generator (im2col on a stream): turns an NHWC image into conv windows.

Input ``[N, H, W, C]``; output ``[N, OH, OW, K*K*C]`` where each output pixel's window
is ordered ``(kh, kw, c)``. Padding (top, left, bottom, right) uses ``pad_value`` (an
integer in the input's own encoding: binary convs pad with the bit for -1, i.e. 0).
``SIMD`` channels per beat in and out (C % SIMD == 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hw_build.estimate.cost_model import Features, ModuleFeatures, clog2, ram_features
from hw_build.ops.base import HWLayer, divisors, rtl_record


class SlidingWindowParams(rtl_record("sliding_window")):
    def resource_features(self) -> ModuleFeatures:
        w, c, k, stride = self.IFM_W, self.C, self.K, self.STRIDE
        simd, bits = self.SIMD, self.BITS
        nrows = self.NROWS
        h, pad_t, pad_l = self.IFM_H, self.PAD_T, self.PAD_L
        cf = max(1, c // simd)
        depth = nrows * w * cf
        word = simd * bits
        aw = max(1, clog2(depth))
        # the reader's row/column arithmetic is signed, RW bits wide (sliding_window.v): about a
        # dozen adders and comparators of that width
        rw = max(clog2(h + w + pad_t + pad_l + 2 * k + 2 * stride + nrows + 1) + 2, aw + 1)
        lut: Features = {"const": 1.0, "addr": aw, "pad_mux": word, "row_arith": rw,
                         # rd_addr = slot * ROW_BEATS + col * CF + cf: constant multipliers, one adder
                         # per set bit of the constant
                         "addr_mult": aw * (bin(w * cf).count("1") + bin(cf).count("1")),
                         # the next slot is a remainder modulo NROWS: free for a power of two
                         "slot_mod": 0 if nrows & (nrows - 1) == 0 else rw * rw,
                         # output-position counters and their end-of-range compares
                         "out_counters": clog2(self.OFM_H) + clog2(self.OFM_W) + clog2(cf) + 2 * clog2(k),
                         "stride_arith": rw if stride > 1 else 0}
        ff: Features = {"const": 1.0, "addr": aw, "word": word, "row_arith": rw}
        bram = ram_features(depth, word, "buf", lut, ff)
        return lut, ff, bram, 0.0


class SlidingWindow(HWLayer):
    rtl_record = SlidingWindowParams
    fold_attrs = ("SIMD",)

    nodeattrs = {
        "kernel": ("i", True, 1),
        "stride": ("i", False, 1),
        "pads": ("ints", False, [0, 0, 0, 0]),
        "pad_value": ("i", False, 0),
        "SIMD": ("i", False, 1),
    }

    def fold_options(self):
        return {"SIMD": divisors(self.channels())}

    def in_beat_elems(self, index: int = 0) -> int:
        return self.get_nodeattr("SIMD")

    def out_beat_elems(self) -> int:
        return self.get_nodeattr("SIMD")

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = self.input_array(context)
        k, s = self.get_nodeattr("kernel"), self.get_nodeattr("stride")
        top, left, bottom, right = self.get_nodeattr("pads")
        xp = np.pad(
            x,
            ((0, 0), (top, bottom), (left, right), (0, 0)),
            constant_values=self.get_nodeattr("pad_value"),
        )
        _, oh, ow, _ = self.out_shape()
        rows = []
        for kh in range(k):
            for kw in range(k):
                rows.append(xp[:, kh : kh + s * (oh - 1) + 1 : s, kw : kw + s * (ow - 1) + 1 : s, :])
        out = np.concatenate(rows, axis=-1)
        context[node.output[0]] = out.astype(np.float32)

    def line_buffer_rows(self) -> int:
        """Image rows the RTL line buffer holds (``NROWS`` of sliding_window.v).

        K + STRIDE rows let the writer store the next output row's STRIDE new rows while
        the reader emits the current one. Across a frame boundary the next frame's first
        output row needs rows 0..K-1-PAD_T while the last output row still holds its own
        rows; unless both fit, the reader waits for the next frame's first rows after every
        frame (e.g. 3x3 without padding: two rows of input beats per frame) and the layer
        runs slower than ``cycles()``. Those extra rows cost little next to the stalls."""
        _, h, _, _ = self.in_shape()
        oh = self.out_shape()[1]
        k, s, top = self.get_nodeattr("kernel"), self.get_nodeattr("stride"), self.get_nodeattr("pads")[0]
        first = max(0, min(h, k - top))
        last_lo = (oh - 1) * s - top
        last = max(0, min(last_lo + k - 1, h - 1) - max(last_lo, 0) + 1)
        return max(k + s, first + last)

    def lookahead(self) -> float:
        """The window's rows below the padding plus one pixel."""
        _, h, w, _ = self.in_shape()
        rows = max(self.get_nodeattr("kernel") - self.get_nodeattr("pads")[0], 1)
        return (rows + 1 / w) / h

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        _, h, w, c = self.in_shape()
        _, oh, ow, _ = self.out_shape()
        top, left, _, _ = self.get_nodeattr("pads")
        bits = self.in_dtype().bitwidth()
        return {
            "IFM_H": h, "IFM_W": w, "C": c, "K": self.get_nodeattr("kernel"),
            "STRIDE": self.get_nodeattr("stride"), "PAD_T": top, "PAD_L": left,
            "OFM_H": oh, "OFM_W": ow,
            "SIMD": self.get_nodeattr("SIMD"), "BITS": bits, "NROWS": self.line_buffer_rows(),
            # the pad element's bit pattern (pad_value is already in the input's encoding)
            "PAD_VALUE": int(self.get_nodeattr("pad_value")) & ((1 << bits) - 1),
        }
