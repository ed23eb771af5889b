"""Hardware layers: the qonnx custom-op domain ``hw_build.ops``.

qonnx finds an op class by importing this module (the node's domain) and looking the
op type up in ``__all__``. Adding a layer: one class file here, one Verilog module in
hw_build/rtl, one lowering rule.
"""

from hw_build.ops.base import DOMAIN, HWLayer
from hw_build.ops.channels import ChannelConcat, ChannelSplit
from hw_build.ops.label_select import LabelSelect
from hw_build.ops.mvtu import MVTU
from hw_build.ops.pool import Pool
from hw_build.ops.sliding_window import SlidingWindow
from hw_build.ops.streams import AddStreams, DuplicateStreams, GlobalAccPool
from hw_build.ops.thresholding import Thresholding

__all__ = [
    "AddStreams",
    "ChannelConcat",
    "ChannelSplit",
    "DuplicateStreams",
    "GlobalAccPool",
    "LabelSelect",
    "MVTU",
    "Pool",
    "SlidingWindow",
    "Thresholding",
]

LAYER_CLASSES = {name: globals()[name] for name in __all__}


def is_hw_node(node) -> bool:
    return node.domain == DOMAIN


__all__ += ["DOMAIN", "HWLayer", "LAYER_CLASSES", "is_hw_node"]
