"""Accuracy of a generated accelerator on a dataset's test split.

    python -m deploy.validate --build DIR [--dataset mnist] [--limit N] [--board-bitfile F]

Runs the simulated accelerator (Verilator, ``Accelerator.simulated(DIR)``) unless a
bitfile is given, in which case it runs on the board. Images come from
``quant_models.data.load(dataset, "test")`` (pixel/255 floats, converted back to uint8 with
round(x * 255)); on a board without the compiler, from the deploy package's samples.npz.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from deploy.config import CONFIG_NAME
from deploy.samples import dataset_of, dataset_test_split, load_samples


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m deploy.validate", description=__doc__.split("\n\n")[0])
    p.add_argument("--build", type=Path, required=True, help="build folder (or the deploy package folder on a board)")
    p.add_argument("--dataset", help="mnist | digits | cifar10 (default: the model's, from report.json)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N test images")
    p.add_argument("--board-bitfile", type=Path, default=None,
                   help="run on the board with this bitfile instead of the simulation")
    p.add_argument("--batch-size", type=int, default=None, help="images per transfer")
    return p.parse_args(argv)


def load_images(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    dataset = args.dataset or dataset_of(args.build)
    if dataset is not None:
        try:
            x, y = dataset_test_split(dataset, args.limit)
            return x, y, f"{dataset} test split"
        except ImportError:
            if args.dataset:
                raise RuntimeError(f"cannot load '{dataset}' here (quant_models is not importable); run from the "
                                   "compiler repository, or leave out --dataset to use the package's samples.npz") \
                    from None
    samples = load_samples(args.build, args.limit)
    if samples.labels is None:
        raise RuntimeError(f"no labelled test images for '{args.build}': pass --dataset")
    return samples.images, samples.labels, samples.source


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from deploy.driver import Accelerator

    try:
        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit must be at least 1, got {args.limit}")
        x, y, source = load_images(args)
        if args.board_bitfile is not None:
            config = args.build / CONFIG_NAME  # the deploy package's description, when --build is that folder
            accel = Accelerator(args.board_bitfile, config if config.exists() else None, batch_size=args.batch_size)
            where = f"board ({args.board_bitfile})"
        else:
            accel = Accelerator.simulated(args.build, batch_size=args.batch_size)
            where = "simulated RTL (Verilator)"
        t0 = time.perf_counter()
        labels = accel.infer(x)
        seconds = time.perf_counter() - t0
        accel.close()
    except (ValueError, TypeError, RuntimeError, FileNotFoundError, TimeoutError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    correct = int((labels == y).sum())
    print(f"{accel.config.model} on {where}: accuracy {100.0 * correct / len(y):.2f}% ({correct}/{len(y)}) "
          f"on the {source}, {seconds:.1f} s")
    if accel.config.extra.get("trained") is False:
        print("note: this build has untrained (seeded) weights: the accuracy means nothing, the hardware is real")
    return 0


if __name__ == "__main__":
    sys.exit(main())
