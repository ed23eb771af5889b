#!/usr/bin/env python3
"""One command from a Brevitas/QONNX binarized model to a verified dataflow accelerator.

    python build.py --model ftbnn_small --board pynq-z2
"""

from __future__ import annotations

import argparse
import sys
import warnings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="build.py",
        description="Compile a binarized network (zoo name or QONNX .onnx file) into a verified "
                    "streaming dataflow accelerator for an FPGA board.",
    )
    p.add_argument("--model", help="zoo name (--list-models) or path to a QONNX .onnx file")
    p.add_argument("--board", help="target board (--list-boards)")
    p.add_argument("--output", help="build folder (default build/<model>-<board>)")
    p.add_argument("--clock-mhz", type=float, help="fabric clock (default: the board's)")
    p.add_argument("--target-fps", default="max", help="N or 'max' (default): fastest design that fits")
    p.add_argument("--folding", help="per-layer folding JSON (FINN folding_config); overrides --target-fps")
    p.add_argument("--until", help="stop after this step (--list-steps)")
    p.add_argument("--from", dest="start", help="resume at this step (--list-steps)")
    p.add_argument("--verify-input", help=".npy of inputs in the model's own domain (float NCHW pixel/255)")
    p.add_argument("--verify-images", type=int, default=8, help="images used for verification (default 8)")
    p.add_argument("--accuracy-images", type=int, default=None,
                   help="test images the RTL accuracy run uses (default: the whole test split for trained zoo "
                        "models whose dataset is here; 0: skip)")
    p.add_argument("--accuracy-shards", type=int, default=1,
                   help="split the RTL accuracy run into N Ray tasks, each with its own simulator (default 1: "
                        "one simulation, no Ray); a local Ray is started unless --ray-address/$RAY_ADDRESS names "
                        "a cluster")
    p.add_argument("--ray-address",
                   help="Ray cluster HOST:PORT (default $RAY_ADDRESS) for --accuracy-shards and for running the "
                        "Yosys instances as Ray tasks")
    p.add_argument("--no-synth", action="store_true", help="skip Yosys synthesis")
    p.add_argument("--weights", help="trained checkpoint for a zoo model (what quant_models.train writes, any path; "
                                     "default: the shipped weights)")
    p.add_argument("--force", action="store_true",
                   help="build into an existing folder that is not a build folder (nothing there is deleted; "
                        "refused when a file the build writes already exists)")
    p.add_argument("--list-models", action="store_true", help="list zoo models and exit")
    p.add_argument("--list-boards", action="store_true", help="list boards and exit")
    p.add_argument("--list-steps", action="store_true", help="list the build steps and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # library warnings (torch export, qonnx) are noise for users; our own go through logging
    warnings.filterwarnings("ignore")
    if args.list_boards:
        from hw_build import boards

        for b in boards.BOARDS.values():
            print(f"{b.name:8s} {b.part:22s} {b.clock_mhz:5.0f} MHz  {b.lut:>9,} LUT  {b.bram36:>5} BRAM36  {b.dsp:>6} DSP")
        return 0
    if args.list_steps:
        from hw_build.flow import STEPS

        for spec in STEPS:
            print(spec.name + (f"  (alias: {', '.join(spec.aliases)})" if spec.aliases else ""))
        return 0
    if args.list_models:
        from quant_models import zoo

        for name in zoo.names():
            print(name)
        return 0
    if not args.model or not args.board:
        print("error: --model and --board are required (see python build.py --help)", file=sys.stderr)
        return 2

    from hw_build import build
    from hw_build.errors import BuildError, UsageError

    try:
        report = build(
            args.model, args.board, output=args.output, clock_mhz=args.clock_mhz,
            target_fps=args.target_fps, folding=args.folding, until=args.until, start=args.start,
            verify_input=args.verify_input, verify_images=args.verify_images, synth=not args.no_synth,
            accuracy_images=args.accuracy_images, accuracy_shards=args.accuracy_shards,
            ray_address=args.ray_address, weights=args.weights, force=args.force,
        )
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BuildError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: steps.json marks the step that was running; resume with --from that step.",
              file=sys.stderr)
        return 130
    except Exception as exc:  # a compiler bug, not a user mistake: one paragraph, the traceback is in build.log
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"\nerror: internal error ({type(exc).__name__}: {first[:300]}). This is a compiler bug; the "
              "traceback is in the build folder's build.log. Please report it with that folder.", file=sys.stderr)
        return 1
    est = report.get("estimate")
    if est:
        clock = f"{report['clock_mhz']:g} MHz"
        line = f"\n{report['model']} on {report['board']}: {est['cycles_per_frame']:,} cycles/frame by design"
        rtl = report.get("rtlsim")
        if rtl and rtl.get("ii_cycles"):
            line += f", measured II {rtl['ii_cycles']:,.0f} = {rtl['fps']:,.0f} FPS at {clock} (RTL simulation)"
        else:
            line += f" = {est['fps']:,.0f} FPS at {clock} (estimate)"
        print(line)
        synth = report.get("synth")
        resources = f"estimate {est['lut']:,.0f} LUT, {est['bram36']:.1f} BRAM36"
        if synth:
            resources = f"Yosys {synth['lut']:,.0f} LUT, {synth['bram36']:.1f} BRAM36 ({resources})"
        if report.get("fits") is not None:
            resources += "; fits the device" if report["fits"] else "; does NOT fit the device"
        print(resources)
    acc = report.get("accuracy")
    if acc and acc.get("rtlsim") is not None:
        print(f"accuracy on {acc['images']} {acc['dataset']} test images: RTL {100 * acc['rtlsim']:.2f}%, "
              f"PyTorch {100 * acc['reference']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
