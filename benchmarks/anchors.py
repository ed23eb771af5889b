#!/usr/bin/env python3
"""Build the anchor models and print our measured numbers next to FINN's published ones.

    .venv/bin/python benchmarks/anchors.py [--out build/bench] [--only cnv_w1a1 ...] [--no-synth]

FPS is the RTL simulation's (clock / max(measured II, DMA cycles)); LUT/BRAM36 come from
Yosys synth_xilinx of the stitched design (the estimate when --no-synth). Anchors:
../shared/reference/anchors.md (FINN on PYNQ-Z1/Z2, xc7z020, 100 MHz).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: FINN's published figures (anchors.md): FPS at 100 MHz, LUT, BRAM36 (BRAM18 / 2)
FINN = {
    "cnv_w1a1": {"fps": 3052.0, "lut": 23_159, "bram36": 147 / 2, "note": "finn-examples folding, estimate"},
    "tfc_w1a1": {"fps": 1_562_500.0, "lut": 8_500, "bram36": 26 / 2, "note": "compute bound; DMA ~1.02 M FPS"},
    "ftbnn_small": {"fps": 3000.0, "lut": None, "bram36": None, "note": "target: >= 3,000 FPS in the device"},
}

RUNS = [
    # (label, model, extra build options)
    ("cnv_w1a1 max", "cnv_w1a1", {}),
    ("cnv_w1a1 finn folding", "cnv_w1a1", {"folding": ROOT / "benchmarks/folding/cnv_w1a1_finn_examples.json"}),
    ("tfc_w1a1 max", "tfc_w1a1", {}),
    ("tfc_w1a1 finn folding", "tfc_w1a1", {"folding": ROOT / "benchmarks/folding/tfc_w1a1_finn_examples.json"}),
    ("tfc_w1a1 1.5625M", "tfc_w1a1", {"target_fps": "1562500"}),
    ("ftbnn_small max", "ftbnn_small", {}),
]


def ratio(a, b) -> str:
    return f"{a / b:6.2f}x" if a and b else "   -   "


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "build" / "bench"))
    p.add_argument("--only", nargs="*", help="labels or model names to run")
    p.add_argument("--no-synth", action="store_true")
    args = p.parse_args()
    from hw_build import build

    rows = []
    for label, model, extra in RUNS:
        if args.only and label not in args.only and model not in args.only:
            continue
        out = Path(args.out) / label.replace(" ", "_")
        t0 = time.perf_counter()
        report = build(model, "pynq-z2", output=out, synth=not args.no_synth, **extra)
        seconds = time.perf_counter() - t0
        rtl = report.get("rtlsim") or {}
        res = report.get("synth") or report["estimate"]
        rows.append((label, model, report, rtl, res, seconds))
        json.dump(report, open(out / "report.json", "w"), indent=2, default=str)

    print()
    print(f"{'run':24s} {'est cyc':>8s} {'rtl II':>8s} {'rtl FPS':>11s} {'FINN FPS':>11s} {'ratio':>7s} "
          f"{'LUT':>7s} {'FINN':>7s} {'ratio':>7s} {'BRAM36':>7s} {'FINN':>6s} {'fits':>5s} {'build s':>8s}")
    for label, model, report, rtl, res, seconds in rows:
        finn = FINN.get(model, {})
        fps = rtl.get("fps")
        print(f"{label:24s} {report['estimate']['cycles_per_frame']:8d} {rtl.get('ii_cycles') or 0:8.0f} "
              f"{fps or 0:11,.0f} {finn.get('fps') or 0:11,.0f} {ratio(fps, finn.get('fps'))} "
              f"{res['lut']:7,.0f} {finn.get('lut') or 0:7,.0f} {ratio(finn.get('lut'), res['lut'])} "
              f"{res['bram36']:7.1f} {finn.get('bram36') or 0:6.1f} {str(report.get('fits')):>5s} {seconds:8.1f}")
    print("\nratios: FPS ours/FINN (higher is better); LUT FINN/ours (higher means we use fewer).")
    print("LUT/BRAM36 from", "Yosys synth_xilinx" if not args.no_synth else "the analytical estimate (--no-synth)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
