"""Design study for networks larger than the chip (issue 13): the hybrid dataflow pipeline
against one runtime-configured engine, on AlexNet W1A2, Tiny-YOLO W1A3 and CNV-W1A1.

Every figure is an ESTIMATE from the analytic models (cycles and DDR bytes:
lowbit_hdl.ddrcost through lowbit_hdl.cost; resources: lowbit_hdl.flow.resources); nothing
here is measured. The topologies are read from networks/*.py as they are; the proposed
foldings (bench/foldings/*.json) and placements below are applied on top.

    python bench/large_networks.py                 # the study, with the proposed foldings
    python bench/large_networks.py --as-is         # the networks' own foldings
    python bench/large_networks.py --search        # re-run the folding search and print it
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lowbit_hdl.cost import (  # noqa: E402
    EngineConfig,
    engine_cost,
    hybrid_cost,
)
from lowbit_hdl.flow.folding import (  # noqa: E402
    Folding,
    LayerFolding,
    apply_folding,
    divisors,
    load_folding,
)
from lowbit_hdl.flow.resources import (  # noqa: E402
    SHELL,
    XC7Z020,
    Resources,
    estimate_engine,
    estimate_hybrid,
    hybrid_placements,
    placement_resources,
    window_resources,
)
from lowbit_hdl.info import format_engine, format_hybrid  # noqa: E402
from lowbit_hdl.ir import Conv, Network  # noqa: E402
from lowbit_hdl.netfile import load_network  # noqa: E402

NETWORKS = ("dorefa_alexnet_w1a2", "tiny_yolo_w1a3", "cnv_w1a1")
#: latency targets of issue 14 (ms per frame at 100 MHz); CNV has none
TARGET_MS = {"dorefa_alexnet_w1a2": 25.0, "tiny_yolo_w1a3": 40.0}
PORTS = (1, 2, 4)
#: the ports the proposal is designed for (PYNQ-Z2 has four HP ports)
DESIGN_PORTS = 2
#: the design (shell excluded) may use this share of the LUTs, leaving ≥ 15 % for the shell
LUT_SHARE = 0.85
CLOCK_MHZ = 100.0
#: references (issue 13): the thesis and Xilinx QNN-MO-PYNQ's W1A2 overlay
REFERENCES = [
    "thesis (cyclic BRAM engine, PYNQ-Z2): about 1.2 s per image",
    "QNN-MO-PYNQ W1A2 overlay: 43,043 LUT, 139 BRAM36; AlexNet 24-28 ms in hardware "
    "+ 0.59 s first layer on the ARM (and the last layers on the ARM)",
]
#: engine lane options tried (PE, SIMD of the low-bit lanes; DSP lanes 16 × 12)
ENGINE_LANES = [(16, 32), (16, 64), (32, 32), (32, 64), (64, 32), (64, 64), (32, 128),
                (64, 128)]


def budget() -> Resources:
    """What the design may use: 85 % of the LUTs, all BRAM36 and DSPs less the shell's."""
    return Resources(lut=int(LUT_SHARE * XC7Z020.lut), ff=XC7Z020.ff - SHELL.ff,
                     bram36=XC7Z020.bram36 - SHELL.bram36, dsp=XC7Z020.dsp - SHELL.dsp)


def fits(res: Resources) -> bool:
    b = budget()
    return res.lut <= b.lut and res.ff <= b.ff and res.bram36 <= b.bram36 and res.dsp <= b.dsp


def folding_path(name: str) -> Path:
    return ROOT / "bench" / "foldings" / f"{name}.hybrid.json"


def proposal(name: str, net: Network) -> tuple[Network, dict[str, str]]:
    """The network with its proposed folding, and the proposed placements (the folding
    file also holds ``"placements"``, which :func:`load_folding` does not read)."""
    path = folding_path(name)
    if not path.exists():
        return net, hybrid_placements(net, DESIGN_PORTS)
    data = json.loads(path.read_text())
    placements = data.pop("placements", {})
    tmp = path.with_suffix(".layers.tmp")
    tmp.write_text(json.dumps(data))
    try:
        folded = apply_folding(net, load_folding(tmp))
    finally:
        tmp.unlink()
    return folded, placements


# -- the folding search ------------------------------------------------------------------------

def _candidates(info) -> list[tuple[int, int]]:
    """Every (PE, SIMD) of a layer with at most 4096 lanes (SIMD dividing the input
    channels for a conv, as :mod:`lowbit_hdl.ir` requires)."""
    lay = info.layer
    simds = divisors(info.mw)
    if isinstance(lay, Conv):
        simds = [s for s in simds if info.in_shape[0] % s == 0]
    return [(pe, simd) for pe in divisors(info.mh) for simd in simds if pe * simd <= 4096]


class Search:
    """Folding search for the hybrid pipeline at :data:`DESIGN_PORTS` ports.

    Placements: the rule (:func:`lowbit_hdl.flow.resources.hybrid_placements`) applied to
    the network's own folding, then held. One frame's latency is about the slowest onchip
    (streaming) layer plus the DDR layers one after another, so the search splits the
    target: each onchip layer takes the cheapest (PE, SIMD) meeting a cycle budget
    ``t_front`` (cost: LUT + BRAM36 + DSP as shares of the budget; the fastest when none
    meets it); the tiled/stream layers start at their cheapest folding and the one whose
    next faster folding saves the most cycles per unit of cost gets it, until their
    cycles add up to the rest of the target (less 10 %). ``t_front`` runs over a grid;
    the result is the cheapest design that fits and meets the target with a 5 % margin,
    else the fastest that fits, else (none fits) the one least over budget."""

    def __init__(self, net: Network, target_ms: float) -> None:
        self.net = net
        self.infos = {i.name: i for i in net.infer() if i.is_mvtu}
        self.cands = {n: _candidates(i) for n, i in self.infos.items()}
        self.target = target_ms * CLOCK_MHZ * 1e3
        self.place = hybrid_placements(net, DESIGN_PORTS)
        self.cache: dict = {}
        est = estimate_hybrid(net, self.place, DESIGN_PORTS)
        self.fixed = Resources()
        for s in est.stages:  # pools, FIFOs, converters, I/O, DDR control: held fixed
            if s.kind not in ("mvtu", "swu"):
                self.fixed += s.res

    def _layer(self, name: str, pe: int, simd: int) -> tuple[int, Resources]:
        key = (name, pe, simd)
        if key not in self.cache:
            net = apply_folding(self.net, Folding({name: LayerFolding(pe, simd)}))
            pl = self.place[name]
            cyc = next(c for c in hybrid_cost(net, DESIGN_PORTS, {name: pl}).layers
                       if c.name == name).cycles
            info = next(i for i in net.infer() if i.name == name)
            res = placement_resources(info, pl, DESIGN_PORTS)
            if isinstance(info.layer, Conv):
                res += window_resources(info)
            self.cache[key] = (cyc, res)
        return self.cache[key]

    def _pick(self, name: str, limit: float) -> tuple[int, int]:
        b = budget()

        def score(ps: tuple[int, int]) -> float:
            r = self._layer(name, *ps)[1]
            return r.lut / b.lut + r.bram36 / b.bram36 + r.dsp / b.dsp

        ok = [ps for ps in self.cands[name] if self._layer(name, *ps)[0] <= limit]
        if ok:
            return min(ok, key=score)
        return min(self.cands[name], key=lambda ps: (self._layer(name, *ps)[0], score(ps)))

    def design(self, t_front: float) -> tuple[Network, float, Resources]:
        front = [n for n in self.infos if self.place[n] == "onchip"]
        back = [n for n in self.infos if self.place[n] != "onchip"]
        left = max(0.0, 0.9 * self.target - 1.05 * t_front)
        fold = {n: self._pick(n, t_front) for n in front}
        fold.update({n: self._pick(n, float("inf")) for n in back})
        b = budget()

        def score(n: str, ps: tuple[int, int]) -> float:
            r = self._layer(n, *ps)[1]
            return r.lut / b.lut + r.bram36 / b.bram36 + r.dsp / b.dsp

        while sum(self._layer(n, *fold[n])[0] for n in back) > left:
            best = None
            for n in back:
                now = self._layer(n, *fold[n])[0]
                faster = [ps for ps in self.cands[n] if self._layer(n, *ps)[0] <= 0.8 * now]
                if not faster:
                    continue
                ps = min(faster, key=lambda q, n=n: score(n, q))
                gain = (now - self._layer(n, *ps)[0]) / max(1e-6, score(n, ps)
                                                             - score(n, fold[n]))
                if best is None or gain > best[0]:
                    best = (gain, n, ps)
            if best is None:
                break
            fold[best[1]] = best[2]
        net = apply_folding(self.net, Folding({n: LayerFolding(*ps) for n, ps in fold.items()}))
        res = Resources() + self.fixed
        for n, ps in fold.items():
            res += self._layer(n, *ps)[1]
        lat = hybrid_cost(net, DESIGN_PORTS, self.place, CLOCK_MHZ).latency_cycles
        return net, lat, res

    def run(self) -> tuple[Network, dict[str, str], float, Resources]:
        b = budget()
        best = None
        for frac in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7):
            net, lat, res = self.design(frac * self.target)
            over = max(res.lut / b.lut, res.bram36 / b.bram36, res.dsp / b.dsp)
            cost = res.lut / b.lut + res.bram36 / b.bram36 + res.dsp / b.dsp
            if not fits(res):  # none fits: the least over budget among those on target
                key = (3, over) if lat <= 0.95 * self.target else (4, over)
            else:
                key = (0, cost) if lat <= 0.95 * self.target else (1, lat)
            if best is None or key < best[0]:
                best = (key, net, lat, res)
        assert best is not None
        _, net, lat, res = best
        return net, self.place, lat / (CLOCK_MHZ * 1e3), res


def search(name: str, net: Network) -> dict:
    s = Search(net, TARGET_MS.get(name, 1e9))
    folded, place, lat, res = s.run()
    out = {i.name: {"pe": i.layer.pe, "simd": i.layer.simd} for i in folded.infer()
           if i.is_mvtu}
    out["placements"] = place
    print(f"{name}: search reached {lat:.2f} ms at {DESIGN_PORTS} ports, {res}",
          file=sys.stderr)
    return out


# -- the report --------------------------------------------------------------------------------

def _fit_line(res: Resources) -> str:
    d = XC7Z020
    cells = [f"{k.upper() if k != 'bram36' else 'BRAM36'} {getattr(res, k):,g} "
             f"({100 * getattr(res, k) / getattr(d, k):.0f} %)" for k in
             ("lut", "ff", "bram36", "dsp")]
    tot = res + SHELL
    ok = "fits" if fits(res) and tot.bram36 <= d.bram36 else "does NOT fit"
    return (", ".join(cells) + f"; + shell {SHELL.lut:,} LUT / {SHELL.bram36:g} BRAM36 → "
            f"{tot.lut:,} LUT, {tot.bram36:g} BRAM36 of {d.lut:,} / {d.bram36}: {ok} "
            f"(LUT budget {budget().lut:,})")


def best_engine(net: Network, ports: int) -> tuple[EngineConfig, object, Resources]:
    """The fastest engine lane option that fits (or the smallest when none does)."""
    best = None
    for pe, simd in ENGINE_LANES:
        cfg = EngineConfig(pe=pe, simd=simd)
        cost = engine_cost(net, cfg, ports, CLOCK_MHZ)
        res = estimate_engine(net, cfg, ports).total
        key = (not fits(res), cost.latency_cycles if fits(res) else res.lut)
        if best is None or key < best[0]:
            best = (key, cfg, cost, res)
    assert best is not None
    return best[1], best[2], best[3]


def report(name: str, as_is: bool) -> dict:
    net0 = load_network(str(ROOT / "networks" / f"{name}.py"), seed=None)
    if as_is:
        net, placements = net0, hybrid_placements(net0, DESIGN_PORTS)
        origin = "the network file's own folding, placements by the rule"
    else:
        net, placements = proposal(name, net0)
        origin = (f"proposed folding {folding_path(name).relative_to(ROOT)}"
                  if folding_path(name).exists() else "no proposal file: own folding")
    print("=" * 100)
    print(f"{name}  ({origin})")
    print("=" * 100)
    summary: dict = {"network": name, "hybrid": {}, "engine": {}}
    moved = sorted(n for n, p in placements.items() if p != "onchip")
    for ports in PORTS:
        cost = hybrid_cost(net, ports, placements, CLOCK_MHZ)
        if ports == DESIGN_PORTS:
            print(format_hybrid(net, cost, f"moved to DDR: {', '.join(moved) or 'none'}"))
            print()
        summary["hybrid"][ports] = cost
    res = estimate_hybrid(net, placements, DESIGN_PORTS).total
    summary["hybrid_res"] = res
    print("hybrid totals (estimates):")
    for ports in PORTS:
        c = summary["hybrid"][ports]
        need = c.ddr_bytes * c.fps / 1e6
        print(f"  {ports} port(s): latency {c.latency_ms:7.2f} ms, {c.fps:7.1f} frames/s "
              f"({c.bound}), DDR {c.ddr_bytes / 1e6:6.3f} MB/frame, needs {need:6.0f} MB/s "
              f"of {ports * 800} MB/s")
    print(f"  resources at {DESIGN_PORTS} ports: {_fit_line(res)}")
    print()
    cfg, ecost, eres = best_engine(net0, DESIGN_PORTS)
    print(format_engine(net0, ecost))
    print("engine totals (estimates):")
    for ports in PORTS:
        c = engine_cost(net0, cfg, ports, CLOCK_MHZ)
        summary["engine"][ports] = c
        print(f"  {ports} port(s): latency {c.latency_ms:7.2f} ms, {c.fps:7.1f} frames/s, "
              f"DDR {c.ddr_bytes / 1e6:6.3f} MB/frame, needs {c.bandwidth_mb_s:6.0f} MB/s of "
              f"{ports * 800} MB/s; {c.bound}")
    print(f"  resources ({cfg.pe}×{cfg.simd} low-bit lanes): {_fit_line(eres)}")
    summary["engine_res"] = eres
    if name in TARGET_MS:
        h = summary["hybrid"][DESIGN_PORTS].latency_ms
        e = summary["engine"][DESIGN_PORTS].latency_ms
        print(f"target ≤ {TARGET_MS[name]:g} ms: hybrid {h:.2f} ms "
              f"({'met' if h <= TARGET_MS[name] else 'MISSED'}), engine {e:.2f} ms "
              f"({'met' if e <= TARGET_MS[name] else 'MISSED'}) at {DESIGN_PORTS} ports")
    print()
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--as-is", action="store_true", help="use the networks' own foldings")
    p.add_argument("--search", action="store_true",
                   help="run the folding search and write bench/foldings/NET.hybrid.json")
    p.add_argument("networks", nargs="*", default=list(NETWORKS))
    args = p.parse_args(argv)
    if args.search:
        for name in args.networks:
            if name not in TARGET_MS:
                continue
            net = load_network(str(ROOT / "networks" / f"{name}.py"), seed=None)
            out = search(name, net)
            folding_path(name).write_text(json.dumps(out, indent=2) + "\n")
            print(f"wrote {folding_path(name).relative_to(ROOT)}")
        return 0
    for r in REFERENCES:
        print("reference: " + r)
    print(f"DDR: one 64-bit word per cycle per HP port at {CLOCK_MHZ:g} MHz = "
          f"{8 * CLOCK_MHZ:g} MB/s per port; all figures are model ESTIMATES")
    print()
    for name in args.networks:
        report(name, args.as_is)
    return 0


if __name__ == "__main__":
    sys.exit(main())
