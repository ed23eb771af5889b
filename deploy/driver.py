"""Driver of a generated accelerator: ``Accelerator(bitfile)`` on a PYNQ board (AXI DMA on
Zynq, data-mover kernels on Alveo), ``Accelerator.simulated(build_dir)`` on any host
(Verilator). Same class, same API; only the transport that moves packed words in and
labels out differs.

    from deploy.driver import Accelerator
    accel = Accelerator("bitfile/accel.bit")        # on the board (accel.json next to it)
    labels = accel.infer(images)                    # uint8 (N, C, H, W) -> int64 (N,)
    accel.throughput(10_000)                        # images/s, MB/s

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

DEFAULT_BATCH = 1024
NO_BOARD = ("No PYNQ board found: pynq sees no FPGA device on this machine, so Accelerator(bitfile) cannot load "
            "'{bitfile}'. Run it on the board itself (copy the deploy package there), or on a host use "
            "Accelerator.simulated(build_dir) to run the same driver against a Verilator simulation.")


class Transport(Protocol):
    kind: str
    description: str

    def run(self, words: np.ndarray, frames: int, timeout_s: float) -> np.ndarray:
        """Send ``words`` ((W, bytes_per_word) uint8) as one transfer; return (frames, out_bytes) uint8."""
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- board transports
def _import_pynq(bitfile: Path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pynq
    except ImportError:
        raise RuntimeError("pynq is not installed: " + NO_BOARD.format(bitfile=bitfile)) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynq warns "No devices found" on a host
        try:
            devices = list(pynq.Device.devices)
        except RuntimeError:
            devices = []
    if not devices:
        raise RuntimeError(NO_BOARD.format(bitfile=bitfile))
    return pynq


def _wait(done, deadline: float, what: str, timeout_s: float, frames: int) -> None:
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the accelerator did not finish {what} within {timeout_s:g} s ({frames} frames). The bitstream "
                "may not match accel.json (input shape, stream widths) or the design is stuck; create a new "
                "Accelerator to reload the bitstream.")
        time.sleep(1e-4)


class ZynqDMA:
    """AXI DMA in simple mode: MM2S sends the words, S2MM receives the labels."""

    kind = "board"

    def __init__(self, bitfile: Path, cfg: AccelConfig, download: bool = True) -> None:
        pynq = _import_pynq(bitfile)
        if not bitfile.with_suffix(".hwh").exists():
            raise FileNotFoundError(f"'{bitfile.with_suffix('.hwh')}' is missing: pynq needs the hardware handoff "
                                    "file next to the bitstream (same name, .hwh).")
        self._pynq = pynq
        self.cfg = cfg
        self.overlay = pynq.Overlay(str(bitfile), download=download)
        self.dma = getattr(self.overlay, cfg.dma_name, None)
        if self.dma is None:
            raise RuntimeError(f"the overlay '{bitfile}' has no IP named '{cfg.dma_name}' (it has: "
                               f"{', '.join(sorted(self.overlay.ip_dict))}); is this the bitstream of this build?")
        self._buffers: dict[tuple[int, int], tuple] = {}
        self._broken = False
        self.description = f"AXI DMA '{cfg.dma_name}' of {bitfile}"

    def _get_buffers(self, words: int, frames: int) -> tuple:
        key = (words, frames)
        if key not in self._buffers:
            if len(self._buffers) >= 2:  # a full batch and a last partial one are enough
                for ib, ob in self._buffers.values():
                    ib.freebuffer()
                    ob.freebuffer()
                self._buffers.clear()
            self._buffers[key] = (
                self._pynq.allocate(shape=(words, self.cfg.bytes_per_word), dtype=np.uint8),
                self._pynq.allocate(shape=packing.label_buffer_shape(frames, self.cfg), dtype=np.uint8),
            )
        return self._buffers[key]

    def run(self, words: np.ndarray, frames: int, timeout_s: float) -> np.ndarray:
        if self._broken:
            raise RuntimeError("an earlier transfer timed out and left the DMA busy; create a new Accelerator "
                               "(it reloads the bitstream).")
        ibuf, obuf = self._get_buffers(len(words), frames)
        ibuf[:] = words
        ibuf.flush()
        send, recv = self.dma.sendchannel, self.dma.recvchannel
        recv.transfer(obuf)
        send.transfer(ibuf)
        deadline = time.monotonic() + timeout_s
        try:
            _wait(lambda: send.idle, deadline, "reading the images (DMA MM2S)", timeout_s, frames)
            _wait(lambda: recv.idle, deadline, "returning the labels (DMA S2MM)", timeout_s, frames)
        except TimeoutError:
            self._broken = True
            raise
        send.wait()
        recv.wait()
        obuf.invalidate()
        return np.array(obuf, dtype=np.uint8)

    def close(self) -> None:
        for ib, ob in self._buffers.values():
            ib.freebuffer()
            ob.freebuffer()
        self._buffers.clear()


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
                 batch_size: int | None = None, timeout_s: float | None = None, download: bool = True) -> None:
        """Load ``bitfile`` (``accel.bit`` with its ``.hwh``, or ``accel.xclbin``) on the board.

        ``config``: the accelerator description; by default the ``accel.json`` next to the
        bitfile (or one folder up). ``timeout_s``: per batch; default generous (20x the
        expected time, at least 5 s). Raises RuntimeError when no board is found."""
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
        transport_cls = AlveoKernels if (cfg.is_alveo or path.suffix == ".xclbin") else ZynqDMA
        self._setup(cfg, transport_cls(path, cfg, download), batch_size, timeout_s)

    @classmethod
    def simulated(cls, build_dir: str | Path, *, batch_size: int | None = None, stall: float = 0.0,
                  seed: int = 0) -> Accelerator:
        """The accelerator of ``build_dir`` as a Verilator simulation of its ``rtl/accel_top.v``.

        ``stall``: probability of a stalled input/output cycle (as a busy DMA would cause);
        ``seed`` makes those stalls repeatable."""
        from deploy.sim_transport import SimTransport

        build_dir = Path(build_dir)
        cfg = AccelConfig.from_build(build_dir)
        self = cls.__new__(cls)
        self._setup(cfg, SimTransport(build_dir / "rtl", cfg, stall=stall, seed=seed), batch_size, None)
        return self

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
        limit = cfg.max_frames_per_transfer
        bs = DEFAULT_BATCH if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = min(bs, limit)
        if timeout_s is not None and timeout_s <= 0:
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

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return (f"Accelerator({self.config.model} on {self.config.board}, input (N, {c}, {h}, {w}) uint8, "
                f"{self._transport.description})")

    def _timeout(self, frames: int) -> float:
        if self.timeout_s is not None:
            return self.timeout_s
        cfg = self.config
        cycles = max(cfg.cycles_per_frame or 0, cfg.words_per_frame) * frames
        return max(5.0, 20.0 * cycles / (cfg.clock_mhz * 1e6))

    # ---------------------------------------------------------------- inference
    def _run_packed(self, words: np.ndarray, frames: int) -> np.ndarray:
        raw = self._transport.run(words, frames, self._timeout(frames))
        return packing.unpack_labels(raw, self.config)

    def infer(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Labels (int64, shape (N,)) of uint8 images shaped (N, C, H, W) like the model input."""
        images = packing.check_images(x, self.config.input_shape)
        bs = min(int(batch_size or self.batch_size), self.config.max_frames_per_transfer)
        if bs < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        n = images.shape[0]
        labels = np.empty(n, dtype=np.int64)
        for start in range(0, n, bs):
            chunk = images[start:start + bs]
            labels[start:start + len(chunk)] = self._run_packed(packing.pack_images(chunk, self.config), len(chunk))
        return labels

    def throughput(self, n: int = 1000, batch_size: int | None = None, seed: int = 0) -> dict:
        """Measure ``n`` random images through the transport (packing done beforehand, as a
        streaming application would overlap it). Returns images, seconds, images_per_s,
        input_mb_per_s, output_mb_per_s (MB = 1e6 bytes, padded words as moved), batch_size,
        transport; a simulation adds cycles and the images/s those cycles give at the clock."""
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        cfg = self.config
        bs = min(int(batch_size or self.batch_size), cfg.max_frames_per_transfer)
        rng = np.random.default_rng(seed)
        batch = rng.integers(0, 256, size=(bs, *cfg.input_shape), dtype=np.uint8)
        words = packing.pack_images(batch, cfg)
        sizes = [min(bs, n - s) for s in range(0, n, bs)]
        cycles = 0
        t0 = time.perf_counter()
        for k in sizes:
            self._transport.run(words[:k * cfg.words_per_frame], k, self._timeout(k))
            cycles += int(getattr(self._transport, "last_run", {}).get("cycles", 0))
        seconds = time.perf_counter() - t0
        result = {
            "images": n,
            "seconds": seconds,
            "images_per_s": n / seconds,
            "input_mb_per_s": n * cfg.padded_frame_bytes / seconds / 1e6,
            "output_mb_per_s": n * cfg.out_bytes / seconds / 1e6,
            "batch_size": bs,
            "transport": self._transport.kind,
        }
        if self._transport.kind == "simulation" and cycles:
            result["cycles"] = cycles
            result["clock_mhz"] = cfg.clock_mhz
            result["hw_images_per_s"] = n * cfg.clock_mhz * 1e6 / cycles
            result["note"] = ("wall-clock figures are the simulator's; hw_images_per_s is what the simulated "
                              "cycles give at the fabric clock")
        return result

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
