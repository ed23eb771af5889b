"""Export: a Brevitas module (zoo name) or a QONNX file -> the QONNX model of the build."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import onnx
import onnx.numpy_helper
from qonnx.core.modelwrapper import ModelWrapper

from hw_build.errors import BuildError


def export_module(module, input_shape: tuple[int, ...], path: Path) -> ModelWrapper:
    """Brevitas nn.Module -> QONNX file (brevitas.export.export_qonnx), quietly."""
    import torch
    from brevitas.export import export_qonnx

    module.eval()
    sink = io.StringIO()
    # torch.onnx logs through its own handlers (bound to the real stderr before any redirect),
    # e.g. "torchvision is not installed. Skipping torchvision::nms": silence them for the export
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            export_qonnx(module, torch.rand(*input_shape), str(path))
    finally:
        onnx_logger.setLevel(level)
    return ModelWrapper(str(path))


#: metadata key under which load_onnx keeps the batch the user's graph declared
MODEL_BATCH_KEY = "hw_build.model_batch"


def load_onnx(path: str | os.PathLike) -> ModelWrapper:
    """Read and check a user's QONNX file (:func:`validate.check_graph`) before anything runs it.

    The accelerator streams frames one at a time, so a declared batch > 1 or a dynamic batch is
    built as batch 1; the declared batch is kept in the metadata (the export step reports it)."""
    from hw_build.export.validate import check_graph, check_header

    p = Path(path)
    if p.is_dir():
        raise BuildError(f"model path '{p}' is a folder, not an ONNX file. Pass the path of the .onnx file "
                         "inside it, or a zoo name (python build.py --list-models).")
    if not p.is_file():
        raise BuildError(f"model file '{p}' does not exist. Pass a zoo name (python build.py "
                         "--list-models) or the path of a QONNX .onnx file.")
    try:
        proto = onnx.load(str(p))
    except Exception as exc:  # onnx raises several types for a broken file
        raise _not_onnx(p, exc) from None
    check_header(proto, str(p))
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise _not_onnx(p, exc) from None
    try:
        facts = check_graph(proto, str(p))
    except BuildError:
        raise
    except Exception as exc:  # a graph odd enough to trip onnx/qonnx helpers inside the checks
        raise _not_onnx(p, exc) from None
    if facts["batch"] != 1:
        _set_batch_one(proto)
    model = ModelWrapper(proto)
    model.set_metadata_prop(MODEL_BATCH_KEY, str(facts["batch"]))
    return model


def _not_onnx(p: Path, exc: BaseException) -> BuildError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return BuildError(f"'{p}' is not a valid ONNX model ({first[:300]}). Export the Brevitas model with "
                      "brevitas.export.export_qonnx and pass that file.")


def _set_batch_one(proto: onnx.ModelProto) -> None:
    """Batch 1 on the graph input and output and in constant Reshape shapes ([N, -1] -> [1, -1]);
    intermediate shapes are inferred again by tidy."""
    inits = {i.name: i for i in proto.graph.initializer}
    for vi in (*proto.graph.input, *proto.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if vi.name not in inits and len(dims):
            dims[0].Clear()
            dims[0].dim_value = 1
    del proto.graph.value_info[:]
    for node in proto.graph.node:
        if node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in inits:
            shape = onnx.numpy_helper.to_array(inits[node.input[1]]).copy()
            if shape.ndim == 1 and shape.size and (shape[0] > 1 or shape[0] == 0):  # 0: copy the batch
                shape[0] = 1
                inits[node.input[1]].CopyFrom(onnx.numpy_helper.from_array(shape, node.input[1]))
