"""``info``: per-layer table of shapes, precisions, folding, cycles, memory, bottleneck."""

from __future__ import annotations

import argparse

from .cost import NetworkCost, format_bits, format_shape, network_cost
from .errors import positive_float
from .ir import Network
from .netfile import load_network, random_weights_note

__all__ = ["format_table", "parameters_line", "add_arguments", "run"]


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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="networks/<net>.py topology or saved .npz network")
    p.add_argument("--clock-mhz", type=positive_float, default=100.0,
                   help="clock for frames/s (MHz, > 0)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    net = load_network(args.network, seed=None)
    cost = network_cost(net, args.clock_mhz)
    if args.json:
        missing = net.check_params(allow_missing=True)
        print(json.dumps({**cost.to_dict(), "parameters": {
            "missing": missing, "random_weights": dict(net.random_weights)}}, indent=2))
    else:
        print(format_table(net, cost))
    return 0
