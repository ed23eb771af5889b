"""Board table: FPGA part, default fabric clock, resource budget and DMA stream width."""

from __future__ import annotations

from dataclasses import dataclass

from hw_build.errors import BuildError


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    family: str  # "zynq7", "zynqmp" or "alveo"
    clock_mhz: float
    lut: int
    ff: int
    bram36: int
    dsp: int
    dma_bits: int  # width of the AXI-Stream between the DMA engine (or host) and the accelerator
    board_part: str | None = None  # Vivado board file name, where one exists
    platform: str | None = None  # Vitis platform for Alveo cards

    @property
    def is_alveo(self) -> bool:
        return self.family == "alveo"


# Budgets are the device totals; folding keeps a safety margin below them.
BOARDS: dict[str, Board] = {
    b.name: b
    for b in [
        Board("pynq-z2", "xc7z020clg400-1", "zynq7", 100.0, 53_200, 106_400, 140, 220, 64,
              board_part="tul.com.tw:pynq-z2:part0:1.0"),
        Board("pynq-z1", "xc7z020clg400-1", "zynq7", 100.0, 53_200, 106_400, 140, 220, 64,
              board_part="www.digilentinc.com:pynq-z1:part0:1.0"),
        Board("ultra96", "xczu3eg-sbva484-1-e", "zynqmp", 100.0, 70_560, 141_120, 216, 360, 128,
              board_part="avnet.com:ultra96v2:part0:1.2"),
        Board("zcu104", "xczu7ev-ffvc1156-2-e", "zynqmp", 100.0, 230_400, 460_800, 312, 1_728, 128,
              board_part="xilinx.com:zcu104:part0:1.1"),
        Board("kv260", "xck26-sfvc784-2LV-c", "zynqmp", 100.0, 117_120, 234_240, 144, 1_248, 128,
              board_part="xilinx.com:kv260_som:part0:1.3"),
        Board("u250", "xcu250-figd2104-2L-e", "alveo", 200.0, 1_728_000, 3_456_000, 2_688, 12_288, 512,
              platform="xilinx_u250_gen3x16_xdma_4_1_202210_1"),
        Board("u280", "xcu280-fsvh2892-2L-e", "alveo", 200.0, 1_303_680, 2_607_360, 2_016, 9_024, 512,
              platform="xilinx_u280_gen3x16_xdma_1_202211_1"),
    ]
}


def names() -> list[str]:
    return list(BOARDS)


def get(name: str) -> Board:
    try:
        return BOARDS[name.lower()]
    except KeyError:
        raise BuildError(
            f"unknown board '{name}'. Supported boards: {', '.join(BOARDS)} "
            "(python build.py --list-boards)."
        ) from None
