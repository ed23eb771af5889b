#!/usr/bin/env python3
"""One design-space sweep run three ways: one build after another, as Ray tasks on a local
Ray, and as Ray tasks on a two-node cluster started on this machine (``ray start --head``
plus a second node on the loopback address). Prints the wall time of each and checks that
the three give the same table.

    .venv/bin/python benchmarks/sweep_scaling.py [--out build/sweep-scaling] [--cpus-per-node 1]

The default grid is 8 builds (tfc_w1a1 and sfc_w1a1 x target max / 100,000 FPS x 100 / 50
MHz, no synthesis, 3 verification frames each). Results: OUT/scaling.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: the columns the three runs must agree on (seconds and paths differ by design)
TABLE = ("model", "board", "target_fps", "clock_mhz", "status", "error", "fps", "lut", "bram36", "fits", "folder",
         "ii_cycles")


def table(result: dict) -> list[dict]:
    return [{k: r.get(k) for k in TABLE} for r in result["rows"]]


def main() -> int:
    from hw_build import sweep
    from tests.ray_cluster import two_node_cluster

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "build" / "sweep-scaling"))
    p.add_argument("--models", default="tfc_w1a1,sfc_w1a1")
    p.add_argument("--boards", default="pynq-z2")
    p.add_argument("--target-fps", default="max,100000")
    p.add_argument("--clock-mhz", default="100,50")
    p.add_argument("--cpus-per-node", type=int, default=1,
                   help="CPUs each of the two cluster nodes offers (default 1: two nodes share this machine's cores)")
    p.add_argument("--verify-images", type=int, default=3)
    args = p.parse_args()

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"{out} is not empty: give a fresh --out (a sweep folder resumes, which would time nothing)",
              file=sys.stderr)
        return 2
    points = sweep.grid(args.models, args.boards, args.target_fps, args.clock_mhz)
    print(f"{len(points)} builds: {', '.join(pt.folder for pt in points)}", flush=True)
    runs: dict[str, dict] = {}
    walls: dict[str, float] = {}

    def timed(name: str, *extra: str) -> None:
        """One sweep as a user runs it: its own `python -m hw_build.sweep` process (Ray keeps
        per-process state, e.g. the authentication it first connected with)."""
        cmd = [sys.executable, "-m", "hw_build.sweep", "--models", args.models, "--boards", args.boards,
               "--target-fps", args.target_fps, "--clock-mhz", args.clock_mhz, "--no-synth",
               "--verify-images", str(args.verify_images), "--out", str(out / name), *extra]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        walls[name] = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{name}: `{' '.join(cmd)}` failed:\n{proc.stderr[-3000:]}")
        runs[name] = json.loads((out / name / "sweep.json").read_text())
        ok = sum(r["status"] == "ok" for r in runs[name]["rows"])
        print(f"{name:10s} {walls[name]:7.1f} s wall, {ok}/{len(points)} ok  {runs[name].get('ray', '')}", flush=True)

    timed("serial", "--serial")
    timed("local_ray")
    with two_node_cluster(cpus_per_node=args.cpus_per_node) as address:
        timed("two_node", "--ray-address", address)

    same = table(runs["serial"]) == table(runs["local_ray"]) == table(runs["two_node"])
    print(f"\nsame table in all three runs: {same}")
    print(f"{'folder':40s} {'status':8s} {'FPS':>12s} {'LUT':>8s}  fits")
    for r in runs["serial"]["rows"]:
        fps = f"{r['fps']:,.0f}" if r.get("fps") else "-"
        lut = f"{r['lut']:,.0f}" if r.get("lut") else "-"
        print(f"{r['folder']:40s} {r['status']:8s} {fps:>12s} {lut:>8s}  {r.get('fits')}")
    summary = {"builds": len(points), "wall_seconds": {k: round(v, 1) for k, v in walls.items()},
               "speedup_vs_serial": {k: round(walls["serial"] / v, 2) for k, v in walls.items()},
               "same_table": same, "ray": {k: runs[k].get("ray") for k in ("local_ray", "two_node")}}
    (out / "scaling.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
