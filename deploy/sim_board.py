"""A simulated Zynq board for pynq: pynq's own Overlay, allocate, Clocks and AXI DMA driver run
unmodified on top of it; only the hardware underneath is a model.

- :class:`SimulatedZynq` is a ``pynq.Device`` (the hook pynq's own tests use for mock
  devices) with register access (``REGISTER_RW``). It serves a build's ``.bit``/``.hwh``
  through pynq's metadata parser, so the overlay pynq builds is the one the .hwh describes.
- DDR: ``allocate`` hands out physical addresses. A non-cacheable buffer is the DDR itself;
  a cacheable one is a CPU copy that only ``flush`` writes to DDR and only ``invalidate``
  reads back, so a missing flush or invalidate gives stale data as on the board.
- SLCR: the Zynq-7000 clock registers pynq's ``Clocks`` programs (IO PLL, FPGA0..3 dividers
  from a 50 MHz reference); the fabric runs at whatever FCLK0 they give.
- :class:`AxiDmaModel`: the AXI DMA in simple (direct register) mode as PG021 describes
  it: MM2S/S2MM control, status, address and length registers; the length register as wide
  as the .hwh's ``c_sg_length_width``; halted, idle, internal/slave/decode error and
  interrupt bits; MM2S sets tlast on its last beat; S2MM ends its transfer at tlast and
  reports the bytes it received in its length register; a packet longer than the S2MM
  length (no tlast by the end of the buffer) is an internal error that halts the channel.
- Behind the streams: the generated RTL in Verilator (:mod:`deploy.rtl_cosim`), reset once
  when the bitstream is downloaded and keeping its state across transfers.

Time: the model advances the fabric whenever the driver reads a DMA status register; its
clock is the cycle count, and :meth:`SimulatedZynq.elapsed_s` turns it into seconds at
the FCLK0 the SLCR gives (the driver times transfers with it instead of the wall clock).
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np
import pynq
from pynq.buffer import PynqBuffer

from deploy.handoff import simulation_identity
from deploy.interface import INTERFACE_NAME, AcceleratorInterface

ZYNQ_ARCH = "armv7l"

# ----------------------------------------------------------------------------- PG021 registers
MM2S, S2MM = 0x00, 0x30          # channel register blocks
DMACR, DMASR, ADDR, ADDR_MSB, LENGTH = 0x00, 0x04, 0x18, 0x1C, 0x28
CR_RS, CR_RESET = 1 << 0, 1 << 2
SR_HALTED, SR_IDLE = 1 << 0, 1 << 1
SR_INT_ERR, SR_SLV_ERR, SR_DEC_ERR = 1 << 4, 1 << 5, 1 << 6
SR_IOC_IRQ, SR_DLY_IRQ, SR_ERR_IRQ = 1 << 12, 1 << 13, 1 << 14
SR_IRQ_BITS = SR_IOC_IRQ | SR_DLY_IRQ | SR_ERR_IRQ
CR_RESET_VALUE = 0x00010002      # IRQThreshold 1 (bits 23:16), bit 1 reserved reads 1
SR_RESET_VALUE = 0x00010000 | SR_HALTED

# ----------------------------------------------------------------------------- Zynq-7000 SLCR
SLCR_BASE, SLCR_SIZE = 0xF8000000, 0x200
PS_REF_CLK_MHZ = 50.0
#: the PS clock registers after the FSBL (PYNQ-Z2 boot settings): ARM PLL 1300 MHz, DDR PLL
#: 1050 MHz, IO PLL 1000 MHz; FCLK0 50 MHz until a bitstream's download programs it
SLCR_RESET = {0x100: 26 << 12, 0x104: 21 << 12, 0x108: 20 << 12, 0x120: (2 << 8),
              0x170: (1 << 20) | (20 << 8), 0x180: (1 << 20) | (20 << 8), 0x190: (1 << 20) | (20 << 8),
              0x1A0: (1 << 20) | (20 << 8)}
#: one processing system per process, as on a board: pynq's Clocks keeps the first device it
#: saw, so the clock registers outlive any one SimulatedZynq
_SLCR: dict[int, int] = dict(SLCR_RESET)

DDR_BASE, DDR_SIZE = 0x10000000, 0x20000000
#: fabric time one MMIO read from Python takes on a Zynq-7000 (a few microseconds): what a
#: status poll costs while nothing moves
REGISTER_READ_US = 5.0
#: the most cycles one poll simulates while streams move (wall-time granularity only: a
#: slice ends early at the cycle a transfer ends)
ACTIVE_SLICE_CYCLES = 50_000


def fclk_mhz(index: int = 0) -> float:
    """FCLK<index> as the SLCR registers set it: IO PLL / DIVISOR0 / DIVISOR1."""
    ctrl = _SLCR[0x170 + 0x10 * index]
    src = (ctrl >> 4) & 0x3
    pll = {0: 0x108, 1: 0x108, 2: 0x100, 3: 0x104}[src]
    fdiv = (_SLCR[pll] >> 12) & 0x7F
    div0, div1 = (ctrl >> 8) & 0x3F, (ctrl >> 20) & 0x3F
    return PS_REF_CLK_MHZ * fdiv / max(1, div0 * div1)


def interface_identity(build_dir: Path) -> str:
    return hashlib.sha256((Path(build_dir) / INTERFACE_NAME).read_bytes()).hexdigest()


class SimulatedBoardError(RuntimeError):
    """The simulated board cannot be what the bitstream and the build describe."""


# ----------------------------------------------------------------------------- DDR
class SimulatedDDR:
    """Physical memory: one backing array per allocation at its own physical address."""

    def __init__(self) -> None:
        self._next = DDR_BASE
        self._blocks: dict[int, np.ndarray] = {}

    def add(self, nbytes: int) -> tuple[int, np.ndarray]:
        base = self._next
        size = max(4096, -(-int(nbytes) // 4096) * 4096)
        if base + size > DDR_BASE + DDR_SIZE:
            raise MemoryError("the simulated board's contiguous memory is exhausted")
        self._next += size
        self._blocks[base] = np.zeros(size, dtype=np.uint8)
        return base, self._blocks[base]

    def free(self, base: int) -> None:
        self._blocks.pop(base, None)

    def region(self, addr: int, nbytes: int) -> np.ndarray | None:
        """The bytes at physical [addr, addr + nbytes), or None when no buffer holds them all."""
        for base, block in self._blocks.items():
            if base <= addr and addr + nbytes <= base + len(block):
                return block[addr - base:addr - base + nbytes]
        return None


# ----------------------------------------------------------------------------- AXI DMA
class _Channel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.reset()

    def reset(self) -> None:
        self.cr = CR_RESET_VALUE
        self.sr = SR_RESET_VALUE
        self.addr = 0
        self.length = 0
        self.busy = False
        self.start_cycle = 0
        self.done_cycle = 0
        self.beats = 0       # S2MM: beats of room granted; MM2S: beats queued
        self.moved = 0       # beats taken (MM2S) or received (S2MM)

    @property
    def halted(self) -> bool:
        return bool(self.sr & SR_HALTED)

    def fail(self, bit: int) -> None:
        """An error halts the channel (PG021: the engine halts, RS must be cleared and reset)."""
        self.sr |= bit | SR_HALTED | SR_ERR_IRQ
        self.sr &= ~SR_IDLE
        self.busy = False

    def finish(self, cycle: int) -> None:
        self.busy = False
        self.done_cycle = cycle
        self.sr |= SR_IDLE | SR_IOC_IRQ


class AxiDmaModel:
    """One AXI DMA (simple mode) between DDR and the accelerator's streams."""

    def __init__(self, name: str, params: dict[str, str], ddr: SimulatedDDR, board: SimulatedZynq) -> None:
        def p(key: str, default: str) -> int:
            return int(params.get(key, default))

        if p("c_include_sg", "1"):
            raise SimulatedBoardError(f"the .hwh configures DMA '{name}' with scatter-gather (c_include_sg=1); "
                                      "the generated block design and the simulated board use simple mode")
        self.name = name
        self.length_bits = p("c_sg_length_width", "14")
        self.mm2s_bits = p("c_m_axis_mm2s_tdata_width", "32")
        self.s2mm_bits = p("c_s_axis_s2mm_tdata_width", "32")
        self.ddr = ddr
        self.board = board
        self.mm2s = _Channel("MM2S")
        self.s2mm = _Channel("S2MM")
        #: fault injection: (channel, DMASR error bit) raised by the next transfer's start
        self.forced_error: tuple[str, int] | None = None

    def _channel(self, offset: int) -> tuple[_Channel, int]:
        return (self.s2mm, offset - S2MM) if offset >= S2MM else (self.mm2s, offset)

    # -------------------------------------------------------------- register access
    def read(self, offset: int) -> int:
        ch, reg = self._channel(offset)
        if reg == DMASR and (self.mm2s.busy or self.s2mm.busy):
            self.board.advance()
        return {DMACR: ch.cr, DMASR: ch.sr, ADDR: ch.addr & 0xFFFFFFFF, ADDR_MSB: ch.addr >> 32,
                LENGTH: ch.length}.get(reg, 0)

    def write(self, offset: int, value: int) -> None:
        ch, reg = self._channel(offset)
        if reg == DMACR:
            if value & CR_RESET:  # soft reset: both channels, the stream data in flight dropped
                self.mm2s.reset()
                self.s2mm.reset()
                self.board.cosim.drop_input()
                self.board.cosim.stop_output()
                return
            ch.cr = (value & ~CR_RESET) | 0x2
            if value & CR_RS and ch.halted and not ch.sr & (SR_INT_ERR | SR_SLV_ERR | SR_DEC_ERR):
                ch.sr &= ~SR_HALTED
                ch.sr |= 0 if ch.busy else SR_IDLE
            elif not value & CR_RS:
                ch.sr |= SR_HALTED
                if ch is self.s2mm:
                    self.board.cosim.stop_output()
        elif reg == DMASR:
            ch.sr &= ~(value & SR_IRQ_BITS)  # interrupt bits are write-1-to-clear
        elif reg == ADDR:
            ch.addr = (ch.addr & ~0xFFFFFFFF) | (value & 0xFFFFFFFF)
        elif reg == ADDR_MSB:
            ch.addr = (ch.addr & 0xFFFFFFFF) | ((value & 0xFFFFFFFF) << 32)
        elif reg == LENGTH:
            # the register is c_sg_length_width bits wide: higher bits are not stored
            self._start(ch, value & ((1 << self.length_bits) - 1))

    def _start(self, ch: _Channel, length: int) -> None:
        if ch.halted:
            return  # PG021: a length written while halted starts nothing
        if ch.busy:
            ch.fail(SR_INT_ERR)
            return
        ch.length = length
        if self.forced_error and self.forced_error[0] == ch.name:
            bit, self.forced_error = self.forced_error[1], None
            ch.fail(bit)
            return
        if length == 0:
            ch.fail(SR_INT_ERR)
            return
        region = self.ddr.region(ch.addr, length)
        if region is None:
            ch.fail(SR_DEC_ERR)  # no memory answers at that address
            return
        ch.busy = True
        ch.sr &= ~SR_IDLE
        ch.start_cycle = self.board.cosim.cycle
        ch.moved = 0
        if ch is self.mm2s:
            width = self.mm2s_bits // 8
            data = np.zeros(-(-length // width) * width, dtype=np.uint8)
            data[:length] = region
            words = data.reshape(-1, width)
            beats = [(int.from_bytes(w.tobytes(), "little"), 0) for w in words]
            beats[-1] = (beats[-1][0], 1)  # MM2S asserts tlast on the last beat of a transfer
            ch.beats = len(beats)
            self.board.cosim.feed(beats)
        else:
            width = self.s2mm_bits // 8
            ch.beats = -(-length // width)
            self.board.cosim.grant_output(ch.beats)

    # -------------------------------------------------------------- the streams moved
    def took_input(self, taken: int, cycle: int) -> None:
        ch = self.mm2s
        if ch.busy:
            ch.moved += taken
            if ch.moved >= ch.beats:
                ch.finish(cycle + 1)

    def received(self, beats: list[tuple[int, int, int]]) -> None:
        ch = self.s2mm
        width = self.s2mm_bits // 8
        for cycle, value, last in beats:
            if not ch.busy:
                break
            offset = ch.moved * width
            data = np.frombuffer(int(value).to_bytes(width, "little"), dtype=np.uint8)
            n = min(width, ch.length - offset)
            self.ddr.region(ch.addr + offset, n)[:] = data[:n]
            ch.moved += 1
            if last:
                ch.length = min(ch.length, ch.moved * width)  # bytes received, as PG021 reports them
                ch.finish(cycle + 1)
            elif ch.moved >= ch.beats:
                ch.fail(SR_INT_ERR)  # the packet is longer than the buffer: no tlast by its end


# ----------------------------------------------------------------------------- the device
class SimulatedZynq(pynq.Device):
    """A Zynq-7000 board whose fabric is the RTL of ``build_dir`` (its ``rtl/`` and
    ``interface.json``), behind the AXI DMA the .hwh describes."""

    def __init__(self, build_dir: str | Path, *, stall: float = 0.0, seed: int = 0,
                 tag: str = "simulated_zynq") -> None:
        super().__init__(tag)
        self.stall, self.seed = float(stall), int(seed)
        self.build_dir = Path(build_dir)
        if not (self.build_dir / INTERFACE_NAME).exists():
            raise SimulatedBoardError(
                f"'{self.build_dir}' has no {INTERFACE_NAME}: --simulate needs the build folder the deploy package "
                "came from (after its rtl step), which holds rtl/ and interface.json.")
        self.record = AcceleratorInterface.load(self.build_dir / INTERFACE_NAME)
        if self.record.family != "zynq7":
            raise SimulatedBoardError(
                f"the simulated board is a Zynq-7000 (PYNQ-Z1/Z2); the build in '{self.build_dir}' is for a "
                f"{self.record.family} board, whose processing system it does not model.")
        self.capabilities = {"REGISTER_RW": True}
        self.arch = ZYNQ_ARCH
        self.name = "simulated-" + (self.record.family or "zynq7")
        self.ddr = SimulatedDDR()
        self.dmas: dict[int, AxiDmaModel] = {}
        self.cosim = None
        self.bitfile_name = None
        self.timestamp = None
        self._workdir = Path(tempfile.mkdtemp(prefix="sim_board."))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._workdir), True)

    # -------------------------------------------------------------- pynq's Device interface
    def get_bitfile_metadata(self, bitfile_name: str, partial: bool = False):
        """pynq's own metadata parser on the .hwh next to the bitfile (no XRT needed)."""
        from pynq.pl_server import embedded_device as ed

        hwh = Path(bitfile_name).with_suffix(".hwh")
        if not hwh.exists():
            raise SimulatedBoardError(f"'{hwh}' is missing: pynq needs the .hwh next to the bitstream")
        parser = ed.RuntimeMetadataParser(ed.Metadata(input=hwh))
        parser.refresh_hierarchy_dict()
        parser.bin_data = ed._get_bitstream_handler(bitfile_name).get_bin_data()
        parser.xclbin_data = None
        parser.dtbo_data = None
        return parser

    def download(self, bitstream, parser=None) -> None:
        """Program the fabric: check the bitstream belongs to this build, build the DMA
        models from the .hwh and (re)start the RTL from reset."""
        identity = simulation_identity(Path(bitstream.bitfile_name))
        if identity is not None:
            if identity != interface_identity(self.build_dir):
                raise SimulatedBoardError(
                    f"'{bitstream.bitfile_name}' is the simulation bitstream of another build (its interface record "
                    f"differs from {self.build_dir / INTERFACE_NAME}): use the deploy package of this build.")
        self._stop_fabric()
        self.dmas = {}
        for name, ip in parser.ip_dict.items():
            if ip.get("type", "").split(":")[2:3] == ["axi_dma"] and ip.get("phys_addr") is not None:
                self.dmas[int(ip["phys_addr"])] = AxiDmaModel(name, ip["parameters"], self.ddr, self)
        for dma in self.dmas.values():
            if dma.mm2s_bits != self.record.in_bits or dma.s2mm_bits != self.record.out_bits:
                raise SimulatedBoardError(
                    f"the .hwh's DMA '{dma.name}' streams {dma.mm2s_bits} bits out and {dma.s2mm_bits} in, but the "
                    f"RTL of {self.build_dir} takes {self.record.in_bits} and gives {self.record.out_bits}: this "
                    "bitstream was not built from this build's RTL.")
        from deploy.rtl_cosim import RtlCosim

        run_dir = self._workdir / "run"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir()
        self.cosim = RtlCosim(self.build_dir / "rtl", self.record, run_dir, stall=self.stall, seed=self.seed)
        self.post_download(bitstream, parser)

    def post_download(self, bitstream, parser, name: str = "Unknown") -> None:
        super().post_download(bitstream, parser)

    def allocate(self, shape, dtype, cacheable: bool = False, **kwargs) -> PynqBuffer:
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        base, backing = self.ddr.add(nbytes)
        if cacheable:  # the CPU's cached view: DDR only sees it after flush()
            cpu = np.zeros(len(backing), dtype=np.uint8)
            buf = PynqBuffer(shape, dtype, buffer=cpu, device=self, device_address=base, bo=base, coherent=False)
        else:
            buf = PynqBuffer(shape, dtype, buffer=backing, device=self, device_address=base, bo=base, coherent=True)
        return buf

    def flush(self, bo, offset, ptr, size) -> None:
        dst = self.ddr.region(int(bo) + int(offset), int(size))
        ctypes.memmove(dst.ctypes.data, ptr, int(size))

    def invalidate(self, bo, offset, ptr, size) -> None:
        src = self.ddr.region(int(bo) + int(offset), int(size))
        ctypes.memmove(ptr, src.ctypes.data, int(size))

    def read_registers(self, address: int, length: int) -> bytes:
        return self._register(address, length).to_bytes(length, "little")

    def write_registers(self, address: int, data: bytes) -> None:
        for k in range(0, len(data), 4):
            self._register(address + k, 4, int.from_bytes(data[k:k + 4], "little"))

    def _register(self, address: int, length: int, value: int | None = None) -> int:
        if SLCR_BASE <= address < SLCR_BASE + SLCR_SIZE:
            off = address - SLCR_BASE
            if value is not None:
                _SLCR[off] = value
            return _SLCR.get(off, 0)
        for base, dma in self.dmas.items():
            if base <= address < base + 0x10000:
                if value is not None:
                    dma.write(address - base, value)
                    return 0
                return dma.read(address - base)
        raise SimulatedBoardError(f"register access at 0x{address:08X}: no IP of the loaded design answers there "
                                  "(on a board: a bus error)")

    # -------------------------------------------------------------- the fabric
    def advance(self) -> None:
        """Time passes as the driver polls. While a transfer moves, the fabric runs until the
        next transfer ends (or a slice of ACTIVE_SLICE_CYCLES), so a transfer's end is its exact
        cycle; with nothing to move, a poll costs the time one register read takes."""
        if self.cosim is None:
            return
        res = self.cosim.run(max_cycles=ACTIVE_SLICE_CYCLES, idle_cycles=max(1, int(fclk_mhz(0) * REGISTER_READ_US)))
        for dma in self.dmas.values():
            dma.took_input(res.taken, res.last_taken_cycle)
            dma.received(res.outputs)

    def elapsed_s(self) -> float:
        """The fabric's time so far: its cycle count at FCLK0 (what the driver times with)."""
        return (self.cosim.cycle if self.cosim else 0) / (fclk_mhz(0) * 1e6)

    def _stop_fabric(self) -> None:
        if self.cosim is not None:
            self.cosim.close()
            self.cosim = None

    def close(self) -> None:
        """Power off: stop the Verilator process and remove its run folder."""
        self._stop_fabric()
        self._cleanup()
