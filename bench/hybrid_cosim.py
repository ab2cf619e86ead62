"""Whole-network co-simulation of hybrid designs (weights of some layers read from DDR):
frames back to back through the generated RTL under Verilator, against cocotbext-axi DDR
models with random AR/R pauses and random AXI-Stream stalls, bit-exact against the golden
model; prints measured against planned cycles per frame and the control block's counters.

    python bench/hybrid_cosim.py                  # LFC-W1A1 and CNV-W1A1, every layer in DDR
    python bench/hybrid_cosim.py cnv-mixed --frames 3 --stall 0.3   # conv4, conv5, fc0, fc1
    python bench/hybrid_cosim.py cnv --fast --frames 40 --stall 0.3  # the fast path

Each run builds the design with Verilator first (minutes for CNV). The DDR models give every
read master its own port, so the design is planned with one HP port per DDR layer (up to 4)
to keep the model's port-sharing bound out of the comparison.

``--fast`` runs the same check on the fast path (:func:`lowbit_hdl.sim.fast.simulate_fast`:
Verilator and the C++ harness with its DDR model and AXI4-Lite master, no Python per cycle)
and prints its simulated cycles per second (wall clock of the simulation phase, per harness
process, per CPU second) and the build time. ``--workers`` harness processes (default 1)
run chunks of the frames side by side; ``--chunk`` frames per chunk.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lowbit_hdl.flow.plan import plan_network  # noqa: E402
from lowbit_hdl.netfile import load_network  # noqa: E402
from lowbit_hdl.sim.fast import simulate_fast  # noqa: E402
from lowbit_hdl.sim.network import simulate_network  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: network file and the layers whose weights go to DDR (None: every Conv/FC layer)
CASES = {
    "cnv": ("networks/cnv_w1a1.py", None),
    "lfc": ("networks/lfc_w1a1.py", None),
    "cnv-mixed": ("networks/cnv_w1a1.py", ["conv4", "conv5", "fc0", "fc1"]),
}


def run(name: str, frames: int, stall: float, seed: int, simulator: str, fast: bool = False,
        workers: int = 1, chunk: int | None = None) -> bool:
    path, ddr = CASES[name]
    net = load_network(ROOT / path, seed=seed)
    if ddr is None:
        ddr = [i.name for i in net.infer() if i.is_mvtu]
    ports = 4 if len(ddr) > 2 else 2
    plan = plan_network(net, ddr_layers=ddr, hp_ports=ports)
    t0 = time.monotonic()
    if plan.ddr_port_cycles > max(s.cycles for s in plan.stages):
        print(f"note: the plan is bound by a shared HP port ({plan.ddr_port_cycles:,} words per "
              "frame); the DDR models give every read master its own port")
    if fast:
        res = simulate_fast(net, frames=frames, stall=stall, plan=plan, seed=seed,
                            workers=workers, chunk=chunk,
                            log=lambda msg: print(f"[fast] {msg}", flush=True))
    else:
        res = simulate_network(net, frames=frames, stall=stall, plan=plan, seed=seed,
                               simulator=simulator)
    layers = ", ".join(f"{r.layer} {r.placement}" for r in plan.ddr.regions)
    print(f"\n== {net.name}, hybrid: {layers} ({plan.ddr.bytes_per_frame:,} DDR bytes per "
          f"frame, {ports} HP ports)")
    print(res.summary())
    if fast:
        print(f"build (elaboration + compilation, cached afterwards): "
              f"{res.build_seconds:.0f} s")
    for pas, regs in res.registers.items():
        print(f"registers after pass {pas}: " + ", ".join(f"{k}={v:,}" for k, v in regs.items()
                                                         if k != "ID"))
    print(f"wall time with the build: {time.monotonic() - t0:.0f} s")
    return res.ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nets", nargs="*", choices=sorted(CASES), default=["lfc", "cnv"])
    ap.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--stall", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fast", action="store_true",
                    help="the fast path (Verilator + C++ harness) instead of cocotb")
    ap.add_argument("--workers", type=int, default=1, help="--fast: harness processes")
    ap.add_argument("--chunk", type=int, default=None, help="--fast: frames per harness run")
    a = ap.parse_args()
    ok = [run(n, a.frames, a.stall, a.seed, a.simulator, a.fast, a.workers, a.chunk)
          for n in a.nets]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
