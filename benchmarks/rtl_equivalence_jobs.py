"""Same hardware, per instance: each configuration synthesized the way the estimate step
does it (hw_build.rtl.tools.SynthJob / run_synth_job: the module's own closure, flat,
with ltp), once with the library of revision d463035 and once with the working tree.

    .venv/bin/python benchmarks/rtl_equivalence_jobs.py LABEL...   (labels from /tmp/eqj/cfgs.json,
    written by benchmarks/rtl_equivalence.configs)

Prints "<label> <module> <old counts> SAME|DIFF <new counts>". Unlike rtl_equivalence.py
(one Yosys session reading every library file), this reads only the files an instance
needs, so new library modules do not renumber the cells of unrelated ones (that alone
moved ABC's mapping by a LUT or so).
"""
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hw_build.rtl import tools  # noqa: E402

ROOT = Path(str(Path(__file__).resolve().parents[1]))
old_dir = Path('/tmp/eqj/oldlib')
old_dir.mkdir(parents=True, exist_ok=True)
for n in subprocess.run(["git","ls-tree","--name-only","d463035:hw_build/rtl"],cwd=ROOT,capture_output=True,text=True).stdout.split():
    if n.endswith('.v'):
        (old_dir/n).write_text(subprocess.run(["git","show",f"d463035:hw_build/rtl/{n}"],cwd=ROOT,capture_output=True,text=True).stdout)
new_dir = ROOT/'hw_build/rtl'
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
cfgs = json.loads(Path('/tmp/eqj/cfgs.json').read_text())
data = Path('/tmp/eq_new/data')
out = {}
for label in sys.argv[1:]:
    module, params = cfgs[label]
    files = tuple(f for f in data.iterdir() if any(isinstance(v, str) and v and f.name.startswith(v) for v in params.values()))
    res = {}
    for side, lib in (("old", old_dir), ("new", new_dir)):
        job = tools.SynthJob(label, module, tuple(params.items()), tuple(closure(lib, module)), files)
        if side == "old":  # no include files on the old side
            object.__setattr__(job, "sources", tuple(p for p in job.sources if p.suffix != ".vh"))
        r = tools.run_synth_job(job, Path(f'/tmp/eqj/run_{side}_{label}'))
        res[side] = {k: r[k] for k in ("lut", "ff", "bram36", "dsp", "carry", "lut_levels")}
    print(label, module, res["old"], "SAME" if res["old"] == res["new"] else f"DIFF {res['new']}", flush=True)
    out[label] = res
Path(f'/tmp/eqj/out_{sys.argv[1]}.json').write_text(json.dumps(out))
