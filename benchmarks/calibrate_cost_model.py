#!/usr/bin/env python3
"""Calibrate the analytical cost model (hw_build/estimate/cost_model.py) against Yosys.

    .venv/bin/python benchmarks/calibrate_cost_model.py sweep [--only mvtu fifo ...] [--jobs N]
    .venv/bin/python benchmarks/calibrate_cost_model.py designs build/cnv_max build/tfc ...
    .venv/bin/python benchmarks/calibrate_cost_model.py fit
    .venv/bin/python benchmarks/calibrate_cost_model.py check [--designs build/cnv_max ...]

sweep    synthesizes every library module over a grid of parameters (one Yosys
         ``synth_xilinx -family xc7`` run each, memories filled with seeded random contents
         through the layers' own rtl_params/rtl_memories) and stores the cell counts in
         benchmarks/cost_model/synth_data.json. Results are cached by a hash of sources,
         parameters and memory contents (hw_build.estimate.synth), so an interrupted sweep
         resumes where it stopped.
designs  adds the per-instance results of built designs (build folders whose estimate step
         ran with synthesis; their report.json holds the instances) as real configurations.
fit      fits the coefficients of the cost model to the data and writes
         hw_build/estimate/coefficients.json.
check    prints the estimate-vs-Yosys error per module and, for the given build folders,
         per design (the numbers the 15 % target is about).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hw_build.estimate import cost_model  # noqa: E402
from hw_build.estimate import synth as hsynth  # noqa: E402
from hw_build.rtl import library_files, module_closure, tools  # noqa: E402
from tests import rtl_cases as T  # noqa: E402

DATA = ROOT / "benchmarks" / "cost_model" / "synth_data.json"
log = logging.getLogger("hw_build")

#: a config: (family, label, builder); the builder writes memory files into a folder and
#: returns (module, params, memory files)
Config = tuple[str, str, Callable[[Path], tuple[str, dict, list[Path]]]]


# --------------------------------------------------------------------------- configurations
def _layer(case_fn, *args, mem_style: str | None = None, **kwargs):
    """Builder of a layer module config from a tests/rtl_cases.py case function."""
    def build(folder: Path):
        from qonnx.custom_op.registry import getCustomOp

        # a seed from the configuration (not hash(): that changes per process), so the memory
        # contents, and with them the cache keys, are the same on every run
        rng = np.random.default_rng(zlib.crc32(repr((case_fn.__name__, args, sorted(kwargs.items()))).encode()))
        model, node, _ = case_fn(rng, *args, frames=1, **kwargs)
        op = getCustomOp(node)
        if mem_style:
            op.set_nodeattr("mem_style", mem_style)
        params = op.rtl_params(model)
        files = []
        for fname, lines in op.rtl_memories(model).items():
            (folder / fname).write_text("\n".join(lines) + "\n")
            files.append(folder / fname)
        return op.rtl_module, params, files
    return build


def _module(module: str, **params):
    def build(folder: Path):
        return module, params, []
    return build


def configs() -> Iterator[Config]:
    # ---------------------------------------------------------------- FIFOs: LUTRAM/BRAM choice
    for w, d in [(1, 2), (8, 2), (24, 2), (64, 2), (192, 2), (784, 2), (8, 16), (64, 16), (8, 32), (24, 32),
                 (64, 32), (8, 33), (8, 64), (64, 64), (8, 65), (24, 128), (64, 128), (8, 256), (64, 256),
                 (1, 512), (16, 512), (64, 512), (24, 1024), (64, 1024), (2, 1602), (16, 1154), (1, 2306),
                 (64, 786), (24, 8102), (64, 7058), (192, 434), (128, 902), (384, 29), (96, 26), (216, 28),
                 (288, 28), (4, 4096), (36, 2048), (72, 512), (18, 1024)]:
        yield "fifo", f"fifo_w{w}_d{d}", _module("fifo", WIDTH=w, DEPTH=d)
    # ---------------------------------------------------------------- width converters (all variants)
    for i, o, f in [(64, 8, 6272), (64, 24, 24576), (64, 112, 6272), (64, 64, 6272), (64, 8, 0), (64, 1, 0),
                    (14, 784, 0), (1, 64, 0), (1, 2, 0), (35, 7, 0), (64, 24, 0), (24, 64, 0), (16, 6, 0),
                    (192, 16, 0), (384, 1, 0), (2, 384, 0), (32, 96, 0), (96, 32, 0), (216, 24, 0),
                    (8, 216, 0), (64, 3, 0), (10, 4, 0), (256, 1, 0), (1, 256, 0)]:
        yield "stream_width_converter", f"swc_{i}_{o}_{f}", _module("stream_width_converter", IN_BITS=i,
                                                                   OUT_BITS=o, FRAME_BITS=f)
    yield "frame_tlast", "frame_tlast_98_64", _module("frame_tlast", WORDS_PER_FRAME=98, DEPTH=64)
    yield "frame_tlast", "frame_tlast_384_64", _module("frame_tlast", WORDS_PER_FRAME=384, DEPTH=64)
    # ---------------------------------------------------------------- MVTU, binary (XNOR-popcount)
    for mw, mh, pe, simd, th in [
            (64, 64, 1, 64, 1), (64, 64, 4, 16, 1), (64, 64, 64, 1, 1), (64, 64, 16, 64, 1), (64, 64, 64, 64, 1),
            (784, 64, 1, 784, 1), (784, 64, 4, 49, 1), (64, 10, 5, 2, 0), (64, 10, 1, 64, 0), (64, 10, 10, 64, 0),
            (576, 64, 8, 32, 1), (576, 64, 32, 64, 1), (576, 128, 8, 192, 1), (1152, 128, 16, 128, 1),
            (1152, 256, 1, 384, 1), (2304, 256, 1, 96, 1), (256, 512, 1, 32, 1), (512, 512, 1, 64, 1),
            (512, 10, 1, 1, 0), (512, 512, 4, 16, 1), (1152, 256, 4, 32, 1), (288, 32, 32, 32, 15),
            (144, 16, 16, 16, 15), (288, 64, 8, 32, 15), (576, 64, 4, 64, 15), (32, 64, 1, 16, 15),
            (288, 32, 2, 288, 15), (576, 128, 1, 288, 15), (128, 128, 2, 8, 3), (256, 256, 8, 8, 1),
            (9, 64, 64, 9, 1), (27, 64, 16, 3, 1), (4096, 64, 1, 64, 1),
            (2048, 2048, 1, 128, 1), (256, 64, 64, 4, 1)]:
        yield "mvtu_binary", f"mvtu_b_{mw}x{mh}_pe{pe}_simd{simd}_t{th}", _layer(
            T.mvtu_case, f"m_{mw}x{mh}_{pe}_{simd}_{th}", mw, mh, pe, simd, thresholds=th)
    for mw, mh, pe, simd, style in [(576, 64, 1, 64, "block"), (1152, 128, 2, 64, "block"),
                                    (256, 256, 1, 32, "block"), (64, 64, 1, 16, "distributed"),
                                    (2304, 256, 1, 96, "distributed")]:
        yield "mvtu_binary", f"mvtu_b_{mw}x{mh}_pe{pe}_simd{simd}_{style}", _layer(
            T.mvtu_case, f"m_{mw}x{mh}_{pe}_{simd}_{style[0]}", mw, mh, pe, simd, thresholds=1, mem_style=style)
    # ---------------------------------------------------------------- MVTU, integer inputs or weights
    for mw, mh, pe, simd, ind, wd, th in [
            (27, 64, 64, 3, "UINT8", "BIPOLAR", 1), (27, 64, 16, 3, "UINT8", "BIPOLAR", 1),
            (27, 64, 4, 27, "UINT8", "BIPOLAR", 1), (27, 64, 8, 9, "UINT8", "BIPOLAR", 1),
            (27, 32, 32, 3, "UINT8", "INT4", 15), (9, 16, 16, 1, "UINT8", "INT4", 15), (9, 16, 4, 9, "UINT8", "INT4", 15),
            (64, 10, 1, 1, "UINT10", "INT4", 0), (128, 10, 1, 1, "UINT10", "INT4", 0), (128, 10, 2, 16, "UINT10", "INT4", 0),
            (36, 16, 4, 6, "UINT2", "INT2", 3), (64, 32, 8, 8, "UINT4", "INT4", 15), (64, 32, 4, 16, "UINT2", "BIPOLAR", 3),
            (64, 64, 8, 8, "INT8", "INT8", 0), (16, 16, 4, 4, "UINT8", "INT8", 1), (288, 32, 4, 32, "UINT4", "BIPOLAR", 15)]:
        yield "mvtu_integer", f"mvtu_i_{mw}x{mh}_pe{pe}_simd{simd}_{ind}_{wd}_t{th}", _layer(
            T.mvtu_case, f"mi_{mw}x{mh}_{pe}_{simd}_{ind}_{wd}_{th}", mw, mh, pe, simd, binary=False,
            in_dtype=ind, w_dtype=wd, thresholds=th)
    # ---------------------------------------------------------------- sliding windows
    # (h, c, k, stride, pad, simd, dtype) per module: the element-serial window and the
    # window-parallel one (simd over the whole K x K x C window)
    windows = {
        ("sliding_window", "swg", "s", T.sliding_window_case): [
                (32, 3, 3, 1, 0, 3, "UINT8"), (32, 3, 3, 1, 1, 1, "UINT8"), (28, 1, 3, 1, 1, 1, "UINT8"),
                (30, 64, 3, 1, 0, 64, "BINARY"), (30, 64, 3, 1, 0, 16, "BINARY"), (14, 64, 3, 1, 0, 16, "BINARY"),
                (12, 128, 3, 1, 0, 16, "BINARY"), (12, 128, 3, 1, 0, 128, "BINARY"), (5, 128, 3, 1, 0, 2, "BINARY"),
                (3, 256, 3, 1, 0, 1, "BINARY"), (3, 256, 3, 1, 0, 32, "BINARY"), (28, 16, 3, 1, 1, 16, "BINARY"),
                (28, 16, 3, 2, 1, 4, "BINARY"), (14, 32, 3, 1, 1, 8, "BINARY"), (32, 32, 3, 1, 1, 32, "BINARY"),
                (16, 64, 3, 1, 1, 64, "BINARY"), (8, 128, 3, 1, 1, 8, "BINARY"), (32, 32, 3, 2, 1, 8, "UINT4"),
                (16, 16, 5, 1, 2, 4, "UINT2"), (64, 8, 3, 1, 1, 8, "BINARY"), (16, 64, 1, 2, 0, 16, "BINARY")],
        ("parallel_window", "pwin", "p", T.parallel_window_case): [
                (32, 3, 3, 1, 0, 27, "UINT8"), (32, 3, 3, 1, 0, 9, "UINT8"), (32, 3, 3, 1, 0, 3, "UINT8"),
                (32, 3, 3, 1, 1, 27, "UINT8"), (32, 3, 5, 2, 2, 75, "UINT8"), (30, 64, 3, 1, 0, 192, "BINARY"),
                (30, 64, 3, 1, 0, 576, "BINARY"), (14, 64, 3, 1, 0, 192, "BINARY"), (12, 128, 3, 1, 0, 384, "BINARY"),
                (28, 16, 3, 2, 1, 48, "BINARY"), (16, 32, 3, 1, 1, 96, "BINARY"), (64, 8, 3, 1, 1, 24, "UINT4")],
    }
    for (module, label, prefix, case), configs in windows.items():
        for h, c, k, s, pad, simd, dt in configs:
            yield module, f"{label}_{h}_{c}_k{k}s{s}p{pad}_simd{simd}_{dt}", _layer(
                case, f"{prefix}_{h}_{c}_{k}_{s}_{pad}_{simd}_{dt}", h, h, c, k, s, pads=(pad, pad, pad, pad),
                simd=simd, dtype=dt)
    # ---------------------------------------------------------------- thresholding
    for c, pe, ind, nt, h in [(784, 14, "UINT8", 1, 28), (784, 1, "UINT8", 1, 28), (3, 3, "UINT8", 255, 32),
                              (3, 1, "UINT8", 255, 32), (16, 2, "UINT4", 15, 28), (16, 2, "UINT5", 15, 28),
                              (32, 4, "UINT4", 1, 32), (64, 2, "UINT6", 1, 16), (128, 1, "UINT7", 15, 8),
                              (64, 16, "UINT4", 3, 8), (64, 8, "INT8", 3, 8), (32, 32, "UINT5", 15, 8),
                              (256, 4, "INT8", 1, 4), (16, 4, "UINT8", 255, 4)]:
        yield "thresholding", f"th_{c}_pe{pe}_{ind}_t{nt}", _layer(
            T.thresholding_case, f"t_{c}_{pe}_{ind}_{nt}", [h, h, c] if h > 1 else [1, 1, c], pe, ind, nt)
    # ---------------------------------------------------------------- pooling
    for h, c, k, pe, ind, mode in [(28, 64, 2, 8, "BINARY", "max"), (10, 128, 2, 2, "BINARY", "max"),
                                   (28, 64, 2, 64, "BINARY", "max"), (28, 16, 2, 2, "UINT4", "sum"),
                                   (14, 32, 2, 1, "UINT4", "sum"), (7, 64, 7, 1, "UINT4", "sum"),
                                   (8, 128, 8, 1, "UINT4", "sum"), (32, 32, 2, 4, "UINT4", "sum"),
                                   (16, 64, 2, 16, "UINT2", "max"), (16, 256, 2, 4, "BINARY", "max")]:
        yield "pool", f"pool_{h}_{c}_k{k}_pe{pe}_{ind}_{mode}", _layer(
            T.pool_case, f"p_{h}_{c}_{k}_{pe}_{ind}_{mode}", h, h, c, k, pe, ind, mode=mode)
    # ---------------------------------------------------------------- grouped-conv channel split / concat
    for w, n, b in [(32, 2, 1), (16, 4, 4), (64, 2, 8), (8, 8, 2), (128, 2, 1)]:
        yield "channel_split", f"split_w{w}_n{n}_b{b}", _module("channel_split", WIDTH=w, NUM_OUTPUTS=n,
                                                                GROUP_BEATS=b)
    for w, b0, b1 in [(32, 1, 1), (64, 3, 1), (16, 4, 4), (128, 1, 1), (8, 16, 8)]:
        yield "channel_concat", f"concat_w{w}_{b0}_{b1}", _module("channel_concat", WIDTH=w, BEATS0=b0, BEATS1=b1)
    # ---------------------------------------------------------------- add / duplicate / global pool / label
    for c, pe, a, b in [(16, 2, "UINT4", "UINT4"), (32, 4, "UINT4", "UINT4"), (64, 1, "UINT6", "UINT4"),
                        (64, 16, "UINT4", "UINT4"), (64, 64, "INT8", "INT8"), (32, 8, "UINT7", "UINT4")]:
        yield "add_streams", f"add_{c}_pe{pe}_{a}_{b}", _layer(T.add_case, f"a_{c}_{pe}_{a}_{b}", [4, 4, c], pe, a, b)
    for c, pe, dt, n in [(16, 2, "UINT4", 2), (32, 4, "UINT4", 2), (32, 2, "BINARY", 4), (64, 64, "UINT4", 2),
                         (64, 8, "UINT4", 3)]:
        yield "duplicate_streams", f"dup_{c}_pe{pe}_{dt}_{n}", _layer(
            T.duplicate_case, f"d_{c}_{pe}_{dt}_{n}", [4, 4, c], pe, dt, outputs=n)
    for h, c, pe, ind in [(7, 64, 1, "UINT4"), (8, 128, 1, "UINT4"), (8, 128, 8, "UINT4"), (4, 256, 4, "UINT2"),
                          (7, 64, 64, "UINT4")]:
        yield "global_acc_pool", f"gap_{h}_{c}_pe{pe}_{ind}", _layer(
            T.global_acc_pool_case, f"g_{h}_{c}_{pe}_{ind}", h, h, c, pe, ind)
    for c, pe, ind, aff in [(10, 1, "UINT10", True), (10, 1, "INT18", True), (10, 5, "UINT7", True),
                            (10, 1, "UINT10", False), (10, 10, "INT12", False), (100, 4, "INT16", True),
                            (1000, 8, "INT16", False)]:
        yield "label_select", f"label_{c}_pe{pe}_{ind}_{'aff' if aff else 'raw'}", _layer(
            T.label_select_case, f"l_{c}_{pe}_{ind}_{int(aff)}", c, pe, ind, affine=aff)


# --------------------------------------------------------------------------- commands
def load_data() -> list[dict]:
    return json.loads(DATA.read_text()) if DATA.exists() else []


def save_data(rows: list[dict]) -> None:
    DATA.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: (r["family"], r["label"]))
    DATA.write_text("[\n" + ",\n".join(json.dumps(r, sort_keys=True) for r in rows) + "\n]\n")


def cmd_sweep(args) -> int:
    lib = library_files()

    def sources(module: str) -> tuple[Path, ...]:
        return tuple(lib[m] for m in module_closure([module]))

    chosen = [c for c in configs() if not args.only or c[0] in args.only or any(o in c[1] for o in args.only)]
    log.info("sweep: %d configurations", len(chosen))
    work = Path(tempfile.mkdtemp(prefix="calibrate."))
    mem_dir = work / "memories"
    jobs, meta = [], {}
    for family, label, build in chosen:
        folder = mem_dir / label
        folder.mkdir(parents=True, exist_ok=True)
        module, params, files = build(folder)
        jobs.append(tools.SynthJob(label, module, tuple(params.items()), sources(module), tuple(files)))
        meta[label] = (family, module, params)
    results, failures = hsynth.run_jobs(jobs, work / "runs", parallel=args.jobs, timeout=args.timeout)
    rows = {(r["family"], r["label"]): r for r in load_data()}
    for label, r in results.items():
        family, module, params = meta[label]
        rows[(family, label)] = {"family": family, "label": label, "module": module, "params": params,
                                 **{k: r[k] for k in ("lut", "ff", "bram36", "dsp", "carry", "lut_levels")}}
    save_data(list(rows.values()))
    for label, exc in failures.items():
        log.warning("FAILED %s: %s", label, exc)
    log.info("%d results in %s (%d failed)", len(results), DATA.relative_to(ROOT), len(failures))
    return 1 if failures else 0


#: modules whose design instances are not added as calibration data (see cmd_designs)
CONTENT_DEPENDENT = {"thresholding"}


def cmd_designs(args) -> int:
    rows = {(r["family"], r["label"]): r for r in load_data()}
    for folder in args.builds:
        report = json.loads((Path(folder) / "report.json").read_text())
        synth = report.get("synth") or report.get("synth_partial")
        if not synth or "instances" not in synth:
            log.warning("%s: no per-instance synthesis in report.json; build it with synthesis first", folder)
            continue
        name = Path(folder).name
        for inst in synth["instances"]:
            # a thresholding layer's cost depends on its contents, which the model cannot see:
            # a first layer quantizing every pixel alike synthesizes to 2 LUTs where the sweep's
            # per-channel thresholds need hundreds; those instances would only confuse the fit
            if "error" in inst or inst["module"] in CONTENT_DEPENDENT:
                continue
            label = f"{name}:{inst['instance']}"
            rows[("design", label)] = {"family": "design", "label": label, "module": inst["module"],
                                       "params": inst["params"],
                                       **{k: inst[k] for k in ("lut", "ff", "bram36", "dsp", "carry", "lut_levels")}}
        log.info("%s: %d instances added", name, len(synth["instances"]))
    save_data(list(rows.values()))
    return 0


def _err(est: float, ref: float) -> float:
    return (est - ref) / max(ref, 1.0)


def cmd_check(args) -> int:
    rows = load_data()
    by_module: dict[str, list[tuple[dict, dict]]] = {}
    for r in rows:
        by_module.setdefault(r["module"], []).append((r, cost_model.module_resources(r["module"], r["params"])))
    print(f"{'module':24s} {'n':>4s} {'LUT est/Yosys':>15s} {'mean|err|':>9s} {'max|err|':>9s} "
          f"{'BRAM36 est/Yosys':>17s} {'FF est/Yosys':>13s}")
    for module, pairs in sorted(by_module.items()):
        lut_r = sum(e["lut"] for _, e in pairs), sum(r["lut"] for r, _ in pairs)
        bram_r = sum(e["bram36"] for _, e in pairs), sum(r["bram36"] for r, _ in pairs)
        ff_r = sum(e["ff"] for _, e in pairs), sum(r["ff"] for r, _ in pairs)
        errs = [abs(_err(e["lut"], r["lut"])) for r, e in pairs if r["lut"] >= 50]
        print(f"{module:24s} {len(pairs):4d} {lut_r[0] / max(lut_r[1], 1):15.3f} "
              f"{100 * np.mean(errs) if errs else 0:8.1f}% {100 * max(errs, default=0):8.1f}% "
              f"{bram_r[0]:8.1f}/{bram_r[1]:<8.1f} {ff_r[0] / max(ff_r[1], 1):13.3f}")
    if args.verbose:
        for _module, pairs in sorted(by_module.items()):
            for r, e in sorted(pairs, key=lambda p: p[0]["label"]):
                print(f"  {r['label']:60s} LUT {e['lut']:8.0f} / {r['lut']:8.0f} ({100 * _err(e['lut'], r['lut']):+6.1f}%)"
                      f"  BRAM {e['bram36']:5.1f} / {r['bram36']:5.1f}  FF {e['ff']:7.0f} / {r['ff']:7.0f}")
    for folder in args.designs or []:
        report = json.loads((Path(folder) / "report.json").read_text())
        synth = report.get("synth")
        if not synth or "instances" not in synth:
            print(f"{folder}: no per-instance synthesis in report.json")
            continue
        name = Path(folder).name
        # the estimate of the synthesized instances with the current coefficients, and with
        # coefficients fitted without this design's own instances (held out: what a new
        # design of this kind can expect)
        held_out = cost_model.fit([r for r in rows if not r["label"].startswith(f"{name}:")], log=lambda _m: None)
        totals = {"current": [0.0, 0.0], "held out": [0.0, 0.0]}
        for inst in synth["instances"]:
            for key, coeffs in (("current", None), ("held out", held_out)):
                e = cost_model.module_resources(inst["module"], inst["params"], coeffs)
                totals[key][0] += e["lut"]
                totals[key][1] += e["bram36"]
        line = f"{name}: Yosys {synth['lut']:,.0f} LUT, {synth['bram36']:.1f} BRAM36;"
        for key, (lut, bram) in totals.items():
            line += (f" {key} estimate {lut:,.0f} LUT ({100 * _err(lut, synth['lut']):+.1f}%), {bram:.1f} BRAM36 "
                     f"({100 * _err(bram, synth['bram36']) if synth['bram36'] else 0:+.1f}%);")
        print(line.rstrip(";"))
    return 0


def cmd_fit(args) -> int:
    rows = load_data()
    coeffs = cost_model.fit(rows, log=print)
    cost_model.save_coefficients(coeffs)
    print(f"wrote {cost_model.COEFFICIENTS.relative_to(ROOT)}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sweep")
    p.add_argument("--only", nargs="*", help="families or label fragments to run")
    p.add_argument("--jobs", type=int, default=None, help="parallel Yosys processes")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per configuration")
    p = sub.add_parser("designs")
    p.add_argument("builds", nargs="+")
    sub.add_parser("fit")
    p = sub.add_parser("check")
    p.add_argument("--designs", nargs="*")
    p.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.propagate = True
    return {"sweep": cmd_sweep, "designs": cmd_designs, "fit": cmd_fit, "check": cmd_check}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
