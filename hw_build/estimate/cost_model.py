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


def ram_choice(depth: int, width: int) -> str:
    """Where Yosys puts a memory with a synchronous read port and no style attribute:
    "ff", "lutram" or "block"."""
    if depth * width <= FF_MEMORY_BITS or depth <= 2:
        return "ff"
    if depth <= 64 or depth * width <= LUTRAM_MAX_BITS:
        return "lutram"
    return "block"


# --------------------------------------------------------------------------- features
Features = dict[str, float]


def _ram(depth: int, width: int, prefix: str, lut: Features, ff: Features) -> float:
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


def _rom(depth: int, width: int, style: str, prefix: str, lut: Features, ff: Features) -> float:
    """Features of a ROM (rom.v, registered read) in the given style; returns its block RAMs."""
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
    ff[f"{prefix}_rom_q"] = width
    return 0.0


def mvtu_features(p: dict) -> tuple[Features, Features, float, float]:
    mw, mh, pe, simd = p["MW"], p["MH"], p["PE"], p["SIMD"]
    binary = p["BINARY"]
    in_bits, w_bits, acc = p["IN_BITS"], p["W_BITS"], p["ACC_BITS"]
    nth, out_bits = p["NUM_THRESH"], p["OUT_BITS"]
    sf, nf = max(1, mw // simd), max(1, mh // pe)
    lut: Features = {"const": 1.0}
    ff: Features = {"const": 1.0, "counters": clog2(sf) + clog2(nf) + clog2(sf * nf)}
    lut["counters"] = ff["counters"]
    bram = _rom(sf * nf, pe * simd * w_bits, p["WEIGHT_STYLE"], "w", lut, ff)
    if binary and "w_rom" in lut and sf * nf <= 32:
        # Yosys moves the ROM's output register to its address: a weight bit is then a
        # function of at most 5 address bits, which shares its LUT6 with the XNOR
        lut["w_rom_xnor"] = lut.pop("w_rom")
    xword = simd * in_bits
    if nf > 1:
        bram += _ram(2 * sf, xword, "xbuf", lut, ff)
    ff["x_word"] = xword
    terms = pe * simd
    dsp = 0.0
    if binary:
        # XNOR with the weight feeds the popcount; a constant weight (one fold) is a wire
        lut["popcount_const_w" if sf * nf == 1 else "popcount"] = terms
        lut["tree_root"] = pe * acc
    else:
        pw = in_bits + w_bits + 2
        if p["W_BIPOLAR"] or p["IN_BIPOLAR"]:
            lut["negate"] = terms * pw
        elif min(w_bits, in_bits) <= 3:
            lut["shift_add"] = terms * pw * min(w_bits, in_bits)
        else:
            dsp = float(terms)          # a real multiplier: Yosys infers a DSP48 per product
        lut["int_tree"] = terms * pw
        ff["products"] = terms * pw
    lut["acc"] = pe * acc
    ff["acc"] = 2 * pe * acc
    if nth:
        bram += _rom(nf, pe * nth * acc, p["THRESH_STYLE"], "th", lut, ff)
        lut["compare" if nf > 1 else "compare_const"] = pe * nth * acc
        if nth > 1:
            lut["level_count"] = pe * nth
    ff["out"] = pe * out_bits
    return lut, ff, bram, dsp


def sliding_window_features(p: dict) -> tuple[Features, Features, float, float]:
    w, c, k, stride = p["IFM_W"], p["C"], p["K"], p["STRIDE"]
    simd, bits = p["SIMD"], p["BITS"]
    nrows = p["NROWS"]
    h, pad_t, pad_l = p["IFM_H"], p["PAD_T"], p["PAD_L"]
    cf = max(1, c // simd)
    depth = nrows * w * cf
    word = simd * bits
    aw = max(1, clog2(depth))
    # the reader's row/column arithmetic is signed, RW bits wide (sliding_window.v): about a
    # dozen adders and comparators of that width
    rw = max(clog2(h + w + pad_t + pad_l + 2 * k + 2 * stride + nrows + 1) + 2, aw + 1)
    lut: Features = {"const": 1.0, "addr": aw, "pad_mux": word, "row_arith": rw,
                     # rd_addr = slot * ROW_BEATS + col * CF + cf: constant multipliers, one adder
                     # per set bit of the constant
                     "addr_mult": aw * (bin(w * cf).count("1") + bin(cf).count("1")),
                     # the next slot is a remainder modulo NROWS: free for a power of two
                     "slot_mod": 0 if nrows & (nrows - 1) == 0 else rw * rw,
                     # output-position counters and their end-of-range compares
                     "out_counters": clog2(p["OFM_H"]) + clog2(p["OFM_W"]) + clog2(cf) + 2 * clog2(k),
                     "stride_arith": rw if stride > 1 else 0}
    ff: Features = {"const": 1.0, "addr": aw, "word": word, "row_arith": rw}
    bram = _ram(depth, word, "buf", lut, ff)
    return lut, ff, bram, 0.0


def thresholding_features(p: dict) -> tuple[Features, Features, float, float]:
    c, pe, in_bits = p["C"], p["PE"], p["IN_BITS"]
    nth, t_bits, out_bits = p["NUM_THRESH"], p["T_BITS"], p["OUT_BITS"]
    folds = max(1, c // pe)
    style = p["THRESH_STYLE"]
    lut: Features = {"const": 1.0, "fold": clog2(folds)}
    ff: Features = {"const": 1.0, "fold": clog2(folds), "out": pe * out_bits}
    bram = 0.0
    if p["SEARCH"]:
        levels = clog2(nth + 1)
        for k in range(levels):
            # each lane keeps only its own slice of its stage ROM
            for _ in range(pe):
                bram += _rom(folds << k, t_bits, style, "stage", lut, ff)
        lut["search_compare"] = pe * levels * t_bits
        ff["pipeline"] = levels * pe * (in_bits + levels) + levels * clog2(folds)
    else:
        bram += _rom(folds, pe * nth * t_bits, style, "th", lut, ff)
        lut["compare" if folds > 1 else "compare_const"] = pe * nth * t_bits
        if nth > 1:
            lut["level_count"] = pe * nth
        ff["x"] = pe * in_bits
    return lut, ff, bram, 0.0


def pool_features(p: dict) -> tuple[Features, Features, float, float]:
    w, c, k, pe = p["IFM_W"], p["C"], p["K"], p["PE"]
    out_bits = p["OUT_BITS"]
    words = max(1, w // k) * max(1, c // pe)
    word = pe * out_bits
    # the partial-result line has an asynchronous read port: LUT RAM (or FFs when tiny)
    lut: Features = {"const": 1.0, "counters": clog2(words) + clog2(w) + clog2(p["IFM_H"]),
                     "combine": word}
    ff: Features = {"const": 1.0, "counters": lut["counters"], "out": word}
    if words * word <= FF_MEMORY_BITS or words <= 2:
        lut["line_ff"] = words * word
        ff["line_ff"] = words * word
    else:
        lut["line_lutram"] = lutram_luts(words, word) / 2     # async read: half the sites of SDP
    return lut, ff, 0.0, 0.0


def add_streams_features(p: dict) -> tuple[Features, Features, float, float]:
    pe, out_bits = p["PE"], p["OUT_BITS"]
    return {"const": 1.0, "adder": pe * out_bits}, {"const": 1.0, "out": pe * out_bits}, 0.0, 0.0


def duplicate_streams_features(p: dict) -> tuple[Features, Features, float, float]:
    n = p["NUM_OUTPUTS"]
    return {"const": 1.0, "outputs": n}, {"const": 1.0, "outputs": n}, 0.0, 0.0


def channel_split_features(p: dict) -> tuple[Features, Features, float, float]:
    # a demultiplexer: data is wiring; beat/group counters and one valid gate per output
    n, beats = p["NUM_OUTPUTS"], p["GROUP_BEATS"]
    counters = clog2(beats) + clog2(n)
    return {"const": 1.0, "counters": counters, "outputs": n}, {"const": 1.0, "counters": counters}, 0.0, 0.0


def channel_concat_features(p: dict) -> tuple[Features, Features, float, float]:
    # a 2:1 multiplexer of WIDTH bits and a beat counter
    counter = clog2(p["BEATS0"] + p["BEATS1"])
    return ({"const": 1.0, "mux": p["WIDTH"], "counter": counter},
            {"const": 1.0, "counter": counter}, 0.0, 0.0)


def global_acc_pool_features(p: dict) -> tuple[Features, Features, float, float]:
    c, pe, out_bits = p["C"], p["PE"], p["OUT_BITS"]
    words = max(1, c // pe)
    word = pe * out_bits
    lut: Features = {"const": 1.0, "adder": word, "counters": clog2(words) + clog2(p["PIXELS"])}
    ff: Features = {"const": 1.0, "out": word, "counters": lut["counters"]}
    if words * word <= FF_MEMORY_BITS or words <= 2:
        lut["acc_ff"] = words * word
        ff["acc_ff"] = words * word
    else:
        lut["acc_lutram"] = lutram_luts(words, word) / 2
    return lut, ff, 0.0, 0.0


def label_select_features(p: dict) -> tuple[Features, Features, float, float]:
    c, pe = p["C"], p["PE"]
    score = p["SCORE_BITS"]
    folds = max(1, c // pe)
    lut: Features = {"const": 1.0, "compare": pe * score, "counters": clog2(folds)}
    ff: Features = {"const": 1.0, "scores": pe * score, "x": pe * p["IN_BITS"]}
    dsp = 0.0
    if p["AFFINE"]:
        a_bits, in_bits = p["A_BITS"], p["IN_BITS"]
        _rom(folds, pe * (a_bits + p["B_BITS"]), "distributed", "ab", lut, ff)
        if min(a_bits, in_bits) > 3 and max(a_bits, in_bits) > 8:
            dsp = float(pe)
            lut["affine_add"] = pe * score
        else:
            lut["affine_mul"] = pe * score * min(a_bits, in_bits)
    return lut, ff, 0.0, dsp


def fifo_features(p: dict) -> tuple[Features, Features, float, float]:
    width, depth = p["WIDTH"], p["DEPTH"]
    if depth == 2:
        # two registers, the head fed by a 3:1 multiplexer (fifo.v g_regs)
        return {"const": 1.0, "regs2_mux": width}, {"const": 1.0, "regs2": 2 * width}, 0.0, 0.0
    aw = clog2(depth)
    lut: Features = {"const": 1.0, "ptr": aw, "bypass_mux": width}
    ff: Features = {"const": 1.0, "ptr": aw, "regs": 2 * width}
    bram = _ram(depth, width, "mem", lut, ff)
    ff.pop("mem_lutram_q", None)       # the read register is the FIFO's own rd_data
    return lut, ff, bram, 0.0


def stream_width_converter_features(p: dict) -> tuple[Features, Features, float, float]:
    i, o, frame = p["IN_BITS"], p["OUT_BITS"], p["FRAME_BITS"]
    keep = i if frame == 0 or frame % i == 0 else frame % i
    padded = keep != i
    beats = clog2(-(-frame // i)) if frame else 0
    lut: Features = {"const": 1.0}
    ff: Features = {"const": 1.0, "beat": beats}
    lut["beat"] = beats
    lcm = i // math.gcd(i, o) * o
    if i == o and not padded:
        return {}, {}, 0.0, 0.0
    def mux(n: int) -> float:
        """LUT6 of an n:1 multiplexer (a tree of 4:1 LUTs)."""
        return (n - 1) / 3 if n > 1 else 0.0

    if i % o == 0 and (i != o or padded):               # downsizer: word register + slice mux
        lut["down_mux"] = o * mux(i // o)
        ff["down_reg"] = i + clog2(i // o)
    elif not padded and o % i == 0:                     # upsizer: one write enable per position
        lut["up_positions"] = o // i
        ff["up_reg"] = o + clog2(o // i)
    elif not padded and lcm <= 8 * max(i, o):           # up to the lcm, then down
        lut["up_positions"] = lcm // i
        ff["up_reg"] = lcm + clog2(lcm // i)
        lut["down_mux"] = o * mux(lcm // o)
        ff["down_reg"] = lcm + clog2(lcm // o)
    else:                                               # bit buffer with shifters
        unit = math.gcd(math.gcd(i, o), keep)
        buf = i + 2 * o
        lut["shift_buffer"] = buf * clog2(buf // unit + 1)
        ff["shift_buffer"] = buf
    return lut, ff, 0.0, 0.0


def frame_tlast_features(p: dict) -> tuple[Features, Features, float, float]:
    words, depth = p["WORDS_PER_FRAME"], p["DEPTH"]
    lut: Features = {"const": 1.0, "counter": clog2(words), "queue": depth}
    ff: Features = {"const": 1.0, "counter": clog2(words), "queue": depth}
    return lut, ff, 0.0, 0.0


FEATURES: dict[str, Callable[[dict], tuple[Features, Features, float, float]]] = {
    "mvtu": mvtu_features,
    "sliding_window": sliding_window_features,
    "thresholding": thresholding_features,
    "pool": pool_features,
    "add_streams": add_streams_features,
    "duplicate_streams": duplicate_streams_features,
    "channel_split": channel_split_features,
    "channel_concat": channel_concat_features,
    "global_acc_pool": global_acc_pool_features,
    "label_select": label_select_features,
    "fifo": fifo_features,
    "stream_width_converter": stream_width_converter_features,
    "frame_tlast": frame_tlast_features,
}


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


def module_resources(module: str, params: dict, coeffs: dict | None = None) -> dict[str, float]:
    """{lut, ff, bram36, dsp} of one instance of library ``module`` with ``params`` (every
    parameter of the module's record, no defaults: a missing one is an error, not a guess)."""
    from hw_build.ops.base import check_rtl_record

    if module not in FEATURES:
        raise KeyError(f"no cost model for RTL module {module!r}; add one to {__name__}")
    check_rtl_record(records()[module], params, f"cost model of {module}")
    lut_f, ff_f, bram, dsp = FEATURES[module](params)
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
            feats = [FEATURES[module](r["params"])[idx] for r in mod_rows]
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
