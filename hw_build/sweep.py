"""Design-space sweeps: a grid of builds (models x boards x target FPS x clocks) as Ray tasks.

    python -m hw_build.sweep --models M1,M2 --boards B1,B2 [--target-fps max,5000]
                             [--clock-mhz 100,150] [--no-synth] --out DIR [--ray-address ADDR]

Each build runs in its own folder under DIR (a normal build folder: build.log, report.json,
...). DIR/sweep.json holds one row per build (model, board, target_fps, clock_mhz, status,
error, fps, lut, bram36, fits, folder, plus how each number was obtained) and DIR/sweep.html
a table and a Pareto plot of FPS against LUT. A failing build is a row (status "failed" with
the build's error; "crashed" when its task died), never the end of the sweep. Rerunning the
same command resumes: builds whose row is stored in their folder (sweep_row.json) are not
redone (``--retry-failed`` reruns the failed ones). Without ``--ray-address`` (or
$RAY_ADDRESS) the builds run on a local Ray instance started for the sweep, as many at once
as the machine has cores; ``--serial`` runs them one after another in this process instead
(no Ray; for comparison and debugging).
"""

from __future__ import annotations

import argparse
import html
import json
import math
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from hw_build.errors import BuildError

#: the row file a finished build leaves in its folder (what makes a sweep resumable)
ROW_FILE = "sweep_row.json"
#: the columns of the table (sweep.json rows carry more)
COLUMNS = ("model", "board", "target_fps", "clock_mhz", "status", "error", "fps", "lut", "bram36", "fits",
           "folder")


@dataclass(frozen=True)
class Point:
    """One build of the grid. ``clock_mhz`` None: the board's default clock."""

    model: str
    board: str
    target_fps: str
    clock_mhz: float | None

    @property
    def folder(self) -> str:
        model = Path(self.model).stem if self.model.endswith(".onnx") else self.model
        clock = "default" if self.clock_mhz is None else f"{self.clock_mhz:g}"
        return f"{model}-{self.board}-fps_{self.target_fps}-clock_{clock}"


# --------------------------------------------------------------------------- the grid
def _split(text: str, option: str) -> list[str]:
    items = [t.strip() for t in text.split(",")]
    if not items or any(not t for t in items):
        raise BuildError(f"{option} '{text}' has an empty entry: give a comma-separated list such as "
                         f"{option} a,b (no empty items, no trailing comma).")
    return list(dict.fromkeys(items))


def _positive(text: str) -> float | None:
    """``text`` as a finite positive number, else None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _target_fps(text: str) -> str:
    if text.lower() == "max":
        return "max"
    value = _positive(text)
    if value is None:
        raise BuildError(f"--target-fps entry '{text}' is neither 'max' nor a positive number of frames "
                         "per second; e.g. --target-fps max,5000.")
    return f"{value:g}"


def _clock(text: str) -> float | None:
    if text.lower() == "default":
        return None
    value = _positive(text)
    if value is None:
        raise BuildError(f"--clock-mhz entry '{text}' is not a positive clock in MHz (or 'default' for the "
                         "board's); e.g. --clock-mhz 100,150.")
    return value


def grid(models: str, boards_: str, target_fps: str = "max", clocks: str = "default") -> list[Point]:
    """The builds of a sweep, checked before any runs: every model a zoo name or an existing
    .onnx file, every board known, every target FPS and clock valid."""
    from hw_build import boards
    from quant_models import zoo

    model_list = _split(models, "--models")
    for m in model_list:
        if m not in zoo.names() and not (m.endswith(".onnx") and Path(m).is_file()):
            raise BuildError(f"--models: '{m}' is neither a zoo model ({', '.join(zoo.names())}) nor an existing "
                             ".onnx file.")
    board_list = [boards.get(b).name for b in _split(boards_, "--boards")]
    fps_list = [_target_fps(t) for t in _split(target_fps, "--target-fps")]
    clock_list = [_clock(c) for c in _split(clocks, "--clock-mhz")]
    return [Point(m, b, f, c) for m in model_list for b in board_list for f in fps_list for c in clock_list]


# --------------------------------------------------------------------------- one build
def _row(point: Point, folder: Path, status: str, error: str | None, report: dict | None, seconds: float) -> dict:
    report = report or {}
    rtl, est, synth = report.get("rtlsim") or {}, report.get("estimate") or {}, report.get("synth") or {}
    row = {
        **asdict(point), "clock_mhz": report.get("clock_mhz", point.clock_mhz), "status": status, "error": error,
        "fps": rtl.get("fps", est.get("fps")), "lut": synth.get("lut", est.get("lut")),
        "bram36": synth.get("bram36", est.get("bram36")), "fits": report.get("fits"), "folder": folder.name,
        "fps_basis": "rtlsim" if rtl.get("fps") else ("estimate" if est.get("fps") else None),
        "resource_basis": "yosys" if synth else ("estimate" if est else None),
        "ii_cycles": rtl.get("ii_cycles"), "seconds": round(seconds, 1),
    }
    return row


def run_build(point: Point, out: str, synth: bool, verify_images: int) -> dict:
    """Build one point into ``out``/<point.folder> and return its row (any failure of the
    build is a row too). Runs inside a Ray task or in the sweep's own process."""
    import warnings

    from hw_build import build

    warnings.filterwarnings("ignore")
    folder = Path(out) / point.folder
    t0 = time.perf_counter()
    report, status, error = None, "ok", None
    try:
        report = build(point.model, point.board, output=folder, clock_mhz=point.clock_mhz,
                       target_fps=point.target_fps, synth=synth, verify_images=verify_images)
    except BuildError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # a compiler bug: still a row, with the traceback in the folder
        status, error = "error", f"{type(exc).__name__}: {exc}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sweep_traceback.txt").write_text(traceback.format_exc())
    if report is None and (folder / "report.json").exists():
        report = json.loads((folder / "report.json").read_text())
    row = _row(point, folder, status, error, report, time.perf_counter() - t0)
    from hw_build.cache import write_json_entry

    write_json_entry(folder / ROW_FILE, row)
    return row


def _stored_row(point: Point, out: Path, retry_failed: bool) -> dict | None:
    from hw_build.cache import read_json_entry

    row = read_json_entry(out / point.folder / ROW_FILE)
    # the folder name spells the point; the row's clock is the one the build used
    if row is None or row.get("folder") != point.folder:
        return None
    if row["status"] != "ok" and retry_failed:
        return None
    return row


# --------------------------------------------------------------------------- the sweep
def sweep(points: list[Point], out: Path, *, synth: bool = True, ray_address: str | None = None,
          serial: bool = False, retry_failed: bool = False, verify_images: int = 8,
          progress: bool = True) -> dict:
    """Run the builds of ``points`` not finished yet; write and return DIR/sweep.json's content."""
    from hw_build import distributed

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows: dict[Point, dict] = {}
    for p in points:
        stored = _stored_row(p, out, retry_failed)
        if stored is not None:
            rows[p] = {**stored, "resumed": True}
    todo = [p for p in points if p not in rows]
    info: dict = {"mode": "serial" if serial else "ray", "builds": len(points), "resumed": len(rows),
                  "ran": len(todo)}
    bar = tqdm(total=len(points), initial=len(rows), desc="sweep", unit="build", file=sys.stderr,
               disable=not progress)

    def finished(point: Point, row: dict) -> None:
        rows[point] = row
        bar.update(1)
        bar.set_postfix_str(f"{point.folder}: {row['status']}")
        _write(out, points, rows, info, t0)

    if serial:
        for p in todo:
            finished(p, run_build(p, str(out.resolve()), synth, verify_images))
    elif todo:
        address = distributed.cluster_address(ray_address)
        with distributed.session(address) as ray:
            info["ray"] = {"address": address or "local", "nodes": sum(1 for n in ray.nodes() if n["Alive"]),
                           "cpus": distributed.cluster_cpus(ray)}
            task = ray.remote(num_cpus=1, max_retries=0)(run_build)
            pending = {task.remote(p, str(out.resolve()), synth, verify_images): p for p in todo}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                point = pending.pop(ready[0])
                try:
                    row = ray.get(ready[0])
                except ray.exceptions.RayError as exc:   # the task died (out of memory, a node lost)
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    row = _row(point, out / point.folder, "crashed", f"{type(exc).__name__}: {first}", None, 0.0)
                finished(point, row)
    bar.close()
    return _write(out, points, rows, info, t0)


def _write(out: Path, points: list[Point], rows: dict[Point, dict], info: dict, t0: float) -> dict:
    ordered = [rows[p] for p in points if p in rows]
    result = {"rows": ordered, **info, "finished": len(ordered), "wall_seconds": round(time.perf_counter() - t0, 1)}
    tmp = out / "sweep.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out / "sweep.json")
    write_html(ordered, out / "sweep.html", info)
    return result


# --------------------------------------------------------------------------- sweep.html
def pareto_front(rows: list[dict]) -> list[dict]:
    """Successful builds no other beats on both counts (more FPS for no more LUT, or fewer
    LUT for no less FPS), by increasing LUT."""
    ok = sorted((r for r in rows if r["status"] == "ok" and r["fps"] and r["lut"] is not None),
                key=lambda r: (r["lut"], -r["fps"]))
    front, best = [], -1.0
    for r in ok:
        if r["fps"] > best:
            front.append(r)
            best = r["fps"]
    return front


def _pareto_plot(rows: list[dict]) -> str | None:
    from hw_build.report import _png, plt

    ok = [r for r in rows if r["status"] == "ok" and r["fps"] and r["lut"] is not None]
    if not ok:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    models = sorted({r["model"] for r in ok})
    for k, model in enumerate(models):
        mine = [r for r in ok if r["model"] == model]
        for fits, marker in ((True, "o"), (False, "x")):
            pts = [r for r in mine if bool(r["fits"]) == fits]
            if pts:
                ax.scatter([r["lut"] for r in pts], [r["fps"] for r in pts], marker=marker, color=f"C{k}",
                           label=f"{model}{'' if fits else ' (does not fit)'}")
    front = pareto_front(ok)
    ax.step([r["lut"] for r in front], [r["fps"] for r in front], where="post", color="#555", linewidth=1,
            linestyle="--", label="Pareto front")
    for r in front:
        ax.annotate(f"{r['board']} {r['target_fps']} @{r['clock_mhz']:g}", (r["lut"], r["fps"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("LUT")
    ax.set_ylabel("FPS")
    ax.set_yscale("log")
    ax.set_title("Throughput against LUT (upper left is better)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)


def _cell(key: str, value) -> str:
    if value is None:
        return ""
    if key == "folder":
        return f'<a href="{html.escape(value)}/report.html">{html.escape(value)}</a>'
    if isinstance(value, float):
        return f"{value:,.1f}" if key in ("bram36", "clock_mhz") else f"{value:,.0f}"
    return html.escape(str(value))


def write_html(rows: list[dict], path: Path, info: dict | None = None) -> None:
    front = {id(r) for r in pareto_front(rows)}
    head = "".join(f"<th>{k}</th>" for k in COLUMNS)
    body = "\n".join(
        "<tr" + (' class="front"' if id(r) in front else "") + ">"
        + "".join(f"<td>{_cell(k, r.get(k))}</td>" for k in COLUMNS) + "</tr>" for r in rows)
    plot = _pareto_plot(rows)
    info = info or {}
    text = f"""<!doctype html><html><head><meta charset="utf-8"><title>sweep</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}} tr.front{{background:#eaf5ea}}</style></head><body>
<h1>Sweep: {len(rows)} builds</h1>
<p>{html.escape(json.dumps({k: v for k, v in info.items()}))}. Rows on the Pareto front (FPS against LUT) are green.
FPS is the RTL simulation's where the build reached it, LUT/BRAM36 Yosys' where synthesized (see sweep.json
fps_basis / resource_basis).</p>
{f'<img src="data:image/png;base64,{plot}">' if plot else '<p>No successful build to plot.</p>'}
<table><tr>{head}</tr>
{body}
</table></body></html>
"""
    Path(path).write_text(text)


# --------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hw_build.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", required=True, help="comma-separated zoo names or .onnx files")
    p.add_argument("--boards", required=True, help="comma-separated boards (build.py --list-boards)")
    p.add_argument("--target-fps", default="max", help="comma-separated: max and/or numbers (default max)")
    p.add_argument("--clock-mhz", default="default", help="comma-separated clocks in MHz (default: each board's)")
    p.add_argument("--no-synth", action="store_true", help="skip Yosys in every build")
    p.add_argument("--out", required=True, help="sweep folder: one build folder per point, sweep.json, sweep.html")
    p.add_argument("--ray-address", help="Ray cluster HOST:PORT (default $RAY_ADDRESS, else a local Ray instance)")
    p.add_argument("--serial", action="store_true", help="run the builds one after another here, without Ray")
    p.add_argument("--retry-failed", action="store_true", help="rerun builds whose stored row failed")
    p.add_argument("--verify-images", type=int, default=8, help="verification images per build (default 8)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.verify_images < 1:
            raise BuildError(f"--verify-images must be at least 1 (got {args.verify_images}).")
        points = grid(args.models, args.boards, args.target_fps, args.clock_mhz)
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise BuildError(f"--out '{out}' is a file; give a folder for the sweep.")
        result = sweep(points, out, synth=not args.no_synth, ray_address=args.ray_address, serial=args.serial,
                       retry_failed=args.retry_failed, verify_images=args.verify_images)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rows = result["rows"]
    ok = sum(r["status"] == "ok" for r in rows)
    print(f"{len(rows)} builds ({result['resumed']} resumed), {ok} ok, {len(rows) - ok} failed; "
          f"{result['wall_seconds']:.0f} s; {out / 'sweep.json'}, {out / 'sweep.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
