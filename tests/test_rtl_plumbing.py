"""FIFOs and stream width converters under random back-pressure: nothing lost, nothing
duplicated, bits in order (frame padding dropped where asked), full throughput when free."""

from __future__ import annotations

import numpy as np
import pytest

from hw_build.rtl import sim
from tests import rtl_cases as T

# (module, params); converters cover every implementation branch
BLOCKS: list[tuple[str, dict[str, int]]] = [
    ("fifo", {"WIDTH": 8, "DEPTH": 1}),
    ("fifo", {"WIDTH": 13, "DEPTH": 2}),
    ("fifo", {"WIDTH": 70, "DEPTH": 5}),
    ("fifo", {"WIDTH": 4, "DEPTH": 64}),
    ("stream_width_converter", {"IN_BITS": 16, "OUT_BITS": 16, "FRAME_BITS": 0}),      # wires
    ("stream_width_converter", {"IN_BITS": 64, "OUT_BITS": 8, "FRAME_BITS": 0}),       # downsizer
    ("stream_width_converter", {"IN_BITS": 64, "OUT_BITS": 8, "FRAME_BITS": 7 * 7 * 8}),  # padded frames
    ("stream_width_converter", {"IN_BITS": 8, "OUT_BITS": 64, "FRAME_BITS": 0}),       # upsizer
    ("stream_width_converter", {"IN_BITS": 64, "OUT_BITS": 24, "FRAME_BITS": 8 * 8 * 3 * 8}),  # lcm
    ("stream_width_converter", {"IN_BITS": 24, "OUT_BITS": 64, "FRAME_BITS": 0}),      # lcm, input-bound
    ("stream_width_converter", {"IN_BITS": 64, "OUT_BITS": 24, "FRAME_BITS": 7 * 7 * 3 * 8}),  # shifter, padded
    ("stream_width_converter", {"IN_BITS": 64, "OUT_BITS": 36, "FRAME_BITS": 0}),      # shifter (big lcm)
    ("stream_width_converter", {"IN_BITS": 7, "OUT_BITS": 5, "FRAME_BITS": 0}),        # lcm of odd widths
]
FRAMES = 5


def _beats(rng: np.random.Generator, module: str, params: dict[str, int]) -> tuple[list[int], list[int]]:
    """Input beats and the beats the block must output."""
    if module == "fifo":
        w = params["WIDTH"]
        beats = [int.from_bytes(rng.bytes((w + 7) // 8), "little") & ((1 << w) - 1) for _ in range(200)]
        return beats, beats
    i, o, f = params["IN_BITS"], params["OUT_BITS"], params["FRAME_BITS"]
    if f:
        n_in = FRAMES * -(-f // i)
    else:
        n_in = 4 * o // np.gcd(i, o) * 3          # whole output beats
    beats = [int.from_bytes(rng.bytes((i + 7) // 8), "little") & ((1 << i) - 1) for _ in range(n_in)]
    return beats, T.repack_reference(beats, i, o, f)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    work = tmp_path_factory.mktemp("plumbing")
    info = T.plumbing_harness(BLOCKS, work)
    ports = [sim.Port(p["name"], p["dir"], p["width"]) for p in info["ports"]]
    binary = sim.build(info["top"], [work / f for f in info["files"]], ports, "clk", "rst_n")
    rng = np.random.default_rng(7)
    data = [_beats(rng, m, p) for m, p in BLOCKS]
    return binary, work, data


@pytest.mark.parametrize("stalls", [(0.3, 0.3, 1), (0.7, 0.2, 2), (0.2, 0.7, 3)])
def test_no_beat_lost_or_duplicated(harness, stalls):
    binary, work, data = harness
    stall_in, stall_out, seed = stalls
    res = sim.run(binary, work, [d[0] for d in data], [len(d[1]) for d in data], stall_in, stall_out, seed)
    assert res.status == "ok", res.status
    for k, ((module, params), (_, expected)) in enumerate(zip(BLOCKS, data)):
        got = [v for _, v, _ in res.outputs[k]]
        assert got == expected, f"block {k} {module} {params}: first difference at beat " \
            f"{next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))}" \
            f", {len(got)} beats for {len(expected)}"


def test_full_throughput_when_free(harness):
    binary, work, data = harness
    res = sim.run(binary, work, [d[0] for d in data], [len(d[1]) for d in data], 0.0, 0.0, 0)
    for k, ((module, params), (beats_in, beats_out)) in enumerate(zip(BLOCKS, data)):
        if module == "fifo" and params["DEPTH"] == 1:
            continue        # a one-entry FIFO alternates by design
        out_cycles = [c for c, _, _ in res.outputs[k]]
        in_cycles = res.input_cycles[k]
        span = max(out_cycles[-1], in_cycles[-1]) - min(out_cycles[0], in_cycles[0]) + 1
        busiest = max(len(beats_in), len(beats_out))
        # one beat per cycle on the busier side, plus the block's latency
        assert span <= busiest + 6, f"block {k} {module} {params}: {span} cycles for {busiest} beats"
