"""DMA input adapter: DMA words (raw uint8 pixels, NHWC, each frame padded to whole words)
to the pixel beats of the first layer, dropping each frame's pad (stream_width_converter.v
with FRAME_BITS = the frame's pixel bits)."""

from __future__ import annotations

from typing import Any

from hw_build.ops.base import StreamPlumbing
from hw_build.ops.width_converter import StreamWidthConverterParams


class DmaUnpack(StreamPlumbing):
    rtl_module = "stream_width_converter"
    rtl_record = StreamWidthConverterParams
    resource_kind = "converter"

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        attrs["frame_bits"] = ("i", True, 0)
        return attrs

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        return {"IN_BITS": self.get_nodeattr("in_bits"), "OUT_BITS": self.get_nodeattr("out_bits"),
                "FRAME_BITS": self.get_nodeattr("frame_bits")}
