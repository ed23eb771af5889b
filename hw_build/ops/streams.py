"""Stream plumbing of residual networks: fan-out, element-wise add, global sum pooling."""

from __future__ import annotations

from typing import Any

import numpy as np

from hw_build.estimate.cost_model import FF_MEMORY_BITS, Features, ModuleFeatures, clog2, lutram_luts
from hw_build.ops.base import HWLayer, rtl_record


class DuplicateStreamsParams(rtl_record("duplicate_streams")):
    def resource_features(self) -> ModuleFeatures:
        n = self.NUM_OUTPUTS
        return {"const": 1.0, "outputs": n}, {"const": 1.0, "outputs": n}, 0.0, 0.0


class DuplicateStreams(HWLayer):
    """Copies one stream to ``num_outputs`` streams (each output sees every beat)."""

    rtl_record = DuplicateStreamsParams

    nodeattrs = {"num_outputs": ("i", False, 2)}

    def execute_node(self, context, graph):
        x = self.input_array(context)
        for out in self.onnx_node.output:
            context[out] = x.copy()

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        return {"WIDTH": self.in_stream_bits(), "NUM_OUTPUTS": self.get_nodeattr("num_outputs")}


class AddStreamsParams(rtl_record("add_streams")):
    def resource_features(self) -> ModuleFeatures:
        pe, out_bits = self.PE, self.OUT_BITS
        return {"const": 1.0, "adder": pe * out_bits}, {"const": 1.0, "out": pe * out_bits}, 0.0, 0.0


class AddStreams(HWLayer):
    """``out = a + b`` element-wise on two equally shaped integer streams."""

    rtl_record = AddStreamsParams

    nodeattrs = {"in1_dtype": ("s", True, "")}

    def execute_node(self, context, graph):
        a, b = (np.rint(self.input_array(context, i)).astype(np.int64) for i in range(2))
        context[self.onnx_node.output[0]] = (a + b).astype(np.float32)

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        from qonnx.core.datatype import DataType

        a_dtype = self.in_dtype()
        b_dtype = DataType[self.get_nodeattr("in1_dtype")]
        for dt in (a_dtype, b_dtype):
            if dt.name == "BIPOLAR":
                raise self.error("AddStreams RTL takes integer inputs, not BIPOLAR",
                                 "Quantize both inputs of the residual add with one shared integer quantizer (e.g. 4 bits).")
        return {
            "PE": self.get_nodeattr("PE"),
            "A_BITS": a_dtype.bitwidth(), "A_SIGNED": int(a_dtype.signed()),
            "B_BITS": b_dtype.bitwidth(), "B_SIGNED": int(b_dtype.signed()),
            "OUT_BITS": self.out_dtype().bitwidth(),
        }


class GlobalAccPoolParams(rtl_record("global_acc_pool")):
    def resource_features(self) -> ModuleFeatures:
        c, pe, out_bits = self.C, self.PE, self.OUT_BITS
        words = max(1, c // pe)
        word = pe * out_bits
        lut: Features = {"const": 1.0, "adder": word, "counters": clog2(words) + clog2(self.PIXELS)}
        ff: Features = {"const": 1.0, "out": word, "counters": lut["counters"]}
        if words * word <= FF_MEMORY_BITS or words <= 2:
            lut["acc_ff"] = words * word
            ff["acc_ff"] = words * word
        else:
            lut["acc_lutram"] = lutram_luts(words, word) / 2
        return lut, ff, 0.0, 0.0


class GlobalAccPool(HWLayer):
    """Sum over all pixels per channel: ``[N, H, W, C] -> [N, 1, 1, C]``."""

    rtl_record = GlobalAccPoolParams

    def execute_node(self, context, graph):
        x = np.rint(self.input_array(context)).astype(np.int64)
        context[self.onnx_node.output[0]] = x.sum(axis=(1, 2), keepdims=True).astype(np.float32)

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        in_dtype = self.in_dtype()
        if in_dtype.name == "BIPOLAR":
            raise self.error("GlobalAccPool RTL takes integer inputs, not BIPOLAR",
                             "Quantize the pooled activation to an integer type (bit width >= 2).")
        if self.out_dtype().bitwidth() < in_dtype.bitwidth():
            raise self.error("output type narrower than the input type", "This is a compiler limitation; please report it with the model.")
        return {
            "PIXELS": int(np.prod(self.in_shape()[1:-1])), "C": self.channels(),
            "PE": self.get_nodeattr("PE"), "IN_BITS": in_dtype.bitwidth(),
            "SIGNED": int(in_dtype.signed()), "OUT_BITS": self.out_dtype().bitwidth(),
        }
