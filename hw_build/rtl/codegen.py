"""Generate the Verilog of a plumbed hardware-layer graph: one library module instance per
node (the layers, and the FIFOs, width converters and DMA adapters that
:mod:`hw_build.fold.plumbing` inserted) and an AXI-Stream top (``accel_top``).

Everything node-specific comes from the op class (``rtl_instance``, ``rtl_params(model)``,
``rtl_memories(model)``, stream widths) and its Verilog module; this file declares one
stream per tensor (port conventions: :mod:`hw_build.rtl.verilog`) and the top's ports.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from onnx import NodeProto
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from deploy.interface import label_stream_bits
from hw_build.errors import BuildError
from hw_build.ops.base import DOMAIN, HWLayer, tensor_dtype
from hw_build.rtl import library_files, library_includes, module_closure
from hw_build.rtl.encoding import verilog_name
from hw_build.rtl.verilog import stream_instance, stream_wires

TOP_NAME = "accel_top"
MANIFEST = "rtl_manifest.json"


# --------------------------------------------------------------------------- graph analysis
@dataclass
class Endpoint:
    """One end of a stream edge: a node's port, or the graph input/output (node None)."""

    node: NodeProto | None
    port: int
    width: int        # stream width in bits at this end


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
            producers[t] = Endpoint(n, j, op.out_width(model, j))
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
            if op.plumbing:
                beats = op.in_beats(i)
            else:
                beats = int(np.prod(model.get_tensor_shape(t)[1:])) // op.in_beat_elems(i)
            if t == in_name:
                prod = Endpoint(None, 0, 0)
            elif t in producers:
                prod = producers[t]
            else:
                raise BuildError(f"{n.name}: input {t!r} is neither produced by a layer nor the graph input")
            edges.append(Edge(t, prod, Endpoint(n, i, op.in_width(model, i)), beats, dt))
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
    # the modules `include these by name: the folder stays self-contained
    for inc in library_includes():
        shutil.copyfile(inc, out_dir / inc.name)
    return [inc.name for inc in library_includes()] + [f"{m}.v" for m in needed]


# --------------------------------------------------------------------------- top
@dataclass
class Outside:
    """The top's AXI-Stream ports, as the plumbed graph fixes them."""

    dma_bits: int          # s_axis word width (the TlastQueue's)
    words_per_frame: int   # DMA words per frame (each frame padded to whole words)
    label_bits: int        # significant bits of a label
    out_bits: int          # m_axis width: the label in whole bytes


def outside_stream(g: Graph) -> Outside:
    """The outside stream widths of a plumbed graph; refuses a graph without plumbing."""
    first = next(e.consumer.node for e in g.edges if e.tensor == g.input_tensor)
    if first.op_type != "TlastQueue":
        raise BuildError(f"the graph input {g.input_tensor!r} feeds {first.name!r} ({first.op_type}), not a "
                         "TlastQueue: the graph has no stream plumbing. Run hw_build.fold.plumbing."
                         "InsertStreamPlumbing (the fold step does) before generating the RTL")
    for e in g.edges:
        if e.producer.node is not None and e.producer.width != e.consumer.width:
            raise BuildError(f"tensor {e.tensor!r}: {e.producer.node.name} writes {e.producer.width}-bit beats, "
                             f"{e.consumer.node.name} reads {e.consumer.width}-bit beats; rerun "
                             "InsertStreamPlumbing after changing the folding")
    queue = g.ops[first.name]
    label_bits = g.ops[next(n.name for n in g.nodes if g.output_tensor in n.output)].out_stream_bits()
    # the label word's width: the interface record's formula (deploy.interface)
    return Outside(queue.in_width(), queue.in_beats(), label_bits, label_stream_bits(label_bits))


def generate(model: ModelWrapper, out_dir: Path) -> dict:
    """Write accel_top.v, the library modules it uses and the memory files into ``out_dir``.

    ``model`` is a plumbed graph (the fold step's output); the FIFO depths are its Fifo
    nodes' ``depth``. Returns the manifest (also written as rtl_manifest.json) that the
    simulator and the later steps read: every instance with its node, module and parameters.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    g = analyse(model)
    outside = outside_stream(g)
    frame_elems = int(np.prod(g.frame_shape))
    consumer = {e.tensor: e.consumer.node.name for e in g.edges}
    pixels = verilog_name(g.input_tensor)
    decls = [f"    // {g.input_tensor}: s_axis -> {consumer[g.input_tensor]}, {outside.dma_bits}-bit DMA words",
             f"    wire [{outside.dma_bits - 1}:0] {pixels}_tdata = s_axis_tdata;",
             f"    wire {pixels}_tvalid = s_axis_tvalid;",
             f"    wire {pixels}_tready;",
             f"    assign s_axis_tready = {pixels}_tready;"]
    body, instances = [], []
    for n in g.nodes:
        op = g.ops[n.name]
        for j, t in enumerate(n.output):
            dt = tensor_dtype(model, t, op.out_dtype())
            decls.append(f"\n    // {t}: {n.name} (output {j}) -> {consumer.get(t, 'm_axis')}, {dt.name}, "
                         f"{op.out_width(model, j)} bits per beat")
            decls.append(stream_wires(verilog_name(t), op.out_width(model, j)))
        inst = verilog_name(n.name)
        ins = [verilog_name(t) for t in g.streamed_inputs[n.name]]
        body.append(f"\n    // {op.describe()}, {op.cycles()} cycles per frame")
        body.append(op.rtl_instance(model, inst, ins, [verilog_name(t) for t in n.output], "ap_clk", "ap_rst_n"))
        if op.instantiated():
            instances.append({"name": n.name, "op": n.op_type, "module": op.rtl_module, "instance": inst,
                              "kind": op.resource_kind, "edge": op.get_nodeattr("edge") if op.plumbing else None,
                              "cycles": int(op.cycles()), "params": op.rtl_params(model),
                              "feeds": consumer.get(n.output[0])})
    label = verilog_name(g.output_tensor)
    pad = outside.out_bits - outside.label_bits
    label_data = f"{{{{{pad}{{1'b0}}}}, {label}_tdata}}" if pad else f"{label}_tdata"
    layers = [i for i in instances if i["kind"] == "layer"]
    text = f"""// Generated by hw_build.rtl.codegen: do not edit (regenerate from the model instead).
//
// Streaming dataflow accelerator: {len(layers)} layers.
// s_axis: {outside.dma_bits}-bit words of raw uint8 pixels, NHWC order, pixel i of a word in bits
//         [8*i +: 8]; each frame of {frame_elems} pixels ({'x'.join(map(str, g.frame_shape))}) is padded to
//         {outside.words_per_frame} whole words.
// m_axis: one {outside.out_bits}-bit label per frame ({outside.label_bits} significant bits); m_axis_tlast is the
//         s_axis_tlast of that frame's last input word.
`default_nettype none

module {TOP_NAME} (
    input  wire                ap_clk,
    input  wire                ap_rst_n,
    input  wire [{outside.dma_bits - 1}:0]         s_axis_tdata,
    input  wire                s_axis_tvalid,
    output wire                s_axis_tready,
    input  wire                s_axis_tlast,
    output wire [{outside.out_bits - 1}:0]          m_axis_tdata,
    output wire                m_axis_tvalid,
    input  wire                m_axis_tready,
    output wire                m_axis_tlast
);
    // ---------------------------------------------------------------- streams (by tensor)
{chr(10).join(decls)}

    // ---------------------------------------------------------------- nodes, in graph order
{chr(10).join(body)}

    // ---------------------------------------------------------------- labels
    assign m_axis_tdata  = {label_data};
    assign m_axis_tvalid = {label}_tvalid;
    assign {label}_tready = m_axis_tready;
endmodule

`default_nettype wire
"""
    (out_dir / f"{TOP_NAME}.v").write_text(text)
    files = copy_library({i["module"] for i in instances}, out_dir) + [f"{TOP_NAME}.v"]
    converters = {i["name"] for i in instances if i["kind"] == "converter"}
    fifos = {i["name"]: {"instance": i["instance"], "depth": i["params"]["DEPTH"], "width": i["params"]["WIDTH"],
                         "edge": i["edge"], "before_converter": i["feeds"] in converters}
             for i in instances if i["op"] == "Fifo"}
    manifest = {
        "top": TOP_NAME,
        "files": files,
        "memories": write_memories(model, g.ops, out_dir),
        "dma_bits": outside.dma_bits,
        "out_bits": outside.out_bits,
        "label_bits": outside.label_bits,
        "frame_shape": g.frame_shape,
        "frame_bytes": frame_elems,
        "words_per_frame": outside.words_per_frame,
        "input_tensor": g.input_tensor,
        "output_tensor": g.output_tensor,
        "fifos": fifos,
        "layers": layers,
        "instances": instances,
        "cycles_per_frame": max(lay["cycles"] for lay in layers),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def read_manifest(rtl_dir: Path) -> dict:
    path = Path(rtl_dir) / MANIFEST
    if not path.exists():
        raise BuildError(f"{rtl_dir} has no {MANIFEST}; generate the RTL first")
    return json.loads(path.read_text())


def designed_ii_cycles(manifest: dict) -> int:
    """Cycles per frame the generated design is built for: its slowest layer, or the DMA
    stream (one input word per cycle) when that is slower. A measured II above it is lost
    in the plumbing or in a layer's cycles()."""
    return max(int(manifest["cycles_per_frame"]), int(manifest["words_per_frame"]))


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
        body.append(stream_instance(op.rtl_module, inst, op.rtl_params(model), "clk", "rst_n", ins, outs))
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
