"""The build flow: one function per step, each reading the previous step's ONNX model from
the build folder and writing its own, so a build can stop (--until) and resume (--from)."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from hw_build import boards
from hw_build.errors import BuildError

log = logging.getLogger("hw_build")


@dataclass
class Options:
    model: str
    board: str
    output: Path | None = None
    clock_mhz: float | None = None
    target_fps: str = "max"
    folding: Path | None = None
    until: str | None = None
    start: str | None = None
    verify_input: Path | None = None
    verify_images: int = 8
    synth: bool = True
    pretrained: bool = True
    #: test images the accuracy run streams through the RTL (None: the whole test split of a
    #: trained zoo model's dataset; 0: no accuracy run)
    accuracy_images: int | None = None


@dataclass
class Context:
    opts: Options
    out: Path
    board: boards.Board
    clock_mhz: float
    report: dict = field(default_factory=dict)
    #: a step may report a status other than "ok" (vivado without Vivado: "scripts only")
    step_status: str = "ok"

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    def intermediate(self, step: str) -> Path:
        return self.path("intermediate", f"{STEP_NAMES.index(step):02d}_{step}.onnx")

    def load(self, step: str) -> ModelWrapper:
        p = self.intermediate(step)
        if not p.exists():
            raise BuildError(f"cannot resume: '{p}' is missing. Run the build from an earlier step "
                             f"(--from {step} or earlier) first.")
        return ModelWrapper(str(p))

    def save(self, step: str, model: ModelWrapper) -> None:
        self.path("intermediate").mkdir(parents=True, exist_ok=True)
        model.save(str(self.intermediate(step)))

    def verify_array(self, name: str) -> np.ndarray:
        p = self.path("verify", f"{name}.npy")
        if not p.exists():
            raise BuildError(f"cannot resume: '{p}' is missing; rerun from the export step.")
        return np.load(p)

    def write_verify(self, name: str, value: np.ndarray) -> None:
        self.path("verify").mkdir(parents=True, exist_ok=True)
        np.save(self.path("verify", f"{name}.npy"), value)


# ---------------------------------------------------------------- steps

def step_export(ctx: Context) -> None:
    from hw_build.export import export_module, load_onnx
    from hw_build.inputs import accuracy_images, reference_scores, verify_images

    spec = ctx.opts.model
    if spec.endswith(".onnx") or Path(spec).is_file():
        model = load_onnx(spec)
        module = None
        ctx.report["model"] = Path(spec).stem
        ctx.report["trained"] = None
    else:
        from quant_models import zoo

        if spec not in zoo.names():
            raise BuildError(f"unknown model '{spec}'. Zoo models: {', '.join(zoo.names())} "
                             "(python build.py --list-models), or give the path of a QONNX .onnx file.")
        module = zoo.get(spec, pretrained=ctx.opts.pretrained)
        ctx.report["model"] = spec
        ctx.report["trained"] = bool(getattr(module, "trained", False))
        if not ctx.report["trained"]:
            banner = (f"WARNING: '{spec}' has no trained weights here: building with SEEDED INITIAL "
                      "WEIGHTS. The hardware is real and verified, the accuracy is not meaningful.")
            log.warning("=" * 78)
            log.warning(banner)
            log.warning("=" * 78)
            ctx.report["weights"] = "seeded initial weights (untrained)"
        ctx.path("intermediate").mkdir(parents=True, exist_ok=True)
        model = export_module(module, tuple(module.input_shape), ctx.intermediate("export"))
    ctx.save("export", model)
    images, source = verify_images(ctx.opts, module, model)
    log.info("verification: %d images from %s", len(images), source)
    ctx.report["verify_source"] = source
    ctx.write_verify("inputs", images)
    scores = reference_scores(module, model, images)
    ctx.write_verify("reference_scores", scores.astype(np.float32))
    ctx.write_verify("reference", scores.argmax(axis=1).astype(np.int64))
    _prepare_accuracy(ctx, module, model, accuracy_images(ctx.opts, module))


ACCURACY_FILES = ("accuracy_inputs", "accuracy_labels", "accuracy_reference_scores", "accuracy_rtlsim")


def _prepare_accuracy(ctx: Context, module, model: ModelWrapper, labelled) -> None:
    """Score the accuracy images with the reference now (the module is only loaded here);
    the verify step streams them through the RTL."""
    from hw_build.inputs import reference_scores

    for name in ACCURACY_FILES:
        ctx.path("verify", f"{name}.npy").unlink(missing_ok=True)
    ctx.report["accuracy"] = None
    if labelled is None:
        return
    images, labels, dataset = labelled
    log.info("accuracy: scoring %d %s test images with the PyTorch model...", len(images), dataset)
    scores = np.concatenate([reference_scores(module, model, images[i:i + 500])
                             for i in range(0, len(images), 500)])
    ctx.write_verify("accuracy_inputs", images)
    ctx.write_verify("accuracy_labels", labels)
    ctx.write_verify("accuracy_reference_scores", scores.astype(np.float32))
    ctx.report["accuracy"] = {"dataset": dataset, "images": int(len(images)),
                              "reference": float((scores.argmax(axis=1) == labels).mean()), "rtlsim": None}
    log.info("accuracy: PyTorch %.2f%% on %d %s test images", 100 * ctx.report["accuracy"]["reference"],
             len(images), dataset)


def step_tidy(ctx: Context) -> None:
    from hw_build.tidy import tidy

    ctx.save("tidy", tidy(ctx.load("export")))


def step_streamline(ctx: Context) -> None:
    from hw_build import verify
    from hw_build.streamline import streamline

    tidy_model = ctx.load("tidy")
    model = streamline(ModelWrapper(tidy_model.model.SerializeToString()))
    images = ctx.verify_array("inputs")
    labels = verify.streamlined_labels(model, images)
    result = verify.check_stage("streamlined", labels, ctx.verify_array("reference_scores"))
    ctx.write_verify("streamlined", labels)
    ctx.report.setdefault("verify", {})["streamlined"] = result
    if result["mismatches"]:
        detail = verify.first_divergence_streamlined(tidy_model, model, images[result["first_mismatch"]])
        raise verify.fail("streamlined", result, detail)
    ctx.save("streamline", model)
    log.info("streamlined: %d nodes, all integer; %d/%d labels agree with the reference",
             len(model.graph.node), result["frames"] - result["mismatches"], result["frames"])


def step_lower(ctx: Context) -> None:
    from hw_build import verify
    from hw_build.lower import lower

    streamlined = ctx.load("streamline")
    model = lower(streamlined)
    images = ctx.verify_array("inputs")
    labels = verify.dataflow_labels(model, images)
    result = verify.check_stage("dataflow", labels, ctx.verify_array("reference_scores"))
    ctx.write_verify("dataflow", labels)
    ctx.report.setdefault("verify", {})["dataflow"] = result
    if result["mismatches"]:
        detail = verify.first_divergence_dataflow(streamlined, model, images[result["first_mismatch"]])
        raise verify.fail("dataflow", result, detail)
    ctx.save("lower", model)
    model.save(str(ctx.path("dataflow.onnx")))
    log.info("dataflow graph: %d hardware layers (%s)", len(model.graph.node),
             ", ".join(sorted({n.op_type for n in model.graph.node})))


def step_fold(ctx: Context) -> None:
    from hw_build import fold

    model = ctx.load("lower")
    if ctx.opts.folding is not None:
        model = fold.apply_folding_file(model, ctx.opts.folding)
        how = f"from {ctx.opts.folding}"
    else:
        model, how = fold.fold_for_board(model, ctx.board, ctx.clock_mhz, ctx.opts.target_fps)
    ctx.save("fold", model)
    model.save(str(ctx.path("dataflow.onnx")))
    ctx.path("folding.json").write_text(json.dumps(fold.folding_config(model), indent=2) + "\n")
    cycles = fold.bottleneck_cycles(model)
    log.info("folding %s: bottleneck %d cycles/frame = %.0f FPS at %g MHz", how, cycles,
             ctx.clock_mhz * 1e6 / cycles, ctx.clock_mhz)


def _verify_frames_nhwc(ctx: Context) -> np.ndarray:
    from hw_build.verify import to_nhwc

    return to_nhwc(ctx.verify_array("inputs")).astype(np.uint8)


def step_rtl(ctx: Context) -> None:
    from hw_build.rtl import sim, tools

    model = ctx.load("fold")
    rtl_dir = ctx.path("rtl")
    if rtl_dir.exists():
        shutil.rmtree(rtl_dir)
    frames = _verify_frames_nhwc(ctx)
    if len(frames) < 3:  # FIFO sizing needs back-to-back frames
        frames = np.concatenate([frames] * 3)[:3]
    log.info("generating Verilog and sizing FIFOs by simulation (%d frames)...", len(frames))
    depths = sim.size_fifos(model, rtl_dir, ctx.board.dma_bits, frames=frames[:4])
    problems = tools.lint(rtl_dir)
    if problems:
        raise BuildError("the generated Verilog is not lint clean (a compiler bug; please report it):\n"
                         + "\n".join(problems[:20]))
    model.set_metadata_prop("hw_build.fifo_depths", json.dumps(depths))
    ctx.save("rtl", model)
    ctx.report["fifo_depths"] = depths
    log.info("rtl/: accel_top.v and %d files; FIFO depths proven in simulation: %s",
             len(list(rtl_dir.iterdir())), ", ".join(f"{d}" for d in depths.values()))


def step_verify(ctx: Context) -> None:
    from hw_build import verify
    from hw_build.fold import dma_cycles
    from hw_build.rtl import sim

    model = ctx.load("rtl")
    rtl_dir = ctx.path("rtl")
    frames = _verify_frames_nhwc(ctx)
    log.info("RTL simulation of %d frames with random stalls on input valid and output ready...", len(frames))
    labels, _ = sim.simulate_top(rtl_dir, frames, stall_in=0.3, stall_out=0.3, seed=1)
    # the initiation interval is measured without stalls, over >= 3 back-to-back frames
    timing_frames = frames if len(frames) >= 3 else np.concatenate([frames] * 3)[:3]
    timing_labels, stats = sim.simulate_top(rtl_dir, timing_frames, stall_in=0.0, stall_out=0.0, seed=2)
    dataflow = ctx.verify_array("dataflow")
    ctx.write_verify("rtlsim", labels)
    mismatch_df = int((labels != dataflow).sum())
    result = verify.check_stage("rtlsim", labels, ctx.verify_array("reference_scores"))
    result["mismatches_vs_dataflow"] = mismatch_df
    ctx.report.setdefault("verify", {})["rtlsim"] = result
    dma = dma_cycles(model, ctx.board)
    ii = float(stats["ii_cycles"])
    ctx.report["rtlsim"] = {
        "frames": int(len(labels)), "ii_cycles": ii, "latency_cycles": int(stats["latency_cycles"]),
        "fps": ctx.clock_mhz * 1e6 / max(ii, dma), "mismatches": mismatch_df, "stalls": 0.3,
        "timing_frames": int(len(timing_frames)),
    }
    if mismatch_df or result["mismatches"] or not np.array_equal(timing_labels[: len(labels)], labels[: len(timing_labels)]):
        raise BuildError(
            f"RTL simulation disagrees with the Python execution of the dataflow graph on {mismatch_df} of "
            f"{len(labels)} images (labels {labels.tolist()} vs {dataflow.tolist()}). This is a compiler "
            "bug; please report it with the build folder."
        )
    log.info("rtlsim: %d/%d labels equal the dataflow graph's; II %.0f cycles (%.0f FPS at %g MHz), "
             "latency %d cycles", len(labels) - mismatch_df, len(labels), ii, ctx.report["rtlsim"]["fps"],
             ctx.clock_mhz, stats["latency_cycles"])
    _measure_accuracy(ctx)


def _measure_accuracy(ctx: Context) -> None:
    """Stream the accuracy images through the RTL and compare with PyTorch image by image."""
    from hw_build import verify
    from hw_build.rtl import sim

    if not ctx.path("verify", "accuracy_inputs.npy").exists():
        return
    images = ctx.verify_array("accuracy_inputs")
    labels = ctx.verify_array("accuracy_labels")
    scores = ctx.verify_array("accuracy_reference_scores")
    log.info("accuracy: RTL simulation of %d test images...", len(images))
    t0 = time.perf_counter()
    rtl_labels, _ = sim.simulate_top(ctx.path("rtl"), verify.to_nhwc(images), stall_in=0.0, stall_out=0.0, seed=3)
    ctx.write_verify("accuracy_rtlsim", rtl_labels)
    agree = verify.accepted(rtl_labels, scores)
    acc = ctx.report.get("accuracy") or {}
    acc.update({"images": int(len(images)), "rtlsim": float((rtl_labels == labels).mean()),
                "rtlsim_vs_reference_mismatches": int((~agree).sum()),
                "simulation_seconds": round(time.perf_counter() - t0, 1)})
    ctx.report["accuracy"] = acc
    if not agree.all():
        bad = np.flatnonzero(~agree)
        raise BuildError(
            f"RTL simulation disagrees with the PyTorch model on {len(bad)} of {len(images)} {acc.get('dataset')} "
            f"test images (first: image {int(bad[0])}, RTL label {int(rtl_labels[bad[0]])}, PyTorch "
            f"{int(scores[bad[0]].argmax())}). This is a compiler bug; please report it with the build folder.")
    log.info("accuracy: RTL %.2f%%, PyTorch %.2f%% on %d %s test images; RTL and PyTorch agree on every image "
             "(%.0f s)", 100 * acc["rtlsim"], 100 * acc.get("reference", float("nan")), len(images),
             acc.get("dataset"), acc["simulation_seconds"])


def step_estimate(ctx: Context) -> None:
    from hw_build.estimate import synth

    ctx.report.pop("synth_error", None)
    ctx.report.pop("synth_partial", None)
    if not ctx.opts.synth:
        ctx.report["synth"] = None
        log.info("synthesis skipped (--no-synth): resources are the analytical estimate")
        return
    log.info("Yosys synth_xilinx -family xc7 of every layer, FIFO and width converter on its own "
             "(cache: %s)...", synth.cache_dir())
    result = synth.synth_design(ctx.path("rtl"), ctx.path("synth"))
    if result["failures"]:
        # synthesis measures resources; the accelerator itself is verified, so the build goes on,
        # but says plainly which instance failed and that the numbers are the analytical estimate
        names = {i["instance"]: i for i in result["instances"]}
        what = "; ".join(f"{names[n]['kind']} {names[n]['layer'] or n} (instance {n}, module {names[n]['module']}): "
                         f"{reason} (log: synth/{n}/yosys.log)" for n, reason in result["failures"].items())
        ctx.report["synth"] = None
        ctx.report["synth_partial"] = result
        ctx.report["synth_error"] = f"Yosys synthesis failed for {what}"
        ctx.step_status = "synthesis failed"
        log.warning("WARNING: %s. report.json resources and 'fits' are the analytical estimate.",
                    ctx.report["synth_error"])
        return
    ctx.report["synth"] = result
    log.info("synthesis: %d LUT, %d FF, %.1f BRAM36, %d DSP, %d LUT levels (%d instances, %d Yosys runs, "
             "%d cached, %.0f s)", result["lut"], result["ff"], result["bram36"], result["dsp"],
             result["lut_levels"], len(result["instances"]), result["yosys_runs"], result["cached"],
             result["seconds"])
    from hw_build.estimate.timing import timing_block

    t = timing_block(result, ctx.board.part, ctx.board.family, ctx.clock_mhz)
    log.info("timing (estimate until Vivado runs, %s model): Fmax about %.0f MHz, slowest instance %s "
             "(%d LUT levels at most in any instance)", t["model"]["name"], t["fmax_mhz_estimate"],
             t["slowest_instance"], t["lut_levels_max"])
    if "warning" in t:
        log.warning("WARNING: %s", t["warning"])


def step_vivado(ctx: Context) -> None:
    from hw_build.vivado import run_vivado, write_scripts

    info = write_scripts(ctx.out, ctx.board, ctx.clock_mhz)
    info["status"] = run_vivado(ctx.out, ctx.board)
    ctx.report["vivado"] = info
    if info["status"] != "bitstream":
        ctx.step_status = "scripts only"
    log.info("vivado: %s (%s)", info["status"], info.get("command", ""))


def step_deploy(ctx: Context) -> None:
    from hw_build.package import make_deploy_package, package_summary

    zip_path = make_deploy_package(ctx.out)
    ctx.report["deploy"] = package_summary(ctx.out, zip_path)
    log.info("deploy package: %s", zip_path)


Step = Callable[[Context], None]
STEPS: list[tuple[str, Step, list[str]]] = [
    # (name, function, files/folders it writes besides its intermediate model)
    ("export", step_export, ["verify/inputs.npy", "verify/reference.npy", "verify/reference_scores.npy"]),
    ("tidy", step_tidy, []),
    ("streamline", step_streamline, ["verify/streamlined.npy"]),
    ("lower", step_lower, ["dataflow.onnx", "verify/dataflow.npy"]),
    ("fold", step_fold, ["folding.json"]),
    ("rtl", step_rtl, ["rtl"]),
    ("verify", step_verify, ["verify/rtlsim.npy", "verify/accuracy_rtlsim.npy"]),
    ("estimate", step_estimate, []),
    ("vivado", step_vivado, ["vivado/bitfile"]),
    ("deploy", step_deploy, ["deploy", "deploy.zip"]),
]
STEP_NAMES = [s[0] for s in STEPS]
#: report.json keys each step writes (its results, stale once an earlier step runs again)
STEP_REPORT_KEYS = {
    "rtl": ["fifo_depths"],
    "verify": ["rtlsim"],
    "estimate": ["synth", "synth_error", "synth_partial"],
    "vivado": ["vivado"],
    "deploy": ["deploy"],
}
ALIASES = {"dataflow": "lower", "streamlined": "streamline", "rtlsim": "verify", "synth": "estimate"}


def resolve_step(name: str) -> str:
    step = ALIASES.get(name, name)
    if step not in STEP_NAMES:
        raise BuildError(f"unknown step '{name}'. Steps: {', '.join(STEP_NAMES)} (python build.py --list-steps).")
    return step


# ---------------------------------------------------------------- driver

def _setup_logging(out: Path, resume: bool) -> logging.Handler:
    log.setLevel(logging.INFO)
    log.propagate = False
    if not any(isinstance(h, logging.StreamHandler) and getattr(h, "_hw_console", False) for h in log.handlers):
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(logging.Formatter("%(message)s"))
        console._hw_console = True  # type: ignore[attr-defined]
        # errors are printed once, by build.py, on stderr
        console.addFilter(lambda record: record.levelno < logging.ERROR)
        log.addHandler(console)
    handler = logging.FileHandler(out / "build.log", mode="a" if resume else "w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return handler


def _remove_paths(paths: list[Path]) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _remove_outputs(ctx: Context, step: str, extra: list[str]) -> None:
    """Remove what a failed step may have half-written, so nothing looks finished."""
    _remove_paths([ctx.intermediate(step)] + [ctx.path(rel) for rel in extra])
    if step in ("export", "tidy", "streamline", "lower"):
        for later in ("dataflow.onnx", "folding.json"):
            if ctx.path(later).exists():
                ctx.path(later).unlink()


def _drop_stale_results(ctx: Context, history: list[dict], after: str) -> list[dict]:
    """Forget what the steps after ``after`` produced in an earlier run: it was made from
    inputs this run replaces (a resumed build that reruns fold must not report the old RTL's
    simulation, FIFOs or synthesis). Returns the history without those steps."""
    later = STEP_NAMES[STEP_NAMES.index(after) + 1:]
    for step, _fn, outputs in STEPS:
        if step not in later:
            continue
        _remove_paths([ctx.intermediate(step)] + [ctx.path(o) for o in outputs])
        for key in STEP_REPORT_KEYS.get(step, []):
            ctx.report.pop(key, None)
    if "verify" in later and isinstance(ctx.report.get("accuracy"), dict):
        acc = ctx.report["accuracy"]
        ctx.report["accuracy"] = {k: acc[k] for k in ("dataset", "images", "reference") if k in acc} | {"rtlsim": None}
    return [h for h in history if h["step"] not in later]


def build(opts: Options) -> dict:
    board = boards.get(opts.board)
    clock = opts.clock_mhz or board.clock_mhz
    if clock <= 0:
        raise BuildError(f"--clock-mhz must be positive (got {clock}).")
    if opts.accuracy_images is not None and opts.accuracy_images < 0:
        raise BuildError(f"--accuracy-images must be 0 (skip) or a positive count (got {opts.accuracy_images}).")
    name = Path(opts.model).stem if opts.model.endswith(".onnx") else opts.model
    out = Path(opts.output) if opts.output else Path("build") / f"{name}-{board.name}"
    first = resolve_step(opts.start) if opts.start else STEP_NAMES[0]
    last = resolve_step(opts.until) if opts.until else STEP_NAMES[-1]
    if STEP_NAMES.index(first) > STEP_NAMES.index(last):
        raise BuildError(f"--from {first} comes after --until {last}.")
    resume = first != STEP_NAMES[0]
    if resume and not out.exists():
        raise BuildError(f"cannot resume from '{first}': build folder '{out}' does not exist.")
    out.mkdir(parents=True, exist_ok=True)
    handler = _setup_logging(out, resume)
    ctx = Context(opts, out, board, clock)
    steps_file = out / "steps.json"
    history = json.loads(steps_file.read_text()) if resume and steps_file.exists() else []
    report_file = out / "report.json"
    if resume and report_file.exists():
        ctx.report = json.loads(report_file.read_text())
    ctx.report.update({"model": ctx.report.get("model", name), "board": board.name, "part": board.part,
                       "clock_mhz": clock})
    history = _drop_stale_results(ctx, history, last)
    try:
        log.info("building %s for %s (%s) at %g MHz into %s", name, board.name, board.part, clock, out)
        for step, fn, outputs in STEPS[STEP_NAMES.index(first): STEP_NAMES.index(last) + 1]:
            history = [h for h in history if h["step"] != step]
            entry = {"step": step, "status": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
            log.info("[%s] ...", step)
            t0 = time.perf_counter()
            ctx.step_status = "ok"
            try:
                fn(ctx)
            except BuildError as exc:
                exc.step = exc.step or step
                log.error("error: %s", exc)
                entry.update(status="failed", seconds=round(time.perf_counter() - t0, 2), error=str(exc))
                history.append(entry)
                _remove_outputs(ctx, step, outputs)
                ctx.report["status"] = "failed"
                ctx.report["failed_step"] = step
                raise
            except Exception as exc:
                entry.update(status="failed", seconds=round(time.perf_counter() - t0, 2),
                             error=f"{type(exc).__name__}: {exc}")
                history.append(entry)
                _remove_outputs(ctx, step, outputs)
                ctx.report["status"] = "failed"
                ctx.report["failed_step"] = step
                raise
            entry.update(status=ctx.step_status, seconds=round(time.perf_counter() - t0, 2))
            history.append(entry)
            log.info("[%s] done in %.1f s", step, entry["seconds"])
            steps_file.write_text(json.dumps(history, indent=2) + "\n")
        ctx.report["status"] = "ok"
        ctx.report.pop("failed_step", None)
        ctx.report["steps_run"] = [h["step"] for h in history if h["status"] != "failed"]
        _finish_report(ctx)
        return ctx.report
    finally:
        steps_file.write_text(json.dumps(history, indent=2) + "\n")
        report_file.write_text(json.dumps(ctx.report, indent=2, default=_json_default) + "\n")
        log.removeHandler(handler)
        handler.close()


def _finish_report(ctx: Context) -> None:
    """Fill the report keys other tools read from what the build produced."""
    from hw_build.estimate import estimate
    from hw_build.estimate.synth import attach_synth

    dataflow = ctx.path("intermediate", f"{STEP_NAMES.index('fold'):02d}_fold.onnx")
    if dataflow.exists():
        # after the rtl step its model carries the FIFO depths proven in simulation
        rtl_model = ctx.intermediate("rtl")
        source = rtl_model if rtl_model.exists() else dataflow
        est = estimate(ModelWrapper(str(source)), ctx.clock_mhz, ctx.board.dma_bits)
        ctx.report["layers"] = est["layers"]
        ctx.report["edges"] = est["edges"]
        ctx.report["estimate"] = est["estimate"]
        attach_synth(ctx.report, ctx.path("rtl"))
        for layer in ctx.report["layers"]:
            # the dot-product cost: Yosys LUTs per multiply (XNOR-popcount) lane of an MVTU
            if layer["op"] == "MVTU" and "synth_lut" in layer:
                layer["synth_lut_per_lane"] = round(layer["synth_lut"] / (layer["pe"] * layer["simd"]), 3)
        b = ctx.board
        ctx.report["utilization"] = {
            "lut": est["estimate"]["lut"] / b.lut, "bram36": est["estimate"]["bram36"] / b.bram36,
            "dsp": est["estimate"]["dsp"] / b.dsp,
        }
        synth = ctx.report.get("synth")
        if synth:
            ctx.report["utilization"] = {"lut": synth["lut"] / b.lut, "bram36": synth["bram36"] / b.bram36,
                                         "dsp": synth["dsp"] / b.dsp}
        ctx.report["fits"] = all(v <= 1.0 for v in ctx.report["utilization"].values())
        ctx.report["fits_basis"] = "yosys" if synth else "estimate"
        from hw_build.estimate.timing import timing_block

        ctx.report["timing"] = timing_block(synth, b.part, b.family, ctx.clock_mhz) if synth else None
        from hw_build.fold import dma_cycles

        model = ModelWrapper(str(dataflow))
        in_shape = model.get_tensor_shape(model.graph.input[0].name)
        pixels = int(np.prod(in_shape[1:]))
        ctx.report["dma"] = {"in_bits_per_frame": pixels * 8, "out_bits_per_frame": 8 * max(1, _label_bytes(model)),
                             "stream_bits": ctx.board.dma_bits, "cycles_per_frame": dma_cycles(model, ctx.board)}
    ctx.report["target_fps"] = ctx.opts.target_fps if ctx.opts.folding is None else None
    for key in ("rtlsim", "synth", "dma", "accuracy", "timing"):
        ctx.report.setdefault(key, None)
    from hw_build.report import write_html

    write_html(ctx.report, ctx.path("report.html"))


def _label_bytes(model: ModelWrapper) -> int:
    out = model.graph.output[0].name
    return -(-model.get_tensor_datatype(out).bitwidth() // 8)


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)
