"""Hardware layers: the qonnx custom-op domain ``hw_build.ops``.

qonnx finds an op class by importing this module (the node's domain) and looking the
op type up in ``__all__``.

Adding a layer means:
1. one op file here: the op class (shapes, ``execute_node``, ``cycles``,
   ``rtl_param_values``, ``lookahead`` when it buffers rows, ``nodeattrs`` for its own node
   attributes) and its typed parameter record ``rtl_record`` (``class XParams(rtl_record("x"))``:
   a frozen dataclass of the parameters of Verilog module x, read from the .v file, which
   also names the class's ``rtl_module``; its ``resource_features()`` is what the cost model
   prices; both are checked against each other at import), imported and listed below;
2. one Verilog file in hw_build/rtl (the module named by ``rtl_module``, the library's
   stream port conventions; the library modules it instantiates are read from it);
3. one lowering rule in hw_build/lower;
4. tests: a randomized case builder in tests/rtl_cases.py (``CASE_BUILDERS``), which the
   layer's RTL test and the cost-model calibration sweep both use.

The stream plumbing (Fifo, WidthConverter, DmaUnpack, TlastQueue) is inserted after folding
by hw_build.fold.plumbing instead of a lowering rule.
"""

from hw_build.ops.base import DOMAIN, HWLayer
from hw_build.ops.channels import ChannelConcat, ChannelSplit
from hw_build.ops.dma_unpack import DmaUnpack
from hw_build.ops.fifo import Fifo
from hw_build.ops.label_select import LabelSelect
from hw_build.ops.mvtu import MVTU
from hw_build.ops.parallel_window import ParallelWindow
from hw_build.ops.pool import Pool
from hw_build.ops.sliding_window import SlidingWindow
from hw_build.ops.streams import AddStreams, DuplicateStreams, GlobalAccPool
from hw_build.ops.thresholding import Thresholding
from hw_build.ops.tlast_queue import TlastQueue
from hw_build.ops.width_converter import WidthConverter

__all__ = [
    "AddStreams",
    "ChannelConcat",
    "ChannelSplit",
    "DmaUnpack",
    "DuplicateStreams",
    "Fifo",
    "GlobalAccPool",
    "LabelSelect",
    "MVTU",
    "ParallelWindow",
    "Pool",
    "SlidingWindow",
    "Thresholding",
    "TlastQueue",
    "WidthConverter",
]

LAYER_CLASSES = {name: globals()[name] for name in __all__}


def check_rtl_records() -> None:
    """Every layer class has a typed parameter record whose fields are its Verilog module's
    ``parameter`` list (the record is built from it, ``hw_build.ops.base.rtl_record``), and
    the record's ``resource_features`` and the layer's ``rtl_param_values`` name only those
    parameters: a parameter renamed on one side fails loudly here, at import."""
    from dataclasses import fields

    from hw_build.ops.base import record_use_problems
    from hw_build.rtl import module_parameters

    for name, cls in LAYER_CLASSES.items():
        if cls.rtl_record is None:
            raise ImportError(f"hw_build.ops.{name} has no rtl_record (the typed parameters of {cls.rtl_module}.v)")
        have = {f.name for f in fields(cls.rtl_record)}
        want = set(module_parameters(cls.rtl_module))
        if have != want:
            raise ImportError(
                f"hw_build.ops.{name}.rtl_record ({cls.rtl_record.__name__}) does not match the parameters of "
                f"hw_build/rtl/{cls.rtl_module}.v: only in the record {sorted(have - want)}, only in the Verilog "
                f"{sorted(want - have)}; rename one side")
        problems = record_use_problems(cls)
        if problems:
            raise ImportError(f"hw_build.ops.{name}: " + "; ".join(problems))


check_rtl_records()


def is_hw_node(node) -> bool:
    return node.domain == DOMAIN


__all__ += ["DOMAIN", "HWLayer", "LAYER_CLASSES", "check_rtl_records", "is_hw_node"]
