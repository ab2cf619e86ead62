"""``info``: per-layer table of shapes, precisions, folding, cycles, memory, bottleneck.

``--arch dataflow`` (the default) prints today's pipeline; ``--arch hybrid`` the hybrid
dataflow with weights streamed from DDR (each Conv/FC layer's placement by the rule of
:func:`lowbit_hdl.cost.choose_placements`, or as ``--placement`` says) and ``--arch engine``
the one-engine alternative: per-layer cycles, DDR bytes and the bound (compute or DDR), at
``--ports`` HP ports (:mod:`lowbit_hdl.ddrcost`).
"""

from __future__ import annotations

import argparse

from .cost import (
    PORT_BYTES,
    EngineConfig,
    EngineCost,
    HybridCost,
    NetworkCost,
    engine_cost,
    format_bits,
    format_shape,
    hybrid_cost,
    network_cost,
)
from .errors import UsageError, positive_float, positive_int
from .ir import Network
from .netfile import load_network, random_weights_note

__all__ = ["format_table", "format_hybrid", "format_engine", "parameters_line",
           "add_arguments", "run"]

ARCHS = ("dataflow", "hybrid", "engine")


def parameters_line(net: Network) -> str:
    """Which layers have weights and thresholds: all, some (naming the others), none, or
    random ones (a network saved by a build with ``--random-weights``)."""
    missing = net.check_params(allow_missing=True)
    mvtu = [i.name for i in net.infer() if i.is_mvtu]
    if not mvtu:
        return "parameters: none needed (no conv or fc layers)"
    if missing == mvtu:
        return ("parameters: none attached (build, sim and deploy-sim need trained ones or "
                "--random-weights)")
    if missing:
        return (f"parameters: missing in layers {', '.join(missing)} (build, sim and "
                "deploy-sim refuse the network unless --random-weights fills them)")
    return "parameters: " + (random_weights_note(net) or "attached to every layer")


def format_table(net: Network, cost: NetworkCost) -> str:
    """Readable per-layer table plus the network summary."""
    head = ["layer", "kind", "in C×H×W", "out C×H×W", "in", "W", "out", "MW", "MH", "PE",
            "SIMD", "NF", "SF", "cycles", "MACs", "weights", "thresh"]
    rows = []
    for c in cost.layers:
        mvtu = c.kind in ("conv", "fc")
        rows.append([
            c.name + (" *" if c is cost.bottleneck else ""), c.kind, format_shape(c.in_shape),
            format_shape(c.out_shape), c.in_dtype, c.weight_dtype, c.out_dtype,
            str(c.mw) if mvtu else "-", str(c.mh) if mvtu else "-", str(c.pe),
            str(c.simd) if mvtu else "-", str(c.nf) if mvtu else "-",
            str(c.sf) if mvtu else "-", f"{c.cycles:,}", f"{c.macs:,}" if mvtu else "-",
            format_bits(c.weight_bits) if mvtu else "-",
            format_bits(c.threshold_bits) if mvtu else "-",
        ])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(x.rjust(w) if i > 1 else x.ljust(w)  # noqa: E731
                                   for i, (x, w) in enumerate(zip(cells, widths, strict=True)))
    out = [f"network {net.name}: input {format_shape(net.input_shape)} {net.input_dtype}"
           + (f" — {net.description}" if net.description else ""),
           line(head), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    b = cost.bottleneck
    out += [
        "",
        f"bottleneck: {b.name} ({b.cycles:,} cycles per frame; * above)",
        f"throughput: {cost.fps:,.1f} frames/s at {cost.clock_mhz:g} MHz, "
        f"{cost.gops:,.1f} GOPS ({cost.ops_per_frame:,} ops per frame)",
        f"latency (upper bound, layers in sequence): {cost.latency_cycles:,} cycles = "
        f"{cost.latency_cycles / cost.clock_mhz:,.1f} µs",
        f"memory: weights {format_bits(cost.weight_bits)}, thresholds "
        f"{format_bits(cost.threshold_bits)}",
        parameters_line(net),
    ]
    return "\n".join(out)


def _columns(head: list[str], rows: list[list[str]], left: int = 2) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(x.ljust(w) if i < left else x.rjust(w)
                         for i, (x, w) in enumerate(zip(cells, widths, strict=True)))
    return [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _port_line(nbytes: int, fps: float, ports: int, clock_mhz: float) -> str:
    need = nbytes * fps / 1e6
    have = ports * PORT_BYTES * clock_mhz
    return (f"DDR: {nbytes / 1e6:,.3f} MB per frame; {need:,.0f} MB/s at that frame rate "
            f"against {have:,.0f} MB/s on {ports} HP port{'s' if ports > 1 else ''} "
            f"(64 bits per cycle each)")


def format_hybrid(net: Network, cost: HybridCost, note: str) -> str:
    """Per-layer table of the hybrid pipeline: placement, cycles, DDR bytes, bound."""
    head = ["layer", "kind", "placement", "PE", "SIMD", "compute", "DDR bytes", "DDR cycles",
            "cycles", "bound", "first out", "last out"]
    rows = [[c.name + (" *" if c is cost.bottleneck else ""), c.kind, c.placement, str(c.pe),
             str(c.simd) if c.simd else "-", f"{c.compute:,}", f"{c.ddr_bytes:,}",
             f"{c.ddr_cycles:,}", f"{c.cycles:,}", c.bound, f"{c.start:,}", f"{c.end:,}"]
            for c in cost.layers]
    out = [f"network {net.name}, hybrid dataflow, {cost.ports} HP port(s) at "
           f"{cost.clock_mhz:g} MHz ({note})"]
    out += _columns(head, rows, left=3)
    out += [
        "",
        f"latency (one frame, empty pipeline): {cost.latency_cycles:,} cycles = "
        f"{cost.latency_ms:,.2f} ms",
        f"throughput: a frame every {cost.interval:,} cycles = {cost.fps:,.1f} frames/s, "
        f"bound: {cost.bound} (* = slowest layer)",
        _port_line(cost.ddr_bytes, cost.fps, cost.ports, cost.clock_mhz),
    ]
    return "\n".join(out)


def format_engine(net: Network, cost: EngineCost) -> str:
    """Per-layer table of the one-engine architecture."""
    cfg = cost.config
    head = ["layer", "kind", "fused", "PE", "SIMD", "compute", "tiles", "act in",
            "act out", "DDR bytes", "DDR cycles", "cycles", "bound"]
    rows = [[c.name, c.kind, c.fused or "-", str(c.pe), str(c.simd), f"{c.compute:,}",
             str(c.tiles), c.act_in, c.act_out, f"{c.ddr_bytes:,}", f"{c.ddr_cycles:,}",
             f"{c.cycles:,}", c.bound] for c in cost.layers]
    out = [f"network {net.name}, one engine ({cfg.pe}×{cfg.simd} low-bit lanes, "
           f"{cfg.dsp_pe}×{cfg.dsp_simd} DSP lanes), {cost.ports} HP port(s) at "
           f"{cost.clock_mhz:g} MHz"]
    out += _columns(head, rows, left=3)
    out += [
        "",
        f"latency = frame interval (layers one after another): {cost.latency_cycles:,} "
        f"cycles = {cost.latency_ms:,.2f} ms, {cost.fps:,.1f} frames/s; {cost.bound}",
        _port_line(cost.ddr_bytes, cost.fps, cost.ports, cost.clock_mhz),
    ]
    return "\n".join(out)


def _placements(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, pl = item.partition("=")
        if not sep or not name or not pl:
            raise UsageError(f"--placement {item!r}: expected LAYER=PLACEMENT "
                             "(onchip, stream or tiled)")
        out[name] = pl
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="networks/<net>.py topology or saved .npz network")
    p.add_argument("--clock-mhz", type=positive_float, default=100.0,
                   help="clock for frames/s (MHz, > 0)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--arch", choices=ARCHS, default="dataflow",
                   help="dataflow: today's pipeline (default); hybrid: weights of the "
                   "layers that do not fit streamed from DDR; engine: one engine for all "
                   "layers")
    p.add_argument("--ports", type=positive_int, default=1,
                   help="AXI HP ports to DDR, 64 bits per cycle each (hybrid, engine)")
    p.add_argument("--placement", action="append", metavar="LAYER=PLACEMENT",
                   help="hybrid: fix a layer's placement (onchip, stream for fc, tiled for "
                   "conv); the others follow the block-RAM rule")
    p.add_argument("--engine-lanes", type=positive_int, nargs=2, metavar=("PE", "SIMD"),
                   help="engine: PE and SIMD of the low-bit lanes (default 32 64)")


def run(args: argparse.Namespace) -> int:
    import json

    net = load_network(args.network, seed=None)
    if args.arch == "hybrid":
        return _run_hybrid(args, net)
    if args.arch == "engine":
        cfg = EngineConfig() if args.engine_lanes is None else \
            EngineConfig(pe=args.engine_lanes[0], simd=args.engine_lanes[1])
        ecost = engine_cost(net, cfg, args.ports, args.clock_mhz)
        print(json.dumps(ecost.to_dict(), indent=2) if args.json else format_engine(net, ecost))
        return 0
    cost = network_cost(net, args.clock_mhz)
    if args.json:
        missing = net.check_params(allow_missing=True)
        print(json.dumps({**cost.to_dict(), "parameters": {
            "missing": missing, "random_weights": dict(net.random_weights)}}, indent=2))
    else:
        print(format_table(net, cost))
    return 0


def _run_hybrid(args: argparse.Namespace, net: Network) -> int:
    import json

    from .flow.resources import SHELL, XC7Z020, hybrid_placements

    given = _placements(args.placement)
    try:
        placements = hybrid_placements(net, args.ports, given=given)
    except ValueError as e:
        raise UsageError(f"--placement: {e}") from None
    moved = sorted(n for n, p in placements.items() if p != "onchip" and n not in given)
    note = (f"placements by the rule: BRAM budget {XC7Z020.bram36 - SHELL.bram36:g} BRAM36 "
            f"of {XC7Z020.part} less the shell; moved to DDR: {', '.join(moved) or 'none'}")
    if given:
        note += "; given: " + ", ".join(f"{k}={v}" for k, v in given.items())
    cost = hybrid_cost(net, args.ports, placements, args.clock_mhz)
    if args.json:
        print(json.dumps({**cost.to_dict(), "placements": placements}, indent=2))
    else:
        print(format_hybrid(net, cost, note))
    return 0
