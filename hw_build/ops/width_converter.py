"""Width converter between two layers whose beats differ (stream_width_converter.v with
FRAME_BITS = 0): the little-endian bit stream cut into ``out_bits`` beats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hw_build.ops.base import StreamPlumbing


@dataclass(frozen=True)
class StreamWidthConverterParams:
    """Parameters of stream_width_converter.v (checked against its parameter list when the library loads)."""

    IN_BITS: int
    OUT_BITS: int
    FRAME_BITS: int


class WidthConverter(StreamPlumbing):
    rtl_module = "stream_width_converter"
    rtl_record = StreamWidthConverterParams
    resource_kind = "converter"

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        return {"IN_BITS": self.get_nodeattr("in_bits"), "OUT_BITS": self.get_nodeattr("out_bits"), "FRAME_BITS": 0}
