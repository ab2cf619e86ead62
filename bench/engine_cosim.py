"""Whole frames of engine designs (``build --arch engine``) through the generated RTL:
Verilator and the fast harness (its DDR model serves the engine's image and the tail's
weights, its AXI4-Lite master starts the run), random weights and thresholds, bit-exact
against the golden model; prints the measured cycles per frame against the plan, the
first frame's latency (the figure the seed networks' targets are about), the DDR bytes per
frame and the control block's counters.

    python bench/engine_cosim.py cnv                     # CNV-W1A1, 32×32 lanes, 3 frames
    python bench/engine_cosim.py alexnet --frames 1      # DoReFa AlexNet W1A2, 64×32 lanes
    python bench/engine_cosim.py tiny-yolo --frames 1    # Tiny-YOLO W1A3, 32×64 lanes
    python bench/engine_cosim.py cnv --cocotb            # the cocotb path instead
    python bench/engine_cosim.py cnv --ports 2           # 2 HP ports: the engine's tiles
                                                         # over 2 read masters

The Verilator build takes minutes (cached afterwards); a frame of the seed networks is
about 3 M cycles.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lowbit_hdl.cost import EngineConfig  # noqa: E402
from lowbit_hdl.flow.build import engine_ports  # noqa: E402
from lowbit_hdl.flow.folding import apply_folding, load_folding  # noqa: E402
from lowbit_hdl.flow.plan import plan_network  # noqa: E402
from lowbit_hdl.netfile import load_network  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: network file, engine lanes (PE, SIMD), tail layers read from DDR, folding file of the
#: front and tail (None: the network's own)
CASES = {
    "cnv": ("networks/cnv_w1a1.py", (32, 32), [], None),
    "lfc": ("networks/lfc_w1a1.py", (32, 32), [], None),
    "alexnet": ("networks/dorefa_alexnet_w1a2.py", (64, 32), ["fc2"],
                "bench/foldings/dorefa_alexnet_w1a2.engine.json"),
    "tiny-yolo": ("networks/tiny_yolo_w1a3.py", (32, 64), [],
                  "bench/foldings/tiny_yolo_w1a3.engine.json"),
}


def run(name: str, frames: int, stall: float, seed: int, cocotb: bool, ports: int) -> bool:
    path, (pe, simd), ddr, folding = CASES[name]
    net = load_network(ROOT / path, seed=seed)
    if folding is not None:
        net = apply_folding(net, load_folding(ROOT / folding))
    cfg = EngineConfig(pe=pe, simd=simd, ports=engine_ports(ports, pe, simd))
    # as `build --hp-ports`: the engine and each DDR tail layer get up to `ports` masters
    plan = plan_network(net, engine=cfg, ddr_layers=ddr, hp_ports=ports, stream_ports=ports)
    tail = ", ".join(f"{r.layer} {r.masters} on HP {r.hps}" for r in plan.ddr.regions)
    print(f"== {net.name}: engine {pe}×{simd}, {ports} HP port(s), {cfg.ports} engine read "
          f"master(s) on HP ports {plan.ddr.engine.hps}{', tail ' + tail if tail else ''}, "
          f"front "
          f"{', '.join(i.name for i in plan.split.front)}, tail "
          f"{', '.join(i.name for i in plan.split.tail)}; {plan.ddr.bytes_per_frame:,} DDR "
          f"bytes per frame", flush=True)
    for r in plan.engine_layers:
        print(f"   {r['layer']:8s}{'+' + r['pool'] if r['pool'] else '':8s} nf {r['nf']:4d} "
              f"sf {r['sf']:4d} pixels {r['pixels']:6d}  {r['cycles']:>10,} cycles  "
              f"{r['tile_bytes']:>10,} tile bytes  {r['bound']}", flush=True)
    t0 = time.monotonic()
    if cocotb:
        from lowbit_hdl.sim.network import simulate_network

        res = simulate_network(net, frames=frames, stall=stall, plan=plan, seed=seed)
    else:
        from lowbit_hdl.sim.fast import simulate_fast

        res = simulate_fast(net, frames=frames, stall=stall, plan=plan, seed=seed,
                            log=lambda msg: print(f"[fast] {msg}", flush=True))
    print(res.summary())
    tail_cycles = max([s.cycles for s in plan.stages
                       if s.layer in {i.name for i in plan.split.tail}], default=0)
    print(f"plan: {plan.cycles_per_frame:,} cycles per frame, engine stage "
          f"{plan.stage('engine').cycles:,} per frame ({plan.engine_latency:,} for one frame), "
          f"slowest tail stage {tail_cycles:,}")
    if res.first_frame_latency:
        lat = res.first_frame_latency
        bound = plan.engine_latency + tail_cycles
        print(f"one frame: {lat:,} cycles = {lat / 1e5:.2f} ms at 100 MHz (plan: engine "
              f"latency + slowest tail stage = {bound:,}, {100 * (lat - bound) / bound:+.2f} %)")
    for pas, regs in res.registers.items():
        print(f"registers after pass {pas}: " + ", ".join(f"{k}={v:,}" for k, v in regs.items()
                                                         if k != "ID"))
    print(f"wall time with the build: {time.monotonic() - t0:.0f} s", flush=True)
    return res.ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nets", nargs="*", choices=sorted(CASES), default=["cnv"])
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--stall", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cocotb", action="store_true", help="the cocotb path (slow)")
    ap.add_argument("--ports", type=int, choices=(1, 2, 4), default=1,
                    help="HP ports (the engine gets as many read masters, default 1)")
    args = ap.parse_args()
    ok = all([run(n, args.frames, args.stall, args.seed, args.cocotb, args.ports)
              for n in args.nets])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
