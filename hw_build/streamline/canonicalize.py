"""Passes that put the exported QONNX graph into the canonical form the other passes expect:
integer weights with their scale as a Mul after the layer, Mul/Add instead of BN/Sub/Div,
explicit padding, sum pooling instead of average pooling, raw uint8 pixels at the input."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.intquant import max_int, min_int, resolve_rounding_mode
from qonnx.transformation.base import Transformation
from qonnx.transformation.batchnorm_to_affine import BatchNormToAffine
from qonnx.util.basic import get_by_name

from hw_build.errors import BuildError
from hw_build.ops.base import smallest_int_type
from hw_build.streamline.graph import add_const, bypass, const, insert_after, new_tensor, rewire_consumers


def _attr(node, name, default=None):
    a = get_by_name(node.attribute, name)
    if a is None:
        return default
    return helper.get_attribute_value(a)


def quantize_weight(model: ModelWrapper, quant_node) -> tuple[np.ndarray, np.ndarray]:
    """Integer weights and scale of a Quant/BipolarQuant node with constant inputs."""
    w = const(model, quant_node.input[0]).astype(np.float32)
    scale = const(model, quant_node.input[1]).astype(np.float32)
    if not np.all(np.isfinite(scale)) or np.any(scale == 0):
        raise BuildError(
            f"weight quantizer '{quant_node.name}' has a scale of {scale.reshape(-1)[:4]} (not a finite "
            "non-zero number). For 1-bit weights use a binary quantizer with a constant scale, e.g. "
            "weight_quant=SignedBinaryWeightPerTensorConst with weight_scaling_const=1.0."
        )
    if quant_node.op_type == "BipolarQuant":
        return np.where(w >= 0, 1.0, -1.0).astype(np.float32), scale
    zeropt = const(model, quant_node.input[2])
    bitwidth = int(const(model, quant_node.input[3]).flatten()[0])
    if np.any(zeropt != 0):
        raise BuildError(
            f"weight quantizer '{quant_node.name}' has a non-zero zero point; hardware layers "
            "need symmetric weight quantization (zero point 0)."
        )
    signed = bool(_attr(quant_node, "signed", 1))
    narrow = bool(_attr(quant_node, "narrow", 0))
    mode = _attr(quant_node, "rounding_mode", b"ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    y = w / scale
    if bitwidth == 1 and signed:
        return np.where(y >= 0, 1.0, -1.0).astype(np.float32), scale
    y = np.clip(y, min_int(signed, narrow, bitwidth), max_int(signed, narrow, bitwidth))
    return resolve_rounding_mode(mode)(y).astype(np.float32), scale


class QuantizedWeightsToIntegers(Transformation):
    """Conv/MatMul/Gemm(x, Quant(W)) -> Conv/MatMul(x, W_int) -> Mul(scale) [-> Add(bias)].

    The scale (per tensor or per output channel) leaves the layer so that the layer itself
    computes on integers; later passes move it into the next thresholds.
    """

    def apply(self, model: ModelWrapper):
        for node in list(model.graph.node):
            if node.op_type not in ("Conv", "MatMul", "Gemm"):
                continue
            qnode = model.find_producer(node.input[1])
            if qnode is None or qnode.op_type not in ("Quant", "BipolarQuant"):
                continue
            if any(const(model, t) is None for t in qnode.input):
                continue
            w_int, scale = quantize_weight(model, qnode)
            out_shape = model.get_tensor_shape(node.output[0])
            rank = len(out_shape)
            bias = const(model, node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if node.op_type == "Gemm":
                if _attr(node, "transA", 0):
                    raise BuildError(f"Gemm node '{node.name}' with transA=1 is not supported.")
                alpha = float(_attr(node, "alpha", 1.0))
                beta = float(_attr(node, "beta", 1.0))
                if _attr(node, "transB", 0):
                    w_int = w_int.T
                    scale = scale.T if scale.ndim == 2 else scale
                scale = scale * alpha
                bias = None if bias is None else bias * beta
                node.op_type = "MatMul"
                del node.attribute[:]
            # scale shaped to broadcast over the output channel axis (axis 1)
            if scale.size > 1:
                scale = scale.reshape([1, -1] + [1] * (rank - 2))
            else:
                scale = scale.reshape([])
            w_name = add_const(model, w_int, hint=f"{node.name}_Wint")
            model.set_tensor_datatype(w_name, smallest_int_type(int(w_int.min()), int(w_int.max())))
            orig_out = node.output[0]
            acc = new_tensor(model, out_shape, hint=f"{node.name}_acc")
            del node.input[1:]
            node.input.append(w_name)
            node.output[0] = acc
            mul_out = orig_out if bias is None else new_tensor(model, out_shape, hint=f"{node.name}_scaled")
            mul = helper.make_node("Mul", [acc, add_const(model, scale, "scale")], [mul_out],
                                   name=f"{node.name}_weight_scale")
            insert_after(model, node, mul)
            if bias is not None:
                b = bias.reshape([1, -1] + [1] * (rank - 2))
                add = helper.make_node("Add", [mul_out, add_const(model, b, "bias")], [orig_out],
                                       name=f"{node.name}_bias")
                insert_after(model, mul, add)
            if not model.find_consumers(qnode.output[0]):
                model.graph.node.remove(qnode)
            return model, True
        return model, False


class RawPixelInput(Transformation):
    """The accelerator takes raw uint8 pixels: declare the input UINT8 and divide by 255 in
    the graph (image models take pixel/255). Applied once, before the other passes."""

    def apply(self, model: ModelWrapper):
        inp = model.graph.input[0].name
        if model.get_metadata_prop("hw_build.raw_pixel_input") == "1":
            return model, False
        shape = model.get_tensor_shape(inp)
        scaled = new_tensor(model, shape, hint="pixels_scaled")
        rewire_consumers(model, inp, scaled)
        div = helper.make_node("Div", [inp, add_const(model, np.float32(255.0), "c255")], [scaled],
                               name="raw_pixels_to_float")
        model.graph.node.insert(0, div)
        model.set_tensor_datatype(inp, DataType["UINT8"])
        model.set_metadata_prop("hw_build.raw_pixel_input", "1")
        return model, False


class ExplicitConvPadding(Transformation):
    """Conv(pads=p) -> Pad(0) + Conv(pads=0), so padding values can follow the integer
    encoding of the input (a zero in real numbers is not zero in threshold levels)."""

    def apply(self, model: ModelWrapper):
        for node in list(model.graph.node):
            if node.op_type != "Conv":
                continue
            pads = _attr(node, "pads", None)
            if not pads or not any(pads):
                continue
            auto_pad = _attr(node, "auto_pad", b"NOTSET")
            if auto_pad not in (b"NOTSET", "NOTSET"):
                raise BuildError(f"Conv node '{node.name}': auto_pad={auto_pad!r} is not supported.")
            in_shape = model.get_tensor_shape(node.input[0])
            half = len(pads) // 2
            onnx_pads = [0, 0] + list(pads[:half]) + [0, 0] + list(pads[half:])
            padded_shape = list(in_shape)
            for i in range(half):
                padded_shape[2 + i] += pads[i] + pads[half + i]
            padded = new_tensor(model, padded_shape, hint=f"{node.name}_padded")
            pad = helper.make_node(
                "Pad",
                [node.input[0], add_const(model, np.array(onnx_pads, dtype=np.int64), "pads"),
                 add_const(model, np.float32(0.0), "padval")],
                [padded], name=f"{node.name}_pad", mode="constant",
            )
            # pads must be int64
            model.set_initializer(pad.input[1], np.array(onnx_pads, dtype=np.int64))
            idx = list(model.graph.node).index(node)
            model.graph.node.insert(idx, pad)
            node.input[0] = padded
            get_by_name(node.attribute, "pads").ints[:] = [0] * len(pads)
            return model, True
        return model, False


class AveragePoolToSum(Transformation):
    """AveragePool(k, stride k) -> depthwise Conv with all-ones weights (a sum) -> Mul(1/k^2);
    GlobalAveragePool -> ReduceSum over H, W -> Mul(1/(H*W)). Sums of integers stay integers."""

    def apply(self, model: ModelWrapper):
        for node in list(model.graph.node):
            if node.op_type == "ReduceMean" and _is_spatial_mean(model, node):
                node.op_type = "GlobalAveragePool"  # AdaptiveAvgPool2d(1) exports as ReduceMean
                del node.input[1:]
                del node.attribute[:]
            if node.op_type not in ("AveragePool", "GlobalAveragePool"):
                continue
            in_shape = model.get_tensor_shape(node.input[0])
            out_shape = model.get_tensor_shape(node.output[0])
            channels = in_shape[1]
            summed = new_tensor(model, out_shape, hint=f"{node.name}_sum")
            if node.op_type == "GlobalAveragePool":
                count = int(np.prod(in_shape[2:]))
                axes = add_const(model, np.array([2, 3], dtype=np.int64), "axes")
                model.set_initializer(axes, np.array([2, 3], dtype=np.int64))
                repl = helper.make_node("ReduceSum", [node.input[0], axes], [summed],
                                        name=f"{node.name}_sum", keepdims=1)
            else:
                kernel = list(_attr(node, "kernel_shape"))
                strides = list(_attr(node, "strides", kernel))
                pads = list(_attr(node, "pads", [0] * 4) or [0] * 4)
                if kernel != strides or any(pads) or kernel[0] != kernel[1]:
                    raise BuildError(
                        f"AveragePool '{node.name}' has kernel {kernel}, strides {strides}, pads "
                        f"{pads}: only square, non-overlapping, unpadded pooling (kernel == stride) "
                        "maps to hardware. Use nn.AvgPool2d(k) with stride k."
                    )
                count = kernel[0] * kernel[1]
                ones = np.ones((channels, 1, kernel[0], kernel[1]), dtype=np.float32)
                w = add_const(model, ones, "ones")
                model.set_tensor_datatype(w, DataType["UINT2"])
                repl = helper.make_node("Conv", [node.input[0], w], [summed], name=f"{node.name}_sum",
                                        group=channels, kernel_shape=kernel, strides=strides,
                                        pads=[0, 0, 0, 0])
            mul = helper.make_node("Mul", [summed, add_const(model, np.float32(1.0 / count), "inv")],
                                   [node.output[0]], name=f"{node.name}_mean")
            idx = list(model.graph.node).index(node)
            model.graph.node.remove(node)
            model.graph.node.insert(idx, mul)
            model.graph.node.insert(idx, repl)
            return model, True
        return model, False


def _reduce_axes(model: ModelWrapper, node) -> list[int] | None:
    axes = _attr(node, "axes", None)
    if axes is None and len(node.input) > 1 and node.input[1]:
        c = const(model, node.input[1])
        axes = None if c is None else [int(a) for a in c.reshape(-1)]
    return None if axes is None else list(axes)


def _is_spatial_mean(model: ModelWrapper, node) -> bool:
    """ReduceMean over H and W of an NCHW tensor, keeping dims (what AdaptiveAvgPool2d(1) exports)."""
    shape = model.get_tensor_shape(node.input[0]) or []
    axes = _reduce_axes(model, node) or []
    return len(shape) == 4 and _attr(node, "keepdims", 1) == 1 and sorted(a % 4 for a in axes) == [2, 3]


class RemoveNoOps(Transformation):
    """Drop Identity/Dropout nodes and Mul by 1 / Add of 0."""

    def apply(self, model: ModelWrapper):
        outputs = {o.name for o in model.graph.output}
        for node in list(model.graph.node):
            drop = node.op_type in ("Identity", "Dropout")
            if node.op_type in ("Mul", "Add") and len(node.input) == 2:
                c = const(model, node.input[1])
                neutral = 1.0 if node.op_type == "Mul" else 0.0
                # shapes last: ModelWrapper finds each by a linear search of the graph
                drop = (c is not None and bool(np.all(c == neutral))
                        and model.get_tensor_shape(node.input[0]) == model.get_tensor_shape(node.output[0]))
            if not drop or node.output[0] in outputs:
                continue
            bypass(model, node)
            return model, True
        return model, False


class BatchNormsToAffine(Transformation):
    """qonnx's BatchNormToAffine, only where there is a BatchNormalization: qonnx's pass
    re-infers every shape even when it finds none, and the canonicalization fixed point runs
    it after every rewrite (on a ResNet-18, most of the streamline step)."""

    def apply(self, model: ModelWrapper):
        if not any(n.op_type == "BatchNormalization" for n in model.graph.node):
            return model, False
        return BatchNormToAffine().apply(model)
