"""Hierarchical Yosys synthesis of a generated design: every module instance of accel_top
(each node of the plumbed graph: layers, FIFOs, width converters) is synthesized on its own and the results summed.

Why per instance: one Yosys run over the whole flattened accelerator needs more memory than
the WebAssembly Yosys has (4 GiB) on large designs, and its time grows faster than linearly.
A streaming design has registered AXI-Stream handshakes between instances, so optimisation
across instance boundaries saves next to nothing. Each instance's result is cached under a
hash of everything that determines it (Yosys version and script, module sources,
parameters, memory file contents), so rebuilding a design with a changed layer only
synthesizes that layer again.

At scale (a ResNet-18 has hundreds of instances at ~10 s each): instances with the same
module, parameters and memory contents (e.g. equal FIFOs, converters, threshold tables)
are one Yosys run; the distinct runs go in parallel, one Yosys process per core on this
machine, or as Ray tasks when a cluster is given (``--ray-address`` / $RAY_ADDRESS). The
cache is safe to share between concurrent builds and tasks (:mod:`hw_build.cache`).
How instances are enumerated (:func:`design_instances`) is kept apart from how jobs are
deduplicated and run (:func:`run_jobs`), which sees only :class:`tools.SynthJob`s.
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
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from hw_build.cache import file_sha256, key_lock, read_json_entry, write_json_entry
from hw_build.distributed import cluster_address, cluster_cpus, session
from hw_build.errors import BuildError
from hw_build.rtl import library_includes, module_closure, tools

log = logging.getLogger("hw_build")

#: bump when the meaning of a cached result changes (what it counts, how it is parsed, the
#: entry format); 2: memory files keyed by contents, checksummed entries
CACHE_VERSION = 2
#: resources summed into a design total
TOTALS = ("lut", "ff", "bram36", "dsp", "carry")


def cache_dir() -> Path:
    """Where per-instance results are kept: $HW_BUILD_SYNTH_CACHE or ~/.cache/hw_build/synth."""
    env = os.environ.get("HW_BUILD_SYNTH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hw_build" / "synth"


#: memory one Yosys run is budgeted (the WebAssembly Yosys can grow to 4 GiB; most
#: instances of our library stay well under 1 GiB)
YOSYS_MEMORY_BUDGET = 2 << 30


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def default_jobs() -> int:
    """Parallel Yosys processes: $HW_BUILD_SYNTH_JOBS, else one per CPU core, fewer when the
    available memory does not cover :data:`YOSYS_MEMORY_BUDGET` for each."""
    env = os.environ.get("HW_BUILD_SYNTH_JOBS")
    if env:
        return max(1, int(env))
    cores = os.cpu_count() or 1
    memory = _available_memory()
    if memory is not None:
        cores = min(cores, memory // YOSYS_MEMORY_BUDGET)
    return max(1, cores)


def default_timeout() -> float:
    """Seconds one instance may take: $HW_BUILD_SYNTH_TIMEOUT, else one hour."""
    return float(os.environ.get("HW_BUILD_SYNTH_TIMEOUT", 3600))


# --------------------------------------------------------------------------- instances
@dataclass
class Instance:
    name: str                    # instance name in accel_top
    module: str
    params: dict[str, int | str]
    kind: str = "other"          # layer | fifo | converter | other (the op's resource_kind)
    layer: str | None = None     # node name of a layer instance, edge tensor of a plumbing instance
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
    """Instances of the generated top in ``rtl_dir``: one per node of the plumbed graph
    (rtl_manifest.json lists them with their op's kind), tagged with the layer or, for the
    plumbing, the edge tensor they serve. Each must be in the top's text with the same
    parameters (a hand-edited or stale top is an error, not a wrong sum)."""
    from hw_build.rtl.codegen import read_manifest

    rtl_dir = Path(rtl_dir)
    manifest = read_manifest(rtl_dir)
    top = rtl_dir / f"{manifest['top']}.v"
    if not top.exists():
        raise BuildError(f"{top} is missing; regenerate the RTL (--from rtl)")
    in_text = {name: (module, params) for module, name, params in parse_instances(top.read_text())}
    memories = manifest.get("memories", [])
    out = []
    for entry in manifest["instances"]:
        name, module, params = entry["instance"], entry["module"], entry["params"]
        if in_text.get(name) != (module, params):
            raise BuildError(f"instance {name} ({entry['op']} {entry['name']}) listed in rtl_manifest.json is not "
                             f"in {top.name} with those parameters; regenerate the RTL (--from rtl)")
        inst = Instance(name, module, params, entry["kind"], entry["edge"] or entry["name"])
        # memory files a parameter names: the file itself or, for per-stage ROMs, a name prefix
        for v in params.values():
            if isinstance(v, str) and v:
                inst.data_files += [f for f in memories if f == v or f.startswith(v)]
        out.append(inst)
    return out


def module_sources(module: str, rtl_dir: Path) -> list[Path]:
    """The Verilog files of ``module`` and the modules it instantiates, and the library's
    include files they read, from ``rtl_dir`` (all part of the job's cache key)."""
    files = [Path(rtl_dir) / inc.name for inc in library_includes()]
    files += [Path(rtl_dir) / f"{m}.v" for m in module_closure([module])]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise BuildError(f"Verilog sources {missing} of module {module} are missing from {rtl_dir}")
    return files


def _digest(path: Path) -> str:
    return file_sha256(Path(path))


def content_params(job: tools.SynthJob, digest=_digest) -> tuple[tuple[str, int | str], ...]:
    """The job's parameters with every memory file name replaced by the contents it names
    (for a per-stage ROM prefix: each file's suffix and contents). Two instances whose
    weights are equal but live in differently named files have the same content parameters."""
    out: list[tuple[str, int | str]] = []
    for name, value in job.params:
        if isinstance(value, str) and value:
            named = sorted((p for p in job.data_files if p.name == value or p.name.startswith(value)),
                           key=lambda p: p.name)
            if named:
                contents = [(p.name[len(value):], digest(p)) for p in named]
                value = "contents:" + hashlib.sha256(json.dumps(contents).encode()).hexdigest()
        out.append((name, value))
    return tuple(out)


def job_key(job: tools.SynthJob) -> str:
    """Hash of everything that determines a job's result: the Yosys version, the module, its
    parameters with memory files by contents (:func:`content_params`), the script and the
    module sources. Instances with equal keys are synthesized once."""
    digests: dict[Path, str] = {}

    def digest(path: Path) -> str:
        if path not in digests:
            digests[path] = _digest(path)
        return digests[path]

    params = content_params(job, digest)
    named = {p for p in job.data_files for _, v in job.params
             if isinstance(v, str) and v and (p.name == v or p.name.startswith(v))}
    blob = {
        "version": CACHE_VERSION,
        "yosys": tools.yosys_version(),
        "module": job.module,
        "params": params,
        "script": tools.SynthJob("", job.module, params, job.sources).script(),
        "sources": {p.name: digest(p) for p in job.sources},
        # memory files no parameter names (not expected; counted by name and contents)
        "data": {p.name: digest(p) for p in job.data_files if p not in named},
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- running
class _LocalRunner:
    """Yosys runs on this machine: each is its own process (``parallel`` at a time)."""

    def __init__(self, parallel: int) -> None:
        self.parallel = parallel
        self.where = f"{parallel} Yosys processes at a time on this machine"

    def run(self, job: tools.SynthJob, work_dir: Path, timeout: float) -> dict:
        return tools.run_synth_job(job, work_dir, timeout)


class _RayRunner:
    """Yosys runs as Ray tasks: each task gets the job's files (sources and memory files) by
    value, so a node needs no access to this build folder; a failure's log comes back."""

    def __init__(self, ray) -> None:
        self.ray = ray
        self.parallel = cluster_cpus(ray)
        self.remote = ray.remote(num_cpus=1, max_retries=1)(_synth_task)
        self.where = f"Ray tasks on the cluster ({self.parallel} CPUs)"

    def run(self, job: tools.SynthJob, work_dir: Path, timeout: float) -> dict:
        files = {p.name: p.read_bytes() for p in (*job.sources, *job.data_files)}
        spec = (job.label, job.module, job.params, [p.name for p in job.sources], [p.name for p in job.data_files])
        outcome = self.ray.get(self.remote.remote(spec, files, timeout))
        if "failure" in outcome:
            work_dir = Path(work_dir)
            work_dir.mkdir(parents=True, exist_ok=True)
            (work_dir / "yosys.log").write_text(outcome["log"])
            raise tools.SynthFailure(job.label, outcome["failure"], work_dir / "yosys.log")
        return outcome["result"]


def _synth_task(spec: tuple, files: dict[str, bytes], timeout: float) -> dict:
    """Body of a Ray synthesis task: write the files into a private folder, run Yosys there.
    Returns {"result": ...} or {"failure": reason, "log": text} (exceptions with extra
    fields do not survive the trip back)."""
    label, module, params, sources, data_files = spec
    with tempfile.TemporaryDirectory(prefix="synth-task.") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name, content in files.items():
            (src / name).write_bytes(content)
        job = tools.SynthJob(label, module, tuple(params), tuple(src / n for n in sources),
                             tuple(src / n for n in data_files))
        try:
            return {"result": tools.run_synth_job(job, Path(tmp) / "run", timeout)}
        except tools.SynthFailure as exc:
            log_file = Path(tmp) / "run" / "yosys.log"
            return {"failure": exc.reason, "log": log_file.read_text(errors="replace") if log_file.exists() else ""}


def _cached(cache: Path, key: str) -> dict | None:
    entry = read_json_entry(cache / f"{key}.json")
    if entry is None or "cells" not in entry:
        return None
    # the summary is recomputed from the cell counts, so a change in how cells are counted
    # needs no new synthesis
    return {**entry, **tools.summarize_cells(entry["cells"])}


def run_jobs(jobs: list[tools.SynthJob], work_dir: Path, *, parallel: int | None = None,
             timeout: float | None = None, cache: Path | None = None, progress: bool = True,
             ray_address: str | None = None) -> tuple[dict[str, dict], dict[str, tools.SynthFailure]]:
    """Run synthesis jobs: identical ones (equal :func:`job_key`) once, cached ones not at
    all, the rest biggest first, ``parallel`` at a time on this machine (default
    :func:`default_jobs`) or, with ``ray_address`` (or $RAY_ADDRESS), as Ray tasks on that
    cluster. Returns (label -> result, label -> failure); a result has ``cached`` and
    ``key`` besides the numbers of :func:`tools.run_synth_job`.

    The cache may be shared with concurrent builds: an entry is written atomically with a
    checksum, a per-key lock keeps two builds from synthesizing the same entry, and a
    damaged entry is synthesized again (:mod:`hw_build.cache`)."""
    timeout = timeout or default_timeout()
    cache = Path(cache) if cache else cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    work_dir = Path(work_dir)
    keys = {job.label: job_key(job) for job in jobs}
    results: dict[str, dict] = {}
    failures: dict[str, tools.SynthFailure] = {}
    todo: dict[str, list[tools.SynthJob]] = {}   # key -> jobs with that key (identical instances)
    for job in jobs:
        hit = _cached(cache, keys[job.label])
        if hit is not None:
            results[job.label] = {**hit, "cached": True, "key": keys[job.label]}
        else:
            todo.setdefault(keys[job.label], []).append(job)
    if not todo:
        return results, failures
    address = cluster_address(ray_address)
    with ExitStack() as stack:
        if address:
            runner: _LocalRunner | _RayRunner = _RayRunner(stack.enter_context(session(address)))
        else:
            runner = _LocalRunner(parallel or default_jobs())
        _run_todo(todo, runner, work_dir, timeout, cache, results, failures, len(jobs), progress)
    return results, failures


def _run_todo(todo: dict[str, list[tools.SynthJob]], runner, work_dir: Path, timeout: float, cache: Path,
              results: dict[str, dict], failures: dict[str, tools.SynthFailure], total: int,
              progress: bool) -> None:
    done = len(results)
    if progress:
        log.info("synthesis: %d instances, %d cached, %d distinct Yosys runs to do (%s, timeout %.0f s each)",
                 total, done, len(todo), runner.where, timeout)

    def one(key: str, job: tools.SynthJob) -> tuple[dict, bool]:
        # another build may be synthesizing the same entry: wait for it and take its result
        with key_lock(cache, key):
            hit = _cached(cache, key)
            if hit is not None:
                return hit, True
            result = runner.run(job, work_dir / job.label, timeout)
            write_json_entry(cache / f"{key}.json", result)
            return result, False

    order = sorted(todo.items(), key=lambda kv: -sum(p.stat().st_size for p in kv[1][0].data_files))
    with ThreadPoolExecutor(max_workers=runner.parallel) as pool:
        futures = {pool.submit(one, key, group[0]): (key, group) for key, group in order}
        for fut in as_completed(futures):
            key, group = futures[fut]
            done += len(group)
            try:
                result, cached = fut.result()
            except tools.SynthFailure as exc:
                for job in group:
                    failures[job.label] = exc
                if progress:
                    log.warning("  [%d/%d] %s FAILED: %s", done, total, group[0].label, exc.reason)
                continue
            for job in group:
                results[job.label] = {**result, "cached": cached, "key": key}
            if progress:
                same = f" (+{len(group) - 1} identical)" if len(group) > 1 else ""
                log.info("  [%d/%d] %s (%s)%s: %d LUT, %d FF, %g BRAM36, %d DSP, %d LUT levels, %.1f s%s",
                         done, total, group[0].label, group[0].module, same, result["lut"], result["ff"],
                         result["bram36"], result["dsp"], result["lut_levels"], result["seconds"],
                         " (cached by a concurrent build)" if cached else "")


def synth_design(rtl_dir: Path, work_dir: Path | None = None, *, parallel: int | None = None,
                 timeout: float | None = None, cache: Path | None = None, progress: bool = True,
                 ray_address: str | None = None) -> dict:
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
                                     progress=progress, ray_address=ray_address)
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
        "distinct_instances": len({r["key"] for r in results.values()}),
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
