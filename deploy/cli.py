"""FINN's driver command line, for the deploy package's ``driver.py``:

    python driver.py --exec_mode execute --inputfile in.npy --outputfile out.npy [--batchsize N]
    python driver.py --exec_mode throughput_test [--batchsize N] [--outputfile nw_metrics.txt]
    ... [--bitfile bitfile/accel.bit] [--simulate BUILD_DIR]

``execute``: in.npy holds uint8 images (N, C, H, W); out.npy gets their labels (N, 1) int64.
``throughput_test``: one batch of random images; writes FINN's keys (runtime[ms],
throughput[images/s], DRAM_in_bandwidth[MB/s], DRAM_out_bandwidth[MB/s], fclk[mhz],
batch_size) as JSON. ``--simulate BUILD_DIR``: the simulated Zynq (pynq's own driver over a
register-level AXI DMA and the build's RTL in Verilator) instead of a board; BUILD_DIR is the
build folder this package came from. Errors are one paragraph on stderr, exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE_BITFILES = ("bitfile/accel.bit", "bitfile/accel.xclbin")
SIMULATION_BITFILE = "bitfile/simulation/accel.bit"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python driver.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--exec_mode", choices=["execute", "throughput_test"], default="execute")
    p.add_argument("--bitfile", type=Path, default=None,
                   help=f"default: {HERE_BITFILES[0]} (or {SIMULATION_BITFILE} with --simulate and no bitstream)")
    p.add_argument("--batchsize", type=int, default=None, help="images per DMA transfer (throughput_test: the batch)")
    p.add_argument("--inputfile", type=Path, default=Path("input.npy"))
    p.add_argument("--outputfile", type=Path, default=None,
                   help="execute: labels .npy (default output.npy); throughput_test: metrics (default nw_metrics.txt)")
    p.add_argument("--simulate", type=Path, default=None, metavar="BUILD_DIR",
                   help="run on the simulated board of this build folder instead of a board")
    return p.parse_args(argv)


def _bitfile(args: argparse.Namespace, package: Path) -> Path:
    if args.bitfile is not None:
        return args.bitfile
    for rel in HERE_BITFILES:
        if (package / rel).exists():
            return package / rel
    if args.simulate is not None and (package / SIMULATION_BITFILE).exists():
        return package / SIMULATION_BITFILE
    return package / HERE_BITFILES[0]


def _load_input(path: Path) -> np.ndarray:
    if not path.exists():
        raise FileNotFoundError(f"input file '{path}' not found: pass --inputfile with uint8 images (N, C, H, W) "
                                "saved by np.save")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"'{path}' is not a .npy array saved by np.save ({exc})") from None


def main(argv: list[str] | None = None, package: Path | None = None) -> int:
    args = parse_args(argv)
    package = Path(package) if package is not None else Path.cwd()
    from deploy.driver import Accelerator

    try:
        device = None
        if args.simulate is not None:
            from deploy.sim_board import SimulatedZynq

            device = SimulatedZynq(args.simulate)
        accel = Accelerator(_bitfile(args, package), batch_size=args.batchsize, device=device)
        with accel:
            if args.exec_mode == "execute":
                labels = accel.execute(_load_input(args.inputfile))
                out = args.outputfile or Path("output.npy")
                np.save(out, labels)
                print(f"{len(labels)} labels -> {out}")
            else:
                metrics = accel.throughput_test(args.batchsize)
                out = args.outputfile or Path("nw_metrics.txt")
                out.write_text(json.dumps(metrics, indent=1) + "\n")
                print(json.dumps(metrics))
    except (RuntimeError, ValueError, TypeError, FileNotFoundError, TimeoutError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
