"""Host transport for :class:`deploy.driver.Accelerator`: moves the packed words through a
Verilator simulation of ``<build>/rtl/accel_top.v`` instead of the board's DMA.

Built on :mod:`hw_build.rtl.sim` (its testbench, build cache and runner), so it needs the
compiler repository and the ``verilator`` package; the driver, packing and unpacking
around it are the code that runs on the board. Like one DMA transfer, a batch is streamed
with tlast on its last word only, and the labels must come back with tlast on the last
label only, otherwise the S2MM side of a real DMA would stop early or never finish.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np

from deploy import packing
from deploy.config import AccelConfig


class SimTransport:
    kind = "simulation"

    def __init__(self, rtl_dir: Path, cfg: AccelConfig, *, stall: float = 0.0, seed: int = 0) -> None:
        try:
            from hw_build.rtl import sim
            from hw_build.vivado.ports import read_top_ports
        except ImportError as exc:
            raise RuntimeError(
                "the simulated accelerator needs the hw_build compiler and the verilator package (run it from "
                f"the compiler's repository and environment): {exc}") from None
        self._sim = sim
        self.cfg = cfg
        self.stall = float(stall)
        self.seed = int(seed)
        rtl_dir = Path(rtl_dir)
        manifest_path = rtl_dir / "rtl_manifest.json"
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            top, files, memories = manifest["top"], manifest["files"], manifest["memories"]
        elif (rtl_dir / "accel_top.v").exists():
            top = "accel_top"
            files = sorted(p.name for p in rtl_dir.glob("*.v"))
            memories = sorted(p.name for p in rtl_dir.iterdir() if p.suffix in (".mem", ".dat", ".hex"))
        else:
            raise FileNotFoundError(f"no generated RTL in '{rtl_dir}' (accel_top.v): run the build through the "
                                    "rtl step first.")
        ports = read_top_ports(rtl_dir, top)
        if ports.s_axis.width != cfg.dma_bits or ports.m_axis.width != cfg.out_bits:
            raise ValueError(f"{rtl_dir / (top + '.v')} streams {ports.s_axis.width} bits in and "
                             f"{ports.m_axis.width} out, but the accelerator description says {cfg.dma_bits} and "
                             f"{cfg.out_bits}: regenerate the deploy files.")
        if not ports.reset_active_low:
            raise RuntimeError(f"the simulation testbench drives an active-low reset; {ports.reset} is active-high")
        self.ports = ports
        sim_ports = [sim.Port(ports.s_axis.prefix, "in", ports.s_axis.width, tlast=ports.s_axis.has_tlast),
                     sim.Port(ports.m_axis.prefix, "out", ports.m_axis.width, tlast=ports.m_axis.has_tlast)]
        try:
            self._binary = sim.build(top, [rtl_dir / f for f in files], sim_ports, ports.clock, ports.reset)
        except Exception as exc:  # BuildError from Verilator
            raise RuntimeError(f"could not build the Verilator model of {top}: {exc}") from None
        self._workdir = Path(tempfile.mkdtemp(prefix="accel_sim."))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._workdir), True)
        for m in memories:  # $readmemh reads them from the run directory
            shutil.copyfile(rtl_dir / m, self._workdir / m)
        self.description = f"Verilator simulation of {rtl_dir / (top + '.v')}"
        self.last_run: dict = {}

    def run(self, words: np.ndarray, frames: int, timeout_s: float) -> np.ndarray:
        """Stream ``words`` (one transfer) and return the ``frames`` label words, (frames, out_bytes) uint8.

        ``timeout_s`` has no wall-clock meaning here: a stuck design is caught by the
        testbench's idle-cycle limit instead and reported as a TimeoutError the same way."""
        cfg = self.cfg
        ints = packing.words_to_ints(words)
        beats = [(v, 0) for v in ints]
        if beats:
            beats[-1] = (ints[-1], 1)
        per_frame = max(cfg.cycles_per_frame or 0, cfg.words_per_frame)
        idle_limit = 20 * per_frame + 20_000
        max_cycles = 20 * per_frame * max(frames, 1) + 1_000_000
        try:
            res = self._sim.run(self._binary, self._workdir, [beats], [frames], self.stall, self.stall, self.seed,
                                idle_limit=idle_limit, max_cycles=max_cycles)
        except Exception as exc:  # BuildError: the simulator process failed
            raise RuntimeError(f"the accelerator simulation failed: {exc}") from None
        out = res.outputs[0]
        taken = len(res.input_cycles[0])
        if res.status != "ok":
            raise TimeoutError(
                f"the simulated accelerator stopped ({res.status}) after {res.cycles} cycles: it took {taken} of "
                f"{len(beats)} input words and returned {len(out)} of {frames} labels. On a board this is a DMA "
                "transfer that never completes.")
        if len(out) != frames:
            raise RuntimeError(f"the simulated accelerator returned {len(out)} labels for {frames} frames")
        tlast = [t for _, _, t in out]
        if tlast[-1] != 1:
            raise TimeoutError("the last label came without tlast: a DMA S2MM transfer would never complete")
        if any(tlast[:-1]):
            early = tlast.index(1)
            raise RuntimeError(f"label {early} of {frames} carried tlast: a DMA S2MM transfer would end there")
        self.last_run = {"frames": frames, "words": len(beats), "cycles": out[-1][0] - res.input_cycles[0][0] + 1,
                         "total_cycles": res.cycles}
        return packing.ints_to_words([v for _, v, _ in out], cfg.out_bytes)

    def close(self) -> None:
        self._cleanup()
