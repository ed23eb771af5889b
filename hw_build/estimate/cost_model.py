"""Analytical resource model of the RTL library, calibrated against Yosys ``synth_xilinx``.

Every library module's LUT and FF count is a sum of *features*, counts derived from the
module's Verilog parameters that follow its structure (ROM bits, XNOR-popcount terms,
accumulator bits, ...), each times a coefficient fitted to Yosys results
(benchmarks/calibrate_cost_model.py, data in benchmarks/cost_model/synth_data.json,
coefficients in coefficients.json next to this file). Block RAMs and DSPs are counted by
rule, the way Yosys maps memories and multipliers, not fitted.

The model takes the same ``(module, parameters)`` pair the code generator instantiates, so
it applies unchanged to layers (``HWLayer.rtl_params``), FIFOs and width converters, and
can be checked instance by instance against a synthesized design.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path

from hw_build.rtl.memory import bram36, rom_logic_luts

COEFFICIENTS = Path(__file__).with_name("coefficients.json")
#: resource keys of a module estimate
KEYS = ("lut", "ff", "bram36", "dsp")
#: how closely the model reproduces its calibration data (tests/test_estimate.py holds it to
#: this): per module, the summed LUTs and BRAM36 of all calibration instances within
#: ``module_total``; the mean per-instance LUT error (instances of >= 100 LUT) within
#: ``instance_mean``
TOLERANCE = {"module_total": 0.15, "instance_mean": 0.25}

# --------------------------------------------------------------------------- memories
def clog2(n: int) -> int:
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


def lutram_luts(depth: int, width: int) -> float:
    """LUT sites of a simple-dual-port LUT RAM: RAM32M holds 6 bits x 32, RAM64M 3 bits x 64
    (4 sites each); deeper memories stack RAM64Ms behind a read multiplexer."""
    if depth <= 32:
        return 4.0 * math.ceil(width / 6)
    if depth <= 64:
        return 4.0 * math.ceil(width / 3)
    banks = math.ceil(depth / 64)
    return 4.0 * banks * math.ceil(width / 3) + width * math.ceil((banks - 1) / 3)


#: memories of at most this many bits stay in flip-flops (Yosys's logic mapping is cheaper)
FF_MEMORY_BITS = 64


#: a RAM deeper than 64 words goes to block RAM above this many bits (Yosys's choice in the
#: calibration data: 560 x 4 and 512 x 1 stay in LUT RAM, 2306 x 1 and 128 x 24 do not)
LUTRAM_MAX_BITS = 2304
#: ... and, within that, only while at most this deep or this narrow (140 x 16, a sliding
#: window's line buffer in ftbnn_tiny, went to block RAM; 560 x 4 did not)
LUTRAM_MAX_DEEP_DEPTH = 128
LUTRAM_MAX_DEEP_WIDTH = 8


def ram_choice(depth: int, width: int) -> str:
    """Where Yosys puts a memory with a synchronous read port and no style attribute:
    "ff", "lutram" or "block"."""
    if depth * width <= FF_MEMORY_BITS or depth <= 2:
        return "ff"
    if depth <= 64 or (depth * width <= LUTRAM_MAX_BITS
                       and (depth <= LUTRAM_MAX_DEEP_DEPTH or width <= LUTRAM_MAX_DEEP_WIDTH)):
        return "lutram"
    return "block"


# --------------------------------------------------------------------------- features
Features = dict[str, float]
#: what a module record's ``resource_features()`` returns: LUT features, FF features, BRAM36, DSPs
ModuleFeatures = tuple[Features, Features, float, float]


def ram_features(depth: int, width: int, prefix: str, lut: Features, ff: Features) -> float:
    """Features of an auto-mapped memory with a registered read; returns its block RAMs."""
    where = ram_choice(depth, width)
    if where == "ff":
        ff[f"{prefix}_ff_bits"] = ff.get(f"{prefix}_ff_bits", 0) + depth * width
        lut[f"{prefix}_ff_bits"] = lut.get(f"{prefix}_ff_bits", 0) + depth * width
        return 0.0
    if where == "lutram":
        lut[f"{prefix}_lutram"] = lut.get(f"{prefix}_lutram", 0) + lutram_luts(depth, width)
        ff[f"{prefix}_lutram_q"] = ff.get(f"{prefix}_lutram_q", 0) + width
        return 0.0
    lut[f"{prefix}_bram"] = lut.get(f"{prefix}_bram", 0) + 1
    return bram36(depth, width)


def rom_features(depth: int, width: int, style: str, prefix: str, lut: Features, ff: Features,
                 read_stages: int = 1) -> float:
    """Features of a ROM (rom.v, registered read, ``read_stages`` data registers) in the given
    style; returns its block RAMs."""
    if depth * width == 0:
        return 0.0
    if style == "block":
        lut[f"{prefix}_bram"] = lut.get(f"{prefix}_bram", 0) + 1
        return bram36(depth, width)
    if depth <= 1:
        return 0.0                      # constants: folded into the logic that reads them
    # functions of 1-2 address bits are often a wire; up to 64 words one LUT per bit; deeper
    # ROMs need multiplexer trees, which Yosys maps less tightly (each class its own coefficient)
    kind = "_small" if depth <= 4 else "" if depth <= 64 else "_deep"
    lut[f"{prefix}_rom{kind}"] = rom_logic_luts(depth, width)
    # the second stage of a deep ROM registers each 64-word bank, then the chosen word (rom.v)
    banks = -(-depth // 64) if read_stages > 1 and 64 < depth <= 256 else read_stages - 1
    ff[f"{prefix}_rom_q"] = width * (1 + banks)
    return 0.0






























# --------------------------------------------------------------------------- coefficients
@functools.lru_cache(maxsize=1)
def _stored() -> dict:
    if not COEFFICIENTS.exists():
        return {}
    return json.loads(COEFFICIENTS.read_text())


def coefficients() -> dict:
    """{module: {"lut": {feature: c}, "ff": {feature: c}}} as fitted (empty: all 1.0)."""
    return _stored().get("modules", {})


def save_coefficients(coeffs: dict, meta: dict | None = None) -> None:
    COEFFICIENTS.write_text(json.dumps({**(meta or {}), "modules": coeffs}, indent=1, sort_keys=True) + "\n")
    _stored.cache_clear()


@functools.lru_cache(maxsize=1)
def records() -> dict[str, type]:
    """Library module -> the typed parameter record of the op class that instantiates it."""
    from hw_build.ops import LAYER_CLASSES

    return {cls.rtl_module: cls.rtl_record for cls in LAYER_CLASSES.values()}


def record_of(module: str) -> type:
    """The typed parameter record of library ``module`` (it owns the module's features)."""
    if module not in records():
        raise KeyError(f"no layer class instantiates RTL module {module!r}: no cost model for it")
    return records()[module]


def features(module: str, params: dict) -> ModuleFeatures:
    """The cost-model features of one instance of ``module``: its record's ``resource_features()``."""
    return record_of(module)(**params).resource_features()


def module_resources(module: str, params: dict, coeffs: dict | None = None) -> dict[str, float]:
    """{lut, ff, bram36, dsp} of one instance of library ``module`` with ``params`` (every
    parameter of the module's record, no defaults: a missing one is an error, not a guess)."""
    from hw_build.ops.base import check_rtl_record

    lut_f, ff_f, bram, dsp = features(module, check_rtl_record(record_of(module), params, f"cost model of {module}"))
    c = (coeffs if coeffs is not None else coefficients()).get(module, {})
    lut = sum(v * c.get("lut", {}).get(k, 1.0) for k, v in lut_f.items())
    ff = sum(v * c.get("ff", {}).get(k, 1.0) for k, v in ff_f.items())
    return {"lut": round(lut, 1), "ff": round(ff, 1), "bram36": bram, "dsp": dsp}


# --------------------------------------------------------------------------- fitting
def fit(rows: list[dict], log: Callable[[str], None] = print, prior_weight: float = 0.05) -> dict:
    """Coefficients per module and resource minimising the squared *relative* error over
    ``rows`` (each {module, params, lut, ff}), non-negative, gently pulled towards 1.0 (the
    structural count) so features the data barely exercises keep a sane value."""
    import numpy as np
    from scipy.optimize import least_squares, lsq_linear

    out: dict = {}
    for module in sorted({r["module"] for r in rows}):
        mod_rows = [r for r in rows if r["module"] == module]
        out[module] = {}
        for res, idx in (("lut", 0), ("ff", 1)):
            feats = [features(module, r["params"])[idx] for r in mod_rows]
            names = sorted({k for f in feats for k in f})
            if not names:
                continue
            a = np.array([[f.get(n, 0.0) for n in names] for f in feats])
            y = np.array([float(r[res]) for r in mod_rows])
            # relative error, but instances below the median weigh less (as if halfway to it): a 30 %
            # miss on a 60-LUT instance matters less than a 10 % miss on a 3,000-LUT one
            scale = 1.0 / np.maximum(y, np.sqrt(np.maximum(y, 20.0) * max(20.0, float(np.median(y)))))
            a_w = a * scale[:, None]
            y_w = y * scale
            # the pull towards 1.0 is on each feature's share of the result, not on the raw
            # coefficient: a constant term (feature value 1) may settle at 150 LUT without
            # penalty, a feature that is half of every instance may not drift far
            share = np.maximum(np.abs(a_w).mean(axis=0), 1e-3)
            reg = np.sqrt(prior_weight) * np.diag(share)
            a_all = np.vstack([a_w, reg])
            y_all = np.concatenate([y_w, np.sqrt(prior_weight) * share])
            start = lsq_linear(a_all, y_all, bounds=(0.0, np.inf)).x
            # robust to outliers: an instance whose memory contents collapse in synthesis (all
            # channels with the same threshold: 2 LUTs where random contents need 500) must
            # not drag a coefficient for everyone else
            sol = least_squares(lambda c, a=a_all, y=y_all: a @ c - y, start, jac=lambda c, a=a_all: a,
                                bounds=(0.0, np.inf), loss="soft_l1", f_scale=0.25)
            out[module][res] = {n: round(float(v), 4) for n, v in zip(names, sol.x)}
            pred = a @ sol.x
            rel = np.abs(pred - y) / np.maximum(y, 1.0)
            log(f"{module:24s} {res:4s} n={len(y):3d}  mean |err| {100 * rel.mean():5.1f}%  "
                f"max {100 * rel.max():6.1f}%  total est/Yosys {pred.sum() / max(y.sum(), 1):.3f}")
    return out
