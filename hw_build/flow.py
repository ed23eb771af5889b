"""The build flow: one function per step, each reading the previous step's ONNX model from
the build folder and writing its own, so a build can stop (--until) and resume (--from)."""

from __future__ import annotations

import hashlib
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

from deploy.interface import INTERFACE_NAME
from hw_build import boards
from hw_build.buildfolder import (
    MANIFEST,
    FolderLock,
    Manifest,
    adopt,
    save_model_atomic,
    save_npy_atomic,
    write_text_atomic,
)
from hw_build.errors import BuildError, UsageError

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
    #: trained weights for a zoo model (a file quant_models.train wrote, any path); None: the shipped ones
    weights: Path | None = None
    #: build into an existing folder that is not a build folder (none of the build's files may exist there)
    force: bool = False
    #: Ray tasks the accuracy run is split into (each its own Verilator process); 1: one
    #: simulation here, no Ray
    accuracy_shards: int = 1
    #: Ray cluster for sharded accuracy runs and synthesis (None: $RAY_ADDRESS, else a local
    #: Ray for the accuracy shards and this machine's cores for synthesis)
    ray_address: str | None = None


@dataclass
class Context:
    opts: Options
    out: Path
    board: boards.Board
    clock_mhz: float
    report: dict = field(default_factory=dict)
    #: a step may report a status other than "ok" (vivado without Vivado: "scripts only")
    step_status: str = "ok"
    #: steps whose outputs are complete (finished in this run or an earlier one)
    finished: set[str] = field(default_factory=set)

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    def intermediate(self, step: str) -> Path:
        return self.path("intermediate", f"{STEP_NAMES.index(step):02d}_{step}.onnx")

    def load(self, step: str) -> ModelWrapper:
        p = self.intermediate(step)
        if not p.exists() or step not in self.finished:
            why = "is missing" if not p.exists() else "was left by a step that did not finish"
            raise BuildError(f"cannot resume: '{p}' {why}. Run the build from an earlier step "
                             f"(--from {step} or earlier) first.")
        try:
            return ModelWrapper(str(p))
        except Exception as exc:  # onnx's parser raises its own types for a damaged file
            raise BuildError(f"cannot resume: '{p}' is damaged ({type(exc).__name__}); rerun the build "
                             f"--from {step}.") from None

    def save(self, step: str, model: ModelWrapper) -> None:
        self.path("intermediate").mkdir(parents=True, exist_ok=True)
        save_model_atomic(self.intermediate(step), model)

    def verify_array(self, name: str) -> np.ndarray:
        p = self.path("verify", f"{name}.npy")
        if not p.exists():
            raise BuildError(f"cannot resume: '{p}' is missing; rerun from the export step.")
        return np.load(p)

    def write_verify(self, name: str, value: np.ndarray) -> None:
        self.path("verify").mkdir(parents=True, exist_ok=True)
        save_npy_atomic(self.path("verify", f"{name}.npy"), value)

    def verify_stage(self, stage: str, labels: np.ndarray, first_divergence=None) -> dict:
        """The labels of the ``stage`` graph on the verify images, saved (verify/<stage>.npy),
        checked against the reference scores and recorded in the report (``verify.<stage>``).
        With ``first_divergence`` (image -> where the stage first departs from the graph before
        it), a label mismatch fails the step with that detail."""
        from hw_build import verify

        self.write_verify(stage, labels)
        result = verify.check_stage(stage, labels, self.verify_array("reference_scores"))
        self.report.setdefault("verify", {})[stage] = result
        if first_divergence is not None and result["mismatches"]:
            detail = first_divergence(self.verify_array("inputs")[result["first_mismatch"]])
            raise verify.fail(stage, result, detail)
        return result


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
        _report_batch(ctx, model)
    else:
        from quant_models import zoo

        if spec not in zoo.names():
            raise BuildError(f"unknown model '{spec}'. Zoo models: {', '.join(zoo.names())} "
                             "(python build.py --list-models), or give the path of a QONNX .onnx file.")
        try:
            module = zoo.get(spec, pretrained=ctx.opts.pretrained, weights=ctx.opts.weights)
        except zoo.WeightsError as exc:
            raise BuildError(f"--weights: {exc}") from None
        ctx.report["model"] = spec
        ctx.report["trained"] = bool(getattr(module, "trained", False))
        ctx.report["weights_file"], ctx.report["weights_sha256"] = _weights_record(module.weights_file)
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


def _weights_record(path: Path | None) -> tuple[str | None, str | None]:
    """The trained-weights file a build used and its sha256 (None, None for seeded weights)."""
    if path is None:
        return None, None
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return str(path), digest.hexdigest()


def _report_batch(ctx: Context, model: ModelWrapper) -> None:
    """The accelerator streams one frame at a time: a graph declared for another batch (or a
    dynamic one) is built as batch 1, and the log and report.json say so."""
    from hw_build.export import MODEL_BATCH_KEY

    declared = model.get_metadata_prop(MODEL_BATCH_KEY) or "1"
    declared_value: int | str = int(declared) if declared.isdigit() else declared
    ctx.report["batch"] = {"declared": declared_value, "built": 1}
    if declared_value != 1:
        note = (f"the model's input declares batch {declared_value}; the accelerator streams frames one at a "
                "time, so it is built for batch 1 and takes any number of frames in a row")
        ctx.report["batch"]["note"] = note
        log.warning("WARNING: %s.", note)


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
    labels = verify.streamlined_labels(model, ctx.verify_array("inputs"))
    result = ctx.verify_stage("streamlined", labels,
                              lambda image: verify.first_divergence_streamlined(tidy_model, model, image))
    ctx.save("streamline", model)
    log.info("streamlined: %d nodes, all integer; %d/%d labels agree with the reference",
             len(model.graph.node), result["frames"] - result["mismatches"], result["frames"])


def step_lower(ctx: Context) -> None:
    from hw_build import verify
    from hw_build.lower import lower

    streamlined = ctx.load("streamline")
    model = lower(streamlined)
    labels = verify.dataflow_labels(model, ctx.verify_array("inputs"))
    ctx.verify_stage("dataflow", labels, lambda image: verify.first_divergence_dataflow(streamlined, model, image))
    ctx.save("lower", model)
    model.save(str(ctx.path("dataflow.onnx")))
    log.info("dataflow graph: %d hardware layers (%s)", len(model.graph.node),
             ", ".join(sorted({n.op_type for n in model.graph.node})))


def step_fold(ctx: Context) -> None:
    from hw_build import fold
    from hw_build.fold.plumbing import insert_stream_plumbing

    model = ctx.load("lower")
    if ctx.opts.folding is not None:
        model = fold.apply_folding_file(model, ctx.opts.folding, ctx.board.dma_bits)
        how = f"from {ctx.opts.folding}"
    else:
        model, how = fold.fold_for_board(model, ctx.board, ctx.clock_mhz, ctx.opts.target_fps)
        model = insert_stream_plumbing(model, ctx.board.dma_bits)
    _save_dataflow(ctx, "fold", model)
    cycles = fold.bottleneck_cycles(model)
    log.info("folding %s: bottleneck %d cycles/frame = %.0f FPS at %g MHz; %d stream plumbing nodes "
             "(FIFOs, width converters, DMA adapters) between the layers", how, cycles,
             ctx.clock_mhz * 1e6 / cycles, ctx.clock_mhz, len(model.graph.node) - len(fold.layers(model)))


def _save_dataflow(ctx: Context, step: str, model: ModelWrapper) -> None:
    """The step's model, and the whole design as the user sees it: dataflow.onnx, folding.json."""
    from hw_build import fold

    ctx.save(step, model)
    model.save(str(ctx.path("dataflow.onnx")))
    ctx.path("folding.json").write_text(json.dumps(fold.folding_config(model), indent=2) + "\n")


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
    frames = sim.cycled_frames(frames, 3)  # the stall proof of the sizing: back-to-back frames
    log.info("generating Verilog and sizing FIFOs by simulation (%d frames)...", len(frames))
    depths = sim.size_fifos(model, rtl_dir, frames=frames[:4])
    problems = tools.lint(rtl_dir)
    if problems:
        raise BuildError("the generated Verilog is not lint clean (a compiler bug; please report it):\n"
                         + "\n".join(problems[:20]))
    # the Fifo nodes now carry the depths proven in simulation
    _save_dataflow(ctx, "rtl", model)
    # the accelerator's outside, written once for simulation, Vivado, report and deploy
    from hw_build import interface
    from hw_build.rtl import codegen

    interface.write_for_build(ctx.out, codegen.read_manifest(rtl_dir), ctx.board, ctx.clock_mhz)
    ctx.report["fifo_depths"] = depths
    log.info("rtl/: accel_top.v and %d files; FIFO depths proven in simulation: %s",
             len(list(rtl_dir.iterdir())), ", ".join(f"{d}" for d in depths.values()))


def step_verify(ctx: Context) -> None:
    from hw_build import interface
    from hw_build.rtl import codegen, sim

    rtl_dir = ctx.path("rtl")
    frames = _verify_frames_nhwc(ctx)
    log.info("RTL simulation of %d frames with random stalls on input valid and output ready...", len(frames))
    labels, _ = sim.simulate_top(rtl_dir, frames, stall_in=0.3, stall_out=0.3, seed=1)
    # the initiation interval is measured without stalls, over >= 3 back-to-back frames
    timing_frames = sim.cycled_frames(frames, 3)
    timing_labels, stats = sim.simulate_top(rtl_dir, timing_frames, stall_in=0.0, stall_out=0.0, seed=2)
    dataflow = ctx.verify_array("dataflow")
    mismatch_df = int((labels != dataflow).sum())
    result = ctx.verify_stage("rtlsim", labels)
    result["mismatches_vs_dataflow"] = mismatch_df
    dma = interface.read(ctx.out).dma_cycles_per_frame
    ii = float(stats["ii_cycles"])
    designed = codegen.designed_ii_cycles(codegen.read_manifest(rtl_dir))
    ctx.report["rtlsim"] = {
        "frames": int(len(labels)), "ii_cycles": ii, "designed_ii_cycles": designed,
        "latency_cycles": int(stats["latency_cycles"]),
        "fps": ctx.clock_mhz * 1e6 / max(ii, dma), "mismatches": mismatch_df, "stalls": 0.3,
        "timing_frames": int(len(timing_frames)),
    }
    if ii > designed:
        # the layers' cycles() or the stream plumbing between them lose cycles: a real
        # accelerator slower than its folding says (the report's FPS is the measured one)
        log.warning("rtlsim: measured II %.0f cycles is above the designed %d (slowest layer or DMA); the "
                    "design runs %.1f%% slower than folded. Please report it with the build folder.",
                    ii, designed, 100 * (ii / designed - 1))
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
    shards = min(ctx.opts.accuracy_shards, len(images))
    t0 = time.perf_counter()
    frames = verify.to_nhwc(images)
    if shards > 1:
        from hw_build import distributed

        address = distributed.cluster_address(ctx.opts.ray_address)
        log.info("accuracy: RTL simulation of %d test images in %d Ray tasks (%s)...", len(images), shards,
                 address or "local Ray")
        rtl_labels = distributed.simulate_top_sharded(
            ctx.path("rtl"), frames, shards, address, stall_in=0.0, stall_out=0.0, seed=3,
            progress=lambda done, total: log.info("  accuracy shard %d/%d done (%.0f s)", done, total,
                                                  time.perf_counter() - t0))
    else:
        log.info("accuracy: RTL simulation of %d test images...", len(images))
        rtl_labels, _ = sim.simulate_top(ctx.path("rtl"), frames, stall_in=0.0, stall_out=0.0, seed=3)
    ctx.write_verify("accuracy_rtlsim", rtl_labels)
    agree = verify.accepted(rtl_labels, scores)
    acc = ctx.report.get("accuracy") or {}
    acc.update({"images": int(len(images)), "rtlsim": float((rtl_labels == labels).mean()),
                "rtlsim_vs_reference_mismatches": int((~agree).sum()),
                "simulation_seconds": round(time.perf_counter() - t0, 1), "shards": max(shards, 1)})
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
    result = synth.synth_design(ctx.path("rtl"), ctx.path("synth"), ray_address=ctx.opts.ray_address)
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


@dataclass(frozen=True)
class StepSpec:
    """One build step: the function that runs it, what it writes and which report keys hold its
    results. The driver reads these to resume, to remove a failed step's half-written files and
    the stale results of later steps, and to record in the manifest what each step wrote."""

    name: str
    run: Step
    #: files and folders it writes besides its intermediate model, relative to the build folder
    outputs: tuple[str, ...] = ()
    #: report.json keys holding its results ("a.b": key b of the dict under a); stale once an
    #: earlier step runs again
    report_keys: tuple[str, ...] = ()
    #: other names --until / --from accept for it
    aliases: tuple[str, ...] = ()

    @property
    def index(self) -> int:
        return STEP_NAMES.index(self.name)

    @property
    def intermediate(self) -> str:
        return f"intermediate/{self.index:02d}_{self.name}.onnx"

    @property
    def paths(self) -> list[str]:
        """Everything the step writes (its intermediate model first)."""
        return [self.intermediate, *self.outputs]


STEPS: tuple[StepSpec, ...] = (
    StepSpec("export", step_export,
             ("verify/inputs.npy", "verify/reference.npy", "verify/reference_scores.npy",
              *(f"verify/{name}.npy" for name in ACCURACY_FILES if name != "accuracy_rtlsim")),
             ("trained", "weights", "verify_source", "accuracy", "batch")),
    StepSpec("tidy", step_tidy),
    StepSpec("streamline", step_streamline, ("verify/streamlined.npy",), ("verify.streamlined",),
             aliases=("streamlined",)),
    StepSpec("lower", step_lower, ("dataflow.onnx", "verify/dataflow.npy"), ("verify.dataflow",),
             aliases=("dataflow",)),
    # the layer table, estimate, fit and DMA figures are computed from the folded graph
    StepSpec("fold", step_fold, ("dataflow.onnx", "folding.json"),
             ("layers", "edges", "estimate", "utilization", "fits", "fits_basis", "dma")),
    StepSpec("rtl", step_rtl, ("rtl", INTERFACE_NAME), ("fifo_depths",)),
    StepSpec("verify", step_verify, ("verify/rtlsim.npy", "verify/accuracy_rtlsim.npy"),
             ("rtlsim", "verify.rtlsim", "accuracy.rtlsim", "accuracy.rtlsim_vs_reference_mismatches",
              "accuracy.simulation_seconds"), aliases=("rtlsim",)),
    StepSpec("estimate", step_estimate, ("synth",), ("synth", "synth_error", "synth_partial"), aliases=("synth",)),
    StepSpec("vivado", step_vivado, ("vivado",), ("vivado",)),
    StepSpec("deploy", step_deploy, ("deploy", "deploy.zip"), ("deploy",)),
)
STEP_NAMES = [s.name for s in STEPS]
STEP_BY_NAME = {s.name: s for s in STEPS}
#: every other name a step answers to (--list-steps shows them)
ALIASES = {alias: s.name for s in STEPS for alias in s.aliases}


def resolve_step(name: str, option: str = "--until/--from") -> str:
    step = ALIASES.get(name, name)
    if step not in STEP_NAMES:
        shown = f"'{name}'" if name.strip() else "an empty name"
        raise UsageError(f"{option}: unknown step {shown}. Steps: {', '.join(STEP_NAMES)} "
                         "(python build.py --list-steps).")
    return step


# ---------------------------------------------------------------- option checks

#: the fastest fabric clock any supported device closes timing at is well below this
MAX_CLOCK_MHZ = 1000.0


def check_options(opts: Options) -> None:
    """Refuse option values that cannot mean anything before anything runs (UsageError: build.py
    exits 2), and read the files the options name (their content errors are BuildErrors)."""
    import math

    if opts.clock_mhz is not None:
        clock = opts.clock_mhz
        if not isinstance(clock, (int, float)) or not math.isfinite(clock) or not 0 < clock <= MAX_CLOCK_MHZ:
            raise UsageError(f"--clock-mhz must be a finite number of MHz in (0, {MAX_CLOCK_MHZ:g}] (got {clock}); "
                             "leave it out for the board's default clock (python build.py --list-boards).")
    target = str(opts.target_fps).strip()
    if target != "max":
        try:
            fps = float(target)
        except ValueError:
            raise UsageError(f"--target-fps must be a number or 'max' (got '{opts.target_fps}').") from None
        if not math.isfinite(fps) or fps <= 0:
            raise UsageError(f"--target-fps must be positive and finite, or 'max' (got '{opts.target_fps}').")
    if isinstance(opts.verify_images, bool) or not isinstance(opts.verify_images, int) or opts.verify_images < 1:
        raise UsageError(f"--verify-images must be a whole number of images, at least 1 (got {opts.verify_images}).")
    if opts.accuracy_images is not None and (not isinstance(opts.accuracy_images, int) or opts.accuracy_images < 0):
        raise BuildError(f"--accuracy-images must be 0 (skip) or a positive count (got {opts.accuracy_images}).")
    if not isinstance(opts.accuracy_shards, int) or opts.accuracy_shards < 1:
        raise UsageError(f"--accuracy-shards must be at least 1 (got {opts.accuracy_shards}): the number of Ray "
                         "tasks the accuracy images are split into; 1 simulates them in one process.")
    for option, value in (("--until", opts.until), ("--from", opts.start)):
        if value is not None:
            resolve_step(value, option)
    if opts.output is not None:
        out = Path(opts.output)
        if str(opts.output).strip() == "":
            raise UsageError("--output is empty; give a folder path (or leave it out for build/<model>-<board>).")
        for parent in [out, *out.parents]:
            if parent.exists() and not parent.is_dir():
                where = "is a file" if parent == out else f"lies under '{parent}', which is a file"
                raise UsageError(f"--output '{out}' {where}; a build folder must be a folder. Choose another path.")
    for option, value in (("--folding", opts.folding), ("--verify-input", opts.verify_input)):
        if value is not None and not Path(value).is_file():
            what = "is a folder" if Path(value).is_dir() else "does not exist"
            raise UsageError(f"{option} '{value}' {what}; give the path of a file.")
    if opts.folding is not None:
        from hw_build.fold import read_folding_file

        read_folding_file(Path(opts.folding))
    if opts.verify_input is not None:
        from hw_build.inputs import read_verify_input

        read_verify_input(Path(opts.verify_input))


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


def _forget_report_keys(report: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        head, _, sub = key.partition(".")
        if not sub:
            report.pop(head, None)
        elif isinstance(report.get(head), dict):
            report[head].pop(sub, None)
    # report.json's accuracy block always has an rtlsim entry (null until the RTL ran)
    if isinstance(report.get("accuracy"), dict):
        report["accuracy"].setdefault("rtlsim", None)


def _forget_steps(ctx: Context, manifest: Manifest, steps: list[StepSpec]) -> None:
    """Remove what ``steps`` wrote in earlier builds (only files the manifest lists) and their
    report keys: they were made from inputs this run replaces (a resumed build that reruns fold
    must not report the old RTL's simulation, FIFOs or synthesis)."""
    for spec in steps:
        manifest.remove(spec.name, spec.paths)
        _forget_report_keys(ctx.report, spec.report_keys)


def _refuse_foreign_files(manifest: Manifest, steps: list[StepSpec]) -> None:
    clash = manifest.foreign([p for spec in steps for p in spec.paths])
    if clash:
        shown = ", ".join(clash[:6]) + (f" and {len(clash) - 6} more" if len(clash) > 6 else "")
        raise BuildError(f"the build would write over files in '{manifest.out}' that no build wrote ({shown}); a "
                         "build never deletes or overwrites your files. Move them away or build into another "
                         "--output folder.")


def _load_json(path: Path, default):
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise BuildError(f"'{path}' is damaged (not JSON); rerun the build from the first step.") from None


def build(opts: Options) -> dict:
    check_options(opts)
    board = boards.get(opts.board)
    clock = opts.clock_mhz or board.clock_mhz
    name = Path(opts.model).stem if opts.model.endswith(".onnx") else opts.model
    if opts.weights is not None:
        if opts.model.endswith(".onnx") or Path(opts.model).is_file():
            raise BuildError(f"--weights applies to zoo models only; '{opts.model}' is a QONNX file, which "
                             "carries its own weights. Drop --weights, or give a zoo name (--list-models).")
        if not Path(opts.weights).is_file():
            raise BuildError(f"--weights '{opts.weights}' does not exist or is not a file; give the .pt (or "
                             f".ckpt) file that `python -m quant_models.train --model {opts.model}` writes.")
    out = Path(opts.output) if opts.output else Path("build") / f"{name}-{board.name}"
    first = resolve_step(opts.start, "--from") if opts.start else STEP_NAMES[0]
    last = resolve_step(opts.until, "--until") if opts.until else STEP_NAMES[-1]
    if STEP_NAMES.index(first) > STEP_NAMES.index(last):
        raise UsageError(f"--from {first} comes after --until {last}; the steps run in this order: "
                         f"{', '.join(STEP_NAMES)}.")
    resume = first != STEP_NAMES[0]
    if resume and not (out / MANIFEST).is_file():
        what = "does not exist" if not out.exists() else "is not a build folder (no build_manifest.json)"
        raise BuildError(f"cannot resume from '{first}': build folder '{out}' {what}. Run the whole build first "
                         "(leave out --from).")
    adopt(out, opts.force, [p for spec in STEPS for p in spec.paths])
    out.mkdir(parents=True, exist_ok=True)
    with FolderLock(out):
        return _build_locked(opts, board, clock, name, out, first, last, resume)


def _build_locked(opts: Options, board: boards.Board, clock: float, name: str, out: Path, first: str, last: str,
                  resume: bool) -> dict:
    manifest = adopt(out, opts.force, [p for spec in STEPS for p in spec.paths])
    run = list(STEPS[STEP_NAMES.index(first): STEP_NAMES.index(last) + 1])
    _refuse_foreign_files(manifest, run)
    manifest.save()  # the folder is a build folder from here on
    handler = _setup_logging(out, resume)
    ctx = Context(opts, out, board, clock)
    steps_file = out / "steps.json"
    report_file = out / "report.json"
    history = _load_json(steps_file, []) if resume else []
    if resume:
        ctx.report = _load_json(report_file, {})
    # steps from --from on run again; their earlier entries and every later step's are stale
    history = [h for h in history if STEP_NAMES.index(h["step"]) < STEP_NAMES.index(first)]
    ctx.finished = {h["step"] for h in history if h["status"] not in ("failed", "running", "interrupted")}
    # a resumed build stands on every earlier step's outputs, whether or not its first step reads
    # them as a model (verify reads rtl/, estimate the RTL manifest): refuse before anything is touched
    unfinished = [s for s in STEP_NAMES[:STEP_NAMES.index(first)] if s not in ctx.finished]
    if unfinished:
        raise BuildError(f"cannot resume from '{first}': step '{unfinished[0]}' did not finish in '{out}' "
                         f"(steps.json). Run the build --from {unfinished[0]}.")
    ctx.report.update({"model": ctx.report.get("model", name), "board": board.name, "part": board.part,
                       "clock_mhz": clock})
    _forget_steps(ctx, manifest, list(STEPS[STEP_NAMES.index(first):]))

    def write_state(report: dict) -> None:
        write_text_atomic(steps_file, json.dumps(history, indent=2) + "\n")
        write_text_atomic(report_file, json.dumps(report, indent=2, default=_json_default) + "\n")

    #: the report as of the last finished step: what an interrupted build leaves behind
    committed = json.loads(json.dumps(ctx.report, default=_json_default))
    try:
        log.info("building %s for %s (%s) at %g MHz into %s", name, board.name, board.part, clock, out)
        for spec in run:
            entry = {"step": spec.name, "status": "running", "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
            history.append(entry)
            manifest.claim(spec.name, spec.paths)
            write_state(committed)  # steps.json says "running" until the step really finished
            log.info("[%s] ...", spec.name)
            t0 = time.perf_counter()
            ctx.step_status = "ok"
            try:
                spec.run(ctx)
            except BaseException as exc:
                interrupted = not isinstance(exc, Exception)
                if isinstance(exc, BuildError):
                    exc.step = exc.step or spec.name
                    log.error("error: %s", exc)
                    error = str(exc)
                elif interrupted:
                    log.error("interrupted (%s) during step %s", type(exc).__name__, spec.name)
                    error = f"interrupted ({type(exc).__name__})"
                else:
                    log.error("internal error in step %s", spec.name, exc_info=True)
                    error = f"{type(exc).__name__}: {exc}"
                entry.update(status="interrupted" if interrupted else "failed",
                             seconds=round(time.perf_counter() - t0, 2), error=error)
                # nothing half-written may look finished: this step's files and every later one's go;
                # the failed step's report entries stay (a verification mismatch is reported there)
                _forget_steps(ctx, manifest, list(STEPS[spec.index + 1:]))
                manifest.remove(spec.name, spec.paths)
                if interrupted:
                    ctx.report = committed
                ctx.report["status"] = "interrupted" if interrupted else "failed"
                ctx.report["failed_step"] = spec.name
                raise
            manifest.record(spec.name, spec.paths)
            ctx.finished.add(spec.name)
            entry.update(status=ctx.step_status, seconds=round(time.perf_counter() - t0, 2))
            committed = json.loads(json.dumps(ctx.report, default=_json_default))
            write_state(committed)
            log.info("[%s] done in %.1f s", spec.name, entry["seconds"])
        ctx.report["status"] = "ok"
        ctx.report.pop("failed_step", None)
        ctx.report["steps_run"] = [h["step"] for h in history if h["status"] != "failed"]
        _finish_report(ctx)
        return ctx.report
    finally:
        write_state(ctx.report)
        log.removeHandler(handler)
        handler.close()


def _finish_report(ctx: Context) -> None:
    """Fill the report keys other tools read from what the build produced."""
    from hw_build.estimate import estimate
    from hw_build.estimate.synth import attach_synth

    dataflow = ctx.path("intermediate", f"{STEP_NAMES.index('fold'):02d}_fold.onnx")
    if dataflow.exists():
        # after the rtl step its model's FIFO nodes carry the depths proven in simulation
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
        if ctx.path(INTERFACE_NAME).exists():  # written by the rtl step
            from hw_build import interface

            record = interface.read(ctx.out)
            ctx.report["dma"] = {"in_bits_per_frame": record.frame_bytes * 8,
                                 "out_bits_per_frame": record.out_bits, "stream_bits": record.in_bits,
                                 "cycles_per_frame": record.dma_cycles_per_frame, "cell": record.dma_cell,
                                 "ip": record.dma_vlnv, "length_bits": record.dma_length_bits}
    ctx.report["target_fps"] = ctx.opts.target_fps if ctx.opts.folding is None else None
    for key in ("rtlsim", "synth", "dma", "accuracy", "timing"):
        ctx.report.setdefault(key, None)
    from hw_build.report import write_html

    write_html(ctx.report, ctx.path("report.html"))


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)
