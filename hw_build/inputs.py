"""Verification inputs (uint8 images) and the reference scores they get."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from hw_build.errors import BuildError

log = logging.getLogger("hw_build")


def model_input_shape(model: ModelWrapper) -> list[int]:
    inp = [i for i in model.graph.input if model.get_initializer(i.name) is None][0]
    return list(model.get_tensor_shape(inp.name))


def read_verify_input(path: Path) -> np.ndarray:
    """The array of a --verify-input .npy file, refused when it cannot be verification images
    whatever the model: not one numeric array, no images, or values that are not finite."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BuildError(f"cannot read --verify-input '{path}' as a .npy array ({first}). Save one float array "
                         "with numpy.save(path, x).") from None
    if not isinstance(x, np.ndarray):
        raise BuildError(f"--verify-input '{path}' is an .npz archive of {len(x.files)} arrays; save one array "
                         "with numpy.save(path, x) (not numpy.savez).")
    if x.dtype.kind not in "biuf":
        raise BuildError(f"--verify-input '{path}' holds {x.dtype} values; give float pixel/255 values in [0, 1].")
    if x.ndim == 0 or x.size == 0:
        raise BuildError(f"--verify-input '{path}' has shape {list(x.shape)}: no images. Give at least one image "
                         "shaped like the model input (N, C, H, W).")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise BuildError(f"--verify-input '{path}' holds {bad} NaN or infinite values; give finite pixel/255 "
                         "values in [0, 1].")
    return x


def _from_file(path: Path, shape: list[int]) -> np.ndarray:
    x = read_verify_input(path)
    if x.ndim == len(shape) - 1:
        x = x[None]
    if list(x.shape[1:]) != list(shape[1:]):
        raise BuildError(f"--verify-input '{path}' has shape {list(x.shape)}; the model takes "
                         f"[N, {', '.join(map(str, shape[1:]))}] (float pixel/255, NCHW).")
    if not np.issubdtype(x.dtype, np.floating):
        raise BuildError(f"--verify-input '{path}' holds {x.dtype} values; give float pixel/255 "
                         "values in [0, 1] (the model's own input domain).")
    if x.min() < -1e-6 or x.max() > 1 + 1e-6:
        raise BuildError(f"--verify-input '{path}' has values in [{x.min():.3g}, {x.max():.3g}]; "
                         "image models take pixel/255 in [0, 1].")
    pixels = np.clip(np.rint(x * 255.0), 0, 255)
    off_grid = np.abs(x * 255.0 - pixels).max()
    if off_grid > 0.01:
        log.warning("--verify-input values are not multiples of 1/255 (off by up to %.3f pixel "
                    "levels): they are rounded to uint8 pixels, as the accelerator sees them.", off_grid)
    return pixels.astype(np.uint8)


def verify_images(opts, module, model: ModelWrapper) -> tuple[np.ndarray, str]:
    """uint8 NCHW images for verification and where they come from."""
    shape = model_input_shape(model)
    n = int(opts.verify_images)  # checked >= 1 with the other options
    if opts.verify_input is not None:
        x = _from_file(Path(opts.verify_input), shape)
        return x, f"file {opts.verify_input}"
    dataset = getattr(module, "dataset", None) if module is not None else None
    if dataset in ("mnist", "digits"):
        from quant_models import data

        x, _ = data.load(dataset, "test")
        if list(x.shape[1:]) == list(shape[1:]):
            return np.clip(np.rint(x[:n] * 255.0), 0, 255).astype(np.uint8), f"{dataset} test split"
    if dataset == "cifar10":
        from quant_models import data

        try:
            x, _ = data.load("cifar10", "test")
            return np.clip(np.rint(x[:n] * 255.0), 0, 255).astype(np.uint8), "cifar10 test split"
        except data.DatasetNotFoundError as exc:  # no local CIFAR-10 folder: fall back to random images
            log.info("CIFAR-10 not available (%s); using seeded random images", type(exc).__name__)
        except data.UnsafeDatasetError as exc:
            raise BuildError(str(exc)) from None
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=[n] + list(shape[1:]), dtype=np.uint8), "seeded random images (seed 0)"


def reference_scores(module, model: ModelWrapper, images: np.ndarray) -> np.ndarray:
    """Class scores of the reference: the PyTorch module when there is one, otherwise the
    QONNX graph executed by qonnx (bit-exact to PyTorch per the toolchain checks)."""
    x = images.astype(np.float32) / np.float32(255.0)
    if module is not None:
        import torch

        with torch.no_grad():
            out = module(torch.from_numpy(x)).detach().numpy()
        return out.reshape(out.shape[0], -1)
    from qonnx.util.cleanup import cleanup_model

    from hw_build.execute import execute_graph
    from hw_build.export.validate import execution_error

    try:
        clean = cleanup_model(ModelWrapper(model.model.SerializeToString()))
        out = execute_graph(clean, x)[clean.graph.output[0].name]
    except BuildError:
        raise
    except Exception as exc:  # onnx, onnxruntime and qonnx raise their own types for a broken graph
        raise execution_error(ModelWrapper(model.model.SerializeToString()), x, exc, "the reference scores") from None
    # non-finite scores come from a quantizer scale, which streamline names with the fix
    return out.reshape(out.shape[0], -1)


def accuracy_images(opts, module) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The labelled test images the accuracy run uses, as uint8 NCHW, with their labels and
    the dataset's name; None when there is nothing to measure.

    ``opts.accuracy_images``: None (default) measures the whole test split for trained zoo
    models whose dataset is available here; 0 turns it off; N > 0 measures the first N test
    images even for untrained weights (then the numbers only show that hardware and model agree).
    """
    wanted = getattr(opts, "accuracy_images", None)
    if wanted == 0 or module is None or opts.verify_input is not None:
        return None
    if wanted is None and not getattr(module, "trained", False):
        return None
    dataset = getattr(module, "dataset", None)
    if dataset not in ("mnist", "digits", "cifar10"):
        return None
    from quant_models import data

    try:
        x, y = data.load(dataset, "test")
    except data.UnsafeDatasetError as exc:
        raise BuildError(str(exc)) from None
    except data.DatasetNotFoundError as exc:  # no local CIFAR-10 folder: say so, measure nothing
        log.info("accuracy: the %s test split is not available here (%s); report.json accuracy stays null",
                 dataset, exc)
        return None
    if wanted:
        x, y = x[:wanted], y[:wanted]
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8), y.astype(np.int64), dataset
