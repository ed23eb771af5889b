"""Generate the Verilog of a hardware-layer graph: one library module instance per layer,
stream width converters and FIFOs on the edges, and an AXI-Stream top (``accel_top``).

Everything layer-specific comes from the op class (``rtl_module``, ``rtl_params(model)``,
``rtl_memories(model)``, beat sizes) and its Verilog module; this file only knows the
port conventions of the library:

- clock ``clk``, synchronous active-low reset ``rst_n``;
- one streamed input: ``s_axis_tdata/tvalid/tready``; several: ``s0_axis_*``, ``s1_axis_*``...
- one output: ``m_axis_*``; several: packed ``m_axis_*`` vectors, output i in slice i.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from onnx import NodeProto
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from deploy.interface import label_stream_bits
from deploy.interface import words_per_frame as interface_words_per_frame
from hw_build.errors import BuildError
from hw_build.ops.base import DOMAIN, HWLayer
from hw_build.rtl import library_files, module_closure
from hw_build.rtl.encoding import verilog_name

TOP_NAME = "accel_top"
MANIFEST = "rtl_manifest.json"
#: modules every top uses besides the layers
TOP_SUPPORT_MODULES = ("fifo", "stream_width_converter", "frame_tlast")
#: frames whose tlast flags the top can hold (frames in flight between input and label)
TLAST_QUEUE_DEPTH = 64
DEFAULT_FIFO_DEPTH = 2


# --------------------------------------------------------------------------- graph analysis
@dataclass
class Endpoint:
    """One end of a stream edge: a node's port, or the graph input/output (node None)."""

    node: NodeProto | None
    port: int
    width: int        # stream width in bits at this end
    elems: int        # elements per beat at this end


@dataclass
class Edge:
    tensor: str
    producer: Endpoint
    consumer: Endpoint
    beats: int        # beats per frame at the consumer end
    dtype: DataType


@dataclass
class Graph:
    nodes: list[NodeProto]
    ops: dict[str, HWLayer]
    edges: list[Edge]
    input_tensor: str
    output_tensor: str
    frame_shape: list[int]
    streamed_inputs: dict[str, list[str]] = field(default_factory=dict)


def streamed_inputs(model: ModelWrapper, node: NodeProto) -> list[str]:
    """Inputs of a node that are streams (not initializers), in port order."""
    return [t for t in node.input if t and model.get_initializer(t) is None]


def tensor_dtype(model: ModelWrapper, tensor: str, fallback: DataType | None = None) -> DataType:
    dt = model.get_tensor_datatype(tensor)
    if dt is None or not dt.is_integer():
        if fallback is None:
            raise BuildError(f"tensor {tensor!r} has no integer datatype; run datatype inference first")
        return fallback
    return dt


def hw_nodes(model: ModelWrapper) -> list[NodeProto]:
    """The graph's nodes in topological order; every node must be a hardware layer."""
    nodes = list(model.graph.node)
    for n in nodes:
        if n.domain != DOMAIN:
            raise BuildError(
                f"node {n.name!r} ({n.op_type}, domain {n.domain or 'onnx'}) is not a hardware layer; "
                f"the RTL step needs a graph of {DOMAIN} nodes only (run the lower step)"
            )
    produced = {t for n in nodes for t in n.output}
    ready = {t for t in (i.name for i in model.graph.input)} | {i.name for i in model.graph.initializer}
    ordered: list[NodeProto] = []
    pending = nodes[:]
    while pending:
        for n in pending:
            if all((not t) or t in ready or t not in produced for t in n.input):
                ordered.append(n)
                ready.update(n.output)
                pending.remove(n)
                break
        else:
            raise BuildError("the hardware-layer graph has a cycle")
    return ordered


def analyse(model: ModelWrapper) -> Graph:
    nodes = hw_nodes(model)
    ops = {n.name: getCustomOp(n) for n in nodes}
    if len({n.name for n in nodes}) != len(nodes) or any(not n.name for n in nodes):
        raise BuildError("hardware-layer nodes need unique, non-empty names (run GiveUniqueNodeNames)")
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise BuildError("the accelerator needs exactly one graph input (pixels) and one output (labels)")
    in_name = model.graph.input[0].name
    out_name = model.graph.output[0].name
    shape = [int(d) for d in model.get_tensor_shape(in_name)]
    if len(shape) != 4:
        raise BuildError(f"graph input {in_name!r} has shape {shape}; expected [N, H, W, C] (NHWC)")
    if tensor_dtype(model, in_name, DataType["UINT8"]) != DataType["UINT8"]:
        raise BuildError(f"graph input {in_name!r} must be UINT8 (raw pixels), not "
                         f"{model.get_tensor_datatype(in_name).name}")

    producers: dict[str, Endpoint] = {}
    for n in nodes:
        op = ops[n.name]
        for j, t in enumerate(n.output):
            dt = tensor_dtype(model, t, op.out_dtype())
            producers[t] = Endpoint(n, j, op.out_beat_elems() * dt.bitwidth(), op.out_beat_elems())
    edges: list[Edge] = []
    consumed: dict[str, str] = {}
    streamed: dict[str, list[str]] = {}
    for n in nodes:
        op = ops[n.name]
        streamed[n.name] = ins = streamed_inputs(model, n)
        for i, t in enumerate(ins):
            if t in consumed:
                raise BuildError(
                    f"tensor {t!r} feeds both {consumed[t]!r} and {n.name!r}; a stream has one "
                    "consumer, insert a DuplicateStreams layer"
                )
            consumed[t] = n.name
            dt = tensor_dtype(model, t, op.in_dtype() if i == 0 else None)
            elems = op.in_beat_elems(i)
            width = elems * dt.bitwidth()
            if t == in_name:
                if dt.bitwidth() != 8:
                    raise BuildError(f"{n.name}: the pixel input must be consumed as 8-bit elements")
                prod = Endpoint(None, 0, 0, 0)
            elif t in producers:
                prod = producers[t]
            else:
                raise BuildError(f"{n.name}: input {t!r} is neither produced by a layer nor the graph input")
            beats = int(np.prod(model.get_tensor_shape(t)[1:])) // elems
            edges.append(Edge(t, prod, Endpoint(n, i, width, elems), beats, dt))
    for t, prod in producers.items():
        if t not in consumed and t != out_name:
            raise BuildError(f"output {t!r} of layer {prod.node.name!r} is not used by any layer")
    if out_name not in producers:
        raise BuildError(f"graph output {out_name!r} is not produced by a hardware layer")
    out_node = producers[out_name].node
    if out_node.op_type != "LabelSelect":
        raise BuildError(f"the graph output must come from a LabelSelect layer, not {out_node.op_type}")
    names = [verilog_name(t) for t in {e.tensor for e in edges} | {out_name}]
    if len(set(names)) != len(names):
        raise BuildError("tensor names collide after conversion to Verilog identifiers; rename them")
    return Graph(nodes, ops, edges, in_name, out_name, shape[1:], streamed)


@dataclass
class FifoPlace:
    """Where an edge's FIFO sits relative to its width converter, and its beat geometry."""

    before_converter: bool   # on the producer side (the converter drains the FIFO)
    width: int               # bits per FIFO entry
    beats: int               # beats per frame through the FIFO


def fifo_place(e: Edge, dma_bits: int = 64) -> FifoPlace:
    """The FIFO of an edge goes on the *wider* side of its width converter.

    A converter moves one beat per cycle on its narrow side, so on its wide side it takes
    (or gives) a beat only every few cycles. A layer that writes wide beats in bursts (a
    pool emits one beat per input beat on the last row and column of each window, nothing
    in between) straight into a downsizer is throttled to the downsizer's drain rate
    during every burst and runs slower than its cycles() (ftbnn_tiny: II 7,644 instead of
    7,056); behind a FIFO it writes the burst at full speed and the downsizer drains the
    FIFO while the layer works on. Likewise a wide consumer reads bursts from a FIFO after
    an upsizer. The wide side also needs fewer, wider entries, which maps better to RAM."""
    prod_width = dma_bits if e.producer.node is None else e.producer.width
    if prod_width > e.consumer.width:
        frame_bits = e.beats * e.consumer.width
        if e.producer.node is None:
            return FifoPlace(True, prod_width, -(-frame_bits // prod_width))
        return FifoPlace(True, prod_width, frame_bits // prod_width)
    return FifoPlace(False, e.consumer.width, e.beats)


def default_fifo_depths(graph: Graph, dma_bits: int = 64) -> dict[str, int]:
    """Static FIFO depths: 2 on plain edges (registered handshakes, full throughput); a whole
    frame on both inputs of a residual join, which can never deadlock (one path may have to
    absorb a whole frame of skew before the other delivers). ``size_fifos`` in
    :mod:`hw_build.rtl.sim` measures and shrinks them."""
    depths = {}
    for e in graph.edges:
        join = e.consumer.node is not None and len(graph.streamed_inputs[e.consumer.node.name]) > 1
        depths[e.tensor] = fifo_place(e, dma_bits).beats + 2 if join else DEFAULT_FIFO_DEPTH
    return depths


def frame_fifo_depths(graph: Graph, dma_bits: int = 64) -> dict[str, int]:
    """A whole frame (plus the two entries of a plain edge) on every edge: no schedule can
    deadlock or be slowed by FIFO space."""
    return {e.tensor: fifo_place(e, dma_bits).beats + 2 for e in graph.edges}


# --------------------------------------------------------------------------- Verilog text
def format_param(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(int(value))


def instance(module: str, name: str, params: dict[str, Any], clk: str, rst: str,
             inputs: list[str], outputs: list[str]) -> str:
    """Text of one module instance; ``inputs``/``outputs`` are stream wire prefixes."""
    lines = [f"    {module} #("]
    width = max((len(k) for k in params), default=0)
    plist = [f"        .{k:<{width}} ({format_param(v)})" for k, v in params.items()]
    lines.append(",\n".join(plist))
    lines.append(f"    ) {name} (")
    conns = [f".clk({clk})", f".rst_n({rst})"]
    for i, w in enumerate(inputs):
        port = "s_axis" if len(inputs) == 1 else f"s{i}_axis"
        conns += [f".{port}_tdata({w}_tdata)", f".{port}_tvalid({w}_tvalid)",
                  f".{port}_tready({w}_tready)"]
    if len(outputs) == 1:
        w = outputs[0]
        conns += [f".m_axis_tdata({w}_tdata)", f".m_axis_tvalid({w}_tvalid)",
                  f".m_axis_tready({w}_tready)"]
    else:
        rev = outputs[::-1]  # output i is slice i: the concatenation lists the last first
        for sig in ("tdata", "tvalid", "tready"):
            conns.append(f".m_axis_{sig}({{{', '.join(f'{w}_{sig}' for w in rev)}}})")
    lines.append("        " + ",\n        ".join(conns))
    lines.append("    );")
    return "\n".join(lines)


def stream_wires(prefix: str, width: int) -> str:
    vec = f"[{width - 1}:0] "
    pad = " " * len(vec)
    return (f"    wire {vec}{prefix}_tdata;\n"
            f"    wire {pad}{prefix}_tvalid;\n"
            f"    wire {pad}{prefix}_tready;")


def write_memories(model: ModelWrapper, ops: dict[str, HWLayer], out_dir: Path) -> list[str]:
    files = []
    for op in ops.values():
        for fname, lines in op.rtl_memories(model).items():
            (out_dir / fname).write_text("\n".join(lines) + "\n")
            files.append(fname)
    return files


def copy_library(modules: set[str], out_dir: Path) -> list[str]:
    lib = library_files()
    needed = module_closure(modules)
    missing = [m for m in needed if m not in lib]
    if missing:
        raise BuildError(f"no Verilog module {missing[0]!r} in the RTL library ({sorted(lib)})")
    for m in needed:
        shutil.copyfile(lib[m], out_dir / f"{m}.v")
    return [f"{m}.v" for m in needed]


# --------------------------------------------------------------------------- top
def generate(model: ModelWrapper, out_dir: Path, dma_bits: int = 64,
             fifo_depths: dict[str, int] | None = None) -> dict:
    """Write accel_top.v, the library modules it uses and the memory files into ``out_dir``.

    ``fifo_depths`` maps tensor names to FIFO depths in beats on the FIFO's side of the edge
    (:func:`fifo_place`; 0: no FIFO); tensors not in it get :func:`default_fifo_depths`.
    Returns the manifest (also written as rtl_manifest.json) that the simulator and the
    later steps read.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    g = analyse(model)
    depths = default_fifo_depths(g, dma_bits)
    unknown = set(fifo_depths or {}) - set(depths)
    if unknown:
        raise BuildError(f"fifo_depths names tensors that are not layer inputs: {sorted(unknown)}")
    depths.update({k: int(v) for k, v in (fifo_depths or {}).items()})
    if dma_bits % 8:
        raise BuildError(f"dma_bits={dma_bits} is not a whole number of bytes")

    frame_elems = int(np.prod(g.frame_shape))
    frame_bits = frame_elems * 8
    label_op = g.ops[next(n.name for n in g.nodes if g.output_tensor in n.output)]
    label_bits = label_op.out_stream_bits()
    # the stream format of the interface record (issue 11 item 4: one formula, deploy.interface)
    words_per_frame = interface_words_per_frame(frame_elems, dma_bits)
    out_bits = label_stream_bits(label_bits)

    # wire declarations grouped by tensor, in graph order
    decls: dict[str, list[str]] = {g.input_tensor: []}
    for n in g.nodes:
        for t in n.output:
            decls[t] = []
    body: list[str] = []        # edges: converters and FIFOs
    layer_body: list[str] = []  # layer instances
    fifos: dict[str, dict] = {}
    consumer_wire: dict[tuple[str, int], str] = {}
    in_name = verilog_name(g.input_tensor)
    consumers = {e.tensor: e for e in g.edges}

    for n in g.nodes:
        op = g.ops[n.name]
        for j, t in enumerate(n.output):
            dt = tensor_dtype(model, t, op.out_dtype())
            w = op.out_beat_elems() * dt.bitwidth()
            to = consumers[t].consumer.node.name if t in consumers else "m_axis"
            decls[t].append(f"    // {t}: {n.name} (output {j}) -> {to}, {dt.name}, "
                            f"{op.out_beat_elems()} per beat")
            decls[t].append(stream_wires(verilog_name(t), w))

    for e in g.edges:
        t = verilog_name(e.tensor)
        node = e.consumer.node
        place = fifo_place(e, dma_bits)
        depth = depths[e.tensor]
        # the chain of an edge: [FIFO] -> [width converter] -> [FIFO], the FIFO (if any) on
        # the wider side of the converter (see fifo_place)
        src = f"{t}_dma" if e.producer.node is None else t
        fifo_at = "before" if place.before_converter else "after"
        for stage in ("before", "convert", "after"):
            if stage == fifo_at and depth > 0:
                decls[e.tensor].append(stream_wires(f"{t}_q", place.width))
                body.append(instance("fifo", f"{t}_fifo", {"WIDTH": place.width, "DEPTH": depth},
                                     "ap_clk", "ap_rst_n", [src], [f"{t}_q"]))
                fifos[e.tensor] = {"instance": f"{t}_fifo", "depth": depth, "width": place.width,
                                   "before_converter": place.before_converter}
                src = f"{t}_q"
            elif stage == "convert" and e.producer.node is None:
                # DMA words -> pixel beats of the first layer, dropping the pad of each frame
                decls[e.tensor].append(f"    // {e.tensor}: s_axis -> {node.name}, {e.consumer.elems} pixel(s) "
                                       "per beat")
                decls[e.tensor].append(stream_wires(f"{t}_px", e.consumer.width))
                body.append(f"    // {words_per_frame} words of {dma_bits} bits per {frame_elems}-byte frame")
                body.append(instance("stream_width_converter", f"{t}_width",
                                     {"IN_BITS": dma_bits, "OUT_BITS": e.consumer.width,
                                      "FRAME_BITS": frame_bits},
                                     "ap_clk", "ap_rst_n", [src], [f"{t}_px"]))
                src = f"{t}_px"
            elif stage == "convert" and e.producer.width != e.consumer.width:
                decls[e.tensor].append(stream_wires(f"{t}_wc", e.consumer.width))
                body.append(f"    // {e.tensor}: {e.producer.elems} -> {e.consumer.elems} elements per beat")
                body.append(instance("stream_width_converter", f"{t}_width",
                                     {"IN_BITS": e.producer.width, "OUT_BITS": e.consumer.width,
                                      "FRAME_BITS": 0},
                                     "ap_clk", "ap_rst_n", [src], [f"{t}_wc"]))
                src = f"{t}_wc"
        consumer_wire[(node.name, e.consumer.port)] = src

    layers = []
    modules = set(TOP_SUPPORT_MODULES)
    for n in g.nodes:
        op = g.ops[n.name]
        inst = verilog_name(n.name)
        ins = [consumer_wire[(n.name, i)] for i in range(len(g.streamed_inputs[n.name]))]
        outs = [verilog_name(t) for t in n.output]
        params = op.rtl_params(model)
        layer_body.append(f"    // {op.describe()}, {op.cycles()} cycles per frame")
        layer_body.append(instance(op.rtl_module, inst, params, "ap_clk", "ap_rst_n", ins, outs))
        modules.add(op.rtl_module)
        layers.append({"name": n.name, "op": n.op_type, "module": op.rtl_module, "instance": inst,
                       "cycles": int(op.cycles()), "params": params})

    label = verilog_name(g.output_tensor)
    pad = out_bits - label_bits
    label_data = f"{{{{{pad}{{1'b0}}}}, {label}_tdata}}" if pad else f"{label}_tdata"
    text = f"""// Generated by hw_build.rtl.codegen: do not edit (regenerate from the model instead).
//
// Streaming dataflow accelerator: {len(g.nodes)} layers.
// s_axis: {dma_bits}-bit words of raw uint8 pixels, NHWC order, pixel i of a word in bits
//         [8*i +: 8]; each frame of {frame_elems} pixels ({'x'.join(map(str, g.frame_shape))}) is padded to
//         {words_per_frame} whole words.
// m_axis: one {out_bits}-bit label per frame ({label_bits} significant bits); m_axis_tlast is the
//         s_axis_tlast of that frame's last input word.
`default_nettype none

module {TOP_NAME} (
    input  wire                ap_clk,
    input  wire                ap_rst_n,
    input  wire [{dma_bits - 1}:0]         s_axis_tdata,
    input  wire                s_axis_tvalid,
    output wire                s_axis_tready,
    input  wire                s_axis_tlast,
    output wire [{out_bits - 1}:0]          m_axis_tdata,
    output wire                m_axis_tvalid,
    input  wire                m_axis_tready,
    output wire                m_axis_tlast
);
    // ---------------------------------------------------------------- frame boundaries
    wire tlast_room;
    wire {in_name}_dma_tready;
    wire [{dma_bits - 1}:0] {in_name}_dma_tdata = s_axis_tdata;
    wire {in_name}_dma_tvalid = s_axis_tvalid && tlast_room;
    assign s_axis_tready = {in_name}_dma_tready && tlast_room;

    frame_tlast #(
        .WORDS_PER_FRAME ({words_per_frame}),
        .DEPTH           ({TLAST_QUEUE_DEPTH})
    ) tlast_queue (
        .clk(ap_clk), .rst_n(ap_rst_n),
        .in_fire(s_axis_tvalid && s_axis_tready), .in_tlast(s_axis_tlast), .in_ready(tlast_room),
        .out_fire(m_axis_tvalid && m_axis_tready), .out_tlast(m_axis_tlast)
    );

    // ---------------------------------------------------------------- streams (by tensor)
{(chr(10) + chr(10)).join(chr(10).join(d) for d in decls.values() if d)}

    // ---------------------------------------------------------------- edges: width converters, FIFOs
{chr(10).join(body)}

    // ---------------------------------------------------------------- layers
{chr(10).join(layer_body)}

    // ---------------------------------------------------------------- labels
    assign m_axis_tdata  = {label_data};
    assign m_axis_tvalid = {label}_tvalid;
    assign {label}_tready = m_axis_tready;
endmodule

`default_nettype wire
"""
    (out_dir / f"{TOP_NAME}.v").write_text(text)
    files = copy_library(modules, out_dir) + [f"{TOP_NAME}.v"]
    memories = write_memories(model, g.ops, out_dir)
    manifest = {
        "top": TOP_NAME,
        "files": files,
        "memories": memories,
        "dma_bits": dma_bits,
        "out_bits": out_bits,
        "label_bits": label_bits,
        "frame_shape": g.frame_shape,
        "frame_bytes": frame_elems,
        "words_per_frame": words_per_frame,
        "input_tensor": g.input_tensor,
        "output_tensor": g.output_tensor,
        "fifos": fifos,
        "layers": layers,
        "cycles_per_frame": max(lay["cycles"] for lay in layers),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def read_manifest(rtl_dir: Path) -> dict:
    path = Path(rtl_dir) / MANIFEST
    if not path.exists():
        raise BuildError(f"{rtl_dir} has no {MANIFEST}; generate the RTL first")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- single layers
def generate_harness(cases: list[tuple[ModelWrapper, NodeProto]], out_dir: Path,
                     name: str = "harness") -> dict:
    """A simulation top exposing each layer's streams as its own ports (no FIFOs), for testing
    layers alone: case k's input i is port prefix ``c{k}_s{i}``, its output j ``c{k}_m{j}``.
    Several layers go into one harness so one Verilator build tests them all."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ports: list[dict] = []
    decls, body = [], []
    modules: set[str] = set()
    memories: list[str] = []
    seen: set[str] = set()
    for k, (model, node) in enumerate(cases):
        op = getCustomOp(node)
        inst = f"c{k}_{verilog_name(node.name)}"
        if node.name in seen:
            raise BuildError(f"harness cases need distinct node names ({node.name!r} twice)")
        seen.add(node.name)
        ins = []
        for i, t in enumerate(streamed_inputs(model, node)):
            dt = tensor_dtype(model, t, op.in_dtype() if i == 0 else None)
            ports.append({"name": f"c{k}_s{i}", "dir": "in", "width": op.in_beat_elems(i) * dt.bitwidth(),
                          "case": k, "index": i, "tensor": t})
            ins.append(f"c{k}_s{i}")
        outs = []
        for j, t in enumerate(node.output):
            dt = tensor_dtype(model, t, op.out_dtype())
            ports.append({"name": f"c{k}_m{j}", "dir": "out", "width": op.out_beat_elems() * dt.bitwidth(),
                          "case": k, "index": j, "tensor": t})
            outs.append(f"c{k}_m{j}")
        body.append(f"    // case {k}: {op.describe()}")
        body.append(instance(op.rtl_module, inst, op.rtl_params(model), "clk", "rst_n", ins, outs))
        modules.add(op.rtl_module)
        for fname, lines in op.rtl_memories(model).items():
            (out_dir / fname).write_text("\n".join(lines) + "\n")
            memories.append(fname)
    port_decls = ["    input  wire clk", "    input  wire rst_n"]
    for p in ports:
        w = p["width"]
        if p["dir"] == "in":
            port_decls += [f"    input  wire [{w - 1}:0] {p['name']}_tdata",
                           f"    input  wire {p['name']}_tvalid", f"    output wire {p['name']}_tready"]
        else:
            port_decls += [f"    output wire [{w - 1}:0] {p['name']}_tdata",
                           f"    output wire {p['name']}_tvalid", f"    input  wire {p['name']}_tready"]
    text = (
        "// Generated by hw_build.rtl.codegen.generate_harness: layers under test, streams as ports.\n"
        "`default_nettype none\n\n"
        f"module {name} (\n" + ",\n".join(port_decls) + "\n);\n"
        + "\n".join(decls) + "\n" + "\n".join(body) + "\nendmodule\n\n`default_nettype wire\n"
    )
    (out_dir / f"{name}.v").write_text(text)
    files = copy_library(modules, out_dir) + [f"{name}.v"]
    return {"top": name, "ports": ports, "files": files, "memories": memories}
