"""Generators of malformed or unsupported inputs for build.py, and of valid controls.

Each case is a function of a scratch folder that writes whatever files it needs and returns
the build.py arguments; the test asserts the exit status, that the message names the culprit
(its ``needles``) and the fix, and that nothing looks like a finished build afterwards.
Graph cases mutate one small, valid QONNX model (``base``) the fixture exports once.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: the base model: 8x8 single-channel images, 8-bit input quantizer, binary Gemm, BN, 2-bit act, Gemm
BASE_SHAPE = (1, 1, 8, 8)
Make = Callable[[Path, Path], list[str]]   # (base model file, scratch folder) -> build.py arguments


@dataclass
class Case:
    id: str
    family: str
    make: Make
    needles: tuple[str, ...]
    status: int = 1
    #: the case stops the build early when it is not refused before export
    until: str = "tidy"
    extra: dict = field(default_factory=dict)


def _cli(model: Path | str, out: Path, *options: str, until: str | None = "tidy") -> list[str]:
    args = ["--model", str(model), "--board", "pynq-z2", "--output", str(out), "--no-synth", *options]
    return args + (["--until", until] if until else [])


# ---------------------------------------------------------------- graph mutations

def _load(base: Path) -> onnx.ModelProto:
    return onnx.load(str(base))


def _node(proto: onnx.ModelProto, op_type: str, k: int = 0) -> onnx.NodeProto:
    return [n for n in proto.graph.node if n.op_type == op_type][k]


def _init(proto: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(i for i in proto.graph.initializer if i.name == name)


def _set_init(proto: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    _init(proto, name).CopyFrom(numpy_helper.from_array(value, name))


def _save(proto: onnx.ModelProto, tmp: Path, name: str = "model.onnx") -> Path:
    path = tmp / name
    onnx.save(proto, str(path))
    return path


def graph_case(case_id: str, mutate: Callable[[onnx.ModelProto], None], *needles: str, family: str = "graph",
               status: int = 1, until: str = "tidy") -> Case:
    def make(base: Path, tmp: Path) -> list[str]:
        proto = _load(base)
        mutate(proto)
        return _cli(_save(proto, tmp), tmp / "out", until=until)

    return Case(case_id, family, make, needles, status, until)


def _append_unary(op_type: str, **attrs) -> Callable[[onnx.ModelProto], None]:
    """An extra op on the class scores, as a user might add a final activation."""
    def mutate(proto: onnx.ModelProto) -> None:
        old = proto.graph.output[0]
        proto.graph.node.append(helper.make_node(op_type, [old.name], ["extra_out"], name=f"final_{op_type.lower()}",
                                                 **attrs))
        proto.graph.output.remove(old)
        proto.graph.output.append(helper.make_tensor_value_info("extra_out", TensorProto.FLOAT, [1, 10]))
    return mutate


def _input_type(elem_type: int) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        proto.graph.input[0].type.tensor_type.elem_type = elem_type
    return mutate


def _input_dims(dims: list) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        shape = proto.graph.input[0].type.tensor_type.shape
        del shape.dim[:]
        for d in dims:
            dim = shape.dim.add()
            if isinstance(d, str):
                dim.dim_param = d
            else:
                dim.dim_value = d
    return mutate


def _weight_of(proto: onnx.ModelProto, k: int = 0) -> str:
    """The weight initializer behind Gemm k (through its BipolarQuant)."""
    gemm = _node(proto, "Gemm", k)
    quant = next(n for n in proto.graph.node if gemm.input[1] in n.output)
    return quant.input[0]


def _bn_param(index: int) -> Callable[[onnx.ModelProto], str]:
    return lambda proto: _node(proto, "BatchNormalization").input[index]


def _poison(pick: Callable[[onnx.ModelProto], str], value: float, where: int = 0) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        name = pick(proto)
        arr = numpy_helper.to_array(_init(proto, name)).copy()
        arr.reshape(-1)[where] = value
        _set_init(proto, name, arr)
    return mutate


def _init_dtype(pick: Callable[[onnx.ModelProto], str], dtype) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        name = pick(proto)
        _set_init(proto, name, numpy_helper.to_array(_init(proto, name)).astype(dtype))
    return mutate


def _act_bits(bits: float, k: int = 0) -> Callable[[onnx.ModelProto], None]:
    """Bit width of activation quantizer k (Quant nodes on activations; k=0: the input quantizer)."""
    def mutate(proto: onnx.ModelProto) -> None:
        quant = _node(proto, "Quant", k)
        name = f"bits_of_{quant.name}"
        proto.graph.initializer.append(numpy_helper.from_array(np.array(bits, dtype=np.float32), name))
        quant.input[3] = name
    return mutate


def _two_activation_product(op_type: str) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        gemm = _node(proto, "Gemm", 1)
        if op_type == "MatMul":
            gemm.op_type = "MatMul"
            gemm.input[1] = gemm.input[0]
            del gemm.attribute[:]
            return
        # an elementwise op between the hidden activation and itself
        act = gemm.input[0]
        proto.graph.node.insert(list(proto.graph.node).index(gemm),
                                helper.make_node(op_type, [act, act], ["squared"], name=f"self_{op_type.lower()}"))
        gemm.input[0] = "squared"
    return mutate


def _bn_var(value: float) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        name = _node(proto, "BatchNormalization").input[4]
        arr = numpy_helper.to_array(_init(proto, name)).copy()
        arr[1] = value
        _set_init(proto, name, arr)
    return mutate


def _wrong_weight_shape(proto: onnx.ModelProto) -> None:
    name = _weight_of(proto, 0)
    arr = numpy_helper.to_array(_init(proto, name))
    _set_init(proto, name, np.ascontiguousarray(arr[:, : arr.shape[1] // 2]))


def _wrong_bn_length(proto: onnx.ModelProto) -> None:
    name = _node(proto, "BatchNormalization").input[1]
    _set_init(proto, name, numpy_helper.to_array(_init(proto, name))[:5].copy())


def _no_nodes(proto: onnx.ModelProto) -> None:
    del proto.graph.node[:]


def _two_outputs(proto: onnx.ModelProto) -> None:
    first = _node(proto, "Gemm", 0).output[0]
    proto.graph.output.append(helper.make_tensor_value_info(first, TensorProto.FLOAT, [1, 16]))


def _two_inputs(proto: onnx.ModelProto) -> None:
    proto.graph.input.append(helper.make_tensor_value_info("second_image", TensorProto.FLOAT, [1, 1, 8, 8]))


def _output_is_input(proto: onnx.ModelProto) -> None:
    del proto.graph.output[:]
    proto.graph.output.append(proto.graph.input[0])


def _constant_output(proto: onnx.ModelProto) -> None:
    proto.graph.initializer.append(numpy_helper.from_array(np.ones((1, 10), np.float32), "const_a"))
    proto.graph.node.append(helper.make_node("Add", ["const_a", "const_a"], ["const_scores"], name="const_add"))
    del proto.graph.output[:]
    proto.graph.output.append(helper.make_tensor_value_info("const_scores", TensorProto.FLOAT, [1, 10]))


def _ir(version: int) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        proto.ir_version = version
    return mutate


def _unknown_domain(proto: onnx.ModelProto) -> None:
    proto.opset_import.append(helper.make_opsetid("com.example.custom", 1))
    node = _node(proto, "BatchNormalization")
    node.domain = "com.example.custom"
    node.op_type = "FancyNorm"


def _unknown_opset_domain(proto: onnx.ModelProto) -> None:
    proto.opset_import.append(helper.make_opsetid("com.example.other", 3))


def _opset(version: int) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        for op in proto.opset_import:
            if op.domain == "":
                op.version = version
    return mutate


def _lstm(proto: onnx.ModelProto) -> None:
    node = _node(proto, "BatchNormalization")
    node.op_type = "LSTM"
    node.name = "user_lstm"
    del node.attribute[:]
    node.attribute.append(helper.make_attribute("hidden_size", 16))


def _rename_op(op_from: str, op_to: str, name: str) -> Callable[[onnx.ModelProto], None]:
    def mutate(proto: onnx.ModelProto) -> None:
        node = _node(proto, op_from)
        node.op_type = op_to
        node.name = name
        del node.attribute[:]
    return mutate


def _nonconst_bits(proto: onnx.ModelProto) -> None:
    quant = _node(proto, "Quant", 1)
    quant.input[3] = quant.input[0]


def graph_cases() -> list[Case]:
    unsupported = ["Softmax", "Sigmoid", "Tanh", "Exp", "Log", "Abs", "Neg", "Sqrt", "Erf", "Floor", "Ceil", "Round",
                   "Sin", "Cos", "HardSigmoid", "Softplus", "Elu", "Selu", "LogSoftmax", "Hardmax", "Softsign",
                   "Reciprocal", "Sign", "ThresholdedRelu"]
    cases = [graph_case(f"op_{op}", _append_unary(op), f"final_{op.lower()}", op, "Supported ops")
             for op in unsupported]
    cases += [
        graph_case("op_lstm", _lstm, "user_lstm", "LSTM", "Supported ops"),
        graph_case("op_instance_norm", _rename_op("BatchNormalization", "InstanceNormalization", "user_in"),
                   "user_in", "InstanceNormalization"),
        graph_case("op_conv_transpose", _rename_op("Gemm", "ConvTranspose", "user_deconv"), "user_deconv",
                   "ConvTranspose"),
        graph_case("ir_version_1", _ir(1), "IR version 1", "Re-export"),
        graph_case("ir_version_2", _ir(2), "IR version 2", "Re-export"),
        graph_case("ir_version_99", _ir(99), "IR version 99", "Re-export"),
        graph_case("unknown_node_domain", _unknown_domain, "com.example.custom", "brevitas.export.export_qonnx"),
        graph_case("unknown_opset_domain", _unknown_opset_domain, "com.example.other", "export_qonnx"),
        graph_case("opset_too_new", _opset(99), "opset 99", "opset_version"),
        graph_case("no_nodes", _no_nodes, "no nodes", "export_qonnx"),
        graph_case("two_outputs", _two_outputs, "2 outputs", "one output"),
        graph_case("two_inputs", _two_inputs, "2 graph inputs", "second_image", "one input"),
        graph_case("output_is_input", _output_is_input, "graph output", "from the input"),
        graph_case("constant_output", _constant_output, "const_scores", "does not depend on the input"),
        graph_case("matmul_two_activations", _two_activation_product("MatMul"), "multiplies two activations",
                   "QuantLinear"),
        graph_case("mul_two_activations", _two_activation_product("Mul"), "self_mul", "two activations",
                   "by a constant"),
        graph_case("div_two_activations", _two_activation_product("Div"), "self_div", "two activations"),
        graph_case("sub_two_activations", _two_activation_product("Sub"), "self_sub", "two activations"),
        graph_case("wrong_weight_shape", _wrong_weight_shape, "node", "input shape"),
        graph_case("wrong_bn_length", _wrong_bn_length, "BatchNormalization", "input shape"),
        graph_case("bn_var_negative", _bn_var(-2.0), "BatchNormalization", "running variance", "BatchNorm statistics"),
        graph_case("bn_var_minus_eps", _bn_var(-1e-5), "running variance", "divide by zero"),
        graph_case("bits_from_activation", _nonconst_bits, "bit width", "not a constant"),
    ]
    for dtype_name, elem in [("int64", TensorProto.INT64), ("float64", TensorProto.DOUBLE),
                             ("uint8", TensorProto.UINT8), ("float16", TensorProto.FLOAT16),
                             ("int32", TensorProto.INT32), ("bool", TensorProto.BOOL), ("int8", TensorProto.INT8)]:
        cases.append(graph_case(f"input_{dtype_name}", _input_type(elem), "graph input", "float32"))
    for case_id, dims, needles in [
        ("input_rank1", [64], ("rank 1", "NCHW")),
        ("input_rank3", [1, 8, 8], ("rank 3", "NCHW")),
        ("input_rank5", [1, 1, 1, 8, 8], ("rank 5", "NCHW")),
        ("input_dynamic_height", [1, 1, "H", 8], ("dynamic or unknown dimension 2", "fixed dimensions")),
        ("input_dynamic_width", [1, 1, 8, "W"], ("dynamic or unknown dimension 3", "fixed dimensions")),
        ("input_zero_channels", [1, 0, 8, 8], ("dimension 1", "fixed dimensions")),
        ("input_shape_vs_graph", [1, 1, 9, 9], ("Gemm", "input shape")),
        ("input_shape_vs_graph_small", [1, 1, 4, 4], ("Gemm", "input shape")),
    ]:
        cases.append(graph_case(case_id, _input_dims(dims), *needles))
    weight = _weight_of
    for case_id, pick, value, needles in [
        ("weight_nan", weight, np.nan, ("NaN or infinite", "Retrain")),
        ("weight_inf", weight, np.inf, ("NaN or infinite",)),
        ("weight_neg_inf", weight, -np.inf, ("NaN or infinite",)),
        ("weight2_nan", lambda p: _weight_of(p, 1), np.nan, ("NaN or infinite",)),
        ("bn_gamma_nan", _bn_param(1), np.nan, ("NaN or infinite", "BatchNorm")),
        ("bn_beta_inf", _bn_param(2), np.inf, ("NaN or infinite", "BatchNorm")),
        ("bn_mean_inf", _bn_param(3), np.inf, ("NaN or infinite", "BatchNorm")),
        ("bn_mean_nan", _bn_param(3), np.nan, ("NaN or infinite",)),
        ("bn_var_inf", _bn_param(4), np.inf, ("NaN or infinite",)),
        ("bn_var_nan", _bn_param(4), np.nan, ("NaN or infinite",)),
    ]:
        cases.append(graph_case(case_id, _poison(pick, value), *needles, family="parameters"))
    for case_id, pick, dtype in [
        ("weight_float64", weight, np.float64), ("weight_float16", weight, np.float16),
        ("weight_int32", weight, np.int32), ("bn_var_float64", _bn_param(4), np.float64),
        ("bn_mean_int64", _bn_param(3), np.int64),
    ]:
        cases.append(graph_case(case_id, _init_dtype(pick, dtype), "initializer", "float32", family="parameters"))
    for case_id, bits, k, needles in [
        ("bits_zero", 0.0, 1, ("bit width 0", "whole number")),
        ("bits_half", 0.5, 1, ("bit width 0.5", "whole number")),
        ("bits_fraction", 2.5, 1, ("bit width 2.5", "whole number")),
        ("bits_negative", -3.0, 1, ("bit width -3", "whole number")),
        ("bits_nan", np.nan, 1, ("bit width nan", "whole number")),
        ("bits_inf", np.inf, 1, ("bit width inf", "whole number")),
        ("input_bits_zero", 0.0, 0, ("bit width 0",)),
        ("act_bits_9", 9.0, 1, ("9 bits", "at most 8-bit", "thresholds")),
        ("act_bits_16", 16.0, 1, ("16 bits", "at most 8-bit")),
        ("act_bits_32", 32.0, 1, ("32 bits", "at most 8-bit")),
        ("input_bits_24", 24.0, 0, ("24 bits", "at most 8-bit")),
    ]:
        cases.append(graph_case(case_id, _act_bits(bits, k), "quantizer", *needles, family="limits"))
    return cases


# ---------------------------------------------------------------- model files

def file_case(case_id: str, write: Callable[[Path, Path], Path], *needles: str) -> Case:
    def make(base: Path, tmp: Path) -> list[str]:
        return _cli(write(base, tmp), tmp / "out")

    return Case(case_id, "files", make, needles)


def _write_bytes(name: str, data: bytes) -> Callable[[Path, Path], Path]:
    def write(base: Path, tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name
    return write


def _truncated(fraction: float) -> Callable[[Path, Path], Path]:
    def write(base: Path, tmp: Path) -> Path:
        data = base.read_bytes()
        (tmp / "cut.onnx").write_bytes(data[: int(len(data) * fraction)])
        return tmp / "cut.onnx"
    return write


def _directory(base: Path, tmp: Path) -> Path:
    (tmp / "x.onnx").mkdir()
    return tmp / "x.onnx"


def _missing(base: Path, tmp: Path) -> Path:
    return tmp / "no_such_model.onnx"


def _npy_as_model(base: Path, tmp: Path) -> Path:
    np.save(tmp / "weights.onnx.npy", np.zeros(4))
    (tmp / "weights.onnx.npy").rename(tmp / "weights.onnx")
    return tmp / "weights.onnx"


def file_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    return [
        file_case("missing_file", _missing, "does not exist", "--list-models"),
        file_case("directory_named_onnx", _directory, "is a folder", ".onnx file"),
        file_case("empty_file", _write_bytes("empty.onnx", b""), "not a valid ONNX model", "export_qonnx"),
        file_case("text_file", _write_bytes("text.onnx", b"this is not onnx\n"), "not a valid ONNX model"),
        file_case("json_file", _write_bytes("j.onnx", b'{"graph": []}'), "not a valid ONNX model"),
        file_case("random_bytes", _write_bytes("r.onnx", rng.bytes(4096)), "not a valid ONNX model"),
        file_case("truncated_half", _truncated(0.5), "cut.onnx", "export_qonnx"),
        file_case("truncated_tenth", _truncated(0.1), "cut.onnx", "export_qonnx"),
        file_case("truncated_most", _truncated(0.97), "cut.onnx", "export_qonnx"),
        file_case("npy_as_model", _npy_as_model, "not a valid ONNX model"),
        file_case("zip_as_model", _write_bytes("z.onnx", b"PK\x03\x04" + bytes(200)), "not a valid ONNX model"),
    ]


# ---------------------------------------------------------------- --folding files

def folding_case(case_id: str, content: str | bytes | None, *needles: str, status: int = 1) -> Case:
    def make(base: Path, tmp: Path) -> list[str]:
        path = tmp / "fold.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content == "<folder>":
            path.mkdir()
        elif content is not None:
            path.write_text(content)
        return _cli(base, tmp / "out", "--folding", str(path), until="fold")

    return Case(case_id, "folding", make, ("fold.json", *needles), status, "fold")


def folding_cases() -> list[Case]:
    layer = lambda v: json.dumps({"Defaults": {}, "MVTU_0": v})  # noqa: E731
    return [
        folding_case("list", "[1, 2]", "JSON list", "object mapping layer names"),
        folding_case("null", "null", "JSON NoneType", "object"),
        folding_case("number", "7", "JSON int", "object"),
        folding_case("string", '"MVTU_0"', "JSON str", "object"),
        folding_case("not_json", "{PE: 4}", "cannot read folding file", "folding_config"),
        folding_case("empty", "", "cannot read folding file"),
        folding_case("binary", b"\xff\xfe\x00\x01", "cannot read folding file"),
        folding_case("layer_list", layer([4, 8]), "'MVTU_0' maps to a JSON list"),
        folding_case("layer_number", layer(4), "'MVTU_0' maps to a JSON int"),
        folding_case("layer_null", layer(None), "'MVTU_0' maps to a JSON NoneType"),
        folding_case("defaults_list", json.dumps({"Defaults": []}), "'Defaults' maps to a JSON list"),
        folding_case("pe_string", layer({"PE": "4"}), 'MVTU_0.PE="4"', "whole number"),
        folding_case("pe_fraction", layer({"PE": 2.5}), "MVTU_0.PE=2.5", "whole number"),
        folding_case("pe_zero", layer({"PE": 0}), "MVTU_0.PE=0", "positive whole number"),
        folding_case("pe_negative", layer({"PE": -4}), "MVTU_0.PE=-4"),
        folding_case("pe_bool", layer({"PE": True}), "MVTU_0.PE=true"),
        folding_case("simd_null", layer({"SIMD": None}), "MVTU_0.SIMD=null"),
        folding_case("simd_list", layer({"SIMD": [8]}), "MVTU_0.SIMD=[8]"),
        folding_case("ram_style_number", layer({"ram_style": 5}), "ram_style=5", "not a string"),
        folding_case("missing", None, "does not exist", status=2),
        folding_case("folder", "<folder>", "is a folder", status=2),
        folding_case("unknown_layer", json.dumps({"NOPE_7": {"PE": 1}}), "'NOPE_7' is not a layer",
                     "Layers of this design"),
        folding_case("pe_not_divisor", layer({"PE": 7}), "MVTU_0.PE=7 does not divide", "allowed"),
        folding_case("ram_style_unknown", layer({"ram_style": "flash"}), "ram_style='flash'"),
    ]


# ---------------------------------------------------------------- options

def option_case(case_id: str, options: list[str], *needles: str, status: int = 2, until: str | None = "tidy",
                model: str | None = None) -> Case:
    def make(base: Path, tmp: Path) -> list[str]:
        opts = [o.replace("{tmp}", str(tmp)) for o in options]
        return _cli(model or base, tmp / "out", *opts, until=until)

    return Case(case_id, "options", make, needles, status, until or "deploy")


def _file_then(path: str) -> Make:
    def make(base: Path, tmp: Path) -> list[str]:
        (tmp / "a_file").write_text("the user's file\n")
        return ["--model", str(base), "--board", "pynq-z2", "--output", path.replace("{tmp}", str(tmp)),
                "--until", "tidy"]
    return make


def option_cases() -> list[Case]:
    cases = [option_case(f"clock_{v}", [f"--clock-mhz={v}"], "--clock-mhz", "board's default")
             for v in ("0", "-5", "nan", "inf", "-inf", "1e9", "0.0")]
    cases.append(option_case("clock_word", ["--clock-mhz", "fast"], "--clock-mhz", "invalid float value"))
    cases += [option_case(f"target_fps_{k}", [f"--target-fps={v}"], "--target-fps", "'max'")
              for k, v in (("nan", "nan"), ("inf", "inf"), ("negative", "-1"), ("zero", "0"), ("word", "fast"),
                           ("empty", ""), ("neg_inf", "-inf"))]
    cases += [option_case(f"verify_images_{k}", ["--verify-images", v], "--verify-images", "at least 1")
              for k, v in (("zero", "0"), ("negative", "-3"))]
    cases.append(option_case("verify_images_word", ["--verify-images", "many"], "--verify-images", "invalid int"))
    cases += [
        option_case("until_empty", ["--until", ""], "--until", "empty name", "--list-steps", until=None),
        option_case("until_unknown", ["--until", "synthesize"], "--until", "'synthesize'", "Steps:", until=None),
        option_case("from_empty", ["--from", ""], "--from", "empty name", until=None),
        option_case("from_unknown", ["--from", "compile"], "--from", "'compile'", until=None),
        option_case("from_after_until", ["--from", "deploy", "--until", "export"], "--from deploy", "--until export",
                    until=None),
        option_case("accuracy_images_negative", ["--accuracy-images", "-2"], "--accuracy-images", status=1),
        option_case("verify_input_missing", ["--verify-input", "{tmp}/nope.npy"], "--verify-input", "does not exist"),
        option_case("verify_input_folder", ["--verify-input", "{tmp}"], "--verify-input", "is a folder"),
        option_case("unknown_board", ["--board", "pynq-z9"], "unknown board 'pynq-z9'", "pynq-z2", status=1),
        option_case("unknown_zoo_model", [], "unknown model 'not_a_net'", "--list-models", status=1,
                    model="not_a_net"),
    ]
    cases += [
        Case("output_is_file", "options", _file_then("{tmp}/a_file"), ("--output", "is a file"), 2),
        Case("output_under_file", "options", _file_then("{tmp}/a_file/build"), ("--output", "which is a file"), 2),
        Case("output_empty", "options", _file_then(""), ("--output is empty",), 2),
        Case("no_model", "options", lambda base, tmp: ["--board", "pynq-z2"], ("--model and --board",), 2),
        Case("no_board", "options", lambda base, tmp: ["--model", str(base)], ("--model and --board",), 2),
        Case("unknown_option", "options", lambda base, tmp: ["--model", str(base), "--board", "pynq-z2", "--fast"],
             ("unrecognized arguments: --fast",), 2),
    ]
    return cases


# ---------------------------------------------------------------- --verify-input content

def verify_input_case(case_id: str, write: Callable[[Path], None], *needles: str) -> Case:
    def make(base: Path, tmp: Path) -> list[str]:
        write(tmp / "in.npy")
        return _cli(base, tmp / "out", "--verify-input", str(tmp / "in.npy"))

    return Case(case_id, "verify-input", make, ("--verify-input", *needles))


def _npy(value: np.ndarray) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "wb") as handle:
            np.save(handle, value, allow_pickle=True)
    return write


def _npz(path: Path) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, a=np.zeros(BASE_SHAPE, np.float32))


def verify_input_cases() -> list[Case]:
    ok = np.full(BASE_SHAPE, 0.5, np.float32)
    nan, inf = ok.copy(), ok.copy()
    nan[0, 0, 1, 1] = np.nan
    inf[0, 0, 2, 2] = np.inf
    return [
        verify_input_case("npz", _npz, ".npz archive", "numpy.save"),
        verify_input_case("empty_batch", _npy(np.zeros((0, 1, 8, 8), np.float32)), "no images"),
        verify_input_case("scalar", _npy(np.float32(0.5)), "no images"),
        verify_input_case("nan", _npy(nan), "NaN or infinite", "finite"),
        verify_input_case("inf", _npy(inf), "NaN or infinite"),
        verify_input_case("wrong_shape", _npy(np.zeros((2, 1, 7, 7), np.float32)), "[2, 1, 7, 7]", "[N, 1, 8, 8]"),
        verify_input_case("nhwc", _npy(np.zeros((2, 8, 8, 1), np.float32)), "[2, 8, 8, 1]", "NCHW"),
        verify_input_case("uint8_pixels", _npy(np.zeros(BASE_SHAPE, np.uint8)), "uint8", "pixel/255"),
        verify_input_case("above_one", _npy(ok * 4), "values in", "[0, 1]"),
        verify_input_case("negative", _npy(ok - 1), "values in", "[0, 1]"),
        verify_input_case("object_array", _npy(np.array([{"a": 1}], dtype=object)), "cannot read", "numpy.save"),
        verify_input_case("strings", _npy(np.array(["a", "b"])), "values", "pixel/255"),
        verify_input_case("text_file", lambda p: p.write_text("0.1 0.2 0.3\n"), "cannot read"),
        verify_input_case("truncated", lambda p: (_npy(ok)(p), p.write_bytes(p.read_bytes()[:90])), "cannot read"),
    ]


# ---------------------------------------------------------------- output folders

def _foreign_folder(tmp: Path) -> Path:
    """A folder of the user's own, with rtl/ and deploy/ subfolders (what --output must not eat)."""
    out = tmp / "mine"
    (out / "rtl").mkdir(parents=True)
    (out / "deploy").mkdir()
    (out / "rtl" / "my_core.v").write_text("module my_core; endmodule\n")
    (out / "deploy" / "notes.md").write_text("my deployment notes\n")
    (out / "data.bin").write_bytes(bytes(range(256)))
    return out


def folder_cases() -> list[Case]:
    def foreign(*options: str) -> Make:
        def make(base: Path, tmp: Path) -> list[str]:
            out = _foreign_folder(tmp)
            return ["--model", str(base), "--board", "pynq-z2", "--output", str(out), *options]
        return make

    def force_with(rel: str) -> Make:
        def make(base: Path, tmp: Path) -> list[str]:
            out = tmp / "mine"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text("the user's own\n")
            return ["--model", str(base), "--board", "pynq-z2", "--output", str(out), "--force", "--until", "tidy"]
        return make

    def resume_in(kind: str) -> Make:
        def make(base: Path, tmp: Path) -> list[str]:
            out = tmp / "mine"
            if kind == "plain":
                out.mkdir()
                (out / "a.txt").write_text("x")
            elif kind == "damaged":
                out.mkdir()
                (out / "build_manifest.json").write_text("{not json")
            return ["--model", str(base), "--board", "pynq-z2", "--output", str(out), "--from", "fold"]
        return make

    return [
        Case("foreign_folder", "folders", foreign(), ("holds files no build wrote", "--force")),
        Case("foreign_folder_until", "folders", foreign("--until", "export"), ("holds files no build wrote",)),
        Case("force_onto_rtl", "folders", foreign("--force"), ("would write", "rtl", "deploy", "Move them")),
        Case("force_onto_report", "folders", force_with("report.json"), ("report.json", "never overwrites")),
        Case("force_onto_dataflow", "folders", force_with("dataflow.onnx"), ("dataflow.onnx",)),
        Case("force_onto_verify", "folders", force_with("verify/inputs.npy"), ("verify/inputs.npy",)),
        Case("force_onto_log", "folders", force_with("build.log"), ("build.log",)),
        Case("resume_missing_folder", "folders", resume_in("missing"), ("cannot resume", "does not exist")),
        Case("resume_foreign_folder", "folders", resume_in("plain"), ("cannot resume", "not a build folder")),
        Case("damaged_manifest", "folders", resume_in("damaged"), ("build_manifest.json", "damaged",
                                                                   "new --output")),
    ]


# ---------------------------------------------------------------- datasets

class _Evil:
    """Unpickling this runs code (what a crafted dataset file would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def write_cifar_folder(folder: Path, evil: Path | None = None, broken: str = "") -> Path:
    """A CIFAR-10 python-pickle folder (2 images per batch); ``evil``: every batch runs code
    creating that file when unpickled; ``broken``: a structural defect."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch: object = {b"labels": [1, 2], b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
                         b"batch_label": name.encode()}
        if evil is not None:
            batch = {b"labels": [1, 2], b"data": _Evil(evil)}
        elif broken == "shape":
            batch = {b"labels": [1, 2], b"data": np.zeros((2, 100), np.uint8)}
        elif broken == "list":
            batch = [1, 2, 3]
        elif broken == "labels":
            batch = {b"labels": [1, 20], b"data": np.zeros((2, 3072), np.uint8)}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)
    return folder


def all_cases() -> list[Case]:
    return graph_cases() + file_cases() + folding_cases() + option_cases() + verify_input_cases() + folder_cases()
