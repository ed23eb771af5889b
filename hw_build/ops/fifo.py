"""FIFO on a stream edge (fifo.v): first-word-fall-through, ``depth`` beats of ``in_bits``.

The fold step puts one on every edge between layers (on the wider side of a width
converter, see hw_build.fold.plumbing); the rtl step sizes ``depth`` by simulation
(``hw_build.rtl.sim.size_fifos``) unless a folding file fixed it (``fixed_depth``).
Depth 0 is no FIFO at all: the edge is wires.
"""

from __future__ import annotations

from typing import Any

from hw_build.estimate.cost_model import Features, ModuleFeatures, clog2, ram_features
from hw_build.ops.base import StreamPlumbing, rtl_record

#: depth of a FIFO on a plain edge: two registers, full throughput, registered handshakes
DEFAULT_DEPTH = 2


class FifoParams(rtl_record("fifo")):
    def resource_features(self) -> ModuleFeatures:
        width, depth = self.WIDTH, self.DEPTH
        if depth == 2:
            # two registers, the head fed by a 3:1 multiplexer (fifo.v g_regs)
            return {"const": 1.0, "regs2_mux": width}, {"const": 1.0, "regs2": 2 * width}, 0.0, 0.0
        aw = clog2(depth)
        lut: Features = {"const": 1.0, "ptr": aw, "bypass_mux": width}
        ff: Features = {"const": 1.0, "ptr": aw, "regs": 2 * width}
        bram = ram_features(depth, width, "mem", lut, ff)
        ff.pop("mem_lutram_q", None)       # the read register is the FIFO's own rd_data
        return lut, ff, bram, 0.0


class Fifo(StreamPlumbing):
    rtl_record = FifoParams
    resource_kind = "fifo"

    nodeattrs = {"depth": ("i", False, DEFAULT_DEPTH),
                 # 1: the depth came from a folding file and FIFO sizing keeps it
                 "fixed_depth": ("i", False, 0)}

    def depth(self) -> int:
        return int(self.get_nodeattr("depth"))

    def frame_depth(self) -> int:
        """A whole frame plus the two entries of a plain edge: no schedule can deadlock or be
        slowed by this FIFO's space."""
        return self.in_beats() + 2

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        return {"WIDTH": self.get_nodeattr("in_bits"), "DEPTH": self.depth()}

    def instantiated(self) -> bool:
        return self.depth() > 0

    def rtl_instance(self, model, name, inputs, outputs, clk, rst) -> str:
        if not self.instantiated():
            from hw_build.rtl.verilog import stream_assign

            return stream_assign(outputs[0], inputs[0])
        return super().rtl_instance(model, name, inputs, outputs, clk, rst)

    def resources(self, model=None) -> dict[str, float]:
        if not self.instantiated():
            return {"lut": 0.0, "ff": 0.0, "bram36": 0.0, "dsp": 0.0}
        return super().resources(model)

    def describe(self) -> str:
        return f"Fifo of {self.get_nodeattr('edge')}: {self.depth()} x {self.get_nodeattr('in_bits')} bits"
