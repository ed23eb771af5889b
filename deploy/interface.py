"""The accelerator's outside, as one typed record: the two AXI-Streams (widths, frame format,
label bits), the ports of the generated top, the clock, and the AXI DMA and IP versions of
the block design around it.

The rtl step writes it as ``interface.json`` in the build folder
(:mod:`hw_build.interface`); the simulator, the Vivado scripts, fold, the report and the
deploy package all read that file instead of recomputing any of it. This module is plain
stdlib (no numpy, no compiler), so the same class loads the record on a PYNQ board, where
it travels inside ``accel.json``.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

INTERFACE_NAME = "interface.json"
INTERFACE_VERSION = 1

#: the only AXI DMA version pynq's DMA driver binds (pynq.lib.dma.DMA.bindto, pynq 3.x and 4.0):
#: with any other version the overlay exposes a DefaultIP without sendchannel/recvchannel
AXI_DMA_VLNV = "xilinx.com:ip:axi_dma:7.1"
#: the AXI DMA buffer length register: 26 bits is the IP's maximum (64 MiB - 1 bytes per transfer)
DMA_LENGTH_BITS = 26
DMA_CELL = "axi_dma"
ACCEL_CELL = "accel"
IP_VENDOR = "hw-build.local"
IP_LIBRARY = "accel"
IP_VERSION = "1.0"


def words_per_frame(frame_bytes: int, stream_bits: int) -> int:
    """Stream words one frame of ``frame_bytes`` uint8 pixels takes (the last one zero-padded)."""
    return -(-int(frame_bytes) * 8 // int(stream_bits))


def label_stream_bits(label_bits: int) -> int:
    """Width of the label stream: the label's bits rounded up to whole bytes."""
    return 8 * (-(-int(label_bits) // 8))


@dataclass(frozen=True)
class AcceleratorInterface:
    """What the outside of one generated accelerator is (all widths in bits)."""

    top: str                          # Verilog module of the accelerator
    clock_port: str
    reset_port: str
    reset_active_low: bool
    in_prefix: str                    # AXI-Stream slave: <in_prefix>_tdata/tvalid/tready/tlast
    out_prefix: str                   # AXI-Stream master
    in_bits: int                      # input stream width = the DMA's MM2S stream width
    out_bits: int                     # label stream width = the DMA's S2MM stream width
    label_bits: int                   # significant low bits of each label word
    frame_shape: tuple[int, int, int]  # (H, W, C) uint8 pixels per frame, sent in NHWC order
    cycles_per_frame: int             # designed cycles of the slowest layer
    clock_mhz: float                  # fabric clock the design is built for
    family: str                       # "zynq7", "zynqmp" or "alveo"
    dma_cell: str = DMA_CELL
    dma_vlnv: str = AXI_DMA_VLNV
    dma_length_bits: int = DMA_LENGTH_BITS
    dma_mm_bits: int = 64             # DMA memory-map width (the PS HP port width)
    accel_cell: str = ACCEL_CELL
    accel_vlnv: str = f"{IP_VENDOR}:{IP_LIBRARY}:accel_top:{IP_VERSION}"
    version: int = INTERFACE_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame_shape", tuple(int(v) for v in self.frame_shape))
        problems = []
        if len(self.frame_shape) != 3 or min(self.frame_shape) < 1:
            problems.append(f"frame_shape {self.frame_shape} is not (H, W, C) with positive sizes")
        for name in ("in_bits", "out_bits"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0 or v % 8:
                problems.append(f"{name}={v} is not a positive whole number of bytes")
        if not 0 < self.label_bits <= self.out_bits:
            problems.append(f"label_bits={self.label_bits} is not in 1..out_bits={self.out_bits}")
        if not 8 <= self.dma_length_bits <= 26:
            problems.append(f"dma_length_bits={self.dma_length_bits} is outside the AXI DMA's 8..26")
        if self.clock_mhz <= 0:
            problems.append(f"clock_mhz={self.clock_mhz} is not positive")
        if problems:
            raise ValueError("invalid accelerator interface: " + "; ".join(problems))

    # ---------------------------------------------------------------- the frame format
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image, as the model (and the driver's caller) sees it."""
        h, w, c = self.frame_shape
        return (c, h, w)

    @property
    def frame_bytes(self) -> int:
        h, w, c = self.frame_shape
        return h * w * c

    @property
    def in_bytes_per_word(self) -> int:
        return self.in_bits // 8

    @property
    def words_per_frame(self) -> int:
        return words_per_frame(self.frame_bytes, self.in_bits)

    @property
    def padded_frame_bytes(self) -> int:
        return self.words_per_frame * self.in_bytes_per_word

    @property
    def label_bytes(self) -> int:
        """Bytes one frame's label word takes in memory (one output beat per frame)."""
        return self.out_bits // 8

    @property
    def dma_cycles_per_frame(self) -> int:
        """Cycles the DMA stream needs per frame: one input word per cycle."""
        return self.words_per_frame

    @property
    def max_transfer_bytes(self) -> int:
        return 2**self.dma_length_bits - 1

    # ---------------------------------------------------------------- files
    def to_dict(self) -> dict:
        d = asdict(self)
        d["frame_shape"] = list(self.frame_shape)
        d["derived"] = {"input_shape_chw": list(self.input_shape), "frame_bytes": self.frame_bytes,
                        "words_per_frame": self.words_per_frame, "label_bytes": self.label_bytes,
                        "dma_cycles_per_frame": self.dma_cycles_per_frame,
                        "max_transfer_bytes": self.max_transfer_bytes}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AcceleratorInterface:
        if not isinstance(d, dict):
            raise ValueError(f"an accelerator interface must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        missing = [f.name for f in fields(cls) if f.name not in d and f.default is MISSING]
        if missing:
            raise ValueError(f"the accelerator interface lacks {', '.join(missing)}")
        try:
            return cls(**{k: v for k, v in d.items() if k in names})
        except TypeError as exc:
            raise ValueError(f"invalid accelerator interface: {exc}") from None

    def save(self, path: Path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> AcceleratorInterface:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"'{path}' does not exist: the build's rtl step writes {INTERFACE_NAME}; "
                                    "run the build through the rtl step (or --from rtl).")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise ValueError(f"'{path}' is not valid JSON ({exc}); rerun the build's rtl step.") from None
