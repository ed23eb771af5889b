"""Hierarchical Yosys synthesis of a generated design: every module instance of accel_top
(each layer, FIFO and width converter) is synthesized on its own and the results summed.

Why per instance: one Yosys run over the whole flattened accelerator needs more memory than
the WebAssembly Yosys has (4 GiB) on large designs, and its time grows faster than linearly.
A streaming design has registered AXI-Stream handshakes between instances, so optimisation
across instance boundaries saves next to nothing. Each instance's result is cached under a
hash of everything that determines it (Yosys version and script, module sources,
parameters, memory file contents), so rebuilding a design with a changed layer only
synthesizes that layer again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from hw_build.errors import BuildError
from hw_build.rtl import module_closure, tools

log = logging.getLogger("hw_build")

#: bump when the meaning of a cached result changes (what it counts, how it is parsed)
CACHE_VERSION = 1
#: resources summed into a design total
TOTALS = ("lut", "ff", "bram36", "dsp", "carry")


def cache_dir() -> Path:
    """Where per-instance results are kept: $HW_BUILD_SYNTH_CACHE or ~/.cache/hw_build/synth."""
    env = os.environ.get("HW_BUILD_SYNTH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hw_build" / "synth"


def default_jobs() -> int:
    """Parallel Yosys processes: $HW_BUILD_SYNTH_JOBS, else half the CPUs (each can take GiBs)."""
    env = os.environ.get("HW_BUILD_SYNTH_JOBS")
    if env:
        return max(1, int(env))
    return max(1, (os.cpu_count() or 2) // 2)


def default_timeout() -> float:
    """Seconds one instance may take: $HW_BUILD_SYNTH_TIMEOUT, else one hour."""
    return float(os.environ.get("HW_BUILD_SYNTH_TIMEOUT", 3600))


# --------------------------------------------------------------------------- instances
@dataclass
class Instance:
    name: str                    # instance name in accel_top
    module: str
    params: dict[str, int | str]
    kind: str = "other"          # layer | fifo | converter | other
    layer: str | None = None     # node name of a layer instance, tensor name of an edge instance
    data_files: list[str] = field(default_factory=list)


_INSTANCE_RE = re.compile(r"^[ \t]*(\w+)\s*#\s*\((.*?)\)\s*(\w+)\s*\(", re.S | re.M)
_PARAM_RE = re.compile(r"\.(\w+)\s*\(\s*(\"[^\"]*\"|-?\d+)\s*\)")


def parse_instances(top_text: str) -> list[tuple[str, str, dict[str, int | str]]]:
    """(module, instance, parameters) of every parameterized instance in a generated top."""
    out = []
    for m in _INSTANCE_RE.finditer(top_text):
        module, body, name = m.group(1), m.group(2), m.group(3)
        params: dict[str, int | str] = {}
        for k, v in _PARAM_RE.findall(body):
            params[k] = v[1:-1] if v.startswith('"') else int(v)
        out.append((module, name, params))
    return out


def design_instances(rtl_dir: Path) -> list[Instance]:
    """Instances of the generated top in ``rtl_dir``, tagged with the layer or edge they serve."""
    from hw_build.rtl.codegen import read_manifest
    from hw_build.rtl.encoding import verilog_name

    rtl_dir = Path(rtl_dir)
    manifest = read_manifest(rtl_dir)
    top = rtl_dir / f"{manifest['top']}.v"
    if not top.exists():
        raise BuildError(f"{top} is missing; regenerate the RTL (--from rtl)")
    layers = {layer["instance"]: layer["name"] for layer in manifest["layers"]}
    fifos = {f["instance"]: t for t, f in manifest.get("fifos", {}).items()}
    tensors = {}
    for t in list(manifest.get("fifos", {})) + [manifest.get("input_tensor", "")]:
        if t:
            tensors[verilog_name(t)] = t
    memories = manifest.get("memories", [])
    out = []
    for module, name, params in parse_instances(top.read_text()):
        inst = Instance(name, module, params)
        if name in layers:
            inst.kind, inst.layer = "layer", layers[name]
        elif name in fifos:
            inst.kind, inst.layer = "fifo", fifos[name]
        elif module == "stream_width_converter":
            inst.kind = "converter"
            stem = name[: -len("_width")] if name.endswith("_width") else name
            inst.layer = tensors.get(stem, stem)
        # memory files a parameter names: the file itself or, for per-stage ROMs, a name prefix
        for v in params.values():
            if isinstance(v, str) and v:
                inst.data_files += [f for f in memories if f == v or f.startswith(v)]
        out.append(inst)
    missing = sorted(set(layers) - {i.name for i in out})
    if missing:
        raise BuildError(f"layer instances {missing} listed in rtl_manifest.json are not in {top.name}")
    return out


def module_sources(module: str, rtl_dir: Path) -> list[Path]:
    """The Verilog files of ``module`` and the modules it instantiates, from ``rtl_dir``."""
    files = [Path(rtl_dir) / f"{m}.v" for m in module_closure([module])]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise BuildError(f"Verilog sources {missing} of module {module} are missing from {rtl_dir}")
    return files


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def job_key(job: tools.SynthJob) -> str:
    """Hash of everything that determines a job's result."""
    blob = {
        "version": CACHE_VERSION,
        "yosys": tools.yosys_version(),
        "script": job.script(),
        "sources": {p.name: _digest(p) for p in job.sources},
        "data": {p.name: _digest(p) for p in job.data_files},
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- running
def run_jobs(jobs: list[tools.SynthJob], work_dir: Path, *, parallel: int | None = None,
             timeout: float | None = None, cache: Path | None = None,
             progress: bool = True) -> tuple[dict[str, dict], dict[str, tools.SynthFailure]]:
    """Run synthesis jobs (deduplicated and cached by :func:`job_key`), biggest first when
    run in parallel. Returns (label -> result, label -> failure); a result has ``cached``
    and ``key`` besides the numbers of :func:`tools.run_synth_job`."""
    parallel = parallel or default_jobs()
    timeout = timeout or default_timeout()
    cache = Path(cache) if cache else cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    work_dir = Path(work_dir)
    keys = {job.label: job_key(job) for job in jobs}
    results: dict[str, dict] = {}
    failures: dict[str, tools.SynthFailure] = {}
    todo: dict[str, list[tools.SynthJob]] = {}   # key -> jobs with that key (identical instances)
    for job in jobs:
        hit = cache / f"{keys[job.label]}.json"
        if hit.exists():
            cached = json.loads(hit.read_text())
            # the summary is recomputed from the cell counts, so a change in how cells are
            # counted needs no new synthesis
            cached.update(tools.summarize_cells(cached["cells"]))
            results[job.label] = {**cached, "cached": True, "key": keys[job.label]}
        else:
            todo.setdefault(keys[job.label], []).append(job)
    total = len(jobs)
    done = len(results)
    if progress:
        log.info("synthesis: %d instances, %d cached, %d Yosys runs to do (%d at a time, timeout %.0f s each)",
                 total, done, len(todo), parallel, timeout)

    def one(key: str, job: tools.SynthJob) -> dict:
        result = tools.run_synth_job(job, work_dir / job.label, timeout)
        (cache / f"{key}.tmp").write_text(json.dumps(result))
        (cache / f"{key}.tmp").replace(cache / f"{key}.json")   # atomic: never a half-written entry
        return result

    order = sorted(todo.items(), key=lambda kv: -sum(p.stat().st_size for p in kv[1][0].data_files))
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {pool.submit(one, key, group[0]): (key, group) for key, group in order}
        for fut in as_completed(futures):
            key, group = futures[fut]
            try:
                result = fut.result()
            except tools.SynthFailure as exc:
                for job in group:
                    failures[job.label] = exc
                done += len(group)
                if progress:
                    log.warning("  [%d/%d] %s FAILED: %s", done, total, group[0].label, exc.reason)
                continue
            for job in group:
                results[job.label] = {**result, "cached": False, "key": key}
            done += len(group)
            if progress:
                same = f" (+{len(group) - 1} identical)" if len(group) > 1 else ""
                log.info("  [%d/%d] %s (%s)%s: %d LUT, %d FF, %g BRAM36, %d DSP, %d LUT levels, %.1f s",
                         done, total, group[0].label, group[0].module, same, result["lut"], result["ff"],
                         result["bram36"], result["dsp"], result["lut_levels"], result["seconds"])
    return results, failures


def synth_design(rtl_dir: Path, work_dir: Path | None = None, *, parallel: int | None = None,
                 timeout: float | None = None, cache: Path | None = None, progress: bool = True) -> dict:
    """Synthesize every instance of the generated design in ``rtl_dir`` and sum the results.

    Returns {tool, lut, ff, bram36, dsp, carry, lut_levels, instances: [...], seconds,
    yosys_runs, cached, failures: {instance: reason}}. ``lut_levels`` is the longest LUT path of
    any instance. The top's own glue (a few gates on the AXI handshakes) is not counted."""
    rtl_dir = Path(rtl_dir)
    t0 = time.perf_counter()
    instances = design_instances(rtl_dir)
    jobs = [tools.SynthJob(i.name, i.module, tuple(i.params.items()), tuple(module_sources(i.module, rtl_dir)),
                           tuple(rtl_dir / f for f in i.data_files)) for i in instances]
    own = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="synth.")) if own else Path(work_dir)
    try:
        results, failures = run_jobs(jobs, work, parallel=parallel, timeout=timeout, cache=cache,
                                     progress=progress)
    finally:
        if own:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    rows = []
    for inst in instances:
        r = results.get(inst.name)
        row = {"instance": inst.name, "module": inst.module, "kind": inst.kind, "layer": inst.layer,
               "params": inst.params}
        if r is not None:
            row.update({k: r[k] for k in (*TOTALS, "lut_levels", "seconds", "cached")})
            row["carry_chain"] = r.get("carry_chain", 0)
        else:
            row["error"] = failures[inst.name].reason
        rows.append(row)
    ok = [r for r in rows if "error" not in r]
    summary = {
        "tool": tools.SYNTH_TOOL + " (per instance)",
        **{k: sum(r[k] for r in ok) for k in TOTALS},
        "lut_levels": max((r["lut_levels"] for r in ok), default=0),
        "instances": rows,
        "seconds": round(time.perf_counter() - t0, 1),
        "yosys_runs": len({r["key"] for r in results.values() if not r["cached"]}),
        "cached": sum(1 for r in results.values() if r["cached"]),
        "failures": {name: exc.reason for name, exc in failures.items()},
        # which generated design these numbers belong to (see attach_synth)
        "rtl_manifest_sha256": _digest(rtl_dir / "rtl_manifest.json"),
    }
    return summary


#: per-instance numbers copied into report.json's layer and edge entries
SYNTH_FIELDS = ("lut", "ff", "bram36", "dsp", "lut_levels", "carry_chain")


def attach_synth(report: dict, rtl_dir: Path) -> None:
    """Copy per-instance synthesis results into ``report["layers"]`` (``synth_lut``, ...) and
    ``report["edges"]``. Results of an older RTL (regenerated since, estimate not rerun) are
    not attached; ``report["synth_stale"]`` says so."""
    synth = report.get("synth") or report.get("synth_partial")
    report.pop("synth_stale", None)
    if not synth or "instances" not in synth:
        return
    manifest = Path(rtl_dir) / "rtl_manifest.json"
    if not manifest.exists() or synth.get("rtl_manifest_sha256") != _digest(manifest):
        report["synth_stale"] = True
        return
    by_layer = {i["layer"]: i for i in synth["instances"] if i["kind"] == "layer"}
    by_instance = {i["instance"]: i for i in synth["instances"]}
    for entry in report.get("layers") or []:
        inst = by_layer.get(entry["name"])
        if inst is not None and "error" not in inst:
            entry.update({f"synth_{k}": inst[k] for k in SYNTH_FIELDS})
    for entry in report.get("edges") or []:
        inst = by_instance.get(entry["instance"])
        if inst is not None and "error" not in inst:
            entry.update({f"synth_{k}": inst[k] for k in SYNTH_FIELDS})
