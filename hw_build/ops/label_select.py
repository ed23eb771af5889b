"""Top-1 label of a class-score vector.

``score[c] = A[c] * x[c] + B[c]`` (integer fixed point of the model's final per-class affine;
A = 1, B = 0 when the inputs are absent), output = the first index of the maximum score.
Input ``[N, ..., C]`` (classes on the last axis), output ``[N, 1]``. ``PE`` scores per beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hw_build.estimate.cost_model import Features, ModuleFeatures, clog2, rom_features
from hw_build.ops.base import HWLayer, divisors, rtl_record


class LabelSelectParams(rtl_record("label_select")):
    def resource_features(self) -> ModuleFeatures:
        c, pe = self.C, self.PE
        score = self.SCORE_BITS
        folds = max(1, c // pe)
        lut: Features = {"const": 1.0, "compare": pe * score, "counters": clog2(folds)}
        ff: Features = {"const": 1.0, "scores": pe * score, "x": pe * self.IN_BITS}
        dsp = 0.0
        if self.AFFINE:
            a_bits, in_bits = self.A_BITS, self.IN_BITS
            rom_features(folds, pe * (a_bits + self.B_BITS), "distributed", "ab", lut, ff)
            if min(a_bits, in_bits) > 3 and max(a_bits, in_bits) > 8:
                dsp = float(pe)
                lut["affine_add"] = pe * score
            else:
                lut["affine_mul"] = pe * score * min(a_bits, in_bits)
        return lut, ff, 0.0, dsp


class LabelSelect(HWLayer):
    rtl_record = LabelSelectParams

    nodeattrs = {"score_bits": ("i", False, 32)}

    def has_affine(self) -> bool:
        return len(self.onnx_node.input) > 1 and self.onnx_node.input[1] != ""

    def fold_options(self):
        return {"PE": divisors(self.channels())}

    def out_beat_elems(self) -> int:
        return 1

    def scores(self, x: np.ndarray, context) -> np.ndarray:
        x = np.rint(np.asarray(x)).astype(np.int64).reshape(x.shape[0], -1)
        if self.has_affine():
            a = np.asarray(context[self.onnx_node.input[1]], dtype=np.int64).reshape(1, -1)
            b = np.asarray(context[self.onnx_node.input[2]], dtype=np.int64).reshape(1, -1)
            return a * x + b
        return x

    def execute_node(self, context, graph):
        x = self.input_array(context)
        labels = np.argmax(self.scores(x, context), axis=-1)
        context[self.onnx_node.output[0]] = labels.reshape(-1, 1).astype(np.float32)

    def rtl_param_values(self, model=None) -> dict[str, Any]:
        from hw_build.rtl.encoding import int_range, signed_bits, verilog_name

        in_dtype = self.in_dtype()
        if in_dtype.name == "BIPOLAR":
            raise self.error("LabelSelect RTL takes integer inputs, not BIPOLAR",
                             "End the network with a quantized (integer) classifier layer.")
        classes = int(np.prod(self.in_shape()[1:]))
        in_bits = in_dtype.bitwidth()
        affine = self.has_affine()
        a_bits = b_bits = 2
        score_bits = self.get_nodeattr("score_bits")
        if not affine:
            score_bits = in_bits + 1
        elif model is not None:
            a, b = (
                np.broadcast_to(
                    np.rint(np.asarray(model.get_initializer(self.onnx_node.input[i]), dtype=np.float64))
                    .astype(np.int64).reshape(-1), (classes,),
                )
                for i in (1, 2)
            )
            lo, hi = int_range(in_dtype)
            a_bits = signed_bits(min(a.min(), 0), max(a.max(), 0))
            b_bits = signed_bits(min(b.min(), 0), max(b.max(), 0))
            ends = np.stack([a * lo + b, a * hi + b])
            # the RTL forms A*x at full width before adding B
            score_bits = max(
                signed_bits(min(ends.min(), 0), max(ends.max(), 0)), a_bits + in_bits + 1, b_bits
            )
        else:
            a_bits = b_bits = score_bits
        out_bits = self.out_dtype().bitwidth()
        if classes - 1 >= (1 << out_bits):
            raise self.error(f"{classes} classes do not fit the {out_bits}-bit label", "This is a compiler limitation; please report it with the model.")
        return {
            "C": classes, "PE": self.get_nodeattr("PE"),
            "IN_BITS": in_bits, "IN_SIGNED": int(in_dtype.signed()),
            "AFFINE": int(affine), "A_BITS": a_bits, "B_BITS": b_bits,
            "SCORE_BITS": score_bits, "OUT_BITS": out_bits,
            "AFFINE_FILE": f"{verilog_name(self.onnx_node.name)}_affine.mem" if affine else "",
        }

    def rtl_memories(self, model) -> dict[str, list[str]]:
        from hw_build.rtl.encoding import bits_to_hex, pack_fields, twos_complement

        if not self.has_affine():
            return {}
        p = self.rtl_params(model)
        pe, folds = p["PE"], p["C"] // p["PE"]
        a, b = (
            np.broadcast_to(
                np.rint(np.asarray(model.get_initializer(self.onnx_node.input[i]), dtype=np.float64))
                .astype(np.int64).reshape(-1), (p["C"],),
            )
            for i in (1, 2)
        )
        a_bits = pack_fields(twos_complement(a, p["A_BITS"]).reshape(folds, pe), p["A_BITS"])
        b_bits = pack_fields(twos_complement(b, p["B_BITS"]).reshape(folds, pe), p["B_BITS"])
        # word f: the PE A coefficients in the low bits, then the PE B offsets
        return {p["AFFINE_FILE"]: bits_to_hex(np.concatenate([a_bits, b_bits], axis=1))}
