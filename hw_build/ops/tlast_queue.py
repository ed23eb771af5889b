"""Frame-boundary queue of the accelerator's AXI-Stream input (frame_tlast.v): the first
node after the graph input. It passes the DMA words on, remembers s_axis_tlast of every
frame's last word and gives it back as m_axis_tlast with that frame's label, so a DMA
receive transfer ends where the send transfer ended. With ``depth`` frames in flight it
holds the input back instead of losing a flag."""

from __future__ import annotations

from typing import Any

from hw_build.estimate.cost_model import Features, ModuleFeatures, clog2
from hw_build.ops.base import StreamPlumbing, rtl_record

#: frames whose tlast flags the queue can hold (frames in flight between input and label)
DEFAULT_DEPTH = 64


class FrameTlastParams(rtl_record("frame_tlast")):
    def resource_features(self) -> ModuleFeatures:
        words, depth = self.WORDS_PER_FRAME, self.DEPTH
        lut: Features = {"const": 1.0, "counter": clog2(words), "queue": depth}
        ff: Features = {"const": 1.0, "counter": clog2(words), "queue": depth}
        return lut, ff, 0.0, 0.0


class TlastQueue(StreamPlumbing):
    rtl_record = FrameTlastParams
    resource_kind = "other"

    nodeattrs = {"depth": ("i", False, DEFAULT_DEPTH)}

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        return {"WORDS_PER_FRAME": self.get_nodeattr("in_frame_beats"), "DEPTH": self.get_nodeattr("depth")}

    def rtl_instance(self, model, name, inputs, outputs, clk, rst) -> str:
        """The words pass through, held back while the flag queue is full; the queue watches
        the top's own s_axis_tlast and m_axis handshake (top port names)."""
        from hw_build.rtl.verilog import instance

        src, dst = inputs[0], outputs[0]
        room = f"{name}_room"
        glue = (f"    wire {room};\n"
                f"    assign {dst}_tdata  = {src}_tdata;\n"
                f"    assign {dst}_tvalid = {src}_tvalid && {room};\n"
                f"    assign {src}_tready = {dst}_tready && {room};\n")
        return glue + instance(self.rtl_module, name, self.rtl_params(model), clk, rst, [
            f".in_fire({src}_tvalid && {src}_tready)", ".in_tlast(s_axis_tlast)", f".in_ready({room})",
            ".out_fire(m_axis_tvalid && m_axis_tready)", ".out_tlast(m_axis_tlast)"])
