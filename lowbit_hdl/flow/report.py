"""The build report: ``report.json`` and the table printed at the end of ``build``.

Per layer: shapes, data types, folding, cycles per frame, weight/threshold memory (and how
the weight memories are built, ``memory``), the
analytic resource estimate (its stages summed); for the design: the bottleneck, frames/s and
latency at the clock, the AXI-Stream layouts, FIFOs and converters, the fit check on the
part (with the Zynq shell's share reserved), which layers have random parameters
(``parameters``) and, after ``--synth``, Yosys's counts beside the estimate.
"""

from __future__ import annotations

from typing import Any

from ..cost import format_bits, format_shape, network_cost
from ..ir import LayerInfo
from ..netfile import random_weights_note
from .folding import Folding
from .plan import IP_NAMES, Plan, StageKind
from .resources import (
    SHELL,
    XC7Z020,
    Estimate,
    Resources,
    device_for_part,
    fit_check,
    memory_resources,
)

__all__ = ["REPORT_VERSION", "make_report", "format_report", "weight_memory"]

REPORT_VERSION = 1



def _count(stages: list[dict], kind: StageKind) -> int:
    """Stages of ``kind`` in the report's ``stream.stages``."""
    return sum(1 for x in stages if x["kind"] == kind.value)



def _bottleneck(plan: Plan, layer: str) -> str:
    """What sets the frame rate: the slowest layer by the cost model, a slower stage of the
    plan (its layer), the busiest DDR port (``ddr``) or the AXI-Stream ports (``io``)."""
    cpf = plan.cycles_per_frame
    if cpf == plan.layer_cycles:
        return layer
    slow = [s for s in plan.stages if s.cycles == cpf]
    if slow:
        return slow[0].layer or slow[0].name
    return "ddr" if cpf == plan.ddr_port_cycles else "io"


def weight_memory(info: LayerInfo) -> str:
    """How an MVTU layer's weight memories are built: its ``ram_style``; for ``"auto"`` the
    estimator's reading of it, ``"auto:block"`` or ``"auto:logic"`` (``"const"`` for one
    weight word per PE, which needs no memory)."""
    lay = info.layer
    words = (info.mh // lay.pe) * (info.mw // lay.simd)
    if words == 1:
        return "const"
    if lay.ram_style != "auto":
        return lay.ram_style
    mem = memory_resources(lay.simd * lay.weight_dtype.bits, words, "auto", rom=True)
    return "auto:block" if mem.bram36 else "auto:logic"


def make_report(plan: Plan, estimate: Estimate, *, part: str = XC7Z020.part,
                folding: Folding | None = None, folding_source: str = "network",
                synth: dict | None = None, rtl: dict | None = None,
                extra: dict | None = None) -> dict[str, Any]:
    """Everything the build knows about the design, JSON-able and deterministic.

    ``folding`` is written as in the folding file (:meth:`Folding.to_json`).
    """
    net = plan.network
    cost = network_cost(net, plan.clock_mhz)
    per_layer = estimate.by_layer()
    engine_rows: dict[str, dict] = {}
    engine_pools: set[str] = set()
    if plan.engine is not None:
        engine_rows = {r["layer"]: r for r in plan.engine_layers}
        engine_pools = {r["pool"] for r in engine_rows.values() if r["pool"]}
    infos = {i.name: i for i in plan.infos}
    layers = []
    for c in cost.layers:
        r = per_layer.get(c.name, Resources())
        row = {**c.to_dict(), "in_shape": list(c.in_shape),
               "out_shape": list(c.out_shape), "estimate": r.to_dict()}
        if infos[c.name].is_mvtu:
            row["memory"] = weight_memory(infos[c.name])
        if plan.uses_ddr:  # a DDR layer's stages may be slower than its compute
            row["cycles"] = max([row["cycles"]] + [s.cycles for s in plan.stages
                                                   if s.layer == c.name])
        if c.name in engine_rows:  # runs on the engine's lanes, one layer at a time
            row.update(cycles=engine_rows[c.name]["cycles"], pe=plan.engine.pe,
                       simd=plan.engine.simd, engine=True)
        elif c.name in engine_pools:
            row.update(cycles=0, pe=plan.engine.pe, engine=True)
        layers.append(row)
    cpf = plan.cycles_per_frame
    latency = cost.latency_cycles
    if plan.engine is not None:  # the front streams its map in, the engine runs, the tail
        tail = {i.name for i in plan.split.tail}
        latency = plan.engine_latency + max(
            [s.cycles for s in plan.stages if s.layer in tail], default=0)
    device = device_for_part(part)
    fit = fit_check(estimate.total, device)
    rep: dict[str, Any] = {
        "format": "lowbit-hdl-build-report",
        "version": REPORT_VERSION,
        "network": net.name,
        "description": net.description,
        "part": part,
        "clock_mhz": plan.clock_mhz,
        "folding_source": folding_source,
        "folding": folding.to_json() if folding is not None else {},
        "layers": layers,
        "performance": {
            "cycles_per_frame": cpf,
            "layer_bottleneck_cycles": plan.layer_cycles,
            "bottleneck": _bottleneck(plan, cost.bottleneck.name),
            "fps": plan.clock_mhz * 1e6 / cpf,
            "latency_cycles_bound": latency,
            "latency_us_bound": latency / plan.clock_mhz,
            "ops_per_frame": cost.ops_per_frame,
            "gops": cost.ops_per_frame * plan.clock_mhz * 1e6 / cpf / 1e9,
        },
        "memory": {"weight_bits": cost.weight_bits, "threshold_bits": cost.threshold_bits},
        "stream": plan.to_dict(),
        "estimate": estimate.to_dict(),
        "fit": {**fit, "shell_reserve": SHELL.to_dict()},
        "ip_names": dict(IP_NAMES),
        "rtl": rtl or {},
        "synth": synth or {},
        "notes": list(plan.notes),
        **({"engine": {
            "pe": plan.engine.pe, "simd": plan.engine.simd, "act": plan.split.act.name,
            "front": [i.name for i in plan.split.front], "tail": [i.name for i in plan.split.tail],
            "layers": list(engine_rows.values()),
            "ddr_bytes_per_frame": plan.ddr.bytes_per_frame,
            "cycles": plan.stage("engine").cycles,
            "latency_cycles": plan.engine_latency}} if plan.engine is not None else {}),
        # random weights and thresholds ({layer: seed}; empty for trained ones) and the line
        # that announces them
        "parameters": {"random_weights": dict(net.random_weights),
                       "note": random_weights_note(net)},
    }
    if synth and synth.get("stages"):
        layer_of = {st.name: st.layer or "(io)" for st in plan.stages}
        by_layer: dict[str, Resources] = {}
        for name, r in synth["stages"].items():
            key = layer_of.get(name, "(io)")
            by_layer[key] = by_layer.get(key, Resources()) + Resources(**r)
        rep["synth"]["layers"] = {k: v.to_dict() for k, v in sorted(by_layer.items())}
        # logic depth per layer: the slowest path ending in one of its stages
        depth: dict[str, dict] = {}
        for name, d in (synth.get("depth") or {}).items():
            key = layer_of.get(name, "(io)")
            if key not in depth or d["est_ns"] > depth[key]["est_ns"]:
                depth[key] = {**d, "stage": name}
        rep["synth"]["layer_depth"] = dict(sorted(depth.items()))
        for lay in layers:
            lay["synth"] = by_layer.get(lay["name"], Resources()).to_dict()
            if lay["name"] in depth:
                lay["synth_depth"] = depth[lay["name"]]
    if synth and "lut" in synth:
        luts = synth["lut"]
        rep["synth"]["fit"] = fit_check(Resources(synth["lut"], synth["ff"], synth["bram36"],
                                                  synth["dsp"]), device)
        rep["performance"]["fps_per_klut"] = (plan.clock_mhz * 1e6 / cpf) / (luts / 1000) \
            if luts else None
    if extra:
        rep.update(extra)
    return rep


def _port_words(ddr: dict) -> int:
    per = [0] * ddr["hp_ports"]
    for r in ddr["regions"]:
        per[r["hp"]] += r["nbytes"] // 8
    return max(per)


def format_report(rep: dict[str, Any]) -> str:
    """The readable table printed at the end of a build."""
    syn_layers = (rep.get("synth") or {}).get("layers")
    head = ["layer", "kind", "in C×H×W", "out C×H×W", "in", "W", "out", "PE", "SIMD",
            "cycles", "weights", "memory", "thresh", "LUT", "FF", "BRAM36", "DSP"]
    if syn_layers:
        head += ["syn LUT", "syn FF", "syn BRAM", "syn DSP"]

    def syn_cells(r: dict | None) -> list[str]:
        if not syn_layers:
            return []
        r = r or {"lut": 0, "ff": 0, "bram36": 0, "dsp": 0}
        return [f"{r['lut']:,}", f"{r['ff']:,}", f"{r['bram36']:g}", str(r["dsp"])]

    rows = []
    perf = rep["performance"]
    for lay in rep["layers"]:
        mvtu = lay["kind"] in ("conv", "fc")
        e = lay["estimate"]
        rows.append([
            lay["name"] + (" *" if lay["name"] == perf["bottleneck"] else ""), lay["kind"],
            format_shape(lay["in_shape"]), format_shape(lay["out_shape"]), lay["in_dtype"],
            lay["weight_dtype"], lay["out_dtype"], str(lay["pe"]),
            str(lay["simd"]) if mvtu else "-", f"{lay['cycles']:,}",
            format_bits(lay["weight_bits"]) if mvtu else "-",
            lay.get("memory", "-") if mvtu else "-",
            format_bits(lay["threshold_bits"]) if mvtu else "-",
            f"{e['lut']:,}", f"{e['ff']:,}", f"{e['bram36']:g}", str(e["dsp"]),
        ] + syn_cells(lay.get("synth")))
    io = rep["estimate"]["layers"].get("(io)")
    if io:
        rows.append(["(io/fifo)", "", "", "", "", "", "", "", "", "", "", "", "",
                     f"{io['lut']:,}", f"{io['ff']:,}", f"{io['bram36']:g}", str(io["dsp"])]
                    + syn_cells((syn_layers or {}).get("(io)")))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(x.rjust(w) if i > 1 else x.ljust(w)
                         for i, (x, w) in enumerate(zip(cells, widths, strict=True)))

    s = rep["stream"]
    out = [f"network {rep['network']}" + (f" — {rep['description']}" if rep["description"]
                                           else "")
           + f"   (folding: {rep['folding_source']})",
           line(head), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    tot = rep["estimate"]["total"]
    clock = rep["clock_mhz"]
    out += [
        "",
        f"bottleneck: {perf['bottleneck']} ({perf['cycles_per_frame']:,} cycles per frame; "
        f"* above) → {perf['fps']:,.1f} frames/s at {clock:g} MHz, {perf['gops']:,.1f} GOPS",
        (f"latency (upper bound: the front's map at its slowest stage's pace under the "
         f"engine's first layer, the engine's other layers, the tail's slowest stage): "
         f"{perf['latency_cycles_bound']:,} cycles = "
         f"{perf['latency_us_bound']:,.1f} µs" if rep.get("engine") else
         f"latency (upper bound, layers in sequence): {perf['latency_cycles_bound']:,} cycles "
         f"= {perf['latency_us_bound']:,.1f} µs"),
        f"memory: weights {format_bits(rep['memory']['weight_bits'])}, thresholds "
        f"{format_bits(rep['memory']['threshold_bits'])}",
        f"AXI-Stream in: {s['input']['tdata_bits']}-bit tdata, "
        f"{s['input']['elems_per_beat']}×{s['input']['dtype']} per beat, "
        f"{s['input']['beats_per_frame']:,} beats/frame;  out: "
        f"{s['output']['tdata_bits']}-bit tdata, {s['output']['elems_per_beat']}×"
        f"{s['output']['dtype']} per beat, {s['output']['beats_per_frame']:,} beats/frame "
        "(tlast on the last)",
        f"FIFOs: {_count(s['stages'], StageKind.FIFO)}, width converters: "
        f"{_count(s['stages'], StageKind.DWC)}",
    ]
    eng = rep.get("engine")
    if eng:
        ddr_bound = [r["layer"] for r in eng["layers"] if r["bound"] == "ddr"]
        out.append(
            f"engine: {len(eng['layers'])} layers on {eng['pe']}×{eng['simd']} lanes "
            f"({eng['act']} activations; front {', '.join(eng['front']) or 'none'}, tail "
            f"{', '.join(eng['tail']) or 'none'}), {eng['cycles']:,} cycles per frame with "
            f"the first layer overlapping the front's map; "
            f"{eng['ddr_bytes_per_frame'] / 1e6:,.3f} MB per frame "
            f"from DDR; bound by DDR: {', '.join(ddr_bound) or 'none'}")
    if s.get("arch") == "hybrid":
        ddr = s["ddr"]
        regions = ddr["regions"]
        out.append(
            f"hybrid: weights of {len(regions)} layer(s) from DDR ("
            + ", ".join(f"{r['layer']} {r['placement']}" for r in regions)
            + f"), {sum(r['nbytes'] for r in regions) / 1e6:,.3f} MB per frame over "
            f"{ddr['hp_ports']} HP port(s); busiest port {_port_words(ddr):,} words per frame; "
            f"DDR image {ddr['total_bytes']:,} bytes")
    fit = rep["fit"]
    util = fit["resources"]
    out.append(
        f"estimate: {tot['lut']:,} LUT, {tot['ff']:,} FF, {tot['bram36']:g} BRAM36, "
        f"{tot['dsp']} DSP;  with the Zynq shell on {fit['part']}: "
        + ", ".join(f"{k.upper()} {util[k]['percent']:g}%" for k in ("lut", "ff", "bram36",
                                                                    "dsp"))
        + f"  → {'fits' if fit['fits'] else 'DOES NOT FIT'}")
    syn = rep.get("synth") or {}
    if "lut" in syn:
        sfit = syn["fit"]
        out.append(
            f"yosys synth_xilinx: {syn['lut']:,} LUT ({syn['lut_logic']:,} logic + "
            f"{syn['lut_memory']:,} memory), {syn['ff']:,} FF, {syn['bram36']:g} BRAM36, "
            f"{syn['dsp']} DSP  → {'fits' if sfit['fits'] else 'DOES NOT FIT'}"
            + (f";  {perf['fps_per_klut']:,.1f} frames/s per kLUT"
               if perf.get("fps_per_klut") else "")
            + f"  ({syn.get('yosys') or 'Yosys version unknown'})")
        if syn.get("yosys_fallback"):
            out.append(f"warning: {syn['yosys_fallback']}")
    elif syn.get("error"):
        out.append(f"yosys synth_xilinx: failed ({syn['error'].splitlines()[0]})")
    if syn.get("depth"):
        worst_name, worst = max(syn["depth"].items(), key=lambda kv: kv[1]["est_ns"])
        over = syn.get("depth_over_bound") or []
        out.append(
            f"logic depth (mapped netlist): slowest path {worst['lut_levels']} LUT levels + "
            f"{worst['carry4']} CARRY4 ≈ {worst['est_ns']:g} ns in {worst_name}; "
            f"bound {syn.get('depth_bound_ns', 10):g} ns (100 MHz): "
            + (f"over in {', '.join(over)}" if over else "all stages within")
            + "; per layer: " + ", ".join(
                f"{k} {d['lut_levels']}+{d['carry4']}c"
                for k, d in (syn.get("layer_depth") or {}).items()))
    rtl = rep.get("rtl") or {}
    if rtl.get("skipped"):
        out.append(f"RTL: not generated — {rtl['skipped']}")
    if rtl.get("lint"):
        out.append(f"lint: {rtl['lint']}")
    if rtl.get("deploy"):
        out.append(f"deployment bundle: {rtl['deploy']['folder']}/ (samples: "
                   f"{rtl['deploy']['samples']})")
    for n in rep.get("notes", []):
        out.append(f"note: {n}")
    note = (rep.get("parameters") or {}).get("note")
    if note:
        out.append(f"parameters: {note}")
    return "\n".join(out)
