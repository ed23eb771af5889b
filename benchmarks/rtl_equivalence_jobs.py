"""Same hardware, per instance: each configuration of benchmarks/rtl_equivalence.configs
synthesized the way the estimate step does it (hw_build.rtl.tools.SynthJob / run_synth_job:
the module's own closure, flat, with ltp), once with the RTL library of a base revision and
once with the working tree.

    .venv/bin/python benchmarks/rtl_equivalence_jobs.py [--base REV] [--work DIR] [LABEL ...]

Prints "<label> <module> <old counts> SAME|DIFF <new counts>" (all configurations when no
label is given). Unlike rtl_equivalence.py (one Yosys session reading every library file),
this reads only the files an instance needs, so new library modules do not renumber the
cells of unrelated ones (that alone moved ABC's mapping by a LUT or so).
"""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hw_build.rtl import tools  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from rtl_equivalence import configs  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--base", default="d463035", help="revision whose hw_build/rtl is the old side")
ap.add_argument("--work", default="/tmp/rtl_equivalence_jobs", help="scratch folder")
ap.add_argument("labels", nargs="*")
args = ap.parse_args()
work = Path(args.work)
old_dir, data = work / "oldlib", work / "data"
old_dir.mkdir(parents=True, exist_ok=True)
data.mkdir(parents=True, exist_ok=True)
for n in subprocess.run(["git", "ls-tree", "--name-only", f"{args.base}:hw_build/rtl"], cwd=ROOT,
                        capture_output=True, text=True, check=True).stdout.split():
    if n.endswith((".v", ".vh")):
        (old_dir / n).write_text(subprocess.run(["git", "show", f"{args.base}:hw_build/rtl/{n}"], cwd=ROOT,
                                                capture_output=True, text=True, check=True).stdout)
new_dir = ROOT / "hw_build/rtl"
cfgs = configs(data, 3)


def closure(lib, module):
    todo, done = [module], []
    while todo:
        m = todo.pop()
        if m in done:
            continue
        done.append(m)
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", (lib/f"{m}.v").read_text(), flags=re.S)
        todo += [d for d in re.findall(r"^\s*(\w+)\s*#\s*\(", text, re.M) if (lib/f"{d}.v").exists() and d != m]
    return [lib/f"{m}.v" for m in sorted(done)] + sorted(lib.glob('*.vh'))
out = {}
for label in args.labels or sorted(cfgs):
    module, params = cfgs[label]
    files = tuple(f for f in data.iterdir() if any(isinstance(v, str) and v and f.name.startswith(v) for v in params.values()))
    res = {}
    for side, lib in (("old", old_dir), ("new", new_dir)):
        job = tools.SynthJob(label, module, tuple(params.items()), tuple(closure(lib, module)), files)
        if side == "old":  # SynthJob adds today's include files; the base library has its own (or none)
            object.__setattr__(job, "sources", tuple(p for p in job.sources if p.suffix != ".vh" or p.parent == old_dir))
        r = tools.run_synth_job(job, work / f"run_{side}_{label}")
        res[side] = {k: r[k] for k in ("lut", "ff", "bram36", "dsp", "carry", "lut_levels")}
    print(label, module, res["old"], "SAME" if res["old"] == res["new"] else f"DIFF {res['new']}", flush=True)
    out[label] = res
(work / "results.json").write_text(json.dumps(out, indent=1))
