"""Window-parallel sliding-window generator: the same im2col stream as
:class:`~hw_build.ops.sliding_window.SlidingWindow`, but with up to a whole K x K x C window
per beat, so a layer with few input channels (an RGB stem: C = 3) is no longer bound to
K*K beats per output pixel.

Input ``[N, H, W, C]``, one whole pixel per beat; output ``[N, OH, OW, K*K*C]`` in
``(kh, kw, c)`` order (bit-exact the SlidingWindow's output), ``SIMD`` elements per beat,
where SIMD is a multiple of C dividing K*K*C (F = K*K*C / SIMD beats per window). The RTL
(parallel_window.v) scans the padded image one position per cycle through K-1 line
buffers and a K x K register window and stops the scan for the F beats of each window:
``cycles = SCAN_H * SCAN_W + OH * OW * (F - 1)``.

The fold step (hw_build.fold.window_parallel) turns a SlidingWindow into this op when its
throughput target needs more than the element-serial generator can give.
"""

from __future__ import annotations

from typing import Any

from hw_build.estimate.cost_model import Features, ModuleFeatures, clog2, lutram_luts, ram_choice
from hw_build.ops.base import divisors, rtl_record
from hw_build.ops.sliding_window import SlidingWindow
from hw_build.rtl.memory import bram36


def scan_extent(in_size: int, pad_lo: int, out_size: int, k: int, stride: int) -> int:
    """Padded rows (or columns) the scan visits: those the windows need and every image row."""
    return max(pad_lo + in_size, (out_size - 1) * stride + k)


class ParallelWindowParams(rtl_record("parallel_window")):
    def resource_features(self) -> ModuleFeatures:
        """Cost-model features of one instance (hw_build.estimate.cost_model): LUT and FF
        feature counts, block RAMs, DSPs."""
        c, k, bits, simd = self.C, self.K, self.BITS, self.SIMD
        pix = c * bits
        word = simd * bits
        f = max(1, k * k * c // simd)
        scan_h = scan_extent(self.IFM_H, self.PAD_T, self.OFM_H, k, self.STRIDE)
        scan_w = scan_extent(self.IFM_W, self.PAD_L, self.OFM_W, k, self.STRIDE)
        counters = clog2(scan_h) + clog2(scan_w) + 2 * clog2(max(k, self.STRIDE)) + clog2(f)
        lut: Features = {"const": 1.0, "counters": counters,
                         # the pixel is the input or the pad value
                         "pad_mux": pix,
                         # the registered F:1 multiplexer of the window's beats
                         "chunk_mux": word * (f - 1)}
        ff: Features = {"const": 1.0, "counters": counters, "window": k * k * pix, "out": word}
        # the K-1 line buffers, one word per scanned column: the read address is the column
        # register, so Yosys maps them like a registered-read memory (LUT RAM, or block RAM
        # when deep and wide)
        depth, width = scan_w, (k - 1) * pix
        where = ram_choice(depth, width)
        bram = 0.0
        if where == "block":
            lut["lines_bram"] = 1.0
            bram = bram36(depth, width)
        elif where == "lutram":
            lut["lines"] = lutram_luts(depth, width)
        else:
            lut["lines_ff"] = ff["lines_ff"] = depth * width
        return lut, ff, bram, 0.0


class ParallelWindow(SlidingWindow):
    rtl_record = ParallelWindowParams
    fold_attrs = ("SIMD",)

    def fold_options(self):
        c, k = self.channels(), self.get_nodeattr("kernel")
        return {"SIMD": [c * d for d in divisors(k * k)]}

    def in_beat_elems(self, index: int = 0) -> int:
        return self.channels()

    def out_beat_elems(self) -> int:
        return self.get_nodeattr("SIMD")

    def beats_per_window(self) -> int:
        c, k = self.channels(), self.get_nodeattr("kernel")
        return k * k * c // self.get_nodeattr("SIMD")

    def scan(self) -> tuple[int, int]:
        """(rows, columns) of the padded image the RTL scans per frame."""
        _, h, w, _ = self.in_shape()
        _, oh, ow, _ = self.out_shape()
        k, s = self.get_nodeattr("kernel"), self.get_nodeattr("stride")
        top, left, _, _ = self.get_nodeattr("pads")
        return scan_extent(h, top, oh, k, s), scan_extent(w, left, ow, k, s)

    def cycles(self) -> int:
        scan_h, scan_w = self.scan()
        _, oh, ow, _ = self.out_shape()
        return scan_h * scan_w + oh * ow * (self.beats_per_window() - 1)

    def verify_node(self) -> list[str]:
        problems = []
        if self.get_nodeattr("kernel") < 2:
            problems.append("ParallelWindow needs a kernel of at least 2 (a 1x1 window is one pixel per beat already)")
        if self.get_nodeattr("SIMD") not in self.fold_options()["SIMD"]:
            problems.append(f"SIMD={self.get_nodeattr('SIMD')} is not a multiple of C dividing K*K*C")
        return problems

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        values = super().rtl_param_values(model)
        del values["NROWS"]
        return values
