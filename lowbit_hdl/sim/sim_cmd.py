"""``python -m lowbit_hdl sim NET --frames N [--simulator verilator|icarus] [--stall P]
[--random-weights] [--seed S] [--clock-mhz F] [--folding FILE | --target-fps N] [--wave FILE]``
``python -m lowbit_hdl sim NET --images FILE | --dataset DIR [--count N] [--fast | --cocotb]``.

Builds the top level, streams N frames through it under cocotb (no stalls, then with random
stalls at both AXI-Stream ends when ``--stall`` > 0), checks every output bit-exactly
against the golden model and prints measured cycles per frame next to the analytic figure.
Exit status 1 when an output differs or the framing is wrong.

With ``--images``/``--dataset`` real test images go through the RTL instead
(:mod:`lowbit_hdl.sim.testset`), by default on the fast path (:mod:`lowbit_hdl.sim.fast`);
``--fast`` also runs the random frames on the fast path.

``--wave FILE`` records a waveform of the cocotb run (Verilator: VCD, Icarus: FST; see
:data:`lowbit_hdl.sim.runner.WAVE_SUFFIX`); the fast path records none, so ``--wave`` with
``--fast`` is an error and ``--wave`` makes ``--images``/``--dataset`` default to cocotb.
Progress (builds, frames) goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UsageError, positive_float
from ..flow.build import choose_folding
from ..flow.folding import load_folding
from ..netfile import load_network, random_weights_note
from . import testset
from .network import simulate_network
from .runner import check_wave_file

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="networks/<net>.py topology or saved .npz network")
    p.add_argument("--frames", type=int, default=10, help="frames to stream (default 10)")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--stall", type=float, default=None,
                   help="probability per cycle of a pause on each AXI-Stream side in the "
                        "stall pass (0: no stall pass; default 0.3, with --images/--dataset 0)")
    p.add_argument("--random-weights", action="store_true",
                   help="give layers without trained weights random ones (from --seed)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random parameters (--random-weights), frames and stalls")
    p.add_argument("--clock-mhz", type=positive_float, default=100.0,
                   help="clock for frames/s (MHz, > 0)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--folding", type=Path, default=None, help="folding JSON to apply")
    g.add_argument("--target-fps", type=positive_float, default=None,
                   help="auto-fold for this rate")
    p.add_argument("--wave", type=Path, default=None, metavar="FILE",
                   help="write a waveform of the cocotb run to FILE (.vcd with Verilator, "
                        ".fst with Icarus; not with --fast)")
    testset.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    if args.frames < 1:
        print("lowbit_hdl sim: error: --frames must be ≥ 1", file=sys.stderr)
        return 2
    test_set = args.images is not None or args.dataset is not None
    if args.stall is None:
        args.stall = 0.0 if test_set else 0.3
    if not 0.0 <= args.stall < 1.0:
        print("lowbit_hdl sim: error: --stall must be in [0, 1)", file=sys.stderr)
        return 2
    if args.wave is not None:
        if args.engine == "fast":
            raise UsageError("--wave: the fast path (--fast) records no waveforms; use "
                             "--cocotb")
        args.engine = "cocotb"
        args.wave = check_wave_file(args.wave, args.simulator)
    net = load_network(args.network, seed=args.seed if args.random_weights else None,
                       require_params=True)
    if net.random_weights:
        print(f"[sim] {random_weights_note(net)}", file=sys.stderr, flush=True)
    folding = load_folding(args.folding) if args.folding else None
    net, source, _ = choose_folding(net, folding=folding, target_fps=args.target_fps,
                                    clock_mhz=args.clock_mhz)
    if test_set:
        return testset.run(args, net)
    if args.engine == "fast":
        from .fast import simulate_fast

        res = simulate_fast(net, args.frames, args.stall, args.seed, clock_mhz=args.clock_mhz)
        print(res.summary(args.clock_mhz))
        return 0 if res.ok else 1
    print(f"[sim] {net.name}: elaborating and simulating {args.frames} frames on "
          f"{args.simulator}" + (f" (then again with stall {args.stall:g})"
                                 if args.stall else ""), file=sys.stderr, flush=True)
    res = simulate_network(net, args.frames, args.simulator, args.stall, args.seed,
                           clock_mhz=args.clock_mhz, waves=args.wave)
    print(res.summary(args.clock_mhz))
    return 0 if res.ok else 1
