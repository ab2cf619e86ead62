"""Design study for networks larger than the chip (issue 13): the hybrid dataflow pipeline
against one runtime-configured engine, on AlexNet W1A2, Tiny-YOLO W1A3 and CNV-W1A1.

Every figure is an ESTIMATE from the analytic models (cycles and DDR bytes:
lowbit_hdl.ddrcost through lowbit_hdl.cost; resources: lowbit_hdl.flow.resources); nothing
here is measured. The topologies are read from networks/*.py as they are; the proposed
foldings (bench/foldings/*.json) and placements below are applied on top.

    python bench/large_networks.py                 # the study, with the proposed foldings
    python bench/large_networks.py --as-is         # the networks' own foldings
    python bench/large_networks.py --search        # re-run the folding search and print it
    python bench/large_networks.py --measure tfc_w1a1 cnv_w1a1
        # one frame's latency: the model against a Verilator run of today's dataflow design
        # (the hybrid with every layer onchip); builds the design (minutes)
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
ENGINE_LANES = [(16, 32), (16, 64), (32, 32), (32, 64), (64, 32), (48, 64), (64, 48),
                (64, 64), (32, 128), (96, 32), (64, 128)]


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
    return apply_folding(net, Folding.from_json(data, str(path))), placements


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
    the network's own folding, and each variant with one conv layer flipped between onchip
    and tiled; each set is held while the folding is searched.

    One frame's latency is about the slowest onchip (streaming) layer plus the DDR layers
    one after another, so a design splits the target: each onchip layer takes the cheapest
    (PE, SIMD) meeting a cycle budget ``t_front`` (cost: LUT + BRAM36 + DSP as shares of the
    budget; the fastest when none meets it); the tiled/stream layers start at their
    cheapest folding and the one whose next faster folding saves the most cycles per unit
    of cost gets it, until their cycles add up to the rest of the target (less 10 %).
    ``t_front`` runs over a grid. A design over budget is then *repaired*: the layer step
    to a cheaper folding that removes the most excess per cycle of latency it adds is
    taken until the design fits (or no step is left).

    The result: the cheapest fitting design within 95 % of the target, else the fastest
    fitting one, else the one least over budget.
    """

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
        key = (name, pe, simd, self.place[name])
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

    def _score(self, name: str, ps: tuple[int, int]) -> float:
        b = budget()
        r = self._layer(name, *ps)[1]
        return r.lut / b.lut + r.bram36 / b.bram36 + r.dsp / b.dsp

    def _pick(self, name: str, limit: float) -> tuple[int, int]:
        ok = [ps for ps in self.cands[name] if self._layer(name, *ps)[0] <= limit]
        if ok:
            return min(ok, key=lambda ps: self._score(name, ps))
        return min(self.cands[name],
                   key=lambda ps: (self._layer(name, *ps)[0], self._score(name, ps)))

    def evaluate(self, fold: dict[str, tuple[int, int]]) -> tuple[Network, int, Resources]:
        """(network, one frame's latency in cycles, resources) of a folding."""
        net = apply_folding(self.net, Folding({n: LayerFolding(*ps) for n, ps in fold.items()}))
        res = Resources() + self.fixed
        for n, ps in fold.items():
            res += self._layer(n, *ps)[1]
        return net, hybrid_cost(net, DESIGN_PORTS, self.place, CLOCK_MHZ).latency_cycles, res

    def design(self, t_front: float) -> dict[str, tuple[int, int]]:
        front = [n for n in self.infos if self.place[n] == "onchip"]
        back = [n for n in self.infos if self.place[n] != "onchip"]
        left = max(0.0, 0.9 * self.target - 1.05 * t_front)
        fold = {n: self._pick(n, t_front) for n in front}
        fold.update({n: self._pick(n, float("inf")) for n in back})
        while sum(self._layer(n, *fold[n])[0] for n in back) > left:
            best = None
            for n in back:
                now = self._layer(n, *fold[n])[0]
                faster = [ps for ps in self.cands[n] if self._layer(n, *ps)[0] <= 0.8 * now]
                if not faster:
                    continue
                ps = min(faster, key=lambda q, n=n: self._score(n, q))
                gain = (now - self._layer(n, *ps)[0]) / max(
                    1e-6, self._score(n, ps) - self._score(n, fold[n]))
                if best is None or gain > best[0]:
                    best = (gain, n, ps)
            if best is None:
                break
            fold[best[1]] = best[2]
        return fold

    def _excess(self, res: Resources) -> float:
        b = budget()
        return (max(0.0, res.lut / b.lut - 1) + max(0.0, res.bram36 / b.bram36 - 1)
                + max(0.0, res.dsp / b.dsp - 1))

    def repair(self, fold: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        """Step layers to cheaper foldings until the design fits (see the class doc)."""
        fold = dict(fold)
        _, lat, res = self.evaluate(fold)
        while not fits(res):
            exc = self._excess(res)
            best = None
            for n in fold:
                now = self._score(n, fold[n])
                cheaper = [ps for ps in self.cands[n] if self._score(n, ps) < now]
                if not cheaper:
                    continue
                # the fastest of the cheaper foldings: the smallest step down
                ps = min(cheaper, key=lambda q, n=n: (self._layer(n, *q)[0],
                                                      self._score(n, q)))
                trial = dict(fold, **{n: ps})
                _, tl, tr = self.evaluate(trial)
                gain = (exc - self._excess(tr)) / max(1.0, tl - lat)
                if gain > 0 and (best is None or gain > best[0]):
                    best = (gain, trial, tl, tr)
            if best is None:
                break
            _, fold, lat, res = best
        return fold

    def design_interval(self) -> tuple[Network, dict[str, str], Resources]:
        """The throughput reading of the target: every layer takes the cheapest folding
        whose steady-state cycles meet it (a frame every ``target`` cycles), for the
        cheapest of the placement variants."""
        best = None
        for place in self.placement_variants():
            self.place = place
            net, _, res = self.evaluate({n: self._pick(n, self.target) for n in self.infos})
            key = (not fits(res), self._excess(res), self._score_total(res))
            if best is None or key < best[0]:
                best = (key, net, dict(place), res)
        assert best is not None
        return best[1], best[2], best[3]

    def _score_total(self, res: Resources) -> float:
        b = budget()
        return res.lut / b.lut + res.bram36 / b.bram36 + res.dsp / b.dsp

    def placement_variants(self) -> list[dict[str, str]]:
        """The rule's placements, and each with one conv layer's placement flipped."""
        base = hybrid_placements(self.net, DESIGN_PORTS)
        out = [base]
        for n, info in self.infos.items():
            if isinstance(info.layer, Conv):
                out.append(dict(base, **{n: "onchip" if base[n] == "tiled" else "tiled"}))
        return out

    def run(self) -> tuple[Network, dict[str, str], float, Resources]:
        """The search's result: (network, placements, latency in ms, resources). The
        resources are :func:`estimate_hybrid`'s for the result; when they exceed what the
        search counted (FIFOs and converters follow the folding), the search runs again
        with the difference held back, up to three times."""
        margin = Resources()
        for _ in range(3):
            net, place, lat, res = self._run(margin)
            full = estimate_hybrid(net, place, DESIGN_PORTS).total
            if fits(full) or not fits(res):
                break
            margin = margin + Resources(lut=max(0, full.lut - res.lut), ff=0,
                                        bram36=max(0.0, full.bram36 - res.bram36))
        return net, place, lat, full

    def _run(self, margin: Resources) -> tuple[Network, dict[str, str], float, Resources]:
        best = None
        self.fixed_base = getattr(self, "fixed_base", self.fixed)
        self.fixed = self.fixed_base + margin
        self.least_bram = float("inf")
        for place in self.placement_variants():
            self.place = place
            for frac in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7):
                fold = self.design(frac * self.target)
                for f in (fold, self.repair(fold)):
                    net, lat, res = self.evaluate(f)
                    self.least_bram = min(self.least_bram, res.bram36 - margin.bram36)
                    on_target = lat <= 0.95 * self.target
                    if fits(res):
                        key = (0, self._score_total(res)) if on_target else (1, lat)
                    else:  # over budget: those on target first, least excess first
                        key = (2 if on_target else 3, self._excess(res))
                    if best is None or key < best[0]:
                        best = (key, net, dict(place), lat, res - margin)
        assert best is not None
        _, net, place, lat, res = best
        return net, place, lat / (CLOCK_MHZ * 1e3), res


def search(name: str, net: Network) -> dict:
    s = Search(net, TARGET_MS.get(name, 1e9))
    folded, place, lat, res = s.run()
    out = {i.name: {"pe": i.layer.pe, "simd": i.layer.simd} for i in folded.infer()
           if i.is_mvtu}
    out["placements"] = place
    print(f"{name}: search reached {lat:.2f} ms at {DESIGN_PORTS} ports, {res} "
          f"({'fits' if fits(res) else 'does NOT fit'}); the least block RAM of any design "
          f"tried: {s.least_bram:g} BRAM36", file=sys.stderr)
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
        inet, iplace, ires = Search(net0, TARGET_MS[name]).design_interval()
        ic = hybrid_cost(inet, DESIGN_PORTS, iplace, CLOCK_MHZ)
        print(f"hybrid folded for a frame EVERY {TARGET_MS[name]:g} ms (throughput reading): "
              f"interval {ic.interval / (CLOCK_MHZ * 1e3):.2f} ms, one frame "
              f"{ic.latency_ms:.2f} ms; {_fit_line(ires)}")
        summary["hybrid_interval"] = (ic, ires)
        t = TARGET_MS[name]
        for arch, c, r in (("hybrid", summary["hybrid"][DESIGN_PORTS], res),
                           ("engine", summary["engine"][DESIGN_PORTS], eres)):
            print(f"target one frame ≤ {t:g} ms, {arch}: {c.latency_ms:.2f} ms at "
                  f"{DESIGN_PORTS} ports, {'met' if c.latency_ms <= t else 'MISSED'}, "
                  f"{'fits' if fits(r) else 'does NOT fit'}")
    print()
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--as-is", action="store_true", help="use the networks' own foldings")
    p.add_argument("--search", action="store_true",
                   help="run the folding search and write bench/foldings/NET.hybrid.json")
    p.add_argument("--measure", action="store_true",
                   help="simulate today's dataflow design of each network (random weights, "
                   "3 frames, no stalls) and print the model's one-frame latency beside the "
                   "measured one")
    p.add_argument("networks", nargs="*", default=list(NETWORKS))
    args = p.parse_args(argv)
    if args.measure:
        from lowbit_hdl.sim.fast import simulate_fast

        for name in args.networks:
            net = load_network(str(ROOT / "networks" / f"{name}.py"), seed=0)
            if net.check_params(allow_missing=True):
                net = net.randomize(0)
            r = simulate_fast(net, frames=3, stall=0.0, seed=0)
            model = hybrid_cost(net, 1)
            lat = r.first_frame_latency
            print(f"{name}: one frame, model {model.latency_cycles:,} cycles, measured "
                  f"{lat:,} ({(model.latency_cycles - lat) / lat:+.1%}); cycles per frame, "
                  f"model {model.interval:,}, measured {r.cycles_per_frame:,.0f}")
        return 0
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
