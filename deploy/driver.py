"""Driver of a generated accelerator: ``Accelerator(bitfile)`` on a PYNQ board (AXI DMA on
Zynq, data-mover kernels on Alveo), ``Accelerator.simulated(build_dir)`` on any host. One
code path: the simulated accelerator is the board path (pynq's Overlay, allocate and AXI
DMA driver) over a simulated Zynq (:mod:`deploy.sim_board`: a ``pynq.Device`` with a
register-level AXI DMA and the build's RTL in Verilator).

    from deploy.driver import Accelerator
    accel = Accelerator("bitfile/accel.bit")        # on the board (accel.json next to it)
    labels = accel.infer(images)                    # uint8 (N, C, H, W) -> int64 (N,)
    accel.throughput(10_000)                        # images/s, MB/s
    accel.execute(images), accel.throughput_test()  # FINN's driver names and keys

Before pynq loads a bitstream, the driver reads its .hwh and checks it against accel.json
(the DMA cell and its version, simple mode, stream widths, the accelerator's frame format,
the PL clock): a mismatch is a named error, not a hang or a silent wrong label. Every DMA
transfer is checked: error bits decoded at once, the received byte count compared with
what the frames must return.

Importing this module does not import pynq or touch any hardware; pynq is imported when a
board ``Accelerator`` is created.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np

from deploy import packing
from deploy.config import AccelConfig
from deploy.handoff import HandoffError, read_handoff, simulation_identity
from deploy.interface import AXI_DMA_VLNV

DEFAULT_BATCH = 1024
NO_BOARD = ("No PYNQ board found: pynq sees no FPGA device on this machine, so Accelerator(bitfile) cannot load "
            "'{bitfile}'. Run it on the board itself (copy the deploy package there), or on a host use "
            "Accelerator.simulated(build_dir) to run the same driver against a simulated board.")
#: PG021 simple-mode register offsets of the channels' status registers (DMASR) and their bits
MM2S_DMASR, S2MM_DMASR = 0x04, 0x34
DMASR_ERRORS = {0x10: "DMAIntErr (internal error: a transfer length of 0, or for S2MM a stream packet longer "
                      "than the buffer, i.e. no tlast by its end)",
                0x20: "DMASlvErr (slave error: the memory interconnect refused an access)",
                0x40: "DMADecErr (decode error: no memory at the buffer's physical address)"}


class AcceleratorError(RuntimeError):
    """A problem with the accelerator, its bitstream or a transfer, named for the user."""


class DmaError(AcceleratorError):
    """The AXI DMA reported an error in its status register."""


class TransferError(AcceleratorError):
    """A transfer finished, but moved other than what the frames must move."""


class Transport(Protocol):
    kind: str
    description: str

    def run(self, words: np.ndarray, frames: int, timeout_s: float) -> np.ndarray:
        """Send ``words`` ((W, bytes_per_word) uint8) as one transfer; return (frames, out_bytes) uint8."""
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- board transports
def _import_pynq(bitfile: Path, device=None):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pynq
    except ImportError:
        raise AcceleratorError("pynq is not installed: " + NO_BOARD.format(bitfile=bitfile)) from None
    if device is not None:
        return pynq
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynq warns "No devices found" on a host
        try:
            devices = list(pynq.Device.devices)
        except RuntimeError:
            devices = []
    if not devices:
        raise AcceleratorError(NO_BOARD.format(bitfile=bitfile))
    return pynq


def _wait(done, deadline: float, what: str, timeout_s: float, frames: int, now=time.monotonic) -> None:
    """Poll ``done()`` (which may raise on a DMA error) until it is true or ``now()`` passes the deadline."""
    while not done():
        if now() > deadline:
            raise TimeoutError(
                f"the accelerator did not finish {what} within {timeout_s:g} s ({frames} frames). The bitstream "
                "may not match accel.json (input shape, stream widths) or the design is stuck; create a new "
                "Accelerator to reload the bitstream.")
        time.sleep(1e-4)


def check_handoff(bitfile: Path, cfg: AccelConfig) -> dict:
    """Compare the .hwh next to ``bitfile`` with accel.json before pynq loads anything; return
    what the driver takes from it (the PL clock). Raises AcceleratorError naming the mismatch."""
    try:
        hwh = read_handoff(bitfile.with_suffix(".hwh"))
    except HandoffError as exc:
        raise AcceleratorError(str(exc)) from None
    where = f"'{hwh.path}'"
    dma = hwh.cells.get(cfg.dma_name)
    if dma is None or dma.ip_name != "axi_dma":
        dmas = [c.name for c in hwh.cells_of("axi_dma")]
        raise AcceleratorError(
            f"{where} has no AXI DMA named '{cfg.dma_name}' (accel.json's dma_name); its AXI DMA cells: "
            f"{dmas or 'none'}, all cells: {sorted(hwh.cells)}. The bitstream and accel.json come from different "
            "builds, or the block design's DMA cell was renamed: rebuild the deploy package from one build.")
    if dma.vlnv != AXI_DMA_VLNV:
        raise AcceleratorError(
            f"{where}: the DMA '{dma.name}' is {dma.vlnv}, but pynq's DMA driver binds only {AXI_DMA_VLNV} (with "
            "any other version the overlay gives a DefaultIP without sendchannel). Rebuild the bitstream with "
            "the generated block_design.tcl, which pins axi_dma 7.1.")
    p = dma.parameters

    def num(key: str, default: int) -> int:
        try:
            return int(p.get(key, default))
        except ValueError:
            raise AcceleratorError(f"{where}: the DMA parameter {key}={p.get(key)!r} is not a number") from None

    problems = []
    if num("c_include_sg", 1):
        problems.append("it is configured for scatter-gather (c_include_sg=1), the driver uses simple mode")
    if not num("c_include_mm2s", 1) or not num("c_include_s2mm", 1):
        problems.append("it lacks an MM2S or S2MM channel")
    if num("c_m_axis_mm2s_tdata_width", 32) != cfg.dma_bits:
        problems.append(f"its MM2S stream is {num('c_m_axis_mm2s_tdata_width', 32)} bits, accel.json's dma_bits "
                        f"is {cfg.dma_bits}")
    if num("c_s_axis_s2mm_tdata_width", 32) != cfg.out_bits:
        problems.append(f"its S2MM stream is {num('c_s_axis_s2mm_tdata_width', 32)} bits, accel.json's out_bits "
                        f"is {cfg.out_bits}")
    accel_cells = [c for c in hwh.cells.values() if "FRAME_H" in c.parameters]
    if accel_cells:
        a = accel_cells[0].parameters
        c, h, w = cfg.input_shape
        have = {"IN_BITS": cfg.dma_bits, "OUT_BITS": cfg.out_bits, "LABEL_BITS": cfg.label_bits,
                "FRAME_H": h, "FRAME_W": w, "FRAME_C": c, "WORDS_PER_FRAME": cfg.words_per_frame}
        for key, value in have.items():
            if key in a and str(a[key]) != str(value):
                problems.append(f"the accelerator '{accel_cells[0].name}' has {key}={a[key]}, accel.json "
                                f"implies {value}")
    if problems:
        raise AcceleratorError(f"{where} does not match accel.json for DMA '{dma.name}': " + "; ".join(problems)
                               + ". The bitstream and accel.json come from different builds: use the deploy "
                                 "package of the build that made this bitstream.")
    requested, achieved = hwh.pl_clock_mhz(0)
    if requested is not None and abs(requested - cfg.clock_mhz) > 0.01 * cfg.clock_mhz:
        raise AcceleratorError(f"{where} sets the PL clock to {requested:g} MHz, accel.json says the design was "
                               f"built for {cfg.clock_mhz:g} MHz: the bitstream and accel.json come from "
                               "different builds.")
    return {"requested_mhz": requested, "achieved_mhz": achieved, "length_bits": num("c_sg_length_width", 14)}


class ZynqDMA:
    """The AXI DMA in simple mode through pynq's own driver: MM2S sends the words, S2MM
    receives the labels. ``device``: a pynq Device to load onto (default: the board's)."""

    def __init__(self, bitfile: Path, cfg: AccelConfig, download: bool = True, device=None) -> None:
        pynq = _import_pynq(bitfile, device)
        hwh = bitfile.with_suffix(".hwh")
        if not hwh.exists():
            raise FileNotFoundError(f"'{hwh}' is missing: pynq needs the hardware handoff file next to the "
                                    "bitstream (same name, .hwh).")
        simulated = device is not None and hasattr(device, "elapsed_s")
        if simulation_identity(bitfile) is not None and not simulated:
            raise AcceleratorError(
                f"'{bitfile}' is the simulation stand-in bitstream (the build had no Vivado): it configures "
                "nothing on a board. Make the real bitstream with the build's vivado/ scripts and put accel.bit "
                "and accel.hwh into bitfile/.")
        self.handoff = check_handoff(bitfile, cfg)
        self._pynq = pynq
        self.cfg = cfg
        self.kind = "simulation" if simulated else "board"
        #: the least timeout: host scheduling makes a wall clock jitter; the fabric's clock does not
        self.min_timeout_s = 0.0 if simulated else 5.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.overlay = pynq.Overlay(str(bitfile), download=False, device=device)
        if download:
            self._fill_pl_clocks()
            self.overlay.download()
        self.fclk_mhz = self._achieved_clock()
        self.dma = getattr(self.overlay, cfg.dma_name, None)
        if self.dma is None or not hasattr(self.dma, "sendchannel") or self.dma.sendchannel is None:
            raise AcceleratorError(
                f"pynq did not bind its DMA driver to '{cfg.dma_name}' in '{bitfile}' (got "
                f"{type(self.dma).__name__}); the overlay has: {', '.join(sorted(self.overlay.ip_dict))}.")
        #: the largest transfer, from the .hwh's length register width (pynq refuses longer ones)
        self.max_transfer_bytes = int(self.dma.buffer_max_size)
        self._device = device if device is not None else self.overlay.device
        self._target = device  # pynq.allocate's target: None is the board's own device
        self._buffers: dict[tuple[int, int], tuple] = {}
        self._broken = False
        self.last_run: dict = {}
        self.description = (f"AXI DMA '{cfg.dma_name}' of {bitfile}" if not simulated else
                            f"AXI DMA '{cfg.dma_name}' of {bitfile} on a simulated Zynq (RTL in Verilator)")

    # -------------------------------------------------------------- clocks
    def _fill_pl_clocks(self) -> None:
        """pynq 4.0 with pynqmetadata 0.2 finds no PL clock rate in a Zynq-7000 .hwh and its
        Overlay.download() then fails with a TypeError (Xilinx/PYNQ#1607): give it the rate the
        .hwh's processing system was configured with."""
        clocks = getattr(self.overlay, "clock_dict", {}) or {}
        for i, clk in clocks.items():
            if "frequency" in clk and clk["frequency"] is None and clk.get("enable"):
                requested, achieved = read_handoff(Path(self.overlay.bitfile_name).with_suffix(".hwh")).pl_clock_mhz(i)
                rate = achieved or requested
                if rate is None:
                    raise AcceleratorError(f"the .hwh gives no rate for PL clock {i} and this pynq needs one")
                clk["frequency"] = rate

    def _achieved_clock(self) -> float:
        """FCLK0 as the PS clock registers give it after the download (what the fabric runs at)."""
        try:
            mhz = float(self._pynq.Clocks.fclk0_mhz)
        except Exception:  # a platform pynq cannot read clocks on (Alveo, remote): the .hwh's value
            mhz = float(self.handoff.get("achieved_mhz") or self.cfg.clock_mhz)
        if abs(mhz - self.cfg.clock_mhz) > 0.01 * self.cfg.clock_mhz:
            warnings.warn(f"the PL clock runs at {mhz:g} MHz, the design was built for {self.cfg.clock_mhz:g} MHz "
                          "(the closest the processing system's dividers get, or another overlay changed it)",
                          stacklevel=3)
        return mhz

    def now(self) -> float:
        """Seconds on the clock transfers are timed with: the fabric's own on a simulated board
        (its cycles at FCLK0), the wall clock on a real one."""
        elapsed = getattr(self._device, "elapsed_s", None)
        return elapsed() if elapsed is not None else time.perf_counter()

    # -------------------------------------------------------------- buffers
    def _get_buffers(self, words: int, frames: int) -> tuple:
        key = (words, frames)
        if key not in self._buffers:
            if len(self._buffers) >= 2:  # a full batch and a last partial one are enough
                self._free_buffers()
            # cacheable: the CPU writes and reads them at full speed; pynq's DMA driver flushes the
            # send buffer in transfer() and invalidates the receive buffer in wait()
            self._buffers[key] = (
                self._pynq.allocate(shape=(words, self.cfg.bytes_per_word), dtype=np.uint8, target=self._target,
                                    cacheable=True),
                self._pynq.allocate(shape=packing.label_buffer_shape(frames, self.cfg), dtype=np.uint8,
                                    target=self._target, cacheable=True),
            )
        return self._buffers[key]

    def _free_buffers(self) -> None:
        for ib, ob in self._buffers.values():
            ib.freebuffer()
            ob.freebuffer()
        self._buffers.clear()

    # -------------------------------------------------------------- transfers
    def _status(self, offset: int, channel: str) -> bool:
        """True when the channel is idle; raises DmaError at once on its error bits (PG021 DMASR)."""
        sr = int(self.dma.mmio.read(offset))
        errors = [text for bit, text in DMASR_ERRORS.items() if sr & bit]
        if errors:
            self._broken = True
            raise DmaError(f"AXI DMA '{self.cfg.dma_name}' {channel} reported {'; '.join(errors)} "
                           f"(DMASR=0x{sr:08X}). Create a new Accelerator to reset the DMA and reload the bitstream; "
                           "if it happens again, the bitstream does not match accel.json.")
        return bool(sr & 0x2)

    def run(self, words: np.ndarray, frames: int, timeout_s: float) -> np.ndarray:
        if self._broken:
            raise AcceleratorError("an earlier transfer failed or timed out and left the DMA busy; create a new "
                                   "Accelerator (it reloads the bitstream).")
        nbytes = words.size
        if nbytes > self.max_transfer_bytes:
            raise AcceleratorError(f"{frames} frames are {nbytes} bytes, more than one transfer of DMA "
                                   f"'{self.cfg.dma_name}' can move ({self.max_transfer_bytes} bytes, from its "
                                   "length register in the .hwh): use a smaller batch_size.")
        ibuf, obuf = self._get_buffers(len(words), frames)
        ibuf[:] = words
        send, recv = self.dma.sendchannel, self.dma.recvchannel
        t0 = self.now()
        recv.transfer(obuf)
        send.transfer(ibuf)
        deadline = self.now() + timeout_s  # on the board's clock: the fabric's own when simulated
        try:
            _wait(lambda: self._status(MM2S_DMASR, "MM2S"), deadline, "reading the images (DMA MM2S)", timeout_s,
                  frames, self.now)
            _wait(lambda: self._status(S2MM_DMASR, "S2MM"), deadline, "returning the labels (DMA S2MM)", timeout_s,
                  frames, self.now)
        except TimeoutError:
            self._broken = True
            raise
        seconds = self.now() - t0
        send.wait()
        recv.wait()
        expected = frames * self.cfg.out_bytes
        if recv.transferred != expected:
            self._broken = True
            raise TransferError(
                f"the accelerator returned {recv.transferred} bytes (DMA S2MM ended at tlast) for {frames} images, "
                f"which must return {expected} bytes ({self.cfg.out_bytes} per label): the bitstream does not "
                "match accel.json (input shape or stream widths). No labels were taken from the short buffer.")
        self.last_run = {"frames": frames, "bytes_in": int(nbytes), "bytes_out": int(expected), "seconds": seconds}
        return np.array(obuf, dtype=np.uint8)

    def close(self) -> None:
        self._free_buffers()
        if self.kind == "simulation":  # the simulated board powers off (its Verilator process ends)
            self._device.close()


class AlveoKernels:
    """Alveo: the mm2s/s2mm data-mover kernels around the free-running accelerator kernel."""

    kind = "board"

    def __init__(self, bitfile: Path, cfg: AccelConfig, download: bool = True) -> None:
        pynq = _import_pynq(bitfile)
        self._pynq = pynq
        self.cfg = cfg
        self.overlay = pynq.Overlay(str(bitfile), download=download)
        try:
            self.mm2s = getattr(self.overlay, cfg.mm2s_name)
            self.s2mm = getattr(self.overlay, cfg.s2mm_name)
        except AttributeError:
            raise RuntimeError(f"the xclbin '{bitfile}' has no data movers {cfg.mm2s_name}/{cfg.s2mm_name} (it has: "
                               f"{', '.join(sorted(self.overlay.ip_dict))})") from None
        self.description = f"data movers {cfg.mm2s_name}/{cfg.s2mm_name} of {bitfile}"

    def run(self, words: np.ndarray, frames: int, timeout_s: float) -> np.ndarray:
        ibuf = self._pynq.allocate(shape=words.shape, dtype=np.uint8)
        obuf = self._pynq.allocate(shape=packing.label_buffer_shape(frames, self.cfg), dtype=np.uint8)
        try:
            ibuf[:] = words
            ibuf.sync_to_device()
            h_out = self.s2mm.start(obuf, frames)
            h_in = self.mm2s.start(ibuf, len(words))
            deadline = time.monotonic() + timeout_s
            for h, what in ((h_in, "reading the images (mm2s)"), (h_out, "returning the labels (s2mm)")):
                if hasattr(h, "done"):
                    _wait(lambda h=h: h.done, deadline, what, timeout_s, frames)
                h.wait()
            obuf.sync_from_device()
            return np.array(obuf, dtype=np.uint8)
        finally:
            ibuf.freebuffer()
            obuf.freebuffer()

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- the accelerator
class Accelerator:
    """A generated accelerator: ``infer`` uint8 images (N, C, H, W) into int64 labels."""

    def __init__(self, bitfile: str | Path, config: AccelConfig | str | Path | None = None, *,
                 batch_size: int | None = None, timeout_s: float | None = None, download: bool = True,
                 device=None) -> None:
        """Load ``bitfile`` (``accel.bit`` with its ``.hwh``, or ``accel.xclbin``) on the board.

        ``config``: the accelerator description; by default the ``accel.json`` next to the
        bitfile (or one folder up). ``timeout_s``: per batch; default generous (20x the
        expected time, at least 5 s). ``device``: the pynq Device to load onto (default:
        the board's; :meth:`simulated` passes a simulated Zynq). Raises AcceleratorError
        when no board is found or the bitstream does not match the config."""
        path = Path(bitfile)
        if not path.exists():
            raise FileNotFoundError(f"bitfile '{path}' not found. The deploy package has it under bitfile/ once "
                                    "Vivado has made it (see vivado/README.md in the build folder).")
        if isinstance(config, AccelConfig):
            cfg = config
        elif config is not None:
            cfg = AccelConfig.load(Path(config))
        else:
            cfg, _ = AccelConfig.find(path)
        if cfg.is_alveo or path.suffix == ".xclbin":
            transport: Transport = AlveoKernels(path, cfg, download)
        else:
            transport = ZynqDMA(path, cfg, download, device=device)
        self._setup(cfg, transport, batch_size, timeout_s)

    @classmethod
    def simulated(cls, build_dir: str | Path, *, bitfile: str | Path | None = None, config=None,
                  batch_size: int | None = None, timeout_s: float | None = None, stall: float = 0.0,
                  seed: int = 0) -> Accelerator:
        """The accelerator of ``build_dir`` on a simulated Zynq: the same board code path (pynq's
        Overlay, allocate, AXI DMA driver) over a register-level AXI DMA model with the build's
        RTL in Verilator behind it.

        ``bitfile``: what the simulated board serves (default: the build's Vivado bitstream if
        there is one, else ``vivado/simulation/accel.bit`` with the .hwh derived from the
        block design's Tcl). ``stall``: probability of a stalled stream cycle (a busy memory
        port); ``seed`` makes those stalls repeatable."""
        from deploy.sim_board import SimulatedZynq

        build_dir = Path(build_dir)
        cfg = config if config is not None else AccelConfig.from_build(build_dir)
        if bitfile is None:
            candidates = [build_dir / "vivado" / "bitfile" / "accel.bit", build_dir / "vivado" / "simulation" / "accel.bit"]
            found = [c for c in candidates if c.exists()]
            bitfile = found[0] if found else _write_simulation_bitfile(build_dir, cfg, candidates[1])
        device = SimulatedZynq(build_dir, stall=stall, seed=seed)
        return cls(bitfile, cfg, batch_size=batch_size, timeout_s=timeout_s, device=device)

    @classmethod
    def with_transport(cls, cfg: AccelConfig, transport: Transport, *, batch_size: int | None = None,
                       timeout_s: float | None = None) -> Accelerator:
        """An accelerator over any transport (for tests and other hosts)."""
        self = cls.__new__(cls)
        self._setup(cfg, transport, batch_size, timeout_s)
        return self

    def _setup(self, cfg: AccelConfig, transport: Transport, batch_size: int | None,
               timeout_s: float | None) -> None:
        self.config = cfg
        self._transport = transport
        bs = DEFAULT_BATCH if batch_size is None else _positive_int(batch_size, "batch_size")
        self.batch_size = min(bs, self.max_frames_per_transfer)
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.timeout_s = timeout_s

    # ---------------------------------------------------------------- info
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return self.config.input_shape

    @property
    def transport(self) -> str:
        return self._transport.kind

    @property
    def max_frames_per_transfer(self) -> int:
        """Frames one DMA transfer can carry: from the .hwh's length register on a Zynq board."""
        limit = getattr(self._transport, "max_transfer_bytes", None) or self.config.max_transfer_bytes
        return max(1, int(limit) // self.config.padded_frame_bytes)

    @property
    def fclk_mhz(self) -> float:
        """The PL clock the fabric runs at (read back from the PS after the download on a Zynq)."""
        return float(getattr(self._transport, "fclk_mhz", None) or self.config.clock_mhz)

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return (f"Accelerator({self.config.model} on {self.config.board}, input (N, {c}, {h}, {w}) uint8, "
                f"{self._transport.description})")

    def _timeout(self, frames: int) -> float:
        if self.timeout_s is not None:
            return self.timeout_s
        cfg = self.config
        cycles = max(cfg.cycles_per_frame or 0, cfg.words_per_frame) * frames
        floor = float(getattr(self._transport, "min_timeout_s", 5.0))
        return max(floor, 20.0 * cycles / (cfg.clock_mhz * 1e6))

    def _batch(self, batch_size: int | None) -> int:
        bs = self.batch_size if batch_size is None else _positive_int(batch_size, "batch_size")
        return min(bs, self.max_frames_per_transfer)

    # ---------------------------------------------------------------- inference
    def _run_packed(self, words: np.ndarray, frames: int) -> np.ndarray:
        raw = self._transport.run(words, frames, self._timeout(frames))
        return packing.unpack_labels(raw, self.config)

    def infer(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Labels (int64, shape (N,)) of uint8 images shaped (N, C, H, W) like the model input."""
        images = packing.check_images(x, self.config.input_shape)
        bs = self._batch(batch_size)
        n = images.shape[0]
        labels = np.empty(n, dtype=np.int64)
        for start in range(0, n, bs):
            chunk = images[start:start + bs]
            labels[start:start + len(chunk)] = self._run_packed(packing.pack_images(chunk, self.config), len(chunk))
        return labels

    def execute(self, x: np.ndarray) -> np.ndarray:
        """FINN's driver name: the labels of a batch shaped (N, 1), as FINN's execute returns them."""
        return self.infer(x).reshape(-1, 1)

    def _timed_runs(self, n: int, bs: int, seed: int) -> tuple[float, int]:
        """Stream ``n`` random images in transfers of ``bs`` (packed beforehand, as a streaming
        application overlaps it); return the seconds the DMA transfers took and the count."""
        cfg = self.config
        rng = np.random.default_rng(seed)
        batch = rng.integers(0, 256, size=(bs, *cfg.input_shape), dtype=np.uint8)
        words = packing.pack_images(batch, cfg)
        seconds, runs = 0.0, 0
        for start in range(0, n, bs):
            k = min(bs, n - start)
            t0 = time.perf_counter()
            self._transport.run(words[:k * cfg.words_per_frame], k, self._timeout(k))
            # a DMA transport reports the transfer time on its own clock (the fabric's, simulated)
            seconds += float(getattr(self._transport, "last_run", {}).get("seconds", time.perf_counter() - t0))
            runs += 1
        return seconds, runs

    def throughput(self, n: int = 1000, batch_size: int | None = None, seed: int = 0) -> dict:
        """Measure ``n`` random images through the DMA. Returns images, seconds (DMA transfer time:
        on a simulated board the fabric's cycles at its clock), images_per_s, input_mb_per_s,
        output_mb_per_s (MB = 1e6 bytes, padded words as moved), batch_size, transport and the
        PL clock; a simulated board adds cycles and hw_images_per_s (the same rate)."""
        n = _positive_int(n, "n")
        cfg = self.config
        bs = self._batch(batch_size)
        seconds, _ = self._timed_runs(n, bs, seed)
        result = {
            "images": n,
            "seconds": seconds,
            "images_per_s": n / seconds,
            "input_mb_per_s": n * cfg.padded_frame_bytes / seconds / 1e6,
            "output_mb_per_s": n * cfg.out_bytes / seconds / 1e6,
            "batch_size": bs,
            "transport": self._transport.kind,
            "fclk_mhz": self.fclk_mhz,
            "timer": "fabric cycles at the PL clock" if self._transport.kind == "simulation" else "wall clock",
        }
        if self._transport.kind == "simulation":
            result["cycles"] = int(round(seconds * self.fclk_mhz * 1e6))
            result["clock_mhz"] = self.fclk_mhz
            result["hw_images_per_s"] = n / seconds
            result["note"] = "simulated board: DMA transfer time counted in fabric cycles at the PL clock"
        return result

    def throughput_test(self, batch_size: int | None = None, seed: int = 0) -> dict:
        """FINN's throughput test: one batch of random images through the DMA, with FINN's keys
        (runtime[ms] is the DMA transfer time)."""
        bs = self._batch(batch_size)
        seconds, _ = self._timed_runs(bs, bs, seed)
        cfg = self.config
        return {
            "runtime[ms]": seconds * 1e3,
            "throughput[images/s]": bs / seconds,
            "DRAM_in_bandwidth[MB/s]": bs * cfg.padded_frame_bytes / seconds / 1e6,
            "DRAM_out_bandwidth[MB/s]": bs * cfg.out_bytes / seconds / 1e6,
            "fclk[mhz]": self.fclk_mhz,
            "batch_size": bs,
        }

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_simulation_bitfile(build_dir: Path, cfg: AccelConfig, target: Path) -> Path:
    """A build that stopped before the vivado step: write its Vivado scripts (as that step
    would) to derive the .hwh the simulated board serves."""
    try:
        from hw_build import boards
        from hw_build.vivado import write_scripts
    except ImportError:
        raise FileNotFoundError(f"'{build_dir}' has no bitstream to serve ({target} is written by the build's "
                                "vivado step): run the build through the vivado step (--from vivado).") from None
    write_scripts(build_dir, boards.get(cfg.board), cfg.clock_mhz)
    return target


def _positive_int(value: object, name: str) -> int:
    """``value`` as a positive int, or a ValueError naming ``name`` (bools, floats with a
    fraction, strings and NaN are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    if isinstance(value, (float, np.floating)) and (not np.isfinite(value) or value != int(value)):
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    if int(value) < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)
