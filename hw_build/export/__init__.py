"""Export: a Brevitas module (zoo name) or a QONNX file -> the QONNX model of the build."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import onnx
from qonnx.core.modelwrapper import ModelWrapper

from hw_build.errors import BuildError


def export_module(module, input_shape: tuple[int, ...], path: Path) -> ModelWrapper:
    """Brevitas nn.Module -> QONNX file (brevitas.export.export_qonnx), quietly."""
    import torch
    from brevitas.export import export_qonnx

    module.eval()
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        export_qonnx(module, torch.rand(*input_shape), str(path))
    return ModelWrapper(str(path))


def load_onnx(path: str | os.PathLike) -> ModelWrapper:
    """Read a user's QONNX file with a clear error when it is not one."""
    p = Path(path)
    if not p.is_file():
        raise BuildError(f"model file '{p}' does not exist. Pass a zoo name (python build.py "
                         "--list-models) or the path of a QONNX .onnx file.")
    try:
        proto = onnx.load(str(p))
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx raises several types for a broken file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BuildError(f"'{p}' is not a valid ONNX model ({first}). Export the Brevitas model with "
                         "brevitas.export.export_qonnx and pass that file.") from None
    init_names = {i.name for i in proto.graph.initializer}
    if not [i for i in proto.graph.input if i.name not in init_names] or not proto.graph.output:
        raise BuildError(f"'{p}' has no graph input or output.")
    return ModelWrapper(proto)
