"""Synthesis at scale and the shared caches.

Fast (a stand-in for Yosys): instances equal in module, parameters and memory *contents*
are one run whatever their memory files are called; parallel runs give the serial results;
two builds sharing a cache synthesize an entry once; a truncated or corrupted cache entry is
synthesized again, never used; a damaged Verilator model is rebuilt. Slow: the same with
the real Yosys, on this machine's cores and as Ray tasks on a two-node loopback cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hw_build import cache as hcache
from hw_build.estimate import synth as hsynth
from hw_build.rtl import library_files, module_closure, tools

ROOT = Path(__file__).resolve().parents[1]


def _sources(module: str) -> tuple[Path, ...]:
    lib = library_files()
    return tuple(lib[m] for m in module_closure([module]))


def _rom_job(tmp: Path, label: str, file_name: str, words: list[str], depth: int = 16) -> tools.SynthJob:
    """A ROM instance whose INIT_FILE (``file_name``, in ``tmp``) holds ``words``."""
    mem = tmp / file_name
    mem.write_text("\n".join(words) + "\n")
    params = (("WIDTH", 8), ("DEPTH", depth), ("INIT_FILE", file_name), ("STYLE", "distributed"))
    return tools.SynthJob(label, "rom", params, _sources("rom"), (mem,))


def _jobs(tmp: Path) -> list[tools.SynthJob]:
    """Four ROMs and two FIFOs: rom_a and rom_b hold equal words in differently named files,
    rom_c other words, rom_d rom_a's words at another depth; fifo_x and fifo_y are equal."""
    words = [f"{(i * 37) % 256:02x}" for i in range(16)]
    fifo = (("WIDTH", 16), ("DEPTH", 4))
    return [
        _rom_job(tmp, "rom_a", "layer0_weights.mem", words),
        _rom_job(tmp, "rom_b", "layer7_weights.mem", words),
        _rom_job(tmp, "rom_c", "layer9_weights.mem", words[::-1]),
        _rom_job(tmp, "rom_d", "layer3_weights.mem", words, depth=32),
        tools.SynthJob("fifo_x", "fifo", fifo, _sources("fifo")),
        tools.SynthJob("fifo_y", "fifo", fifo, _sources("fifo")),
    ]


def _fake_yosys(calls: list, delay: float = 0.0, active: list | None = None):
    """A stand-in for tools.run_synth_job: cells from the parameters and memory contents."""
    lock = threading.Lock()

    def run(job, work_dir, timeout=0):
        with lock:
            calls.append(job.label)
            if active is not None:
                active[0] += 1
                active[1] = max(active[1], active[0])
        time.sleep(delay)
        words = sum(len(p.read_text().split()) + int(p.read_text().split()[0], 16) for p in job.data_files)
        n = 1 + sum(v for _, v in job.params if isinstance(v, int)) + words
        cells = {"LUT6": 3 * n, "FDRE": n}
        with lock:
            if active is not None:
                active[0] -= 1
        return {**tools.summarize_cells(cells), "lut_levels": n % 7, "cells": cells, "seconds": delay}
    return run


@pytest.fixture
def fake_yosys(monkeypatch):
    calls: list = []
    active = [0, 0]   # running now, most at once
    monkeypatch.setattr(tools, "run_synth_job", _fake_yosys(calls, 0.2, active))
    monkeypatch.setattr(tools, "yosys_version", lambda: "fake 1.0")
    return calls, active


def _numbers(results: dict) -> dict:
    return {label: {k: r[k] for k in ("lut", "ff", "bram36", "dsp", "carry", "lut_levels", "cells")}
            for label, r in results.items()}


def test_equal_contents_under_other_file_names_are_one_run(tmp_path, fake_yosys):
    calls, _ = fake_yosys
    jobs = _jobs(tmp_path)
    keys = {j.label: hsynth.job_key(j) for j in jobs}
    assert keys["rom_a"] == keys["rom_b"] and keys["fifo_x"] == keys["fifo_y"]
    assert len({keys["rom_a"], keys["rom_c"], keys["rom_d"], keys["fifo_x"]}) == 4
    results, failures = hsynth.run_jobs(jobs, tmp_path / "work", parallel=2, cache=tmp_path / "cache",
                                        progress=False)
    assert not failures and set(results) == {j.label for j in jobs}
    # one run for rom_a/rom_b, one for fifo_x/fifo_y
    assert len(calls) == 4 and {"rom_c", "rom_d"} <= set(calls)
    assert len({"rom_a", "rom_b"} & set(calls)) == 1 and len({"fifo_x", "fifo_y"} & set(calls)) == 1
    assert _numbers(results)["rom_a"] == _numbers(results)["rom_b"]
    assert _numbers(results)["rom_a"] != _numbers(results)["rom_c"]


def test_per_stage_rom_prefixes_are_keyed_by_each_files_contents(tmp_path):
    """A parameter may name a file prefix (one ROM per stage: <prefix>0.mem, <prefix>1.mem):
    equal stage contents under another prefix are the same job, swapped stages are not."""
    src = _sources("rom")

    def job(label: str, prefix: str, stage0: str, stage1: str) -> tools.SynthJob:
        (tmp_path / f"{prefix}0.mem").write_text(stage0)
        (tmp_path / f"{prefix}1.mem").write_text(stage1)
        files = (tmp_path / f"{prefix}0.mem", tmp_path / f"{prefix}1.mem")
        return tools.SynthJob(label, "rom", (("INIT_FILE", prefix),), src, files)

    a = hsynth.content_params(job("a", "conv1_s", "01\n", "02\n"))
    b = hsynth.content_params(job("b", "conv4_s", "01\n", "02\n"))
    swapped = hsynth.content_params(job("c", "conv5_s", "02\n", "01\n"))
    assert a == b and a != swapped and a[0][1].startswith("contents:")


def test_parallel_runs_give_the_serial_results(tmp_path, fake_yosys):
    calls, active = fake_yosys
    jobs = _jobs(tmp_path)
    serial, _ = hsynth.run_jobs(jobs, tmp_path / "w1", parallel=1, cache=tmp_path / "c1", progress=False)
    assert active[1] == 1
    active[1] = 0
    parallel, _ = hsynth.run_jobs(jobs, tmp_path / "w2", parallel=4, cache=tmp_path / "c2", progress=False)
    assert active[1] > 1, "the distinct runs did not overlap"
    assert _numbers(serial) == _numbers(parallel)


def test_default_parallelism_uses_the_cores_the_memory_allows(monkeypatch):
    monkeypatch.delenv("HW_BUILD_SYNTH_JOBS", raising=False)
    monkeypatch.setattr(hsynth.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(hsynth, "_available_memory", lambda: 64 << 30)
    assert hsynth.default_jobs() == 8
    monkeypatch.setattr(hsynth, "_available_memory", lambda: 5 << 30)
    assert hsynth.default_jobs() == 2
    monkeypatch.setattr(hsynth, "_available_memory", lambda: 1 << 30)
    assert hsynth.default_jobs() == 1
    monkeypatch.setenv("HW_BUILD_SYNTH_JOBS", "3")
    assert hsynth.default_jobs() == 3


def test_two_builds_sharing_a_cache_synthesize_each_entry_once(tmp_path, fake_yosys):
    calls, _ = fake_yosys
    jobs = _jobs(tmp_path)
    out: list = [None, None]

    def build(i: int) -> None:
        out[i] = hsynth.run_jobs(jobs, tmp_path / f"w{i}", parallel=2, cache=tmp_path / "cache", progress=False)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 4, calls      # the second build waited for the first's entries
    assert _numbers(out[0][0]) == _numbers(out[1][0])


def test_a_damaged_cache_entry_is_synthesized_again(tmp_path, fake_yosys, caplog):
    calls, _ = fake_yosys
    jobs = _jobs(tmp_path)
    cache = tmp_path / "cache"
    first, _ = hsynth.run_jobs(jobs, tmp_path / "w", cache=cache, progress=False)
    key_c, key_d = first["rom_c"]["key"], first["rom_d"]["key"]
    truncated = cache / f"{key_c}.json"
    truncated.write_text(truncated.read_text()[:40])
    # valid JSON, plausible numbers, wrong checksum: a flipped bit must not be believed
    corrupted = cache / f"{key_d}.json"
    entry = json.loads(corrupted.read_text())
    entry["payload"]["cells"]["LUT6"] += 1
    corrupted.write_text(json.dumps(entry))
    calls.clear()
    again, _ = hsynth.run_jobs(jobs, tmp_path / "w", cache=cache, progress=False)
    assert sorted(calls) == ["rom_c", "rom_d"]
    assert _numbers(again) == _numbers(first)
    assert not again["rom_c"]["cached"] and again["rom_a"]["cached"]
    assert "damaged" in caplog.text
    assert hcache.read_json_entry(truncated) is not None and hcache.read_json_entry(corrupted) is not None


def test_json_entries_are_written_atomically(tmp_path, monkeypatch):
    """A writer killed mid-write leaves the old entry (or none), never a partial file."""
    entry = tmp_path / "k.json"
    hcache.write_json_entry(entry, {"cells": {"LUT6": 1}})

    def die(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(hcache.os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        hcache.write_json_entry(entry, {"cells": {"LUT6": 2}})
    assert hcache.read_json_entry(entry) == {"cells": {"LUT6": 1}}
    assert list(tmp_path.iterdir()) == [entry]


# --------------------------------------------------------------------------- Verilator cache
PASS_THROUGH = """
module pass_through (
    input  wire       clk,
    input  wire       rst_n,
    input  wire [7:0] s_tdata,
    input  wire       s_tvalid,
    output wire       s_tready,
    output reg  [7:0] m_tdata,
    output reg        m_tvalid,
    input  wire       m_tready
);
    assign s_tready = !m_tvalid || m_tready;
    always @(posedge clk) begin
        if (!rst_n) m_tvalid <= 1'b0;
        else if (s_tready) begin m_tvalid <= s_tvalid; m_tdata <= s_tdata + 8'd1; end
    end
endmodule
"""


def _sim_build(tmp_path: Path) -> Path:
    from hw_build.rtl import sim

    src = tmp_path / "pass_through.v"
    src.write_text(PASS_THROUGH)
    ports = [sim.Port("s", "in", 8), sim.Port("m", "out", 8)]
    return sim.build("pass_through", [src], ports, "clk", "rst_n")


def _sim_works(binary: Path, tmp_path: Path) -> bool:
    from hw_build.rtl import sim

    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    res = sim.run(binary, run_dir, [[1, 2, 3]], [3], 0.3, 0.3, seed=1)
    return res.status == "ok" and [v for _, v, _ in res.outputs[0]] == [2, 3, 4]


def test_a_damaged_verilator_model_is_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HW_BUILD_SIM_CACHE", str(tmp_path / "simcache"))
    binary = _sim_build(tmp_path)
    assert _sim_works(binary, tmp_path)
    entry = binary.parent
    assert hcache.dir_is_complete(entry)
    runtime = next((tmp_path / "simcache").glob("runtime-*"))
    assert hcache.dir_is_complete(runtime)
    # a truncated binary (a full disk, a killed copy) and damaged runtime objects
    data = binary.read_bytes()
    binary.write_bytes(data[: len(data) // 2])
    victim = next(runtime.glob("verilated*.o"))
    victim.write_bytes(victim.read_bytes()[:100])
    assert not hcache.dir_is_complete(entry) and not hcache.dir_is_complete(runtime)
    stale = entry.parent / f"{entry.name}.killed0"   # the work folder of a build killed half way
    (stale / "obj").mkdir(parents=True)
    again = _sim_build(tmp_path)
    assert not stale.exists()
    assert again == binary and hcache.dir_is_complete(entry) and _sim_works(again, tmp_path)
    assert "damaged" in caplog.text
    # a model folder left by a killed build (no completion manifest) is not used either
    (entry / hcache.COMPLETE_MARKER).unlink()
    binary.write_bytes(b"")
    assert _sim_works(_sim_build(tmp_path), tmp_path)


# --------------------------------------------------------------------------- real Yosys
RAY_LEG = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from hw_build.estimate import synth as hsynth
from tests.test_synth_scale import _jobs, _numbers
tmp = Path(sys.argv[2])
results, failures = hsynth.run_jobs(_jobs(tmp), tmp / "w3", cache=tmp / "c3", progress=False, ray_address=sys.argv[3])
print(json.dumps({"numbers": _numbers(results), "failures": len(failures)}))
"""


@pytest.mark.slow
def test_real_yosys_parallel_and_ray_equal_serial(tmp_path):
    """The real Yosys: serial, parallel on this machine's cores and as Ray tasks on a
    two-node loopback cluster give the same numbers; identical instances are one run."""
    from tests.ray_cluster import two_node_cluster

    jobs = _jobs(tmp_path)
    serial, f1 = hsynth.run_jobs(jobs, tmp_path / "w1", parallel=1, cache=tmp_path / "c1", progress=False)
    parallel, f2 = hsynth.run_jobs(jobs, tmp_path / "w2", parallel=2, cache=tmp_path / "c2", progress=False)
    # the cluster leg in its own process, as a user's build runs: a local Ray that an earlier
    # test started in this (xdist worker) process leaves authentication state behind, and the
    # driver could not connect to the token-authenticated cluster
    with two_node_cluster() as address:
        proc = subprocess.run([sys.executable, "-c", RAY_LEG, str(ROOT), str(tmp_path), address], cwd=ROOT,
                              capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    on_ray = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not (f1 or f2 or on_ray["failures"])
    assert _numbers(serial) == _numbers(parallel) == on_ray["numbers"]
    assert serial["rom_a"]["lut"] > 0 and _numbers(serial)["rom_a"] == _numbers(serial)["rom_b"]
    assert len(list((tmp_path / "c3").glob("*.json"))) == 4
