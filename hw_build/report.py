"""report.html: what a user reads after a build (per-layer table and plots, folding,
verification, achieved throughput against the target). Plots are embedded PNGs."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _cycles_plot(layers: list[dict], bottleneck: int) -> str:
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(layers)), 3.2))
    names = [layer["name"] for layer in layers]
    cycles = [layer["cycles"] for layer in layers]
    colors = ["#c0392b" if c == bottleneck else "#2e86c1" for c in cycles]
    ax.bar(range(len(layers)), cycles, color=colors)
    ax.axhline(bottleneck, color="#c0392b", linestyle="--", linewidth=1, label=f"bottleneck {bottleneck:,}")
    ax.set_xticks(range(len(layers)), names, rotation=75, fontsize=7)
    ax.set_ylabel("cycles / frame")
    ax.set_title("Cycles per layer (the slowest layer sets the frame rate)")
    ax.legend(fontsize=8)
    return _png(fig)


def _resource_plot(layers: list[dict]) -> str:
    """LUT and BRAM36 per layer: the analytical estimate, and Yosys next to it when synthesized."""
    synth = any("synth_lut" in layer for layer in layers)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(6, 0.35 * len(layers)), 5.2), sharex=True)
    x = list(range(len(layers)))
    width = 0.4 if synth else 0.8
    for ax, key, label in ((ax1, "lut", "LUT"), (ax2, "bram36", "BRAM36")):
        ax.bar([i - (width / 2 if synth else 0) for i in x], [layer[key] for layer in layers], width=width,
               color="#27ae60", label="estimate")
        if synth:
            ax.bar([i + width / 2 for i in x], [layer.get(f"synth_{key}", 0) for layer in layers], width=width,
                   color="#8e44ad", label="Yosys")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    ax2.set_xticks(x, [layer["name"] for layer in layers], rotation=75, fontsize=7)
    ax1.set_title("Resources per layer" + (" (estimate and Yosys synthesis)" if synth else " (analytical model)"))
    return _png(fig)


def _utilization_plot(util: dict, title: str) -> str:
    fig, ax = plt.subplots(figsize=(4.5, 2.6))
    keys = list(util)
    ax.barh(keys, [100 * util[k] for k in keys], color=["#e67e22" if util[k] > 1 else "#16a085" for k in keys])
    ax.axvline(100, color="black", linewidth=1)
    ax.set_xlabel("% of the device")
    ax.set_title(title)
    return _png(fig)


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _timing_section(timing: dict) -> list[str]:
    """The timing block: the Fmax estimate, the model, and every instance's logic depth."""
    model = timing["model"]
    out = ["<h2>Timing (estimate until Vivado runs)</h2>",
           f"<p>Estimated Fmax <b>{_fmt(timing['fmax_mhz_estimate'])} MHz</b>, set by the slowest instance "
           f"<b>{html.escape(str(timing['slowest_instance']))}</b>; at most {timing['lut_levels_max']} LUT levels "
           f"in any instance (limit {timing.get('lut_level_limit')}), carry chains up to "
           f"{timing['carry_chain_max']} CARRY4. Delay model <i>{html.escape(model['name'])}</i>: "
           f"clock-to-out {model['clk_to_q_ns']} ns + per LUT level {model['lut_ns']} ns logic and "
           f"{model['net_ns']} ns routing + carry chain + setup and clock uncertainty "
           f"({html.escape(model['sources'])}). Yosys knows no placement: this is a screening figure, "
           "Vivado's timing report decides.</p>"]
    if timing.get("warning"):
        out.append(f"<p class='bad'>{html.escape(timing['warning'])}</p>")
    if timing.get("over_limit"):
        out.append(f"<p class='bad'>Over {timing.get('lut_level_limit')} LUT levels: "
                   f"{html.escape(', '.join(timing['over_limit']))}.</p>")
    rows = sorted(timing["instances"], key=lambda r: -r["path_ns"])
    out.append(_table(rows, ["instance", "module", "layer", "lut_levels", "carry_chain", "path_ns",
                             "fmax_mhz_estimate"]))
    return out


def write_html(report: dict, path: Path) -> None:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Build report</title><style>",
        "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}",
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}",
        ".bad{color:#c0392b;font-weight:bold}.ok{color:#1e8449;font-weight:bold}</style></head><body>",
        f"<h1>{html.escape(str(report.get('model')))} on {html.escape(str(report.get('board')))}</h1>",
        f"<p>Part {html.escape(str(report.get('part')))}, clock {report.get('clock_mhz')} MHz. "
        f"Status: <b>{html.escape(str(report.get('status')))}</b>.</p>",
    ]
    if report.get("weights"):
        parts.append(f"<p class='bad'>Weights: {html.escape(report['weights'])}.</p>")
    if report.get("weights_file"):
        parts.append(f"<p>Trained weights: {html.escape(report['weights_file'])} "
                     f"(sha256 {html.escape(str(report.get('weights_sha256')))}).</p>")
    est = report.get("estimate")
    rtl = report.get("rtlsim")
    perf_rows = []
    if est:
        perf_rows.append({"source": "estimate", "cycles/frame": est["cycles_per_frame"], "FPS": est["fps"],
                          "latency cycles": est["latency_cycles"]})
    if rtl:
        perf_rows.append({"source": "RTL simulation", "cycles/frame": rtl.get("ii_cycles"), "FPS": rtl.get("fps"),
                          "latency cycles": rtl.get("latency_cycles")})
    if perf_rows:
        parts.append("<h2>Throughput</h2>")
        target = report.get("target_fps")
        if target not in (None, "max"):
            parts.append(f"<p>Target: {html.escape(str(target))} FPS.</p>")
        parts.append(_table(perf_rows, ["source", "cycles/frame", "FPS", "latency cycles"]))
        if report.get("dma"):
            d = report["dma"]
            parts.append(f"<p>DMA: {d['in_bits_per_frame']:,} input bits per frame over a "
                         f"{d.get('stream_bits', '?')}-bit stream = {d['cycles_per_frame']:,} cycles/frame.</p>")
    ver = report.get("verify") or {}
    if ver:
        parts.append("<h2>Verification</h2><p>Top-1 labels of every stage against the reference "
                     f"({html.escape(str(report.get('verify_source', '')))}).</p>")
        rows = [{"stage": k, "frames": v.get("frames"), "mismatches": v.get("mismatches")} for k, v in ver.items()]
        parts.append(_table(rows, ["stage", "frames", "mismatches"]))
    if report.get("accuracy"):
        parts.append("<h2>Accuracy</h2>" + _table([report["accuracy"]], list(report["accuracy"])))
    layers = report.get("layers") or []
    if layers and est:
        parts.append("<h2>Layers and folding</h2>")
        parts.append(f"<img src='data:image/png;base64,{_cycles_plot(layers, est['cycles_per_frame'])}'>")
        parts.append(f"<img src='data:image/png;base64,{_resource_plot(layers)}'>")
        columns = ["name", "op", "pe", "simd", "cycles", "lut", "bram36", "dsp"]
        if any("synth_lut" in layer for layer in layers):
            columns += ["synth_lut", "synth_ff", "synth_bram36", "synth_dsp", "synth_lut_levels",
                        "synth_carry_chain", "synth_lut_per_lane"]
        parts.append(_table(layers, columns))
        edges = report.get("edges") or []
        if edges:
            parts.append("<p>FIFOs and width converters between the layers (estimate"
                         + (", Yosys" if any("synth_lut" in e for e in edges) else "") + "):</p>")
            parts.append(_table(edges, ["instance", "module", "lut", "bram36", "synth_lut", "synth_bram36"]))
    if report.get("utilization"):
        basis = "Yosys synthesis" if report.get("synth") else "analytical estimate"
        parts.append("<h2>Device utilization</h2>")
        parts.append(f"<img src='data:image/png;base64,{_utilization_plot(report['utilization'], basis)}'>")
        fits = report.get("fits")
        parts.append(f"<p class='{'ok' if fits else 'bad'}'>{'fits' if fits else 'does NOT fit'} the device "
                     f"({basis}).</p>")
    if report.get("synth"):
        synth = report["synth"]
        summary = {k: v for k, v in synth.items() if not isinstance(v, (list, dict))}
        parts.append("<h2>Synthesis</h2><p>Every layer, FIFO and width converter synthesized on its own "
                     "and summed; LUT levels: the longest LUT path of any instance.</p>"
                     + _table([summary], list(summary)))
    elif report.get("synth_error"):
        parts.append(f"<h2>Synthesis</h2><p class='bad'>{html.escape(report['synth_error'])}</p>")
    if report.get("timing"):
        parts += _timing_section(report["timing"])
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
