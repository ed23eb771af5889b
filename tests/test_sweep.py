"""Design-space sweeps (hw_build.sweep).

Fast: the grid and its checks; rows, failing builds as rows, resuming, sweep.json and
sweep.html, all with a stand-in build run one after another (--serial). Slow: real builds of
tfc_w1a1 (several target FPS and clocks, --no-synth) as Ray tasks on a local Ray and on a
two-node loopback cluster give the table the serial run gives.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hw_build
from hw_build import sweep
from hw_build.errors import BuildError


def test_grid_is_the_product_of_the_options():
    points = sweep.grid("tfc_w1a1,cnv_w1a1", "pynq-z2,PYNQ-Z1", "max,5000", "100,default")
    assert len(points) == 2 * 2 * 2 * 2
    assert {p.board for p in points} == {"pynq-z2", "pynq-z1"}
    assert {p.target_fps for p in points} == {"max", "5000"} and {p.clock_mhz for p in points} == {100.0, None}
    assert len({p.folder for p in points}) == len(points)


@pytest.mark.parametrize("args, word", [
    (("nosuch", "pynq-z2"), "nosuch"),
    (("tfc_w1a1", "pynq-z9"), "pynq-z9"),
    (("tfc_w1a1", "pynq-z2", "max,-5"), "-5"),
    (("tfc_w1a1", "pynq-z2", "fast"), "fast"),
    (("tfc_w1a1", "pynq-z2", "max", "0"), "0"),
    (("tfc_w1a1", "pynq-z2", "max", "nan"), "nan"),
    (("tfc_w1a1,", "pynq-z2"), "empty"),
])
def test_bad_grids_are_named_before_anything_runs(args, word):
    with pytest.raises(BuildError, match=word):
        sweep.grid(*args)


def test_cli_errors_exit_1_with_one_message(tmp_path, capsys):
    assert sweep.main(["--models", "tfc_w1a1", "--boards", "nope", "--out", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert not (tmp_path / "s").exists()


def _fake_build(calls: list):
    """Stand-in for hw_build.build: a report from the point; target 5000 at 150 MHz fails."""
    def build(model, board, *, output, clock_mhz, target_fps, synth, verify_images):
        calls.append(Path(output).name)
        Path(output).mkdir(parents=True, exist_ok=True)
        clock = clock_mhz or 100.0
        if target_fps == "5000" and clock == 150.0:
            raise BuildError("no folding reaches 5000 FPS (a stand-in failure)")
        fps = 1e6 if target_fps == "max" else float(target_fps)
        lut = 1000.0 + fps / 100 + clock
        report = {"clock_mhz": clock, "rtlsim": {"fps": fps, "ii_cycles": clock * 1e6 / fps},
                  "estimate": {"fps": fps, "lut": lut, "bram36": 1.5}, "synth": None, "fits": lut < 12000}
        (Path(output) / "report.json").write_text(json.dumps(report))
        return report
    return build


def test_serial_sweep_rows_failures_resume_and_html(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(hw_build, "build", _fake_build(calls))
    points = sweep.grid("tfc_w1a1", "pynq-z2", "max,5000", "100,150")
    out = tmp_path / "sweep"
    result = sweep.sweep(points, out, serial=True, progress=False)
    rows = result["rows"]
    assert len(rows) == 4 and len(calls) == 4
    assert all(set(sweep.COLUMNS) <= set(r) for r in rows)
    failed = [r for r in rows if r["status"] != "ok"]
    assert len(failed) == 1 and failed[0]["status"] == "failed" and "5000 FPS" in failed[0]["error"]
    assert failed[0]["fps"] is None and failed[0]["target_fps"] == "5000" and failed[0]["clock_mhz"] == 150.0
    ok = {(r["target_fps"], r["clock_mhz"]): r for r in rows if r["status"] == "ok"}
    assert ok[("max", 100.0)]["fps"] == 1e6 and ok[("max", 100.0)]["fps_basis"] == "rtlsim"
    assert ok[("5000", 100.0)]["lut"] == 1000 + 50 + 100 and ok[("5000", 100.0)]["resource_basis"] == "estimate"
    stored = json.loads((out / "sweep.json").read_text())
    assert [r["folder"] for r in stored["rows"]] == [p.folder for p in points]
    page = (out / "sweep.html").read_text()
    assert "data:image/png;base64," in page and page.count("<tr") == 5
    # resume: nothing is built again; --retry-failed rebuilds only the failed point
    calls.clear()
    again = sweep.sweep(points, out, serial=True, progress=False)
    assert calls == [] and again["resumed"] == 4
    strip = ("seconds", "resumed")
    assert [{k: v for k, v in r.items() if k not in strip} for r in again["rows"]] == \
           [{k: v for k, v in r.items() if k not in strip} for r in rows]
    sweep.sweep(points, out, serial=True, retry_failed=True, progress=False)
    assert calls == [failed[0]["folder"]]


def test_a_build_that_crashes_is_a_row(tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("a compiler bug")

    monkeypatch.setattr(hw_build, "build", broken)
    result = sweep.sweep(sweep.grid("tfc_w1a1", "pynq-z2"), tmp_path, serial=True, progress=False)
    row = result["rows"][0]
    assert row["status"] == "error" and "ZeroDivisionError" in row["error"]
    assert "a compiler bug" in (tmp_path / row["folder"] / "sweep_traceback.txt").read_text()


def test_pareto_front():
    rows = [{"status": "ok", "fps": f, "lut": lut, "name": n}
            for n, f, lut in [("a", 100, 10), ("b", 50, 20), ("c", 200, 30), ("d", 200, 40), ("e", 300, 50)]]
    rows.append({"status": "failed", "fps": None, "lut": None, "name": "f"})
    assert [r["name"] for r in sweep.pareto_front(rows)] == ["a", "c", "e"]


# --------------------------------------------------------------------------- real builds on Ray
TABLE = ("model", "board", "target_fps", "clock_mhz", "status", "error", "fps", "lut", "bram36", "fits", "folder",
         "ii_cycles")


def _table(result: dict) -> list[dict]:
    return [{k: r[k] for k in TABLE} for r in result["rows"]]


@pytest.mark.slow
def test_ray_sweeps_local_and_two_node_give_the_serial_table(tmp_path):
    from tests.ray_cluster import two_node_cluster

    points = sweep.grid("tfc_w1a1", "pynq-z2", "max,100000", "100,50")
    serial = sweep.sweep(points, tmp_path / "serial", synth=False, serial=True, verify_images=3, progress=False)
    local = sweep.sweep(points, tmp_path / "local", synth=False, verify_images=3, progress=False)
    # the cluster run in its own process, as a user runs it: Ray keeps per-process state (the
    # authentication of the local instance above), which a second ray.init here would reuse
    with two_node_cluster() as address:
        proc = subprocess.run([sys.executable, "-m", "hw_build.sweep", "--models", "tfc_w1a1", "--boards", "pynq-z2",
                               "--target-fps", "max,100000", "--clock-mhz", "100,50", "--no-synth",
                               "--verify-images", "3", "--out", str(tmp_path / "cluster"), "--ray-address", address],
                              cwd=Path(hw_build.__file__).resolve().parents[1], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cluster = json.loads((tmp_path / "cluster" / "sweep.json").read_text())
    assert local["ray"]["address"] == "local" and cluster["ray"]["nodes"] == 2
    assert all(r["status"] == "ok" for r in serial["rows"])
    assert _table(serial) == _table(local) == _table(cluster)
