"""hw_build: the compiler from Brevitas/QONNX binarized networks to dataflow accelerators.

``build(model, board, **options) -> report dict`` is what build.py calls.
"""

from __future__ import annotations

from pathlib import Path


def build(model: str, board: str, **options) -> dict:
    """Build ``model`` (zoo name or QONNX path) for ``board``; see build.py --help for options
    (``output``, ``clock_mhz``, ``target_fps``, ``folding``, ``until``, ``start``,
    ``verify_input``, ``verify_images``, ``synth``, ``accuracy_images``, ``accuracy_shards``,
    ``ray_address``, ``weights``, ``force``)."""
    from hw_build.errors import UsageError
    from hw_build.flow import Options
    from hw_build.flow import build as run

    for key in ("output", "folding", "verify_input", "weights"):
        if options.get(key) is not None and not str(options[key]).strip():
            option = "--" + key.replace("_", "-")
            raise UsageError(f"{option} is empty; give a path (or leave the option out).")
        if options.get(key) is not None:
            options[key] = Path(options[key])
    return run(Options(model=model, board=board, **options))
