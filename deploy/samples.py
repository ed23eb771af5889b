"""Test images for the notebooks and the validation script, wherever they can be found:
the deploy package's ``samples.npz`` (on a board), the dataset's test split through
``quant_models.data`` (on a host with the compiler), or the build's verification images."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLES_NAME = "samples.npz"


@dataclass
class Samples:
    images: np.ndarray          # uint8 (N, C, H, W)
    labels: np.ndarray | None   # int64 (N,)
    label_kind: str | None      # "dataset" (true labels) or "reference" (the model's own top-1)
    source: str


def to_pixels(x: np.ndarray) -> np.ndarray:
    """Model-domain float images (pixel/255) -> the raw uint8 pixels the accelerator takes."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def dataset_of(build_dir: Path) -> str | None:
    """The dataset a build's model was made for, from its report (None if unknown)."""
    report_path = Path(build_dir) / "report.json"
    if not report_path.exists():
        return None
    report = json.loads(report_path.read_text())
    acc = report.get("accuracy") or {}
    if acc.get("dataset"):
        return str(acc["dataset"])
    source = str(report.get("verify_source", ""))
    for name in ("mnist", "digits", "cifar10"):
        if source.startswith(name):
            return name
    return None


def dataset_test_split(dataset: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 NCHW images, int64 labels) of a dataset's test split (needs quant_models)."""
    from quant_models import data

    x, y = data.load(dataset, "test")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return to_pixels(x), np.asarray(y, dtype=np.int64)


def load_samples(where: str | Path, n: int | None = None) -> Samples:
    """Up to ``n`` test images from a deploy folder or a build folder."""
    where = Path(where)
    for cand in (where / SAMPLES_NAME, where / "deploy" / SAMPLES_NAME):
        if cand.exists():
            with np.load(cand) as z:
                images = z["images"][:n]
                labels = z["labels"][:n] if "labels" in z.files else None
                kind = str(z["label_kind"]) if "label_kind" in z.files else None
                source = str(z["source"]) if "source" in z.files else str(cand)
            return Samples(images, labels, kind, source)
    dataset = dataset_of(where)
    if dataset is not None:
        try:
            images, labels = dataset_test_split(dataset, n)
            return Samples(images, labels, "dataset", f"{dataset} test split")
        except Exception:  # no quant_models here, or the dataset is not available (CIFAR-10)
            pass
    inputs = where / "verify" / "inputs.npy"
    if inputs.exists():
        images = np.load(inputs)[:n]
        ref = where / "verify" / "reference.npy"
        labels = np.load(ref)[:n] if ref.exists() else None
        return Samples(images, labels, "reference" if labels is not None else None,
                       "the build's verification images")
    raise FileNotFoundError(f"no test images found in '{where}' ({SAMPLES_NAME}, a known dataset, or "
                            "verify/inputs.npy)")


def save_samples(path: Path, samples: Samples) -> Path:
    arrays: dict[str, np.ndarray] = {"images": samples.images, "source": np.array(samples.source)}
    if samples.labels is not None:
        arrays["labels"] = samples.labels
        arrays["label_kind"] = np.array(samples.label_kind or "")
    np.savez_compressed(path, **arrays)
    return Path(path)
