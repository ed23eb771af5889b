"""Verilog text of module instances and stream wires, in the library's port conventions:

- clock ``clk``, synchronous active-low reset ``rst_n``;
- one streamed input: ``s_axis_tdata/tvalid/tready``; several: ``s0_axis_*``, ``s1_axis_*``...
- one output: ``m_axis_*``; several: packed ``m_axis_*`` vectors, output i in slice i.

Stream wires are named by a prefix: ``<prefix>_tdata``, ``<prefix>_tvalid``, ``<prefix>_tready``.
"""

from __future__ import annotations

from typing import Any


def format_param(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(int(value))


def stream_connections(inputs: list[str], outputs: list[str]) -> list[str]:
    """Port connections of a module's input and output streams to the wires ``inputs``/``outputs``."""
    conns = []
    for i, w in enumerate(inputs):
        port = "s_axis" if len(inputs) == 1 else f"s{i}_axis"
        conns += [f".{port}_tdata({w}_tdata)", f".{port}_tvalid({w}_tvalid)", f".{port}_tready({w}_tready)"]
    if len(outputs) == 1:
        w = outputs[0]
        conns += [f".m_axis_tdata({w}_tdata)", f".m_axis_tvalid({w}_tvalid)", f".m_axis_tready({w}_tready)"]
    elif outputs:
        rev = outputs[::-1]  # output i is slice i: the concatenation lists the last first
        for sig in ("tdata", "tvalid", "tready"):
            conns.append(f".m_axis_{sig}({{{', '.join(f'{w}_{sig}' for w in rev)}}})")
    return conns


def instance(module: str, name: str, params: dict[str, Any], clk: str, rst: str,
             connections: list[str]) -> str:
    """Text of one module instance with the clock, reset and ``connections`` (``.port(expr)``)."""
    lines = [f"    {module} #("]
    width = max((len(k) for k in params), default=0)
    lines.append(",\n".join(f"        .{k:<{width}} ({format_param(v)})" for k, v in params.items()))
    lines.append(f"    ) {name} (")
    lines.append("        " + ",\n        ".join([f".clk({clk})", f".rst_n({rst})", *connections]))
    lines.append("    );")
    return "\n".join(lines)


def stream_instance(module: str, name: str, params: dict[str, Any], clk: str, rst: str,
                    inputs: list[str], outputs: list[str]) -> str:
    """An instance whose ports are only the clock, the reset and its streams."""
    return instance(module, name, params, clk, rst, stream_connections(inputs, outputs))


def stream_wires(prefix: str, width: int) -> str:
    vec = f"[{width - 1}:0] "
    pad = " " * len(vec)
    return (f"    wire {vec}{prefix}_tdata;\n"
            f"    wire {pad}{prefix}_tvalid;\n"
            f"    wire {pad}{prefix}_tready;")


def stream_assign(dst: str, src: str) -> str:
    """Wires ``dst`` driven by the stream ``src`` (data and valid forward, ready back)."""
    return (f"    assign {dst}_tdata  = {src}_tdata;\n"
            f"    assign {dst}_tvalid = {src}_tvalid;\n"
            f"    assign {src}_tready = {dst}_tready;")
