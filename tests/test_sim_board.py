"""The packaged driver on the real pynq API over the simulated Zynq (deploy.sim_board): pynq's own
Overlay, allocate, Clocks and AXI DMA driver on a register-level AXI DMA model (PG021) with the
build's RTL in Verilator behind its streams, and the faults the driver must name.

The board serves the .hwh the vivado step derives from the block design's Tcl (run under a
real Tcl interpreter with stubbed Vivado commands); the faults are injected by editing that
Tcl or .hwh, accel.json, or the DMA model, never by faking pynq."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from deploy.config import AccelConfig
from deploy.driver import Accelerator as Accel
from deploy.driver import AcceleratorError, DmaError, TransferError
from deploy.interface import INTERFACE_NAME, AcceleratorInterface

pynq = pytest.importorskip("pynq")
ROOT = Path(__file__).resolve().parents[1]
PYNQ_MAJOR = int(importlib.metadata.version("pynq").split(".")[0])
#: every fault must be named within this many seconds (not after a timeout)
FAULT_SECONDS = 1.0


def mnist(n: int) -> np.ndarray:
    from deploy.samples import dataset_test_split

    return dataset_test_split("mnist", n)[0]


@pytest.fixture(scope="module")
def expected_labels(tfc_build):
    from qonnx.core.modelwrapper import ModelWrapper

    from hw_build.verify import dataflow_labels

    return dataflow_labels(ModelWrapper(str(tfc_build / "dataflow.onnx")), mnist(100))


def served(build: Path, tmp: Path, edit=None, name: str = "bitfile") -> Path:
    """A copy of the build's simulation .bit/.hwh, the .hwh edited by ``edit(root)``."""
    out = tmp / name
    out.mkdir(parents=True)
    for f in ("accel.bit", "accel.hwh"):
        shutil.copyfile(build / "vivado" / "simulation" / f, out / f)
    if edit is not None:
        tree = ET.parse(out / "accel.hwh")
        edit(tree.getroot())
        tree.write(out / "accel.hwh")
    return out / "accel.bit"


def set_param(cell: str, name: str, value: str):
    def edit(root: ET.Element) -> None:
        mod = next(m for m in root.iter("MODULE") if m.get("INSTANCE") == cell)
        params = mod.find("PARAMETERS")
        for p in params.findall("PARAMETER"):
            if p.get("NAME") == name:
                p.set("VALUE", value)
                return
        ET.SubElement(params, "PARAMETER", {"NAME": name, "VALUE": value})
    return edit


def drop_accel_parameters(root: ET.Element) -> None:
    """An older .hwh: the accelerator cell without the interface parameters."""
    for mod in root.iter("MODULE"):
        params = mod.find("PARAMETERS")
        for p in list(params):
            if p.get("NAME", "").startswith(("FRAME_", "WORDS_PER_FRAME")):
                params.remove(p)


def config_with_shape(build: Path, shape: tuple[int, int, int]) -> AccelConfig:
    from dataclasses import replace

    return replace(AccelConfig.from_build(build), input_shape=shape)


def on_board(build: Path, bitfile: Path, config=None, **kw) -> Accel:
    from deploy.sim_board import SimulatedZynq

    return Accel(bitfile, config or AccelConfig.from_build(build), device=SimulatedZynq(build), **kw)


def named_fault(fn, exc_type, pattern: str):
    """``fn()`` raises ``exc_type`` matching ``pattern`` within FAULT_SECONDS."""
    t0 = time.monotonic()
    with pytest.raises(exc_type, match=pattern) as info:
        fn()
    elapsed = time.monotonic() - t0
    assert elapsed < FAULT_SECONDS, f"the error took {elapsed:.2f} s: {info.value}"
    assert not isinstance(info.value, TimeoutError), info.value
    return info.value


# --------------------------------------------------------------------------- the board path, simulated
def test_pynq_own_driver_on_the_simulated_board(tfc_build, expected_labels):
    x = mnist(100)
    with Accel.simulated(tfc_build, batch_size=40) as accel:
        t = accel._transport
        assert type(t.dma).__module__ == "pynq.lib.dma" and type(t.dma).__name__ == "DMA"
        assert type(t.overlay).__module__ == "pynq.overlay"
        assert accel.transport == "simulation" and accel.fclk_mhz == pytest.approx(100.0)
        np.testing.assert_array_equal(accel.infer(x), expected_labels)
        ibuf, obuf = next(iter(t._buffers.values()))
        assert isinstance(ibuf, pynq.buffer.PynqBuffer) and ibuf.cacheable and obuf.cacheable
        assert ibuf.physical_address % 4096 == 0 and ibuf.physical_address != obuf.physical_address
        # the fabric kept its state across the three transfers: one reset, at download
        assert t._device.cosim.cycle > 100 * 98
        # FINN's names: execute gives (N, 1), throughput_test FINN's keys
        np.testing.assert_array_equal(accel.execute(x[:5]), expected_labels[:5, None])
        keys = set(accel.throughput_test(200))
        assert keys == {"runtime[ms]", "throughput[images/s]", "DRAM_in_bandwidth[MB/s]",
                        "DRAM_out_bandwidth[MB/s]", "fclk[mhz]", "batch_size"}
    # random stalls of both streams (a busy memory port): the same labels
    with Accel.simulated(tfc_build, stall=0.3, seed=3) as accel:
        np.testing.assert_array_equal(accel.infer(x[:12]), expected_labels[:12])


def test_dma_registers_follow_pg021(tfc_build, tmp_path):
    from deploy.sim_board import SimulatedZynq

    bit = served(tfc_build, tmp_path, set_param("axi_dma", "c_sg_length_width", "14"))
    dev = SimulatedZynq(tfc_build)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ov = pynq.Overlay(str(bit), download=False, device=dev)
    for clk in ov.clock_dict.values():  # pynq 4.0's Zynq-7000 gap, filled as the driver does
        clk["frequency"] = clk.get("frequency") or 100.0
    ov.download()
    base = ov.ip_dict["axi_dma"]["phys_addr"]
    regs = pynq.MMIO(base, 0x10000, device=dev)
    assert regs.read(0x04) == 0x00010001 and regs.read(0x34) == 0x00010001  # halted after reset
    for off in (0x00, 0x30):
        regs.write(off, 1)  # RS
    assert regs.read(0x04) & 0x3 == 0x2 and regs.read(0x34) & 0x3 == 0x2  # running, idle

    x = mnist(4)
    inp = dev.allocate((4 * 98, 8), np.uint8)  # non-cacheable: the DDR itself
    inp[:] = x.transpose(0, 2, 3, 1).reshape(-1, 8)
    out = dev.allocate((64,), np.uint8)

    def poll(off: int) -> int:
        for _ in range(10_000):
            sr = regs.read(off)
            if sr & 0x72:
                return sr
        raise AssertionError("the channel never became idle or failed")

    # S2MM ends at tlast and reports the bytes it received; the length register is 14 bits wide
    regs.write(0x48, out.physical_address)
    regs.write(0x58, 64)
    regs.write(0x18, inp.physical_address)
    regs.write(0x28, (1 << 14) + 2 * 784)  # stores 2 * 784: two frames, tlast on the last word
    assert poll(0x04) & 0x72 == 0x02 and poll(0x34) & 0x72 == 0x02
    assert regs.read(0x58) == 2 and regs.read(0x34) & 0x1000  # 2 bytes received, IOC interrupt bit
    np.testing.assert_array_equal(out[:2], [int(v) for v in labels_of(tfc_build, x[:2])])
    regs.write(0x34, 0x1000)  # write 1 to clear
    assert not regs.read(0x34) & 0x1000
    # a packet longer than the buffer (4 labels, room for 1, no tlast by its end): DMAIntErr, halted
    regs.write(0x58, 1)
    regs.write(0x28, 4 * 784)
    assert poll(0x34) & 0x10 and regs.read(0x34) & 0x1
    # MM2S: length 0 is an internal error, an address with no memory a decode error
    regs.write(0x00, 4)  # soft reset
    regs.write(0x00, 1)
    regs.write(0x28, 0)
    assert regs.read(0x04) & 0x11 == 0x11
    regs.write(0x00, 4)
    regs.write(0x00, 1)
    regs.write(0x18, 0x0000_1000)
    regs.write(0x28, 64)
    assert regs.read(0x04) & 0x41 == 0x41
    dev.close()


def labels_of(build: Path, x: np.ndarray) -> np.ndarray:
    from qonnx.core.modelwrapper import ModelWrapper

    from hw_build.verify import dataflow_labels

    return dataflow_labels(ModelWrapper(str(build / "dataflow.onnx")), x)


def test_cacheable_buffers_see_ddr_only_through_flush_and_invalidate(tfc_build):
    from deploy.sim_board import SimulatedZynq

    dev = SimulatedZynq(tfc_build)
    cached = pynq.allocate((16,), np.uint8, target=dev, cacheable=True)
    plain = pynq.allocate((16,), np.uint8, target=dev)
    assert cached.cacheable and not plain.cacheable
    cached[:] = 7
    plain[:] = 9
    assert not dev.ddr.region(cached.physical_address, 16).any(), "a write reached DDR without a flush"
    assert (dev.ddr.region(plain.physical_address, 16) == 9).all()
    cached.flush()
    assert (dev.ddr.region(cached.physical_address, 16) == 7).all()
    dev.ddr.region(cached.physical_address, 16)[:] = 3  # the DMA writes DDR
    assert (cached == 7).all(), "the CPU saw DDR without an invalidate"
    cached.invalidate()
    assert (cached == 3).all()
    dev.close()


# --------------------------------------------------------------------------- faults, each named at once
def test_fault_axi_dma_7_2(tfc_build, tmp_path):
    bit = served(tfc_build, tmp_path, lambda root: next(
        m for m in root.iter("MODULE") if m.get("INSTANCE") == "axi_dma").set("VLNV", "xilinx.com:ip:axi_dma:7.2"))
    # the fault is real: pynq binds no DMA driver to 7.2
    from deploy.sim_board import SimulatedZynq

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ov = pynq.Overlay(str(bit), download=False, device=SimulatedZynq(tfc_build))
    assert ov.ip_dict["axi_dma"]["driver"].__name__ == "DefaultIP"
    named_fault(lambda: on_board(tfc_build, bit), AcceleratorError,
                r"axi_dma:7\.2, but pynq's DMA driver binds only xilinx\.com:ip:axi_dma:7\.1")


def test_fault_14_bit_length_register(tfc_build, tmp_path, expected_labels):
    bit = served(tfc_build, tmp_path, set_param("axi_dma", "c_sg_length_width", "14"))
    with on_board(tfc_build, bit) as accel:
        # the largest transfer comes from the .hwh (accel.json still says 26 bits)
        assert accel.config.max_transfer_bytes == 2**26 - 1
        assert accel.max_frames_per_transfer == (2**14 - 1) // 784 == 20
        np.testing.assert_array_equal(accel.infer(mnist(100)), expected_labels)
        # the fault is real: pynq itself refuses a longer transfer
        t = accel._transport
        too_long = pynq.allocate((21 * 98, 8), np.uint8, target=t._device)
        with pytest.raises(ValueError, match="exceeds the maximum DMA buffer size 16383"):
            t.dma.sendchannel.transfer(too_long)
        words = np.zeros((21 * 98, 8), np.uint8)
        named_fault(lambda: t.run(words, 21, 5.0), AcceleratorError,
                    r"16464 bytes, more than one transfer of DMA 'axi_dma' can move \(16383 bytes, from its length "
                    r"register in the \.hwh\)")


def test_fault_accel_json_not_matching_the_rtl(tfc_build, tmp_path):
    x = mnist(8)
    bit = served(tfc_build, tmp_path)
    # the .hwh carries the interface: a wrong accel.json is refused before anything is loaded
    named_fault(lambda: on_board(tfc_build, bit, config_with_shape(tfc_build, (1, 14, 28))), AcceleratorError,
                r"FRAME_H=28, accel.json implies 14.*come from different builds")
    # an older .hwh without it: the transfer itself tells, short or long, never stale labels
    old = served(tfc_build, tmp_path, drop_accel_parameters, name="old")
    with on_board(tfc_build, old, config_with_shape(tfc_build, (1, 14, 28))) as accel:
        named_fault(lambda: accel.infer(np.ascontiguousarray(x[:4, :, :14])), TransferError,
                    r"returned 2 bytes \(DMA S2MM ended at tlast\) for 4 images, which must return 4 bytes")
    with on_board(tfc_build, old, config_with_shape(tfc_build, (1, 56, 28))) as accel:
        err = named_fault(lambda: accel.infer(np.concatenate([x[:2], x[2:4]], axis=2)), DmaError,
                          r"S2MM reported DMAIntErr .*longer than the buffer")
        assert "DMASR=0x" in str(err)


def test_fault_forced_dma_error_bit(tfc_build, tmp_path):
    from deploy.sim_board import SR_SLV_ERR

    with Accel.simulated(tfc_build) as accel:
        dma = next(iter(accel._transport._device.dmas.values()))
        dma.forced_error = ("MM2S", SR_SLV_ERR)
        named_fault(lambda: accel.infer(mnist(4)), DmaError,
                    r"MM2S reported DMASlvErr \(slave error.*DMASR=0x000[0-9A-F]{5}")
        with pytest.raises(AcceleratorError, match="earlier transfer failed"):
            accel.infer(mnist(4))


def test_fault_renamed_dma_cell(tfc_build, tmp_path):
    """Renamed in the block design's Tcl: the .hwh recorded from it names the new cell."""
    from deploy.sim_board import interface_identity
    from hw_build.vivado import hwh
    from hw_build.vivado.design_record import record_design

    vdir = tmp_path / "vivado"
    shutil.copytree(tfc_build / "vivado", vdir, ignore=shutil.ignore_patterns("simulation"))
    tcl = (vdir / "block_design.tcl").read_text()
    (vdir / "block_design.tcl").write_text(tcl.replace(" axi_dma\n", " dma_0\n").replace("axi_dma/", "dma_0/")
                                           .replace("get_bd_cells axi_dma]", "get_bd_cells dma_0]"))
    design = record_design(vdir)
    assert [c.name for c in design.cell_of("axi_dma")] == ["dma_0"]
    bit, _ = hwh.write_simulation_bitfile(design, tmp_path / "bitfile", "accel", interface_identity(tfc_build))
    named_fault(lambda: on_board(tfc_build, bit), AcceleratorError,
                r"has no AXI DMA named 'axi_dma' \(accel.json's dma_name\); its AXI DMA cells: \['dma_0'\]")


def test_stuck_transfer_is_a_timeout_then_a_clear_state(tfc_build, tmp_path):
    """Three half-size frames leave the last input tlast mid-frame: no label carries tlast, the
    S2MM never ends. Undetectable from the registers (as on a board): a timeout, then an error
    that says what to do."""
    old = served(tfc_build, tmp_path, drop_accel_parameters)
    with on_board(tfc_build, old, config_with_shape(tfc_build, (1, 14, 28)), timeout_s=0.002) as accel:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match=r"returning the labels \(DMA S2MM\) within 0.002 s \(3 frames\)"):
            accel.infer(np.ascontiguousarray(mnist(3)[:, :, :14]))
        assert time.monotonic() - t0 < 5
        with pytest.raises(AcceleratorError, match="create a new Accelerator"):
            accel.infer(np.ascontiguousarray(mnist(3)[:, :, :14]))


def test_pl_clock_read_back_and_the_pynq_4_zynq7000_problem(tfc_build, tmp_path):
    from deploy.sim_board import SimulatedZynq

    bit = served(tfc_build, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ov = pynq.Overlay(str(bit), download=False, device=SimulatedZynq(tfc_build))
    if PYNQ_MAJOR >= 4:  # pynqmetadata gives no rate for a Zynq-7000 PL clock: download fails as on a board
        assert ov.clock_dict[0]["frequency"] is None
        with pytest.raises(TypeError):
            ov.download()
    else:
        ov.download()
    # the driver fills in the .hwh's rate; the achieved clock is read back from the PS registers
    with on_board(tfc_build, bit) as accel:
        assert accel.fclk_mhz == pytest.approx(100.0) and pynq.Clocks.fclk0_mhz == pytest.approx(100.0)
        assert accel.throughput(50)["fclk_mhz"] == pytest.approx(100.0)
    slow = served(tfc_build, tmp_path, set_param("ps", "PCW_FPGA0_PERIPHERAL_FREQMHZ", "50"), name="slow")
    named_fault(lambda: on_board(tfc_build, slow), AcceleratorError,
                r"sets the PL clock to 50 MHz, accel.json says the design was built for 100 MHz")


def test_simulation_bitstream_is_refused_on_a_real_board(tfc_build, tmp_path):
    from deploy.driver import ZynqDMA

    bit = served(tfc_build, tmp_path)

    class Board:  # a device without the simulated board's clock: what a real board looks like to the driver
        pass

    with pytest.raises(AcceleratorError, match="simulation stand-in bitstream .* configures nothing on a board"):
        ZynqDMA(bit, AccelConfig.from_build(tfc_build), device=Board())


# --------------------------------------------------------------------------- one record, one source
def test_interface_record_matches_the_generated_verilog(tfc_build):
    from tests.verilog_ports import read_top_ports

    record = AcceleratorInterface.load(tfc_build / INTERFACE_NAME)
    ports = read_top_ports(tfc_build / "rtl", record.top)
    assert (ports.clock, ports.reset, ports.reset_active_low) == (record.clock_port, record.reset_port,
                                                                   record.reset_active_low)
    assert (ports.s_axis.prefix, ports.s_axis.width, ports.s_axis.has_tlast) == (record.in_prefix, record.in_bits, True)
    assert (ports.m_axis.prefix, ports.m_axis.width, ports.m_axis.has_tlast) == (record.out_prefix, record.out_bits,
                                                                                 True)
    # and the .hwh the Tcl made carries the same facts the driver checks
    from deploy.handoff import read_handoff

    hwh = read_handoff(tfc_build / "vivado" / "simulation" / "accel.hwh")
    dma = hwh.cells[record.dma_cell]
    assert dma.vlnv == record.dma_vlnv == "xilinx.com:ip:axi_dma:7.1"
    assert int(dma.parameters["c_sg_length_width"]) == record.dma_length_bits
    assert int(dma.parameters["c_m_axis_mm2s_tdata_width"]) == record.in_bits
    assert int(dma.parameters["c_s_axis_s2mm_tdata_width"]) == record.out_bits
    accel = hwh.cells[record.accel_cell]
    assert accel.vlnv == record.accel_vlnv
    assert int(accel.parameters["WORDS_PER_FRAME"]) == record.words_per_frame
    assert hwh.pl_clock_mhz(0) == (record.clock_mhz, pytest.approx(record.clock_mhz))


# --------------------------------------------------------------------------- the deploy package, unmodified
def expected_fps(build: Path) -> float:
    """clock / max(II, DMA cycles): the measured II when the build ran verify, else the designed one."""
    record = AcceleratorInterface.load(build / INTERFACE_NAME)
    report = json.loads((build / "report.json").read_text()) if (build / "report.json").exists() else {}
    ii = (report.get("rtlsim") or {}).get("ii_cycles") or record.cycles_per_frame
    return record.clock_mhz * 1e6 / max(float(ii), record.dma_cycles_per_frame)


def packaged_driver_runs(build: Path, tmp: Path, model: str, python: str = sys.executable) -> dict:
    """Unzip the deploy package and run its driver.py (FINN's command line) on the simulated
    board: execute on 100 MNIST test images (PyTorch's labels, ties allowed), throughput_test
    within 10% of clock / max(II, DMA cycles). Returns the metrics."""
    import torch

    from hw_build.package import make_deploy_package
    from hw_build.verify import accepted
    from quant_models import zoo

    unpacked = tmp / "unpacked"
    zipfile.ZipFile(make_deploy_package(build)).extractall(unpacked)
    pkg = unpacked / "deploy"
    x = mnist(100)
    np.save(pkg / "in.npy", x)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    run = [python, "driver.py", "--simulate", str(build)]
    proc = subprocess.run(run + ["--exec_mode", "execute", "--inputfile", "in.npy", "--outputfile", "out.npy"],
                          cwd=pkg, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    labels = np.load(pkg / "out.npy")
    assert labels.shape == (100, 1) and labels.dtype == np.int64
    with torch.no_grad():
        scores = zoo.get(model)(torch.from_numpy(x.astype(np.float32) / 255)).numpy().reshape(len(x), -1)
    assert accepted(labels[:, 0], scores).all(), "the packaged driver's labels differ from PyTorch's"
    proc = subprocess.run(run + ["--exec_mode", "throughput_test", "--batchsize", "1000", "--outputfile", "m.json"],
                          cwd=pkg, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((pkg / "m.json").read_text())
    assert set(metrics) == {"runtime[ms]", "throughput[images/s]", "DRAM_in_bandwidth[MB/s]",
                            "DRAM_out_bandwidth[MB/s]", "fclk[mhz]", "batch_size"}
    assert metrics["batch_size"] == 1000 and metrics["fclk[mhz]"] == pytest.approx(100.0)
    assert metrics["throughput[images/s]"] == pytest.approx(expected_fps(build), rel=0.10)
    # bad input: one paragraph on stderr, exit 1, no traceback
    np.save(pkg / "bad.npy", x.astype(np.float32) / 255)
    bad = subprocess.run(run + ["--inputfile", "bad.npy"], cwd=pkg, env=env, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 1 and "dtype uint8" in bad.stderr and "Traceback" not in bad.stderr
    return metrics


def test_packaged_driver_on_the_simulated_board(tfc_build, tmp_path):
    build = tmp_path / "build"
    shutil.copytree(tfc_build, build)
    packaged_driver_runs(build, tmp_path, "tfc_w1a1")


# --------------------------------------------------------------------------- slow: whole builds, both pynq versions
PYNQ3_PYTHON = ROOT / ".venv-pynq3" / "bin" / "python"


def pynq3_python() -> str:
    """The project's pynq 3.1.2 environment (make pynq3), made on first use."""
    if not PYNQ3_PYTHON.exists():
        proc = subprocess.run(["make", "pynq3"], cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    version = subprocess.run([str(PYNQ3_PYTHON), "-c", "import importlib.metadata as m; print(m.version('pynq'))"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
    assert version == "3.1.2", version
    return str(PYNQ3_PYTHON)


@pytest.fixture(scope="module", params=["tfc_w1a1", "ftbnn_tiny"])
def full_build(request, tmp_path_factory) -> tuple[str, Path]:
    """The whole flow through deploy (no synthesis, no accuracy run): what a user builds."""
    out = tmp_path_factory.mktemp(request.param) / "build"
    proc = subprocess.run([sys.executable, "build.py", "--model", request.param, "--board", "pynq-z2", "--no-synth",
                           "--accuracy-images", "0", "--output", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=3000)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return request.param, out


@pytest.mark.slow
@pytest.mark.parametrize("pynq_version", ["4.0.0", "3.1.2"])
def test_packaged_driver_of_whole_builds(full_build, tmp_path, pynq_version):
    """For ftbnn_tiny and tfc_w1a1, under pynq 4.0.0 and 3.1.2: the unzipped deploy package's
    driver.py on the simulated board gives PyTorch's labels on 100 MNIST test images and a
    throughput_test within 10% of clock / max(II, DMA cycles)."""
    model, build = full_build
    python = sys.executable if pynq_version == "4.0.0" else pynq3_python()
    if pynq_version == "4.0.0":
        assert importlib.metadata.version("pynq") == "4.0.0"
    metrics = packaged_driver_runs(build, tmp_path, model, python=python)
    report = json.loads((build / "report.json").read_text())
    assert metrics["throughput[images/s]"] == pytest.approx(report["rtlsim"]["fps"], rel=0.10)


@pytest.mark.slow
def test_simulated_board_suite_under_pynq_3():
    """This file's fast tests (board path, registers, every fault) under pynq 3.1.2."""
    proc = subprocess.run([pynq3_python(), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                           str(Path(__file__))], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
