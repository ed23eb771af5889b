"""Width converter between two layers whose beats differ (stream_width_converter.v with
FRAME_BITS = 0): the little-endian bit stream cut into ``out_bits`` beats."""

from __future__ import annotations

import math
from typing import Any

from hw_build.estimate.cost_model import Features, ModuleFeatures, clog2
from hw_build.ops.base import StreamPlumbing, rtl_record


class StreamWidthConverterParams(rtl_record("stream_width_converter")):
    def resource_features(self) -> ModuleFeatures:
        i, o, frame = self.IN_BITS, self.OUT_BITS, self.FRAME_BITS
        keep = i if frame == 0 or frame % i == 0 else frame % i
        padded = keep != i
        beats = clog2(-(-frame // i)) if frame else 0
        lut: Features = {"const": 1.0}
        ff: Features = {"const": 1.0, "beat": beats}
        lut["beat"] = beats
        lcm = i // math.gcd(i, o) * o
        if i == o and not padded:
            return {}, {}, 0.0, 0.0
        def mux(n: int) -> float:
            """LUT6 of an n:1 multiplexer (a tree of 4:1 LUTs)."""
            return (n - 1) / 3 if n > 1 else 0.0

        if i % o == 0 and (i != o or padded):               # downsizer: word register + slice mux
            lut["down_mux"] = o * mux(i // o)
            ff["down_reg"] = i + clog2(i // o)
        elif not padded and o % i == 0:                     # upsizer: one write enable per position
            lut["up_positions"] = o // i
            ff["up_reg"] = o + clog2(o // i)
        elif not padded and lcm <= 8 * max(i, o):           # up to the lcm, then down
            lut["up_positions"] = lcm // i
            ff["up_reg"] = lcm + clog2(lcm // i)
            lut["down_mux"] = o * mux(lcm // o)
            ff["down_reg"] = lcm + clog2(lcm // o)
        else:                                               # bit buffer with shifters
            unit = math.gcd(math.gcd(i, o), keep)
            buf = i + 2 * o
            lut["shift_buffer"] = buf * clog2(buf // unit + 1)
            ff["shift_buffer"] = buf
        return lut, ff, 0.0, 0.0


class WidthConverter(StreamPlumbing):
    rtl_record = StreamWidthConverterParams
    resource_kind = "converter"

    def frame_bits(self) -> int:
        """``FRAME_BITS`` of the converter: 0, the stream between two layers has no pad to drop."""
        return 0

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        return {"IN_BITS": self.get_nodeattr("in_bits"), "OUT_BITS": self.get_nodeattr("out_bits"),
                "FRAME_BITS": self.frame_bits()}
