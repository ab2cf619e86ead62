"""Simulation speed benchmark (not a test): simulated clock cycles per second of the whole
generated design on the fast path (Verilator + C++ stream harness, :mod:`lowbit_hdl.sim.fast`)
and on the cocotb path (:func:`lowbit_hdl.sim.network.simulate_network`, a few frames).

    python bench/sim_speed.py                      # TFC-W1A1, LFC-W1A1, CNV-W1A1, both paths
    python bench/sim_speed.py --only cnv --no-cocotb
    python bench/sim_speed.py --cocotb-simulator icarus   # no C++ build for the cocotb path

Networks: TFC-W1A1 is ``networks/tfc_w1a1_mnist.py`` (the trained TFC), LFC-W1A1
``networks/lfc_w1a1.py`` (random weights, seed 0), CNV-W1A1 the trained
``shared/trained/cnv_w1a1_approxsign_s1.npz`` when it is there, else
``networks/cnv_w1a1.py`` (the weights change the Verilog, not its speed). Builds are cached
(``sim_build/``) and their time is reported apart, as is the first-call compile.

Figures: fast ``wall`` = cycles / wall time of the simulation phase with ``--workers``
harness processes side by side (default: one per CPU; frames split into that many chunks);
fast ``per CPU s`` = cycles / CPU time of the harness processes (what one process does with a
core to itself, whatever the load); fast ``end to end`` = cycles / wall time of
:func:`simulate_fast` plus the golden model's (packing, process starts and the golden model
included; build excluded). The golden model's outputs are computed before the simulation
phase and handed to :func:`simulate_fast` (``expected``), so that the ``wall`` figure is
the harness processes' alone; ``--golden-during`` computes them during it instead, as
``lowbit_hdl sim`` does (the golden model then takes CPU time from the harness processes on
a machine with as many cores as processes); cocotb = cycles of the no-stall
pass / wall time of :func:`simulate_network` (simulator start, golden model included; build
excluded by a one-frame warm-up run), and ``marginal``: the extra cycles over the extra
time of that run against the one-frame run (the fixed cost of a run taken out). The
machine's load is printed: other processes slow both paths.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lowbit_hdl.flow.plan import plan_network  # noqa: E402
from lowbit_hdl.flow.top import TOP_NAME, NetworkTop, elaborate_verilog  # noqa: E402
from lowbit_hdl.golden import forward  # noqa: E402
from lowbit_hdl.netfile import load_network  # noqa: E402
from lowbit_hdl.sim.fast import build_harness, simulate_fast  # noqa: E402
from lowbit_hdl.sim.network import random_frames, simulate_network  # noqa: E402

TRAINED_CNV = ROOT.parent / "shared" / "trained" / "cnv_w1a1_approxsign_s1.npz"
#: title, network file, frames on the fast path, frames on the cocotb path
NETS = {
    "tfc": ("TFC-W1A1", ROOT / "networks" / "tfc_w1a1_mnist.py", 2000, 200),
    "lfc": ("LFC-W1A1", ROOT / "networks" / "lfc_w1a1.py", 500, 20),
    "cnv": ("CNV-W1A1", TRAINED_CNV if TRAINED_CNV.exists()
            else ROOT / "networks" / "cnv_w1a1.py", 200, 3),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=None, help="tfc, lfc or cnv (comma-separated)")
    ap.add_argument("--fast-frames", type=int, default=None,
                    help="frames on the fast path (default: TFC 2000, LFC 500, CNV 200)")
    ap.add_argument("--cocotb-frames", type=int, default=None,
                    help="frames on the cocotb path (default: TFC 200, LFC 20, CNV 3)")
    ap.add_argument("--no-cocotb", action="store_true", help="fast path only")
    ap.add_argument("--cocotb-simulator", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="harness processes side by side on the fast path (default: CPUs)")
    ap.add_argument("--threads", type=int, default=None,
                    help="Verilator --threads for the fast build (default: single-threaded)")
    ap.add_argument("--golden-during", action="store_true",
                    help="compute the golden model during the fast simulation phase (as "
                         "`lowbit_hdl sim` does) instead of before it")
    args = ap.parse_args()
    keys = args.only.split(",") if args.only else list(NETS)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    t0 = time.monotonic()
    rows = []
    for key in keys:
        title, path, frames, slow_frames = NETS[key]
        frames = args.fast_frames or frames
        slow_frames = args.cocotb_frames or slow_frames
        net = load_network(path, seed=0)
        plan = plan_network(net)
        t = time.monotonic()
        verilog = elaborate_verilog(NetworkTop(net, plan), TOP_NAME)
        elab = time.monotonic() - t
        t = time.monotonic()
        build_harness(verilog, TOP_NAME, threads=args.threads,
                      log=lambda m: print(f"  {m}", flush=True))
        build = time.monotonic() - t
        x = random_frames(net, frames, 0)  # simulate_fast's frames (seed 0)
        t = time.monotonic()
        gold = None if args.golden_during else forward(net, x, keep=False).output
        golden_s = time.monotonic() - t
        fast = simulate_fast(net, frames, images=x, expected=gold, plan=plan, verilog=verilog,
                             threads=args.threads, workers=args.workers)
        end_to_end = fast.sim_cycles / (fast.wall_seconds - fast.build_seconds + golden_s)
        if gold is not None:
            print(f"  golden model of {frames} frames computed before the simulation phase "
                  f"in {golden_s:.1f} s (counted in 'end to end' only)", flush=True)
        print(f"{title} ({path.name}): elaborated in {elab:.0f} s, fast build {build:.0f} s; "
              f"fast path {frames} frames, {fast.sim_cycles:,} cycles: "
              f"{fast.cycles_per_second:,.0f} cycles/s (wall, {fast.workers} processes), "
              f"{fast.cycles_per_cpu_second:,.0f} per CPU second, {end_to_end:,.0f} cycles/s "
              f"(end to end); {fast.cycles_per_frame:,.1f} cycles/frame; "
              f"{'bit-exact' if fast.ok else 'MISMATCH'}", flush=True)
        row = [title, f"{fast.cycles_per_second:,.0f}", f"{fast.cycles_per_cpu_second:,.0f}",
               f"{end_to_end:,.0f}", "-"]
        if not args.no_cocotb:
            # one frame first (builds, and gives the fixed cost of a run), then more
            one = simulate_network(net, 1, args.cocotb_simulator, plan=plan, verilog=verilog)
            slow = simulate_network(net, slow_frames, args.cocotb_simulator, plan=plan,
                                    verilog=verilog)
            cyc = slow.total_cycles["stall 0"]
            rate = cyc / slow.wall_seconds
            more = (cyc - one.total_cycles["stall 0"]) / max(1e-9, slow.wall_seconds
                                                              - one.wall_seconds)
            print(f"  cocotb ({args.cocotb_simulator}) {slow_frames} frames, {cyc:,} cycles "
                  f"in {slow.wall_seconds:.1f} s: {rate:,.0f} cycles/s; beyond the fixed cost "
                  f"of a run (1 frame: {one.wall_seconds:.1f} s) {more:,.0f} cycles/s; "
                  f"{'bit-exact' if slow.ok else 'MISMATCH'}", flush=True)
            row[4] = f"{rate:,.0f} ({more:,.0f} marginal)"
            if fast.cycles_per_frame and slow.cycles_per_frame:
                same = fast.cycles_per_frame == slow.cycles_per_frame
                print(f"  steady state: fast {fast.cycles_per_frame:,.1f}, cocotb "
                      f"{slow.cycles_per_frame:,.1f} cycles/frame ({'same' if same else 'DIFFER'})")
        rows.append(row)
    print("\n| network | fast, wall (cycles/s) | fast, per CPU s | fast, end to end | cocotb |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
          f"{time.monotonic() - t0:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
