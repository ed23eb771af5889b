"""The build side of the accelerator interface record (:class:`AcceleratorInterface`).

The rtl step calls :func:`write_for_build` once the code generator has written ``rtl/``;
everything downstream (simulation, Vivado scripts, report, deploy package) calls
:func:`read` instead of recomputing widths, frame formats, DMA names or clocks. The record
class itself lives in :mod:`deploy.interface` because the board-side driver reads it too.
"""

from __future__ import annotations

from pathlib import Path

from deploy.interface import (
    INTERFACE_NAME,
    AcceleratorInterface,
    label_stream_bits,
    words_per_frame,
)
from hw_build.boards import Board
from hw_build.errors import BuildError

__all__ = ["INTERFACE_NAME", "AcceleratorInterface", "from_manifest", "label_stream_bits", "read",
           "words_per_frame", "write_for_build"]

#: port names of the generated top (hw_build.rtl.codegen writes them; a test parses the
#: Verilog and checks it against the record)
CLOCK_PORT = "ap_clk"
RESET_PORT = "ap_rst_n"
IN_PREFIX = "s_axis"
OUT_PREFIX = "m_axis"


def from_manifest(manifest: dict, board: Board, clock_mhz: float) -> AcceleratorInterface:
    """The record of the design the code generator described in ``manifest`` (rtl_manifest.json)."""
    try:
        record = AcceleratorInterface(
            top=str(manifest["top"]), clock_port=CLOCK_PORT, reset_port=RESET_PORT, reset_active_low=True,
            in_prefix=IN_PREFIX, out_prefix=OUT_PREFIX, in_bits=int(manifest["dma_bits"]),
            out_bits=int(manifest["out_bits"]), label_bits=int(manifest["label_bits"]),
            frame_shape=tuple(int(v) for v in manifest["frame_shape"]),
            cycles_per_frame=int(manifest["cycles_per_frame"]), clock_mhz=float(clock_mhz), family=board.family,
            dma_mm_bits=board.dma_bits, accel_vlnv=f"hw-build.local:accel:{manifest['top']}:1.0",
        )
    except (KeyError, ValueError) as exc:
        raise BuildError(f"the RTL manifest does not describe the accelerator's interface ({exc}); "
                         "regenerate the RTL (build step 'rtl').") from None
    if record.words_per_frame != int(manifest["words_per_frame"]):
        raise BuildError(f"the code generator packs {manifest['words_per_frame']} words per frame, the interface "
                         f"record {record.words_per_frame}: a compiler bug, please report it.")
    return record


def write_for_build(build_dir: Path, manifest: dict, board: Board, clock_mhz: float) -> AcceleratorInterface:
    """Write ``<build_dir>/interface.json`` for the RTL the manifest describes."""
    record = from_manifest(manifest, board, clock_mhz)
    record.save(Path(build_dir) / INTERFACE_NAME)
    return record


def read(build_dir: Path) -> AcceleratorInterface:
    """The record of a build folder (a BuildError naming the fix when it is missing or broken)."""
    try:
        return AcceleratorInterface.load(Path(build_dir) / INTERFACE_NAME)
    except (FileNotFoundError, ValueError) as exc:
        raise BuildError(str(exc)) from None
