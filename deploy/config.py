"""Runtime description of one generated accelerator (``accel.json``): what the driver needs
to feed it and read it, and nothing that needs the compiler. Plain json + dataclasses, so
it loads on a PYNQ board with only numpy installed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

CONFIG_NAME = "accel.json"
FORMAT_VERSION = 1
#: AXI DMA buffer length register width the Vivado scripts configure (hw_build.vivado)
DEFAULT_LENGTH_BITS = 26


@dataclass(frozen=True)
class AccelConfig:
    model: str
    board: str
    family: str                      # "zynq7", "zynqmp" or "alveo"
    part: str
    clock_mhz: float
    input_shape: tuple[int, int, int]  # (C, H, W) of one image, as the model takes it
    dma_bits: int                    # input stream width (bits per packed word)
    out_bits: int                    # output stream width (bits per label word)
    label_bits: int                  # significant bits of a label
    max_transfer_bytes: int = 2**DEFAULT_LENGTH_BITS - 1
    cycles_per_frame: int | None = None
    dma_name: str = "axi_dma"        # the AXI DMA instance in the block design (Zynq)
    mm2s_name: str = "mm2s_1"        # the data mover compute units (Alveo)
    s2mm_name: str = "s2mm_1"
    bitfile: str | None = None       # relative to the folder of accel.json, when known
    classes: list[str] | None = None  # display names of the labels, when known
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {self.input_shape}")
        if self.dma_bits % 8 or self.out_bits % 8 or self.dma_bits <= 0 or self.out_bits <= 0:
            raise ValueError(f"stream widths must be whole bytes (dma_bits={self.dma_bits}, out_bits={self.out_bits})")
        if not 0 < self.label_bits <= self.out_bits:
            raise ValueError(f"label_bits={self.label_bits} must be in 1..out_bits={self.out_bits}")

    # ---------------------------------------------------------------- derived sizes
    @property
    def bytes_per_word(self) -> int:
        return self.dma_bits // 8

    @property
    def frame_bytes(self) -> int:
        c, h, w = self.input_shape
        return c * h * w

    @property
    def words_per_frame(self) -> int:
        return -(-self.frame_bytes // self.bytes_per_word)

    @property
    def padded_frame_bytes(self) -> int:
        return self.words_per_frame * self.bytes_per_word

    @property
    def out_bytes(self) -> int:
        return self.out_bits // 8

    @property
    def max_frames_per_transfer(self) -> int:
        """Frames one DMA transfer can carry (input side; the output is far smaller)."""
        return max(1, self.max_transfer_bytes // self.padded_frame_bytes)

    @property
    def is_alveo(self) -> bool:
        return self.family == "alveo"

    # ---------------------------------------------------------------- files
    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["format_version"] = FORMAT_VERSION
        d["derived"] = {"frame_bytes": self.frame_bytes, "words_per_frame": self.words_per_frame,
                        "bytes_per_word": self.bytes_per_word, "out_bytes": self.out_bytes}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AccelConfig:
        known = set(cls.__dataclass_fields__)
        args = {k: v for k, v in d.items() if k in known}
        return cls(**args)

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> AccelConfig:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no accelerator description at '{path}' ({CONFIG_NAME} is written by the "
                                    "build's deploy step)")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ValueError(f"'{path}' is not a valid {CONFIG_NAME}: {exc}") from None

    @classmethod
    def find(cls, near: Path) -> tuple[AccelConfig, Path]:
        """The accel.json next to a bitfile (its folder or the folder above, as in the deploy
        package layout ``deploy/accel.json`` + ``deploy/bitfile/accel.bit``)."""
        near = Path(near)
        folder = near if near.is_dir() else near.parent
        for cand in (folder / CONFIG_NAME, folder.parent / CONFIG_NAME):
            if cand.exists():
                return cls.load(cand), cand
        raise FileNotFoundError(
            f"no {CONFIG_NAME} found next to '{near}' (looked in '{folder}' and '{folder.parent}'). Copy the "
            f"whole deploy package to the board, or pass config=AccelConfig.load(path).")

    @classmethod
    def from_build(cls, build_dir: Path) -> AccelConfig:
        """Describe the accelerator of a build folder from its report and RTL manifest.

        Needs ``report.json`` and ``rtl/rtl_manifest.json`` (written by the rtl step); without
        the manifest, falls back to ``dataflow.onnx`` and the ports of ``rtl/accel_top.v``
        (host only: that needs onnx and hw_build)."""
        build_dir = Path(build_dir)
        if not build_dir.is_dir():
            raise FileNotFoundError(f"build folder '{build_dir}' does not exist")
        report_path = build_dir / "report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        board_name = str(report.get("board", ""))
        family = _family(board_name)
        manifest_path = build_dir / "rtl" / "rtl_manifest.json"
        if manifest_path.exists():
            man = json.loads(manifest_path.read_text())
            h, w, c = (int(v) for v in man["frame_shape"])
            dma_bits, out_bits = int(man["dma_bits"]), int(man["out_bits"])
            label_bits = int(man.get("label_bits", out_bits))
            cycles = man.get("cycles_per_frame")
        else:
            (c, h, w), dma_bits, out_bits, label_bits = _from_sources(build_dir)
            cycles = None
        est = report.get("estimate") or {}
        rtlsim = report.get("rtlsim") or {}
        cycles = rtlsim.get("ii_cycles") or est.get("cycles_per_frame") or cycles
        bitfile = None
        for name in ("accel.xclbin", "accel.bit"):
            if (build_dir / "vivado" / "bitfile" / name).exists():
                bitfile = f"bitfile/{name}"
        return cls(
            model=str(report.get("model", build_dir.name)), board=board_name or "unknown", family=family,
            part=str(report.get("part", "")), clock_mhz=float(report.get("clock_mhz", 100.0)),
            input_shape=(c, h, w), dma_bits=dma_bits, out_bits=out_bits, label_bits=label_bits,
            max_transfer_bytes=(2**31 - 1) if family == "alveo" else 2**DEFAULT_LENGTH_BITS - 1,
            cycles_per_frame=int(round(float(cycles))) if cycles else None, bitfile=bitfile,
            classes=_classes(report), extra=_extra(report),
        )


def _family(board: str) -> str:
    try:  # on a host with the compiler, the board table knows
        from hw_build.boards import BOARDS

        if board in BOARDS:
            return BOARDS[board].family
    except ImportError:
        pass
    if board.startswith("u") and board[1:].isdigit():
        return "alveo"
    if board in ("ultra96", "zcu104", "kv260", "zcu102"):
        return "zynqmp"
    return "zynq7"


def _extra(report: dict) -> dict:
    """Facts for the user (not needed to run): trained weights or not, expected rates."""
    extra = {"trained": report.get("trained"), "weights": report.get("weights"),
             "estimate_fps": (report.get("estimate") or {}).get("fps"),
             "rtlsim_fps": (report.get("rtlsim") or {}).get("fps")}
    return {k: v for k, v in extra.items() if v is not None}


def _classes(report: dict) -> list[str] | None:
    dataset = (report.get("accuracy") or {}).get("dataset") or str(report.get("verify_source", "")).split(" ")[0]
    if dataset in ("mnist", "digits"):
        return [str(i) for i in range(10)]
    if dataset == "cifar10":
        return ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    return None


def _from_sources(build_dir: Path) -> tuple[tuple[int, int, int], int, int, int]:
    """Host-only fallback: input shape from dataflow.onnx (NHWC), widths from accel_top.v."""
    dataflow = build_dir / "dataflow.onnx"
    top = build_dir / "rtl" / "accel_top.v"
    if not dataflow.exists() or not top.exists():
        raise FileNotFoundError(
            f"'{build_dir}' has no RTL description (rtl/rtl_manifest.json, or dataflow.onnx with rtl/accel_top.v): "
            "run the build through the rtl step first.")
    import onnx

    from hw_build.vivado.ports import read_top_ports

    graph = onnx.load(str(dataflow)).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    _, h, w, c = dims
    ports = read_top_ports(build_dir / "rtl")
    return (c, h, w), ports.s_axis.width, ports.m_axis.width, ports.m_axis.width
