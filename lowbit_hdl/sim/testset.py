"""Real test images through the generated RTL: the ``sim --images/--dataset`` mode of the
``sim`` command (:mod:`lowbit_hdl.sim.sim_cmd`).

Images are read by the runtime's test-set loader
(:func:`lowbit_hdl.runtime.preprocess.load_test_set`) and turned into input frames by
:func:`~lowbit_hdl.runtime.preprocess.to_frames` (the quantisation the board runtime uses),
then streamed through the design on the fast path (:func:`lowbit_hdl.sim.fast.simulate_fast`,
the default when Verilator is here) or under cocotb
(:func:`lowbit_hdl.sim.network.simulate_network`). Reported: accuracy when the test set has
labels, bit-exact agreement with the golden model (mismatch count and first indices),
steady-state cycles per frame, and simulated cycles per second. Progress goes to stderr
(:class:`lowbit_hdl.progress.Reporter`): a live line on a terminal, a line every
``PROGRESS_EVERY_S`` seconds otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TextIO

import numpy as np

from ..golden import decide
from ..ir import Network
from ..progress import Reporter
from .fast import FastProgress

__all__ = ["Progress", "add_arguments", "load_frames", "run"]

PROGRESS_EVERY_S = 10.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The test-set options of the ``sim`` command."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--images", default=None, metavar="FILE",
                   help="test images: .npz ('images' uint8 and optionally 'labels', or the "
                        "JPEG CIFAR-10 copy cifar10_jpeg.npz), MNIST IDX "
                        "(t10k-images-idx3-ubyte[.gz]) or CIFAR-10 test_batch.bin")
    g.add_argument("--dataset", default=None, metavar="DIR",
                   help="a folder holding such a test set (e.g. .../MNIST/raw)")
    p.add_argument("--count", type=int, default=None,
                   help="use the first N images of the test set (default: all)")
    e = p.add_mutually_exclusive_group()
    e.add_argument("--fast", dest="engine", action="store_const", const="fast",
                   help="Verilator with the C++ stream harness (default for --images/"
                        "--dataset when Verilator is installed)")
    e.add_argument("--cocotb", dest="engine", action="store_const", const="cocotb",
                   help="cocotb testbench (Python drives every cycle; slow)")
    p.add_argument("--chunk", type=int, default=None,
                   help="frames per harness run on the fast path (default: about 4M "
                        "cycles' worth, shared among the workers)")
    p.add_argument("--workers", type=int, default=None,
                   help="harness processes side by side on the fast path (default: one per "
                        "CPU)")


def load_frames(net: Network, images: str | None, dataset: str | None, count: int | None
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Input frames (N×C×H×W of the network's input type) and labels of a test set."""
    from ..runtime.preprocess import load_test_set, to_frames

    imgs, labels = load_test_set(images if images is not None else dataset)
    if count is not None:
        if count < 1:
            raise ValueError("--count must be ≥ 1")
        imgs = imgs[:count]
        labels = None if labels is None else labels[:count]
    frames = to_frames(imgs, net.input_shape, str(net.input_dtype), convert=True)
    return frames, labels


class Progress:
    """Frames done, mismatches and accuracy so far, simulated cycles per second and time
    left, on one line (a :func:`~lowbit_hdl.sim.fast.simulate_fast` progress callback)."""

    def __init__(self, net: Network, labels: np.ndarray | None = None,
                 out: TextIO | None = None) -> None:
        self.net = net
        self.label = net.name
        self.labels = labels
        self.reporter = Reporter("[sim]", out, every=PROGRESS_EVERY_S)
        self.t0 = time.monotonic()

    def __call__(self, p: FastProgress) -> None:
        done, total, cycles, sim_seconds = p.done, p.total, p.sim_cycles, p.sim_seconds
        now = time.monotonic() - self.t0
        rate = cycles / sim_seconds if sim_seconds else 0.0
        left = now * (total - done) / done if done else 0.0
        acc = ""
        if self.labels is not None and len(p.outputs):
            k = len(p.outputs)
            hits = int(np.sum(decide(self.net, p.outputs) == self.labels[:k]))
            acc = f", accuracy {hits / k:.2%} of {k:,}"
        line = (f"{self.label}: {done:,}/{total:,} frames, {p.mismatches} mismatch(es)"
                f"{acc}, {cycles:,} cycles, {rate:,.0f} cycles/s, {now:.0f} s elapsed, "
                f"~{left:.0f} s left")
        if done >= total:
            self.reporter.finish(line)
        else:
            self.reporter.update(line)


def run(args: argparse.Namespace, net: Network) -> int:
    """Run the test set through ``net``'s design; returns the exit status."""
    from .fast import fast_available, simulate_fast
    from .network import simulate_network

    engine = args.engine or ("fast" if fast_available() else "cocotb")
    t0 = time.monotonic()
    frames, labels = load_frames(net, args.images, args.dataset, args.count)
    n = len(frames)
    stall = args.stall or 0.0
    print(f"[sim] {net.name}: {n:,} test images ({time.monotonic() - t0:.1f} s to load) "
          f"through the RTL on the {engine} path"
          + (f" (then again with stall {stall:g})" if stall else ""),
          file=sys.stderr, flush=True)
    if engine == "fast":
        res = simulate_fast(net, stall=stall, seed=args.seed, images=frames,
                            clock_mhz=args.clock_mhz, chunk=args.chunk,
                            workers=args.workers or os.cpu_count() or 1,
                            progress=Progress(net, labels),
                            log=lambda m: print(f"[sim] {m}", file=sys.stderr, flush=True))
    else:
        res = simulate_network(net, simulator=args.simulator, stall=stall, seed=args.seed,
                               images=frames, clock_mhz=args.clock_mhz,
                               waves=getattr(args, "wave", None))
    print(res.summary(args.clock_mhz))
    if labels is not None:
        acc = float(np.mean(decide(net, res.outputs) == labels))
        gold = float(np.mean(decide(net, res.expected) == labels))
        print(f"accuracy: {acc:.2%} on {n:,} images (golden model: {gold:.2%})")
    bad = res.mismatched_frames
    if bad:
        print(f"MISMATCH with the golden model on {len(bad):,} of {n:,} images; first: "
              f"{bad[:10]}")
    else:
        print(f"bit-exact with the golden model on all {n:,} images")
    wall = time.monotonic() - t0
    cycles = getattr(res, "sim_cycles", None)
    if cycles:
        print(f"end to end: {wall:.1f} s for {n:,} images ({cycles / wall:,.0f} simulated "
              f"cycles per wall second, loading and golden model included)")
    return 0 if res.ok else 1
