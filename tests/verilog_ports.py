"""Test helper: read the port list of a generated top (``rtl/accel_top.v``) from the Verilog
text, so tests can check that the code generator wrote exactly the ports the interface
record (``interface.json``) says. The build itself never parses Verilog for this: the
Vivado scripts, simulation and driver read the record.

Handles ANSI headers (``input wire [63:0] s_axis_tdata, ...``, several names per
declaration), non-ANSI headers (names in the header, directions in the body) and widths
given by parameters with simple integer expressions.
"""

from __future__ import annotations

import ast
import operator
import re
from pathlib import Path

from hw_build.errors import BuildError
from hw_build.vivado.common import Port, Stream, TopPorts

DEFAULT_TOP = "accel_top"


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.FloorDiv: operator.floordiv, ast.Div: operator.floordiv, ast.Mod: operator.mod,
        ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.Pow: operator.pow}


def _eval_int(expr: str, params: dict[str, int]) -> int:
    """Evaluate a Verilog constant expression of integers, parameters and + - * / % << >> **."""
    text = re.sub(r"\d+'[sS]?[dD](\d+)", r"\1", expr.strip())  # 32'd7 -> 7
    text = text.replace("$clog2", "_clog2")

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in params:
            return params[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_clog2":
            v = ev(node.args[0])
            return max(0, (v - 1).bit_length())
        raise ValueError(expr)

    try:
        return int(ev(ast.parse(text, mode="eval")))
    except (ValueError, SyntaxError, KeyError) as exc:
        raise BuildError(f"cannot evaluate the Verilog width expression '{expr}' in the top's port list") from exc


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _width(rng: str | None, params: dict[str, int]) -> int:
    if not rng:
        return 1
    m = re.fullmatch(r"\[\s*(.+?)\s*:\s*(.+?)\s*\]", rng.strip())
    if not m:
        raise BuildError(f"cannot read the port range '{rng}' in the top's port list")
    return abs(_eval_int(m.group(1), params) - _eval_int(m.group(2), params)) + 1


DECL_RE = re.compile(
    r"^(input|output|inout)\s+(?:(?:wire|reg|logic|signed|unsigned|var)\s+)*(\[[^\]]+\])?\s*(.*)$", re.S)


def _parse_decls(chunks: list[str], params: dict[str, int], out: dict[str, Port], order: list[str],
                 header_names: set[str] | None = None) -> None:
    """Parse comma-separated declaration pieces; a piece without a direction continues the
    previous declaration (``input wire a, b``)."""
    direction, rng = None, None
    for chunk in chunks:
        chunk = " ".join(chunk.split())
        if not chunk:
            continue
        m = DECL_RE.match(chunk)
        if m:
            direction, rng, rest = m.group(1), m.group(2), m.group(3)
        elif direction is not None and re.fullmatch(r"[A-Za-z_]\w*", chunk):
            rest = chunk
        else:
            continue
        name = rest.strip().split("=")[0].strip()
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            continue
        if header_names is not None and name not in header_names:
            continue
        out[name] = Port(name, direction, _width(rng, params))
        if name not in order:
            order.append(name)


def _closing_paren(src: str, start: int) -> int:
    """Index of the parenthesis closing the one at ``start`` (nesting counted)."""
    depth = 0
    for i in range(start, len(src)):
        if src[i] == "(":
            depth += 1
        elif src[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise BuildError("unbalanced parentheses in the generated Verilog")


def parse_module_ports(text: str, module: str = DEFAULT_TOP) -> dict[str, Port]:
    """Ports of ``module`` in Verilog source ``text``, in declaration order."""
    src = _strip_comments(text)
    m = re.search(rf"\bmodule\s+{re.escape(module)}\b", src)
    if not m:
        raise BuildError(f"no module '{module}' in the generated Verilog")
    pos = m.end()
    params: dict[str, int] = {}
    rest = src[pos:].lstrip()
    if rest.startswith("#"):
        # parameter list: #( ... ) with balanced parentheses
        start = src.index("(", pos)
        i = _closing_paren(src, start)
        for pm in re.finditer(r"(?:parameter\s+(?:integer\s+)?)?([A-Za-z_]\w*)\s*=\s*([^,]+)", src[start + 1:i]):
            try:
                params[pm.group(1)] = _eval_int(pm.group(2), params)
            except BuildError:
                pass
        pos = i + 1
    open_paren = src.index("(", pos)
    i = _closing_paren(src, open_paren)
    header = src[open_paren + 1:i]
    end = src.find("endmodule", i)
    body = src[i + 1:end if end >= 0 else len(src)]
    for pm in re.finditer(r"\b(?:localparam|parameter)\s+(?:integer\s+)?([A-Za-z_]\w*)\s*=\s*([^;,]+)", body):
        try:
            params.setdefault(pm.group(1), _eval_int(pm.group(2), params))
        except BuildError:
            pass
    ports: dict[str, Port] = {}
    order: list[str] = []
    if re.search(r"\b(input|output|inout)\b", header):
        _parse_decls(header.split(","), params, ports, order)
    else:  # non-ANSI: names in the header, declarations in the body
        names = [n.strip() for n in header.split(",") if n.strip()]
        for stmt in body.split(";"):
            stmt = stmt.strip()
            if re.match(r"(input|output|inout)\b", stmt):
                _parse_decls(stmt.split(","), params, ports, order, set(names))
        order = [n for n in names if n in ports]
    if not ports:
        raise BuildError(f"module '{module}' declares no ports")
    return {n: ports[n] for n in order}


_CLOCK_RE = re.compile(r"(^|_)(a?clk|clock)$", re.I)
_RESET_RE = re.compile(r"(^|_)(a?rst|a?reset)(_?n)?$", re.I)


def _stream(ports: dict[str, Port], prefix: str) -> Stream:
    for sig in ("tvalid", "tready"):
        if f"{prefix}_{sig}" not in ports:
            raise BuildError(f"AXI-Stream '{prefix}' of the top has no {prefix}_{sig} port")
    return Stream(prefix, ports[f"{prefix}_tdata"].width, f"{prefix}_tlast" in ports)


def analyse_ports(ports: dict[str, Port], module: str = DEFAULT_TOP) -> TopPorts:
    """Find the clock, the reset and the two AXI-Streams among a module's ports."""
    ins = [p for p in ports.values() if p.direction == "input" and p.width == 1]
    clocks = [p.name for p in ins if _CLOCK_RE.search(p.name)]
    resets = [p.name for p in ins if _RESET_RE.search(p.name)]
    if len(clocks) != 1:
        raise BuildError(f"expected one clock input in {module} (a port named like clk/ap_clk/aclk), "
                         f"found {clocks or 'none'} among {list(ports)}")
    if len(resets) != 1:
        raise BuildError(f"expected one reset input in {module} (a port named like rst_n/ap_rst_n/aresetn), "
                         f"found {resets or 'none'} among {list(ports)}")
    reset = resets[0]
    active_low = bool(re.search(r"(_n|resetn|rstn)$", reset, re.I))
    slaves = [n[:-6] for n, p in ports.items() if n.endswith("_tdata") and p.direction == "input"]
    masters = [n[:-6] for n, p in ports.items() if n.endswith("_tdata") and p.direction == "output"]
    if len(slaves) != 1 or len(masters) != 1:
        raise BuildError(f"{module} must have exactly one AXI-Stream input and one output "
                         f"(found inputs {slaves}, outputs {masters})")
    return TopPorts(module, ports, clocks[0], reset, active_low, _stream(ports, slaves[0]),
                    _stream(ports, masters[0]))


def read_top_ports(rtl_dir: Path, module: str = DEFAULT_TOP) -> TopPorts:
    """Parse ``<rtl_dir>/<module>.v`` (or the file that defines ``module``)."""
    rtl_dir = Path(rtl_dir)
    path = rtl_dir / f"{module}.v"
    if not path.exists():
        found = [p for p in sorted(rtl_dir.glob("*.v")) if re.search(rf"\bmodule\s+{module}\b", p.read_text())]
        if not found:
            raise BuildError(f"no {module}.v in '{rtl_dir}': generate the RTL first (build step 'rtl').")
        path = found[0]
    return analyse_ports(parse_module_ports(path.read_text(), module), module)
