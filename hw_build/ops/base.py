"""Common base of the hardware layers (custom ops in the ``hw_build.ops`` qonnx domain).

Conventions every layer (and its Verilog module) follows:
- Activation tensors are NHWC (``[N, H, W, C]``); vectors are ``[N, 1, 1, C]``.
- A tensor is streamed in row-major NHWC order. A stream carries ``E`` elements per beat
  (``in_beat_elems`` / ``out_beat_elems``); element ``i`` of a beat sits at bits
  ``[i*b +: b]`` of TDATA, ``b`` being the element bit width of the tensor's datatype
  (two's complement when signed). Beat ``j`` carries elements ``[j*E, (j+1)*E)``.
- ``execute_node`` is the bit-exact reference the RTL is checked against.
"""

from __future__ import annotations

import ast
import copy
import inspect
import math
import re
import textwrap
from dataclasses import fields, make_dataclass
from typing import Any, ClassVar

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from hw_build.errors import BuildError, LayerError

DOMAIN = "hw_build.ops"


def tensor_dtype(model, tensor: str, fallback: DataType | None = None) -> DataType:
    """The integer datatype of ``tensor`` in ``model`` (``fallback`` when it has none)."""
    dt = model.get_tensor_datatype(tensor)
    if dt is None or not dt.is_integer():
        if fallback is None:
            raise BuildError(f"tensor {tensor!r} has no integer datatype; run datatype inference first")
        return fallback
    return dt


def smallest_int_type(lo: int, hi: int) -> DataType:
    """Smallest qonnx integer type that holds every value in [lo, hi]."""
    lo, hi = int(lo), int(hi)
    if lo >= 0:
        if hi <= 1:
            return DataType["BINARY"]
        return DataType[f"UINT{max(1, int(hi).bit_length())}"]
    bits = max(int(hi).bit_length(), int(-lo - 1).bit_length()) + 1
    return DataType[f"INT{bits}"]


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class HWLayer(CustomOp):
    """A streaming hardware layer: shapes, Python execution, cycles, folding, RTL parameters."""

    #: name of the Verilog module implementing this layer (file hw_build/rtl/<module>.v): the
    #: module ``rtl_record`` is made from, unless a class sets it
    rtl_module: str = ""
    #: typed record (a dataclass) of that module's parameters: one field per Verilog parameter,
    #: ``int`` or ``str``, made from the module's header (:func:`rtl_record`) and held to this
    #: class at import (hw_build.ops.check_rtl_records)
    rtl_record: type | None = None
    #: folding attributes this layer exposes (FINN folding_config names)
    fold_attrs: tuple[str, ...] = ("PE",)
    #: stream plumbing (FIFOs, width converters, the DMA adapters) that the fold step inserts
    #: between the layers (hw_build.fold.plumbing), not a layer of the network
    plumbing: bool = False
    #: what synthesis reports this instance as: layer | fifo | converter | other
    resource_kind: str = "layer"

    #: node attributes (qonnx ``(type, required, default)``) this class adds to those of its
    #: bases; :meth:`get_nodeattr_types` merges them along the class hierarchy, so a layer
    #: lists only its own
    nodeattrs: ClassVar[dict[str, tuple]] = {
        "in_shape": ("ints", True, []),
        "out_shape": ("ints", True, []),
        "in_dtype": ("s", True, ""),
        "out_dtype": ("s", True, ""),
        "PE": ("i", False, 1),
        # name of the tensor of the streamlined graph this layer's output corresponds to
        "source": ("s", False, ""),
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # the module is named once, where the class's record is made from it
        if cls.rtl_record is not None and "rtl_module" not in vars(cls):
            cls.rtl_module = cls.rtl_record.rtl_module

    def get_nodeattr_types(self) -> dict[str, tuple]:
        attrs: dict[str, tuple] = {}
        for klass in reversed(type(self).__mro__):
            attrs.update(vars(klass).get("nodeattrs", {}))
        # a fresh copy per call, as a literal was: no caller can change a class's default lists
        return copy.deepcopy(attrs)

    # ----- shapes and types
    def in_shape(self) -> list[int]:
        return list(self.get_nodeattr("in_shape"))

    def out_shape(self) -> list[int]:
        return list(self.get_nodeattr("out_shape"))

    def in_dtype(self) -> DataType:
        return DataType[self.get_nodeattr("in_dtype")]

    def out_dtype(self) -> DataType:
        return DataType[self.get_nodeattr("out_dtype")]

    def channels(self) -> int:
        return self.in_shape()[-1]

    def input_array(self, context, index: int = 0) -> np.ndarray:
        """Input ``index`` reshaped to this layer's ``in_shape`` (batch kept): a layer may read a
        stream under another shape with the same element order (e.g. a flattened image)."""
        x = np.asarray(context[self.onnx_node.input[index]])
        return x.reshape([x.shape[0]] + self.in_shape()[1:])

    def make_shape_compatible_op(self, model):
        # out_shape is stored for batch 1; follow the batch of the actual input
        shape = self.out_shape()
        in_shape = model.get_tensor_shape(self.onnx_node.input[0])
        if in_shape:
            shape[0] = in_shape[0]
        return self.make_const_shape_op(shape)

    def infer_node_datatype(self, model) -> None:
        for out in self.onnx_node.output:
            model.set_tensor_datatype(out, self.out_dtype())

    def verify_node(self) -> list[str]:
        return []

    # ----- streaming interface
    def in_beat_elems(self, index: int = 0) -> int:
        return self.get_nodeattr("PE")

    def out_beat_elems(self) -> int:
        return self.get_nodeattr("PE")

    def in_stream_bits(self, index: int = 0) -> int:
        return self.in_beat_elems(index) * self.in_dtype().bitwidth()

    def out_stream_bits(self) -> int:
        return self.out_beat_elems() * self.out_dtype().bitwidth()

    def in_width(self, model, index: int = 0) -> int:
        """Bits per beat of streamed input ``index`` in ``model`` (elements x the tensor's type)."""
        tensor = [t for t in self.onnx_node.input if t and model.get_initializer(t) is None][index]
        fallback = self.in_dtype() if index == 0 else None
        return self.in_beat_elems(index) * tensor_dtype(model, tensor, fallback).bitwidth()

    def out_width(self, model, index: int = 0) -> int:
        """Bits per beat of output ``index`` in ``model``."""
        return self.out_beat_elems() * tensor_dtype(model, self.onnx_node.output[index], self.out_dtype()).bitwidth()

    def in_beats(self, index: int = 0) -> int:
        """Beats per frame on input ``index``."""
        return int(np.prod(self.in_shape()[1:])) // self.in_beat_elems(index)

    def out_beats(self) -> int:
        return int(np.prod(self.out_shape()[1:])) // self.out_beat_elems()

    # ----- folding and performance
    def fold_options(self) -> dict[str, list[int]]:
        """Legal values of each folding attribute."""
        return {"PE": divisors(self.channels())}

    def get_folding(self) -> dict[str, int]:
        return {a: int(self.get_nodeattr(a)) for a in self.fold_attrs}

    def set_folding(self, **values: int) -> None:
        options = self.fold_options()
        for attr, value in values.items():
            if attr not in options:
                raise self.error(f"no folding attribute {attr}", f"Its folding attributes: {sorted(options)}.")
            if int(value) not in options[attr]:
                raise self.error(f"{attr}={value} is not allowed", f"Choose one of {options[attr]}.")
            self.set_nodeattr(attr, int(value))

    def cycles(self) -> int:
        """Cycles per frame in steady state (the layer's initiation interval)."""
        return max(self.in_beats(), self.out_beats())

    # ----- RTL
    def rtl_param_values(self, model=None) -> dict[str, Any]:
        """Verilog parameters of this layer's module instance (ints and strings), in the order the
        instance lists them; every field of ``rtl_record``, nothing else.

        ``model`` (the ModelWrapper holding the node) is needed by layers whose parameters
        depend on initializers (threshold counts, coefficient widths); without it they
        fall back to bounds derived from the node attributes alone.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no RTL parameters")

    def rtl_params(self, model=None) -> dict[str, Any]:
        """:meth:`rtl_param_values`, checked against the typed record ``rtl_record`` (whose
        fields the library check holds to the Verilog module's ``parameter`` list): a missing,
        unknown or mistyped parameter fails here instead of being priced or instantiated wrongly."""
        values = self.rtl_param_values(model)
        return check_rtl_record(self.rtl_record, values, f"{self.onnx_node.op_type} {self.onnx_node.name}")

    def rtl_instance(self, model, name: str, inputs: list[str], outputs: list[str], clk: str, rst: str) -> str:
        """Verilog of this layer's instance ``name`` between the stream wires ``inputs`` and ``outputs``."""
        from hw_build.rtl.verilog import stream_instance

        return stream_instance(self.rtl_module, name, self.rtl_params(model), clk, rst, inputs, outputs)

    def instantiated(self) -> bool:
        """Whether the layer is a module instance (a zero-depth FIFO is only wires)."""
        return True

    def resources(self, model=None) -> dict[str, float]:
        """{lut, ff, bram36, dsp} of this layer's instance by the cost model (at the parameters the
        code generator gives it; ``model`` lets them follow the actual weights and thresholds)."""
        from hw_build.estimate.cost_model import module_resources

        return module_resources(self.rtl_module, self.rtl_params(model))

    def lookahead(self) -> float:
        """Share of a frame the layer takes in before its first output (a sliding window needs
        its window's rows first); summed along the paths into a residual join, it estimates
        the join FIFO depths before simulation sizes them."""
        return 0.0

    def rtl_memories(self, model) -> dict[str, list[str]]:
        """Memory initialisation files of this layer: file name -> lines of hex words.

        The file names are the ones ``rtl_params`` passes to the module ($readmemh).
        """
        return {}

    def error(self, problem: str, fix: str = "") -> LayerError:
        """A user-facing error naming this node and its op (raise it)."""
        return LayerError(self.onnx_node.name, self.onnx_node.op_type, problem, fix)

    def describe(self) -> str:
        fold = ", ".join(f"{k}={v}" for k, v in self.get_folding().items())
        return f"{self.onnx_node.op_type} {self.in_shape()} -> {self.out_shape()} ({fold})"


def check_rtl_record(record: type, values: dict[str, Any], what: str) -> dict[str, Any]:
    """``values`` as parameters of ``record``: exactly its fields, each of its type (int or str)."""
    names = [f.name for f in fields(record)]
    missing, unknown = sorted(set(names) - set(values)), sorted(set(values) - set(names))
    if missing or unknown:
        raise TypeError(f"{what}: RTL parameters do not match {record.__name__} (missing {missing}, unknown {unknown})")
    for f in fields(record):
        want = str if f.type in (str, "str") else int
        v = values[f.name]
        if not isinstance(v, want) or isinstance(v, bool):
            raise TypeError(f"{what}: RTL parameter {f.name}={v!r} is not {want.__name__} ({record.__name__})")
    record(**values)
    return dict(values)


def module_parameter_defaults(module: str) -> tuple[tuple[str, str], ...]:
    """``(name, default)`` of every ``parameter`` in library module ``module``'s header, in order,
    the default as the Verilog writes it (a string default keeps its quotes): the sibling of
    :func:`hw_build.rtl.module_parameters` (the names alone), held to it."""
    from hw_build.rtl import library_files, module_parameters

    names = module_parameters(module)   # a KeyError naming the library for an unknown module
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", library_files()[module].read_text(), flags=re.S)
    header = re.search(rf"\bmodule\s+{module}\s*#\s*\((.*?)\)\s*\(", text, re.S)
    found = re.findall(r"\bparameter\s+(?:integer\s+)?(\w+)\s*=\s*(\"[^\"]*\"|[^,]+)", header.group(1) if header else "")
    defaults = tuple((name, default.strip()) for name, default in found)
    if tuple(name for name, _ in defaults) != names:
        raise ImportError(f"hw_build/rtl/{module}.v: every parameter needs a default (the record's type is "
                          f"read from it); read {[n for n, _ in defaults]} of {list(names)}")
    return defaults


class RtlRecord:
    """What every typed parameter record has besides its fields (see :func:`rtl_record`)."""

    #: the library module whose ``parameter`` list the fields are
    rtl_module: ClassVar[str] = ""

    def resource_features(self):
        """Cost-model features of one instance (hw_build.estimate.cost_model): LUT and FF
        feature counts, block RAMs, DSPs (a ``ModuleFeatures`` tuple)."""
        raise NotImplementedError(f"{type(self).__name__} has no cost-model features")


def rtl_record(module: str) -> type:
    """Base class of library module ``module``'s typed parameter record, a frozen dataclass with
    one field per ``parameter`` of hw_build/rtl/<module>.v, in its order, typed ``str`` where the
    Verilog default is a quoted string and ``int`` otherwise.

    The Verilog header is the one place the names and types are written; the subclass adds the
    module's ``resource_features()``. A module the library lacks, or one without parameters,
    fails here, when the op module is imported."""
    try:
        params = module_parameter_defaults(module)
    except KeyError as e:
        raise ImportError(f"no typed record for {module!r}: {e}") from e
    if not params:
        raise ImportError(f"hw_build/rtl/{module}.v has no parameters to make a record of")
    record_fields = [(name, str if default.startswith('"') else int) for name, default in params]
    return make_dataclass(f"{module}_parameters", record_fields, bases=(RtlRecord,), frozen=True,
                          namespace={"rtl_module": module,
                                     "__doc__": f"Parameters of {module}.v, read from its header."})


def _syntax_tree(function) -> ast.AST:
    """``function``'s source as a syntax tree; an empty module where the source cannot be read
    or parsed alone (a lambda inside a longer statement), so the checks below find nothing
    to object to there, and the typed check of every instance's values still runs."""
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return ast.Module(body=[], type_ignores=[])


def _attributes_read(function, pattern: str) -> set[str]:
    """Names matching ``pattern`` that ``function`` reads as ``self.<name>``."""
    return {n.attr for n in ast.walk(_syntax_tree(function)) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "self" and re.fullmatch(pattern, n.attr)}


def _returned_keys(function) -> list[set[str]]:
    """The string keys of each dict literal ``function`` returns."""
    return [{k.value for k in n.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            for n in ast.walk(_syntax_tree(function)) if isinstance(n, ast.Return) and isinstance(n.value, ast.Dict)]


def record_use_problems(layer: type[HWLayer]) -> list[str]:
    """Where ``layer`` and its record disagree in the code: the record built from another
    module, its ``resource_features`` reading a parameter it does not have, or the layer's
    ``rtl_param_values`` returning a dict literal without exactly the record's fields. Found by
    reading the source, so a mistake fails at import rather than on the first instance priced."""
    record = layer.rtl_record
    names = {f.name for f in fields(record)}
    problems = []
    if getattr(record, "rtl_module", layer.rtl_module) != layer.rtl_module:
        problems.append(f"{record.__name__} is the record of {record.rtl_module}.v, not of {layer.rtl_module}.v")
    if "resource_features" in vars(record):
        unknown = _attributes_read(record.resource_features, r"[A-Z][A-Z0-9_]*") - names
        if unknown:
            problems.append(f"{record.__name__}.resource_features reads {sorted(unknown)}, not parameters of "
                            f"{layer.rtl_module}.v")
    else:
        problems.append(f"{record.__name__} defines no resource_features (the cost model prices it)")
    for keys in _returned_keys(layer.rtl_param_values):
        if keys != names:
            problems.append(f"{layer.__name__}.rtl_param_values returns {sorted(keys - names)} beyond and lacks "
                            f"{sorted(names - keys)} of {record.__name__}")
    return problems


def bits_for(value: int) -> int:
    return max(1, math.ceil(math.log2(max(2, value + 1))))


class StreamPlumbing(HWLayer):
    """Base of the stream plumbing the fold step inserts between layers (FIFOs, width
    converters, the DMA adapters): the values pass unchanged, only the beats change; the
    beat widths and beats per frame are node attributes, set by hw_build.fold.plumbing."""

    plumbing = True
    fold_attrs = ()

    nodeattrs = {
        "in_bits": ("i", True, 0),          # bits per input beat
        "out_bits": ("i", True, 0),         # bits per output beat
        "in_frame_beats": ("i", True, 0),   # input beats per frame
        "out_frame_beats": ("i", True, 0),  # output beats per frame
        # the layer-graph tensor whose stream this serves (the graph input for the DMA side)
        "edge": ("s", False, ""),
    }

    def execute_node(self, context, graph):
        context[self.onnx_node.output[0]] = np.asarray(context[self.onnx_node.input[0]]).copy()

    def fold_options(self) -> dict[str, list[int]]:
        return {}

    def in_width(self, model=None, index: int = 0) -> int:
        return self.get_nodeattr("in_bits")

    def out_width(self, model=None, index: int = 0) -> int:
        return self.get_nodeattr("out_bits")

    def in_beats(self, index: int = 0) -> int:
        return self.get_nodeattr("in_frame_beats")

    def out_beats(self) -> int:
        return self.get_nodeattr("out_frame_beats")

    def in_stream_bits(self, index: int = 0) -> int:
        return self.get_nodeattr("in_bits")

    def out_stream_bits(self) -> int:
        return self.get_nodeattr("out_bits")

    def describe(self) -> str:
        return (f"{self.onnx_node.op_type} of {self.get_nodeattr('edge')}: {self.in_width()} -> "
                f"{self.out_width()} bits per beat")
