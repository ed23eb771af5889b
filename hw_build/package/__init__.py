"""The deploy step: everything that goes onto the board, in ``<build>/deploy/`` and zipped
as ``<build>/deploy.zip``.

    deploy/
      driver.py          FINN's command line: --exec_mode execute|throughput_test [--simulate BUILD_DIR]
      deploy/            the driver package (the repository's deploy/ sources)
      accel.json         runtime description: input shape, stream widths, DMA name, clock...
      samples.npz        test images (uint8 NCHW) with their labels, for the notebooks
      board.ipynb        on the board (or, with ACCEL_SIMULATE=BUILD_DIR, on the simulated board)
      simulated.ipynb    the simulated board from a host with the compiler
      bitfile/           accel.bit + accel.hwh (Zynq) or accel.xclbin (Alveo), when Vivado made them
      bitfile/simulation/  accel.hwh derived from the block design's Tcl + a stand-in accel.bit:
                         what the simulated board serves (Zynq builds)
      README.md
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from hw_build.errors import BuildError

REPO = Path(__file__).resolve().parents[2]
DRIVER_DIR = REPO / "deploy"
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = ("board.ipynb", "simulated.ipynb")
DEPLOY_DIR = "deploy"
ZIP_NAME = "deploy.zip"
SAMPLE_IMAGES = 100
SIMULATION_DIR = "simulation"
#: the package's entry point, FINN's driver command line (deploy.cli)
DRIVER_SCRIPT = '''"""FINN-style driver of this accelerator; see deploy/cli.py or run with --help."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy.cli import main  # noqa: E402

sys.exit(main(package=Path(__file__).resolve().parent))
'''

__all__ = ["make_deploy_package", "package_summary"]


def _driver_files() -> list[Path]:
    files = sorted(p for p in DRIVER_DIR.glob("*.py"))
    if not any(p.name == "driver.py" for p in files):
        raise BuildError(f"the deploy driver sources are missing from '{DRIVER_DIR}'.")
    return files


def _samples(build_dir: Path):
    from deploy.samples import Samples, dataset_of, dataset_test_split

    dataset = dataset_of(build_dir)
    if dataset is not None:
        try:
            images, labels = dataset_test_split(dataset, SAMPLE_IMAGES)
            return Samples(images, labels, "dataset", f"{dataset} test split")
        except Exception:  # dataset not available here (e.g. no CIFAR-10 folder)
            pass
    inputs = build_dir / "verify" / "inputs.npy"
    if inputs.exists():
        ref = build_dir / "verify" / "reference.npy"
        labels = np.load(ref) if ref.exists() else None
        return Samples(np.load(inputs), labels, "reference" if labels is not None else None,
                       "the build's verification images")
    return None


def _readme(cfg, report: dict, bitfiles: list[str], samples_source: str | None) -> str:
    c, h, w = cfg.input_shape
    if bitfiles:
        bit = f"`bitfile/` holds {', '.join(f'`{b}`' for b in bitfiles)}."
    else:
        bit = ("**No bitstream yet**: Vivado was not available when this package was made. Make it with the "
               "scripts in the build's `vivado/` folder (see `vivado/README.md` there), put the results into "
               "`bitfile/` here (`accel.bit` and `accel.hwh`, or `accel.xclbin`), or rerun the build's deploy "
               "step afterwards.")
    untrained = ""
    if report.get("trained") is False:
        untrained = ("\n> The model was built with seeded initial (untrained) weights: the hardware is real and "
                     "verified, the accuracy is not meaningful.\n")
    return f"""# {cfg.model} accelerator for {cfg.board} ({cfg.part}, {cfg.clock_mhz:g} MHz)
{untrained}
{bit}

## On the board (PYNQ)

    scp deploy.zip xilinx@<board>:/home/xilinx/jupyter_notebooks/
    ssh xilinx@<board> 'cd jupyter_notebooks && unzip -o deploy.zip'

Open `deploy/board.ipynb` in the board's Jupyter, or from Python in this folder:

    from deploy.driver import Accelerator
    accel = Accelerator("bitfile/{'accel.xclbin' if cfg.is_alveo else 'accel.bit'}")
    labels = accel.infer(images)      # uint8 (N, {c}, {h}, {w}) -> int64 (N,)
    accel.throughput(10000)

`python -m deploy.validate --build . --board-bitfile bitfile/{'accel.xclbin' if cfg.is_alveo else 'accel.bit'}`
prints the accuracy on the shipped test images ({samples_source or 'none shipped'}).

## Stream format (accel.json)

- input: {c}x{h}x{w} uint8 pixels per image, sent in NHWC order as {cfg.dma_bits}-bit words
  (pixel i of a word in bits [8i+:8]), each frame padded to {cfg.words_per_frame} words
  ({cfg.padded_frame_bytes} bytes);
- output: one {cfg.out_bits}-bit word per image, the label in its low {cfg.label_bits} bits;
- {'data movers ' + cfg.mm2s_name + '/' + cfg.s2mm_name if cfg.is_alveo else 'AXI DMA `' + cfg.dma_name + '` (simple mode)'},
  at most {cfg.max_frames_per_transfer} images per transfer.

## FINN's command line

    python driver.py --exec_mode execute --inputfile in.npy --outputfile out.npy   # in.npy: uint8 (N, {c}, {h}, {w})
    python driver.py --exec_mode throughput_test --batchsize 1000                  # FINN's keys -> nw_metrics.txt

## On a host: the simulated board

`python driver.py ... --simulate BUILD_DIR` (BUILD_DIR: the build folder this package came from)
runs this package unmodified on a simulated Zynq: pynq's own Overlay, `allocate` and AXI DMA
driver over a register-level AXI DMA model, with the build's RTL in Verilator behind the
streams; `bitfile/simulation/` holds the .hwh it serves (derived from the block design's Tcl).
`board.ipynb` does the same with `ACCEL_SIMULATE=BUILD_DIR`. It needs the compiler repository
on `PYTHONPATH` and its environment (pynq, verilator).
"""


def make_deploy_package(build_dir: Path) -> Path:
    """Assemble ``<build>/deploy/`` and zip it to ``<build>/deploy.zip``; returns the zip path.

    Needs the build's report.json and interface.json (the rtl step); copies
    ``vivado/bitfile/*`` and ``vivado/simulation/*`` when present. The zip is written under a temporary name and
    renamed at the end, so a failed step never leaves a finished-looking deploy.zip."""
    from deploy.config import CONFIG_NAME, AccelConfig
    from deploy.samples import SAMPLES_NAME, save_samples

    build_dir = Path(build_dir)
    try:
        cfg = AccelConfig.from_build(build_dir)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise BuildError(f"cannot make the deploy package: {exc}") from None
    report_path = build_dir / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}

    out = build_dir / DEPLOY_DIR
    zip_path = build_dir / ZIP_NAME
    if zip_path.exists():
        zip_path.unlink()
    if out.exists():
        shutil.rmtree(out)
    (out / "deploy").mkdir(parents=True)
    for src in _driver_files():
        shutil.copyfile(src, out / "deploy" / src.name)
    for name in NOTEBOOKS:
        src = NOTEBOOK_DIR / name
        if not src.exists():
            raise BuildError(f"notebook '{src}' is missing from the repository.")
        shutil.copyfile(src, out / name)

    bitfiles: list[str] = []
    bit_src = build_dir / "vivado" / "bitfile"
    if bit_src.is_dir():
        (out / "bitfile").mkdir()
        for f in sorted(bit_src.iterdir()):
            if f.is_file():
                shutil.copyfile(f, out / "bitfile" / f.name)
                bitfiles.append(f"bitfile/{f.name}")
    sim_src = build_dir / "vivado" / SIMULATION_DIR
    if sim_src.is_dir():  # the simulated board's .bit/.hwh (hw_build.vivado.write_simulation_bitfile)
        (out / "bitfile" / SIMULATION_DIR).mkdir(parents=True)
        for f in sorted(sim_src.iterdir()):
            if f.is_file():
                shutil.copyfile(f, out / "bitfile" / SIMULATION_DIR / f.name)
    (out / "driver.py").write_text(DRIVER_SCRIPT)
    cfg.save(out / CONFIG_NAME)

    samples = _samples(build_dir)
    if samples is not None:
        save_samples(out / SAMPLES_NAME, samples)
    (out / "README.md").write_text(_readme(cfg, report, bitfiles, samples.source if samples else None))

    tmp = zip_path.with_name(ZIP_NAME + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for root, _, files in os.walk(out):
            for f in sorted(files):
                p = Path(root) / f
                if "__pycache__" in p.parts:
                    continue
                z.write(p, p.relative_to(build_dir).as_posix())
    os.replace(tmp, zip_path)
    return zip_path


def package_summary(build_dir: Path, zip_path: Path) -> dict:
    """A report.json entry for the deploy step."""
    build_dir = Path(build_dir)
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
    return {
        "dir": DEPLOY_DIR,
        "zip": str(Path(zip_path).relative_to(build_dir)) if Path(zip_path).is_relative_to(build_dir) else str(zip_path),
        "zip_bytes": Path(zip_path).stat().st_size,
        "files": len(names),
        "bitstream": any(n.startswith(f"{DEPLOY_DIR}/bitfile/") and n.endswith((".bit", ".xclbin")) for n in names),
        "notebooks": [n.split("/", 1)[1] for n in names if n.endswith(".ipynb")],
    }
