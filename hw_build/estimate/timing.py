"""Clock-rate estimate of a generated design from Yosys's per-instance logic depth.

**An estimate until Vivado runs.** No open place-and-route exists for these parts, so the
achievable clock is modelled from what synthesis does tell: for every instance, the
longest path through LUTs (Yosys ``ltp`` over LUT cells, the ``lut_levels`` synthesis
already records) and the longest carry chain (``ltp`` over CARRY4 cells, ``carry_chain``).

Delay model (one register-to-register path):

    t = t_clk_to_q + t_net          (t_clk_to_q of a block RAM where the instance has one)
        + lut_levels * (t_lut + t_net)
        + (carry_chain > 0) * (t_carry_entry + (carry_chain - 1) * t_carry_per_cell + t_net)
        + t_setup + t_clock_uncertainty
    fmax = 1000 / t   [MHz]

The longest LUT path and the longest carry chain of an instance are charged as if they
were in series on one path, which is pessimistic where they are not (it cannot be
worse than the real composition of the two). Every LUT level is charged one routing hop:
routing, not logic, dominates FPGA paths, and a hop's delay depends on placement, which
synthesis does not know. An instance with block RAM is charged the RAM's clock-to-out
(our ROMs and line buffers use the RAM's latch, not its optional output register) at the
start of its worst path, pessimistic again where that path starts at a flip-flop. What
the model cannot see: high-fanout nets (a pipeline enable driving thousands of
flip-flops), DSP clock-to-out, congestion. Treat the
figure as a screening number (about +-30 %) that says which instance to pipeline first.

Parameters are round figures of the order of the vendor data sheets' CLB switching
characteristics and common routing rules of thumb, not copied values:
- 7 series, speed grade -1 (xc7z020 of the PYNQ-Z1/Z2): Xilinx DS187 "Zynq-7000 SoC
  (Z-7007S, Z-7012S, Z-7014S, Z-7010, Z-7015, Z-7020) Data Sheet: DC and AC Switching
  Characteristics", CLB switching characteristics (flip-flop clock-to-out, LUT A-F to O,
  CARRY4 CIN to COUT, setup); about 0.45 ns per local routing hop.
- UltraScale+, speed grade -1 / -2 (Zynq UltraScale+ boards, Alveo U250/U280): Xilinx DS925
  "Zynq UltraScale+ MPSoC Data Sheet: DC and AC Switching Characteristics" and DS923
  "Virtex UltraScale+ FPGA Data Sheet" CLB tables; about 0.25-0.30 ns per hop. Synthesis
  maps for 7 series (CARRY4, 4 bits per cell); an UltraScale+ CARRY8 covers 8 bits, so a
  chain of n CARRY4 cells is charged as n/2 CARRY8 cells.
Vivado's timing report (the vivado step, where Vivado is installed) replaces all of this.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

#: LUT levels the generated RTL keeps every instance within (DESIGN.md, issue 13)
LUT_LEVEL_LIMIT = 8


@dataclass(frozen=True)
class DelayModel:
    """Per-element delays (ns) of one device family and speed grade."""

    name: str
    clk_to_q_ns: float
    bram_clk_to_q_ns: float      # block RAM clock to data out, no output register
    lut_ns: float
    net_ns: float
    carry_entry_ns: float        # a LUT output into the chain (S -> CO/O of the first cell)
    carry_per_cell_ns: float     # CIN -> COUT of each further cell of the family's carry primitive
    carry4_per_cell: float       # family carry cells per synthesized CARRY4 cell (CARRY8: 0.5)
    setup_ns: float
    clock_uncertainty_ns: float
    sources: str

    def path_ns(self, lut_levels: int, carry_chain: int, bram: bool = False) -> float:
        """Delay of the worst register-to-register path of an instance (see the module doc)."""
        start = self.bram_clk_to_q_ns if bram else self.clk_to_q_ns
        t = start + self.net_ns + lut_levels * (self.lut_ns + self.net_ns)
        if carry_chain > 0:
            cells = max(1, math.ceil(carry_chain * self.carry4_per_cell))
            t += self.carry_entry_ns + (cells - 1) * self.carry_per_cell_ns + self.net_ns
        return t + self.setup_ns + self.clock_uncertainty_ns

    def fmax_mhz(self, lut_levels: int, carry_chain: int, bram: bool = False) -> float:
        return 1000.0 / self.path_ns(lut_levels, carry_chain, bram)


_DS187 = "Xilinx DS187 (Zynq-7000 AC/DC switching characteristics), CLB tables; routing hop: rule of thumb"
_DS925 = ("Xilinx DS925 (Zynq UltraScale+) / DS923 (Virtex UltraScale+) CLB tables; routing hop: rule of "
          "thumb")

MODELS: dict[str, DelayModel] = {
    m.name: m
    for m in [
        DelayModel("7series-1", 0.46, 2.10, 0.12, 0.45, 0.50, 0.12, 1.0, 0.10, 0.20, _DS187),
        DelayModel("7series-2", 0.40, 1.85, 0.11, 0.40, 0.43, 0.10, 1.0, 0.08, 0.20, _DS187),
        DelayModel("ultrascale+-1", 0.11, 1.30, 0.06, 0.30, 0.30, 0.05, 0.5, 0.06, 0.12, _DS925),
        DelayModel("ultrascale+-2", 0.09, 1.10, 0.05, 0.26, 0.26, 0.04, 0.5, 0.05, 0.10, _DS925),
    ]
}


def model_for(part: str, family: str) -> DelayModel:
    """The delay model of a board's part: 7 series for Zynq-7000, UltraScale+ for Zynq MPSoC and
    Alveo; the speed grade from the part name (-1, -2, -2L, -2LV: low-voltage parts at their
    nominal voltage have the -2 figures; -3 takes -2's, a little pessimistic)."""
    m = re.search(r"-(\d)(?:L|LV|LE)?(?:-[a-z])?$", part)
    grade = int(m.group(1)) if m else 1
    kind = "7series" if family == "zynq7" else "ultrascale+"
    return MODELS[f"{kind}-{min(max(grade, 1), 2)}"]


def timing_block(synth: dict, part: str, family: str, clock_mhz: float) -> dict:
    """report.json ``timing`` from a synthesis result's instances: per instance LUT levels,
    carry chain and modelled Fmax, the slowest instance, and the design's Fmax estimate."""
    model = model_for(part, family)
    rows = []
    for inst in synth.get("instances", []):
        if "error" in inst:
            continue
        levels, carry = int(inst.get("lut_levels", 0)), int(inst.get("carry_chain", 0))
        bram = bool(inst.get("bram36", 0))
        rows.append({"instance": inst["instance"], "module": inst["module"], "layer": inst.get("layer"),
                     "lut_levels": levels, "carry_chain": carry, "block_ram": bram,
                     "path_ns": round(model.path_ns(levels, carry, bram), 3),
                     "fmax_mhz_estimate": round(model.fmax_mhz(levels, carry, bram), 1)})
    if not rows:
        return {"lut_levels_max": None, "carry_chain_max": None, "slowest_instance": None,
                "fmax_mhz_estimate": None, "model": asdict(model), "instances": [],
                "basis": "no synthesized instances"}
    slowest = max(rows, key=lambda r: (r["path_ns"], r["lut_levels"]))
    fmax = slowest["fmax_mhz_estimate"]
    block = {
        "lut_levels_max": max(r["lut_levels"] for r in rows),
        "lut_level_limit": LUT_LEVEL_LIMIT,
        "over_limit": [r["instance"] for r in rows if r["lut_levels"] > LUT_LEVEL_LIMIT],
        "carry_chain_max": max(r["carry_chain"] for r in rows),
        "slowest_instance": slowest["instance"],
        "fmax_mhz_estimate": fmax,
        "clock_mhz": clock_mhz,
        "clock_above_estimate": clock_mhz > fmax,
        "model": asdict(model),
        "basis": "estimate from Yosys LUT levels and carry chains until Vivado runs",
        "instances": rows,
    }
    if clock_mhz > fmax:
        what = f"layer {slowest['layer']}" if slowest["layer"] else f"module {slowest['module']}"
        block["warning"] = (
            f"--clock-mhz {clock_mhz:g} is above the estimated Fmax of {fmax:.0f} MHz: the slowest "
            f"instance is {slowest['instance']} ({what}: {slowest['lut_levels']} LUT levels, a carry chain "
            f"of {slowest['carry_chain']} CARRY4{', block RAM' if slowest['block_ram'] else ''}). This is an estimate ({model.name} delay model); "
            f"Vivado's timing report decides.")
    return block
