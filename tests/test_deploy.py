"""The deploy driver: stream packing, input validation, no hardware access on a host, the
simulated accelerator against the Python dataflow, the notebooks, the deploy package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from deploy import packing
from deploy.config import AccelConfig
from deploy.driver import Accelerator
from deploy.interface import AcceleratorInterface

ROOT = Path(__file__).resolve().parents[1]


def config(shape=(1, 28, 28), dma_bits=64, out_bits=8, label_bits=4, **kw) -> AccelConfig:
    return AccelConfig(model="test", board="pynq-z2", family="zynq7", part="xc7z020clg400-1", clock_mhz=100.0,
                       input_shape=shape, dma_bits=dma_bits, out_bits=out_bits, label_bits=label_bits, **kw)


# --------------------------------------------------------------------------- packing
@pytest.mark.parametrize("shape, dma_bits", [((1, 28, 28), 64), ((3, 5, 7), 64), ((3, 4, 4), 128), ((2, 3, 3), 512)])
def test_pack_round_trip_pads_frames_to_whole_words(shape, dma_bits):
    cfg = config(shape, dma_bits)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(5, *shape), dtype=np.uint8)
    words = packing.pack_images(x, cfg)
    frame_bytes = int(np.prod(shape))
    per_frame = -(-frame_bytes // (dma_bits // 8))
    assert words.shape == (5 * per_frame, dma_bits // 8) and words.dtype == np.uint8
    assert cfg.words_per_frame == per_frame
    frames = words.reshape(5, -1)
    assert not frames[:, frame_bytes:].any(), "the pad of each frame must be zeros"
    np.testing.assert_array_equal(frames[:, :frame_bytes], x.transpose(0, 2, 3, 1).reshape(5, -1))
    np.testing.assert_array_equal(packing.unpack_images(words, cfg), x)
    ints = packing.words_to_ints(words)
    np.testing.assert_array_equal(packing.ints_to_words(ints, dma_bits // 8), words)


def test_packing_is_nhwc_little_endian():
    # 2 channels x 1 x 5 pixels = 10 bytes -> two 64-bit words, the second padded
    cfg = config((2, 1, 5))
    x = np.array([[[[1, 2, 3, 4, 5]], [[0x11, 0x12, 0x13, 0x14, 0x15]]]], dtype=np.uint8)
    words = packing.words_to_ints(packing.pack_images(x, cfg))
    # NHWC: pixel 0 channel 0, pixel 0 channel 1, pixel 1 channel 0...; byte i at bits [8i+:8]
    assert words == [0x1404_1303_1202_1101, 0x0000_0000_0000_1505]


def test_unpack_labels():
    cfg = config(out_bits=16, label_bits=10)
    raw = np.array([[0x34, 0x02], [0xFF, 0xFF], [9, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(packing.unpack_labels(raw, cfg), [0x234, 0x3FF, 9])
    cfg8 = config()
    assert packing.unpack_labels(packing.ints_to_words([7, 3], 1), cfg8).tolist() == [7, 3]


# --------------------------------------------------------------------------- input validation
def test_input_validation_messages():
    shape = (1, 28, 28)
    ok = np.zeros((2, 1, 28, 28), dtype=np.uint8)
    assert packing.check_images(ok, shape) is not None
    with pytest.raises(ValueError, match=r"shaped \(N, 1, 28, 28\).*got shape \(28, 28\)"):
        packing.check_images(np.zeros((28, 28), np.uint8), shape)
    with pytest.raises(ValueError, match=r"got shape \(1, 28, 28\)\. For one image, pass x\[None\]"):
        packing.check_images(np.zeros((1, 28, 28), np.uint8), shape)
    with pytest.raises(ValueError, match=r"NHWC images: pass x.transpose\(0, 3, 1, 2\)"):
        packing.check_images(np.zeros((4, 28, 28, 1), np.uint8), shape)
    with pytest.raises(TypeError, match=r"dtype uint8 .*got float32.*np.rint\(x \* 255\)"):
        packing.check_images(np.zeros((2, 1, 28, 28), np.float32), shape)
    with pytest.raises(TypeError, match="got bool"):
        packing.check_images(np.zeros((2, 1, 28, 28), bool), shape)
    bad = np.zeros((2, 1, 28, 28), np.int64)
    bad[0, 0, 0, 0], bad[1, 0, 0, 0] = -1, 300
    with pytest.raises(ValueError, match=r"0\.\.255 for dtype int64 input; got values in \[-1, 300\]"):
        packing.check_images(bad, shape)
    fine = np.full((1, 1, 28, 28), 255, np.int16)
    assert packing.check_images(fine, shape).dtype == np.uint8
    with pytest.raises(TypeError, match="numpy array"):
        packing.check_images("images", shape)
    # issue 14: an empty batch and a strided view are refused too, each naming the fix
    with pytest.raises(ValueError, match=r"the batch is empty \(shape \(0, 1, 28, 28\)\)"):
        packing.check_images(np.zeros((0, 1, 28, 28), np.uint8), shape)
    with pytest.raises(ValueError, match=r"C-contiguous.*np.ascontiguousarray\(x\)"):
        packing.check_images(np.zeros((2, 1, 28, 56), np.uint8)[..., ::2], shape)
    with pytest.raises(ValueError, match="pixel values must be in 0..255"):
        packing.check_images(np.full((1, 1, 28, 28), -1, np.int16), shape)


# --------------------------------------------------------------------------- driver without hardware
def test_import_driver_does_not_import_pynq():
    code = ("import sys, deploy, deploy.driver, deploy.packing, deploy.config, deploy.samples, deploy.validate\n"
            "bad = [m for m in sys.modules if m == 'pynq' or m.startswith('pynq.')]\n"
            "assert not bad, bad\n"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_board_accelerator_on_a_host_says_no_board(tmp_path):
    pytest.importorskip("pynq")
    (tmp_path / "bitfile").mkdir()
    bit = tmp_path / "bitfile" / "accel.bit"
    bit.write_bytes(b"\0" * 64)
    bit.with_suffix(".hwh").write_text("<xml/>")
    config().save(tmp_path / "accel.json")
    with pytest.raises(RuntimeError, match=r"^No PYNQ board found: .*Accelerator\.simulated\(build_dir\)"):
        Accelerator(bit)
    with pytest.raises(FileNotFoundError, match="bitfile .* not found"):
        Accelerator(tmp_path / "missing.bit")
    (tmp_path / "accel.json").unlink()
    with pytest.raises(FileNotFoundError, match="no accel.json found next to"):
        Accelerator(bit)


class EchoTransport:
    """Stands in for the DMA: label = first pixel of each frame mod 10, read from the packed words."""

    kind = "test"
    description = "echo"

    def __init__(self, cfg: AccelConfig, fail: Exception | None = None) -> None:
        self.cfg, self.fail, self.calls = cfg, fail, []

    def run(self, words, frames, timeout_s):
        self.calls.append((len(words), frames, timeout_s))
        if self.fail:
            raise self.fail
        first = words.reshape(frames, -1)[:, 0] % 10
        return packing.ints_to_words(first.tolist(), self.cfg.out_bytes)

    def close(self):
        pass


def test_batches_labels_and_throughput_over_a_transport():
    cfg = config((1, 4, 4), cycles_per_frame=100)
    t = EchoTransport(cfg)
    accel = Accelerator.with_transport(cfg, t, batch_size=3)
    x = np.arange(10 * 16, dtype=np.uint8).reshape(10, 1, 4, 4)
    labels = accel.infer(x)
    assert labels.dtype == np.int64 and labels.tolist() == [(16 * i) % 10 for i in range(10)]
    assert [c[:2] for c in t.calls] == [(6, 3), (6, 3), (6, 3), (2, 1)]  # 16 bytes = 2 words a frame
    assert all(c[2] >= 5.0 for c in t.calls)
    with pytest.raises(ValueError, match="the batch is empty"):  # issue 14: refused with a named error
        accel.infer(np.zeros((0, 1, 4, 4), np.uint8))
    tp = accel.throughput(7)
    assert tp["images"] == 7 and tp["batch_size"] == 3 and tp["transport"] == "test"
    assert tp["images_per_s"] > 0 and tp["input_mb_per_s"] == pytest.approx(7 * 16 / tp["seconds"] / 1e6)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        Accelerator.with_transport(cfg, t, batch_size=0)


def test_timeout_is_an_error_not_a_hang():
    cfg = config((1, 4, 4))
    accel = Accelerator.with_transport(cfg, EchoTransport(cfg, TimeoutError("did not finish within 0.1 s")),
                                       timeout_s=0.1)
    with pytest.raises(TimeoutError, match="within 0.1 s"):
        accel.infer(np.zeros((2, 1, 4, 4), np.uint8))
    from deploy.driver import _wait

    with pytest.raises(TimeoutError, match=r"did not finish returning the labels .* within 0.05 s \(4 frames\)"):
        _wait(lambda: False, time.monotonic() + 0.05, "returning the labels (DMA S2MM)", 0.05, 4)


def test_config_round_trip(tmp_path):
    cfg = config((3, 32, 32), 64, 16, 10, classes=["a"] * 10)
    loaded = AccelConfig.load(cfg.save(tmp_path / "accel.json"))
    assert loaded == cfg and loaded.words_per_frame == 384 and loaded.out_bytes == 2
    with pytest.raises(ValueError, match="label_bits"):
        config(label_bits=9)


# --------------------------------------------------------------------------- deploy package (no RTL needed)
def fake_build(tmp: Path, with_bitfile: bool) -> Path:
    build = tmp / "build"
    (build / "rtl").mkdir(parents=True)
    (build / "rtl" / "rtl_manifest.json").write_text(json.dumps(
        {"top": "accel_top", "files": ["accel_top.v"], "memories": [], "dma_bits": 64, "out_bits": 8,
         "label_bits": 4, "frame_shape": [8, 8, 1], "words_per_frame": 8, "cycles_per_frame": 64}))
    (build / "report.json").write_text(json.dumps({"model": "tiny", "board": "pynq-z2", "part": "xc7z020clg400-1",
                                                   "clock_mhz": 100.0, "trained": False}))
    AcceleratorInterface(top="accel_top", clock_port="ap_clk", reset_port="ap_rst_n", reset_active_low=True,
                         in_prefix="s_axis", out_prefix="m_axis", in_bits=64, out_bits=8, label_bits=4,
                         frame_shape=(8, 8, 1), cycles_per_frame=64, clock_mhz=100.0,
                         family="zynq7").save(build / "interface.json")
    (build / "verify").mkdir()
    np.save(build / "verify" / "inputs.npy", np.arange(3 * 64, dtype=np.uint8).reshape(3, 1, 8, 8))
    np.save(build / "verify" / "reference.npy", np.array([1, 2, 3], dtype=np.int64))
    if with_bitfile:
        (build / "vivado" / "bitfile").mkdir(parents=True)
        (build / "vivado" / "bitfile" / "accel.bit").write_bytes(b"bit")
        (build / "vivado" / "bitfile" / "accel.hwh").write_text("hwh")
    return build


@pytest.mark.parametrize("with_bitfile", [False, True])
def test_deploy_package(tmp_path, with_bitfile):
    from hw_build.package import make_deploy_package, package_summary

    build = fake_build(tmp_path, with_bitfile)
    (build / "deploy").mkdir()
    (build / "deploy" / "stale.txt").write_text("from an older package")
    zip_path = make_deploy_package(build)
    assert zip_path == build / "deploy.zip"
    names = set(zipfile.ZipFile(zip_path).namelist())
    for expected in ("deploy/deploy/driver.py", "deploy/deploy/packing.py", "deploy/deploy/config.py",
                     "deploy/accel.json", "deploy/board.ipynb", "deploy/simulated.ipynb", "deploy/samples.npz",
                     "deploy/README.md"):
        assert expected in names
    assert "deploy/stale.txt" not in names and not any("__pycache__" in n for n in names)
    assert ("deploy/bitfile/accel.bit" in names) == with_bitfile
    assert ("deploy/bitfile/accel.hwh" in names) == with_bitfile
    cfg = AccelConfig.load(build / "deploy" / "accel.json")
    assert cfg.input_shape == (1, 8, 8) and cfg.dma_bits == 64 and cfg.out_bits == 8 and cfg.label_bits == 4
    assert cfg.dma_name == "axi_dma" and cfg.bitfile == ("bitfile/accel.bit" if with_bitfile else None)
    assert cfg.extra["trained"] is False
    readme = (build / "deploy" / "README.md").read_text()
    assert ("No bitstream yet" in readme) != with_bitfile and "untrained" in readme
    summary = package_summary(build, zip_path)
    assert summary["bitstream"] == with_bitfile and summary["zip"] == "deploy.zip"
    with np.load(build / "deploy" / "samples.npz") as z:
        assert z["images"].shape == (3, 1, 8, 8) and z["labels"].tolist() == [1, 2, 3]
    # on the board, the driver finds accel.json one folder above the bitfile
    if with_bitfile:
        found, _ = AccelConfig.find(build / "deploy" / "bitfile" / "accel.bit")
        assert found == cfg


def test_deploy_package_needs_rtl(tmp_path):
    from hw_build.errors import BuildError
    from hw_build.package import make_deploy_package

    (tmp_path / "b").mkdir()
    with pytest.raises(BuildError, match="run the build through the rtl step"):
        make_deploy_package(tmp_path / "b")
    assert not (tmp_path / "b" / "deploy.zip").exists()


# --------------------------------------------------------------------------- with RTL: the simulated accelerator
def test_simulated_infer_matches_python_dataflow(tfc_build):
    from qonnx.core.modelwrapper import ModelWrapper

    from deploy.samples import dataset_test_split
    from hw_build.verify import dataflow_labels

    x, _ = dataset_test_split("mnist", 100)
    expected = dataflow_labels(ModelWrapper(str(tfc_build / "dataflow.onnx")), x)
    with Accelerator.simulated(tfc_build, batch_size=40) as accel:
        assert accel.input_shape == (1, 28, 28) and accel.transport == "simulation"
        labels = accel.infer(x)
        if not np.array_equal(labels, expected):
            from hw_build.rtl.sim import simulate_top

            rtl_labels, _ = simulate_top(tfc_build / "rtl", x.transpose(0, 2, 3, 1), 0.0, 0.0)
            culprit = ("the RTL itself (hw_build.rtl.sim.simulate_top gives the same labels)"
                       if np.array_equal(rtl_labels, labels) else "the driver (simulate_top disagrees with it)")
            pytest.fail(f"simulated accelerator labels differ from the dataflow graph's on "
                        f"{int((labels != expected).sum())}/100 images; culprit: {culprit}")
        assert labels.dtype == np.int64
        # and the PyTorch model's labels on the same 100 MNIST test images (ties allowed)
        import torch

        from hw_build.verify import accepted
        from quant_models import zoo

        with torch.no_grad():
            scores = zoo.get("tfc_w1a1")(torch.from_numpy(x.astype(np.float32) / 255)).numpy().reshape(len(x), -1)
        assert accepted(labels, scores).all(), "simulated accelerator disagrees with PyTorch"
        tp = accel.throughput(30, batch_size=10)
        assert tp["cycles"] > 0 and tp["hw_images_per_s"] > 0
        with pytest.raises(TypeError, match="uint8"):
            accel.infer(x.astype(np.float32) / 255)
    # back-pressure and stalls as a busy DMA would cause: same labels
    with Accelerator.simulated(tfc_build, stall=0.3, seed=3) as accel:
        np.testing.assert_array_equal(accel.infer(x[:12]), expected[:12])


def test_validate_cli(tfc_build):
    proc = subprocess.run([sys.executable, "-m", "deploy.validate", "--build", str(tfc_build), "--limit", "50"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout and "/50) on the mnist test split" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "deploy.validate", "--build", str(tfc_build), "--board-bitfile",
                          str(tfc_build / "nope.bit")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "not found" in bad.stderr and "Traceback" not in bad.stderr


def run_notebook(path: Path, env: dict[str, str]) -> object:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def test_simulated_notebook_runs_headless(tfc_build):
    nb = run_notebook(ROOT / "notebooks" / "simulated.ipynb",
                      {"ACCEL_BUILD_DIR": str(tfc_build), "ACCEL_IMAGES": "16", "ACCEL_THROUGHPUT_IMAGES": "40"})
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "16 images" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the image grid was not drawn"
    assert any("hw_images_per_s" in str(o.get("data", {}).get("text/plain", "")) for o in outputs)


def test_board_notebook_runs_headless_on_the_simulated_board(tfc_build, tmp_path):
    """The unzipped package's board.ipynb, unmodified, on the simulated Zynq (ACCEL_SIMULATE)."""
    import shutil

    from hw_build.package import make_deploy_package

    build = tmp_path / "build"
    shutil.copytree(tfc_build, build)
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(make_deploy_package(build)).extractall(unpacked)
    nb = run_notebook(unpacked / "deploy" / "board.ipynb",
                      {"ACCEL_SIMULATE": str(build), "ACCEL_IMAGES": "16", "ACCEL_THROUGHPUT_IMAGES": "300",
                       "PYTHONPATH": str(ROOT)})
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "(simulated board)" in text and "16 images" in text and "throughput[images/s]" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the image grid was not drawn"
    assert any("'transport': 'simulation'" in str(o.get("data", {}).get("text/plain", "")) for o in outputs)


def test_board_notebook_on_a_host_stops_at_no_board(tmp_path):
    pytest.importorskip("pynq")
    import nbclient

    build = fake_build(tmp_path, with_bitfile=True)
    from hw_build.package import make_deploy_package

    make_deploy_package(build)
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="No PYNQ board found"):
        run_notebook(build / "deploy" / "board.ipynb", {"ACCEL_IMAGES": "4"})


def test_real_build_scripts_package_and_packaged_driver(tfc_build, tmp_path):
    """vivado + deploy steps on a generated top; the packaged driver runs from the package folder."""
    import shutil

    from hw_build import boards
    from hw_build.package import make_deploy_package
    from hw_build.vivado import STATUS_SCRIPTS_ONLY, run_vivado, write_scripts

    build = tmp_path / "build"
    shutil.copytree(tfc_build, build)
    info = write_scripts(build, boards.get("pynq-z2"), 100.0)
    assert info["top"]["clock"] == "ap_clk" and info["dma"]["mm2s_bits"] == 64
    if shutil.which("vivado") is None:
        assert run_vivado(build, boards.get("pynq-z2")) == STATUS_SCRIPTS_ONLY
    zip_path = make_deploy_package(build)
    manifest = json.loads((build / "rtl" / "rtl_manifest.json").read_text())
    cfg = AccelConfig.load(build / "deploy" / "accel.json")
    assert cfg.words_per_frame == manifest["words_per_frame"] and cfg.label_bits == manifest["label_bits"]
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(zip_path).extractall(unpacked)
    # run the package's own copy of the driver (cwd first on sys.path), the compiler from the repository
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = ("import deploy.driver as d, sys; from deploy.samples import load_samples\n"
            "assert d.__file__.startswith(sys.argv[1]), d.__file__\n"
            "s = load_samples('.', 10)\n"
            "a = d.Accelerator.simulated(sys.argv[2])\n"
            "print(a.infer(s.images).tolist())")
    proc = subprocess.run([sys.executable, "-c", code, str(unpacked / "deploy"), str(build)],
                          cwd=unpacked / "deploy", env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    from qonnx.core.modelwrapper import ModelWrapper

    from hw_build.verify import dataflow_labels

    with np.load(unpacked / "deploy" / "samples.npz") as z:
        images = z["images"][:10]
    expected = dataflow_labels(ModelWrapper(str(build / "dataflow.onnx")), images)
    assert json.loads(proc.stdout) == expected.tolist()
