"""Same hardware before and after a change to the Verilog library: Yosys resource counts
(synth_xilinx -family xc7, flat, the per-instance synthesis script) and LUT levels of every
library module, with the parameter sets of the RTL tests (tests/test_rtl_layers CASES with
their memory files, tests/test_rtl_plumbing BLOCKS), the modules' defaults and a sample of
the cost-model calibration rows, for the library of a git revision (OLD) and the working tree.

    .venv/bin/python benchmarks/rtl_equivalence.py [--base main] [--out DIR]

Prints one row per configuration (old -> new) and exits 1 if any count differs or the LUT
levels got worse. Not part of the package; a check for Verilog refactors.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qonnx.custom_op.registry import getCustomOp  # noqa: E402

from hw_build.rtl import tools  # noqa: E402

KEYS = ("lut", "ff", "bram36", "dsp", "carry", "lut_levels")


def old_library(rev: str, dest: Path) -> None:
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:hw_build/rtl"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for n in names:
        if n.endswith((".v", ".vh")):
            text = subprocess.run(["git", "show", f"{rev}:hw_build/rtl/{n}"], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout
            (dest / n).write_text(text)


def new_library(dest: Path) -> None:
    for p in sorted((ROOT / "hw_build/rtl").iterdir()):
        if p.suffix in (".v", ".vh"):
            (dest / p.name).write_text(p.read_text())


def configs(data_dir: Path, calib_per_module: int) -> dict[str, tuple[str, dict]]:
    from tests.test_rtl_layers import CASES
    from tests.test_rtl_plumbing import BLOCKS

    out: dict[str, tuple[str, dict]] = {}
    for name, (model, node, _inputs) in CASES.items():
        op = getCustomOp(node)
        for fname, lines in op.rtl_memories(model).items():
            (data_dir / fname).write_text("\n".join(lines) + "\n")
        out[f"case_{name}"] = (op.rtl_module, op.rtl_params(model))
    for k, (module, params) in enumerate(BLOCKS):
        out[f"block{k}_{module}"] = (module, params)
    rows = json.loads((ROOT / "benchmarks/cost_model/synth_data.json").read_text())
    by_module: dict[str, list] = {}
    for r in rows:
        if not any(isinstance(v, str) and v for v in r["params"].values()):  # no memory files
            by_module.setdefault(r["module"], []).append(r)
    for module, rs in sorted(by_module.items()):
        rs.sort(key=lambda r: r["lut"])
        step = max(1, len(rs) // max(1, calib_per_module))
        for r in rs[::step][:calib_per_module]:
            out[f"calib_{r['label']}"] = (module, r["params"])
    return out


def default_configs(lib_dir: Path) -> dict[str, tuple[str, dict]]:
    out = {}
    for p in sorted(lib_dir.glob("*.v")):
        if re.search(rf"\bmodule\s+{p.stem}\b", p.read_text()):
            out[f"default_{p.stem}"] = (p.stem, {})
    return out


def synth_all(lib_dir: Path, data_dir: Path, cfgs: dict[str, tuple[str, dict]], reuse: bool = False) -> dict[str, dict]:
    """One Yosys run for all configurations (design -reset between), in a folder holding the
    library files and the memory files. ``reuse``: keep the results already in the folder
    (for the old side, whose files do not change)."""
    for f in data_dir.iterdir():
        (lib_dir / f.name).write_text(f.read_text())
    sources = " ".join(sorted(p.name for p in lib_dir.glob("*.v")))
    lines = []
    for label, (module, params) in cfgs.items():
        if reuse and (lib_dir / f"stat_{label}.txt").exists() and (lib_dir / f"ltp_{label}.txt").exists():
            continue
        sets = " ".join(f"-set {k} {json.dumps(v) if isinstance(v, str) else int(v)}" for k, v in params.items())
        lines += ["design -reset", f"read_verilog {sources}", *([f"chparam {sets} {module}"] if sets else []),
                  f"hierarchy -check -top {module}",
                  f"synth_xilinx -family xc7 -flatten -noiopad -noclkbuf -top {module}",
                  f"tee -q -o stat_{label}.txt stat", f"tee -q -o ltp_{label}.txt ltp -noff t:LUT* w:*"]
    (lib_dir / "all.ys").write_text("\n".join(lines) + "\n")
    proc = subprocess.run(tools.yosys_command() + ["-q", "-l", "yosys.log", "all.ys"], cwd=lib_dir,
                          capture_output=True, text=True) if lines else None
    if proc is not None and proc.returncode != 0:
        raise SystemExit(f"yosys failed in {lib_dir}: {proc.stderr[-2000:]}")
    out = {}
    for label in cfgs:
        cells = tools.parse_cells((lib_dir / f"stat_{label}.txt").read_text())
        out[label] = {**tools.summarize_cells(cells), "lut_levels": tools.parse_ltp((lib_dir / f"ltp_{label}.txt").read_text()),
                      "cells": cells}
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="main")
    ap.add_argument("--out", default="/tmp/rtl_equivalence")
    ap.add_argument("--calib", type=int, default=3, help="calibration rows per module")
    ap.add_argument("--only", default="", help="regex on '<label> <module>' of the configurations")
    ap.add_argument("--reuse-old", action="store_true", help="reuse OUT/old.json")
    ap.add_argument("--old-json", default="", help="the old side's results from another run's old.json")
    ap.add_argument("--new-only", action="store_true", help="synthesize the working tree only (OUT/new.json)")
    ap.add_argument("--old-only", action="store_true", help="synthesize the base revision only (OUT/old.json)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    data.mkdir(exist_ok=True)
    cfgs = configs(data, args.calib)
    old_dir, new_dir = out / "old", out / "new"
    old_dir.mkdir(exist_ok=True)
    new_dir.mkdir(exist_ok=True)
    old_library(args.base, old_dir)
    new_library(new_dir)
    cfgs.update(default_configs(old_dir))
    if args.only:
        cfgs = {k: v for k, v in cfgs.items() if re.search(args.only, f"{k} {v[0]}")}
    old_json = Path(args.old_json) if args.old_json else out / "old.json"
    new_json = out / "new.json"
    if args.old_only:
        old_json.write_text(json.dumps(synth_all(old_dir, data, cfgs, reuse=True), indent=1))
        return 0
    if args.new_only:
        new_json.write_text(json.dumps(synth_all(new_dir, data, cfgs), indent=1))
        return 0
    if (args.reuse_old or args.old_json) and old_json.exists():
        old = json.loads(old_json.read_text())
    else:
        old = synth_all(old_dir, data, cfgs, reuse=True)
        old_json.write_text(json.dumps(old, indent=1))
    if args.reuse_old and new_json.exists():
        new = json.loads(new_json.read_text())
    else:
        new = synth_all(new_dir, data, {k: v for k, v in cfgs.items() if k in old})
        new_json.write_text(json.dumps(new, indent=1))
    bad = 0
    print(f"{'configuration':48s} {'module':24s} " + " ".join(f"{k:>13s}" for k in KEYS) + "  same")
    for label in cfgs:
        if label not in old or label not in new:
            continue
        a, b = old[label], new[label]
        same = all(a[k] == b[k] for k in KEYS if k != "lut_levels") and b["lut_levels"] <= a["lut_levels"]
        bad += not same
        cols = " ".join(f"{f'{a[k]:g}->{b[k]:g}' if a[k] != b[k] else f'{a[k]:g}':>13s}" for k in KEYS)
        print(f"{label[:48]:48s} {cfgs[label][0]:24s} {cols}  {'yes' if same else 'NO'}")
    print(f"{len(old)} configurations, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
