"""Channel plumbing of grouped convolutions: split a stream into its channel groups, and
join two streams channel-wise.

A grouped convolution (G groups) is lowered to ``ChannelSplit`` -> G independent
sliding-window + MVTU branches -> a chain of G-1 ``ChannelConcat`` layers, which puts the
channels back in the standard order (group 0's channels, then group 1's, ... per pixel).
Both layers only move beats: one beat per cycle, no arithmetic, any element type.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hw_build.estimate.cost_model import ModuleFeatures, clog2
from hw_build.ops.base import HWLayer, divisors, rtl_record


class ChannelSplitParams(rtl_record("channel_split")):
    def resource_features(self) -> ModuleFeatures:
        n, beats = self.NUM_OUTPUTS, self.GROUP_BEATS
        counters = clog2(beats) + clog2(n)
        return {"const": 1.0, "counters": counters, "outputs": n}, {"const": 1.0, "counters": counters}, 0.0, 0.0


class ChannelSplit(HWLayer):
    """``[N, H, W, C]`` -> ``num_outputs`` streams ``[N, H, W, C/G]``: output g carries channels
    ``g*C/G .. (g+1)*C/G - 1`` of every pixel.

    ``PE`` channels per beat on every port, PE dividing C/G, so every input beat belongs to
    one group and is passed unchanged to that group's output."""

    rtl_record = ChannelSplitParams

    nodeattrs = {"num_outputs": ("i", True, 2)}

    def group_channels(self) -> int:
        return self.channels() // self.get_nodeattr("num_outputs")

    def fold_options(self) -> dict[str, list[int]]:
        return {"PE": divisors(self.group_channels())}

    def verify_node(self) -> list[str]:
        groups = self.get_nodeattr("num_outputs")
        if self.channels() % groups:
            return [f"{self.onnx_node.name}: {self.channels()} channels do not split into {groups} groups"]
        return []

    def execute_node(self, context, graph):
        x = self.input_array(context)
        cg = self.group_channels()
        for g, out in enumerate(self.onnx_node.output):
            context[out] = np.ascontiguousarray(x[..., g * cg:(g + 1) * cg])

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        pe = self.get_nodeattr("PE")
        return {
            "WIDTH": pe * self.in_dtype().bitwidth(),
            "NUM_OUTPUTS": self.get_nodeattr("num_outputs"),
            "GROUP_BEATS": self.group_channels() // pe,
        }


class ChannelConcatParams(rtl_record("channel_concat")):
    def resource_features(self) -> ModuleFeatures:
        counter = clog2(self.BEATS0 + self.BEATS1)
        return ({"const": 1.0, "mux": self.WIDTH, "counter": counter},
                {"const": 1.0, "counter": counter}, 0.0, 0.0)


class ChannelConcat(HWLayer):
    """Two streams ``[N, H, W, C0]`` and ``[N, H, W, C1]`` -> ``[N, H, W, C0 + C1]``: per pixel,
    input 0's channels, then input 1's.

    Two inputs because a library module has a fixed set of ports (inputs are separate
    ``s0_axis``/``s1_axis`` ports); G groups are joined by a chain of G-1 of these. Both
    inputs have the same element type. ``PE`` channels per beat on every port, PE dividing
    C0 and C1, so every output beat is one input beat."""

    rtl_record = ChannelConcatParams

    nodeattrs = {"in1_channels": ("i", True, 1)}

    def input_channels(self, index: int) -> int:
        return self.channels() if index == 0 else self.get_nodeattr("in1_channels")

    def fold_options(self) -> dict[str, list[int]]:
        return {"PE": divisors(math.gcd(self.input_channels(0), self.input_channels(1)))}

    def in_beats(self, index: int = 0) -> int:
        pixels = int(np.prod(self.in_shape()[1:-1]))
        return pixels * self.input_channels(index) // self.in_beat_elems(index)

    def input_array(self, context, index: int = 0) -> np.ndarray:
        x = np.asarray(context[self.onnx_node.input[index]])
        return x.reshape([x.shape[0]] + self.in_shape()[1:-1] + [self.input_channels(index)])

    def verify_node(self) -> list[str]:
        expected = self.input_channels(0) + self.input_channels(1)
        if self.out_shape()[-1] != expected:
            return [f"{self.onnx_node.name}: output has {self.out_shape()[-1]} channels, inputs {expected}"]
        return []

    def execute_node(self, context, graph):
        a, b = (self.input_array(context, i) for i in range(2))
        context[self.onnx_node.output[0]] = np.concatenate([a, b], axis=-1).astype(np.float32)

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        if model is not None:
            b_dtype = model.get_tensor_datatype(self.onnx_node.input[1])
            if b_dtype != self.in_dtype():
                raise self.error(f"ChannelConcat inputs must have one element type ({self.in_dtype().name} vs "
                                 f"{b_dtype.name})", "Give every group of the grouped conv the same output quantizer.")
        pe = self.get_nodeattr("PE")
        return {
            "WIDTH": pe * self.in_dtype().bitwidth(),
            "BEATS0": self.input_channels(0) // pe,
            "BEATS1": self.input_channels(1) // pe,
        }
