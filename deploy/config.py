"""Runtime description of one generated accelerator (``accel.json``): what the driver needs
to feed it and read it, and nothing that needs the compiler. Plain json + dataclasses, so
it loads on a PYNQ board with only numpy installed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deploy.interface import DMA_LENGTH_BITS, INTERFACE_NAME, AcceleratorInterface

CONFIG_NAME = "accel.json"
FORMAT_VERSION = 1


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
    max_transfer_bytes: int = 2**DMA_LENGTH_BITS - 1  # the board's driver takes the .hwh's
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
        # bitfile/accel.bit and bitfile/simulation/accel.bit lie one and two folders below it
        for cand in (folder / CONFIG_NAME, folder.parent / CONFIG_NAME, folder.parent.parent / CONFIG_NAME):
            if cand.exists():
                return cls.load(cand), cand
        raise FileNotFoundError(
            f"no {CONFIG_NAME} found next to '{near}' (looked in '{folder}' and the two folders above). Copy the "
            f"whole deploy package to the board, or pass config=AccelConfig.load(path).")

    @classmethod
    def from_build(cls, build_dir: Path) -> AccelConfig:
        """Describe the accelerator of a build folder: its interface record (``interface.json``,
        written by the rtl step) and, for names and rates, ``report.json``."""
        build_dir = Path(build_dir)
        if not build_dir.is_dir():
            raise FileNotFoundError(f"build folder '{build_dir}' does not exist")
        report_path = build_dir / "report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        board_name = str(report.get("board", ""))
        # the accelerator's outside: the interface record the rtl step wrote, nothing recomputed
        record = AcceleratorInterface.load(build_dir / INTERFACE_NAME)
        family = record.family or _family(board_name)
        c, h, w = record.input_shape
        dma_bits, out_bits, label_bits = record.in_bits, record.out_bits, record.label_bits
        cycles = record.cycles_per_frame
        est = report.get("estimate") or {}
        rtlsim = report.get("rtlsim") or {}
        cycles = rtlsim.get("ii_cycles") or est.get("cycles_per_frame") or cycles
        bitfile = None
        for name in ("accel.xclbin", "accel.bit"):
            if (build_dir / "vivado" / "bitfile" / name).exists():
                bitfile = f"bitfile/{name}"
        return cls(
            model=str(report.get("model", build_dir.name)), board=board_name or "unknown", family=family,
            part=str(report.get("part", "")), clock_mhz=record.clock_mhz,
            input_shape=(c, h, w), dma_bits=dma_bits, out_bits=out_bits, label_bits=label_bits,
            max_transfer_bytes=(2**31 - 1) if family == "alveo" else record.max_transfer_bytes,
            dma_name=record.dma_cell,
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
