"""The one place that knows the accelerator's stream format; both transports (the board's
DMA and the Verilator simulation) use it.

Input: uint8 images (N, C, H, W) -> NHWC bytes -> each frame padded with zeros to a whole
number of ``dma_bits``-wide words -> words, little-endian: pixel i of a word sits at bits
[8i+:8]. In memory that is simply the NHWC byte sequence with each frame's pad appended,
so a word array is a (words, bytes_per_word) uint8 array.

Output: one ``out_bits``-wide word per frame, little-endian, of which the low
``label_bits`` are the label.
"""

from __future__ import annotations

import numpy as np

from deploy.config import AccelConfig


def check_images(x: object, input_shape: tuple[int, int, int]) -> np.ndarray:
    """Validate images for the accelerator and return them as a C-contiguous uint8 array.

    ``x`` must be a C-contiguous array shaped (N, C, H, W) = (N, *input_shape) with N >= 1.
    uint8 is taken as is; other integer types must hold values in 0..255. Floats are refused
    (the accelerator takes raw pixels, not pixel/255): convert with
    ``np.rint(x * 255).astype(np.uint8)``. Every refusal is a TypeError or ValueError whose
    message names the problem and the fix.
    """
    c, h, w = (int(v) for v in input_shape)
    expected = f"(N, {c}, {h}, {w})"
    if not isinstance(x, np.ndarray):
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        else:
            raise TypeError(f"images must be a numpy array shaped {expected} of dtype uint8; got {type(x).__name__}")
    if x.ndim != 4 or tuple(x.shape[1:]) != (c, h, w):
        hint = ""
        if tuple(x.shape) == (c, h, w):
            hint = " For one image, pass x[None]."
        elif x.ndim == 4 and tuple(x.shape[1:]) == (h, w, c):
            hint = " These look like NHWC images: pass x.transpose(0, 3, 1, 2) (wrapped in np.ascontiguousarray)."
        raise ValueError(f"images must be shaped {expected} (N, C, H, W); got shape {tuple(x.shape)}.{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"the batch is empty (shape {tuple(x.shape)}): pass at least one image shaped {expected}")
    if not x.flags.c_contiguous:
        raise ValueError("images must be a C-contiguous array (this one is a strided view, e.g. a slice with a step "
                         "or a transpose): pass np.ascontiguousarray(x)")
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
        hint = ""
        if np.issubdtype(x.dtype, np.floating):
            hint = (" If these are pixel/255 values in [0, 1], convert them with "
                    "np.rint(x * 255).astype(np.uint8).")
        raise TypeError(f"images must have dtype uint8 (raw pixels 0..255); got {x.dtype}.{hint}")
    if x.size:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"pixel values must be in 0..255 for dtype {x.dtype} input; got values in [{lo}, {hi}]")
    return x.astype(np.uint8)


def pack_images(images: np.ndarray, cfg: AccelConfig) -> np.ndarray:
    """uint8 (N, C, H, W) -> words: uint8 array (N * words_per_frame, bytes_per_word)."""
    n = images.shape[0]
    nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1)).reshape(n, cfg.frame_bytes)
    frames = np.zeros((n, cfg.padded_frame_bytes), dtype=np.uint8)
    frames[:, :cfg.frame_bytes] = nhwc
    return frames.reshape(n * cfg.words_per_frame, cfg.bytes_per_word)


def unpack_images(words: np.ndarray, cfg: AccelConfig) -> np.ndarray:
    """Inverse of :func:`pack_images` (for tests and debugging)."""
    frames = np.asarray(words, dtype=np.uint8).reshape(-1, cfg.padded_frame_bytes)[:, :cfg.frame_bytes]
    c, h, w = cfg.input_shape
    return frames.reshape(-1, h, w, c).transpose(0, 3, 1, 2).copy()


def words_to_ints(words: np.ndarray) -> list[int]:
    """Packed words (rows of bytes) as Python ints, byte 0 in bits [7:0]."""
    words = np.asarray(words, dtype=np.uint8)
    if words.shape[1] == 8:
        return words.view("<u8").reshape(-1).tolist()
    if words.shape[1] == 4:
        return words.view("<u4").reshape(-1).tolist()
    return [int.from_bytes(row.tobytes(), "little") for row in words]


def ints_to_words(values: list[int], width_bytes: int) -> np.ndarray:
    """Python ints -> rows of little-endian bytes (the memory image a DMA would write)."""
    out = np.zeros((len(values), width_bytes), dtype=np.uint8)
    for i, v in enumerate(values):
        out[i] = np.frombuffer(int(v).to_bytes(width_bytes, "little"), dtype=np.uint8)
    return out


def unpack_labels(raw: np.ndarray, cfg: AccelConfig) -> np.ndarray:
    """Output words (N, out_bytes) uint8 -> labels int64 (N,)."""
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1, cfg.out_bytes)
    value = np.zeros(raw.shape[0], dtype=np.int64)
    for b in range(min(cfg.out_bytes, 8)):
        value |= raw[:, b].astype(np.int64) << (8 * b)
    return value & ((1 << cfg.label_bits) - 1)


def label_buffer_shape(frames: int, cfg: AccelConfig) -> tuple[int, int]:
    return (frames, cfg.out_bytes)
