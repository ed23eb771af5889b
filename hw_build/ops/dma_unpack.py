"""DMA input adapter: DMA words (raw uint8 pixels, NHWC, each frame padded to whole words)
to the pixel beats of the first layer, dropping each frame's pad (stream_width_converter.v
with FRAME_BITS = the frame's pixel bits)."""

from __future__ import annotations

from hw_build.ops.width_converter import WidthConverter


class DmaUnpack(WidthConverter):
    """A width converter whose input frames end in a pad (the rest of the last DMA word)."""

    nodeattrs = {"frame_bits": ("i", True, 0)}

    def frame_bits(self) -> int:
        return self.get_nodeattr("frame_bits")
