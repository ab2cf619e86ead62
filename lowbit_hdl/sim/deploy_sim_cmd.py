"""``deploy-sim``: classify images (or detect objects) through the on-board runtime against
the simulated board.

    python -m lowbit_hdl deploy-sim networks/<net>.py [--images FILE.npz] [--count N]
        [--simulator verilator|icarus] [--batch N] [--stall P] [--per-frame] [--fast]
        [--wave FILE] [--arch dataflow|hybrid|auto] [--ddr-layers A,B] [--hp-ports N]
    python -m lowbit_hdl deploy-sim --build build/<net> [...]

The network is elaborated by the build flow (or a build folder's Verilog is taken), the
runtime's :class:`Accelerator` drives it through
:class:`~lowbit_hdl.sim.board.SimBoard` (AXI DMA model + Verilator/Icarus), and
every output is compared with :func:`lowbit_hdl.golden.forward`. ``--fast`` runs the same DMA
model (per-transfer ``tlast``, one S2MM transfer per output frame) in the Verilator C++ harness
of :mod:`lowbit_hdl.sim.fast` instead of cocotb. ``--wave FILE`` records a waveform of
each batch (cocotb only: Verilator VCD, Icarus FST; batch k ≥ 1 goes to
``<stem>.batch<k><suffix>``). Each batch shows a progress line on stderr. Prints the
predictions, the accuracy when the images come with labels, simulated cycles per image and
latency. Exit status 1 when any output differs from the golden model.

``--arch``, ``--ddr-layers`` and ``--hp-ports`` choose the design as ``build`` does
(:func:`lowbit_hdl.flow.build.plan_design`). A hybrid design (weights in DDR) runs on either
engine: the runtime packs the DDR layers' weights (computed from the network, or the
build's ``deploy/ddr_weights.npz`` with ``--build``) into a DDR image in the simulated
board's memory, the design's read masters are served from it (cocotbext-axi models, or the
harness's DDR model with ``--fast``), and its control-register accesses reach the RTL's
register file (see :mod:`lowbit_hdl.sim.board`); the performance counters are printed.

By the network's task: an "imagenet" network's images get ImageNet's preprocessing and the
top 5 are printed with their names; a "yolo-voc" network's images are letterboxed, its
output grids decoded into boxes (``--scale``/``--offset``/``--conf``), and the boxes are
compared with the golden grids' boxes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import (
    UsageError,
    UserError,
    layer_names,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)
from ..flow.build import ARCHS
from ..netfile import load_network, random_weights_note
from ..progress import Reporter
from ..tools import SIMULATORS

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", nargs="?", default=None,
                   help="networks/<net>.py topology or saved .npz network (elaborated with "
                        "its own folding); optional with --build")
    p.add_argument("--build", default=None, metavar="DIR",
                   help="simulate a build folder's design instead (rtl/lowbit_top.v, "
                        "layout.json and the <net>.npz it was made from)")
    p.add_argument("--images", default=None,
                   help="test images: .npz with 'images' (uint8, N×C×H×W or N×H×W[×C]) and "
                        "optionally 'labels', MNIST IDX or CIFAR-10 .bin (default: random "
                        "images)")
    p.add_argument("--count", type=positive_int, default=8,
                   help="number of images (default 8)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="frames per DMA round trip (default: all in one)")
    p.add_argument("--simulator", choices=SIMULATORS, default="verilator")
    p.add_argument("--stall", type=nonnegative_float, default=0.0,
                   help="probability per cycle of the DMA stalling either stream")
    p.add_argument("--per-frame", action="store_true",
                   help="one MM2S transfer per frame (tlast on every input frame)")
    p.add_argument("--fast", action="store_true",
                   help="run the DMA model in the Verilator C++ harness (no Python per cycle)")
    p.add_argument("--wave", type=Path, default=None, metavar="FILE",
                   help="write a waveform of the simulation to FILE (.vcd with Verilator, "
                        ".fst with Icarus; more batches: FILE's stem + .batch<k>; not with "
                        "--fast)")
    p.add_argument("--clock-mhz", type=positive_float, default=100.0)
    p.add_argument("--random-weights", action="store_true",
                   help="give layers without trained weights random ones (from --seed)")
    p.add_argument("--seed", type=int, default=0,
                   help="random images, stalls and weights (--random-weights)")
    p.add_argument("--show", type=nonnegative_int, default=10,
                   help="print this many predictions")
    p.add_argument("--arch", choices=ARCHS, default="dataflow",
                   help="as for build: dataflow (default), hybrid (the weights of "
                        "--ddr-layers in DDR), engine or auto")
    p.add_argument("--ddr-layers", type=layer_names, default=None, metavar="A,B,…",
                   help="hybrid: the Conv/FC layers whose weights live in DDR")
    p.add_argument("--hp-ports", type=int, choices=(1, 2, 4), default=1,
                   help="hybrid: Zynq HP ports for the weight reads (default 1)")
    p.add_argument("--engine-lanes", type=positive_int, nargs=2, metavar=("PE", "SIMD"),
                   default=None, help="engine: PE and SIMD of its lanes (default 32 64)")

    d = p.add_argument_group("detection (task yolo-voc)")
    d.add_argument("--scale", type=positive_float, default=None,
                   help="real value of an output integer q is scale·q + offset (default: "
                        "those the network's training export records; with random weights: "
                        "largest output → 4)")
    d.add_argument("--offset", type=float, default=None, help="default 0 with --scale")
    d.add_argument("--conf", type=nonnegative_float, default=None,
                   help="confidence threshold (default 0.24)")


def run(args: argparse.Namespace) -> int:
    from ..runtime.backend import BackendError
    from ..runtime.layout import LayoutError
    from ..runtime.preprocess import PreprocessError

    try:
        return _run(args)
    except UserError:
        raise  # reported by the command line
    except (BackendError, LayoutError, PreprocessError, ValueError) as e:
        print(f"lowbit_hdl deploy-sim: error: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from .. import golden
    from ..runtime.accelerator import Accelerator
    from ..runtime.preprocess import load_test_set, to_frames
    from .board import SimBoard

    if args.build is None and args.network is None:
        raise UsageError("give a network file or --build DIR")
    if args.build is not None and (args.arch != "dataflow" or args.ddr_layers
                                   or args.engine_lanes):
        raise UsageError("--arch/--ddr-layers/--engine-lanes choose the design to build: a "
                         "--build "
                         "folder's design is already chosen")
    if args.stall >= 1:
        raise UsageError(f"--stall must be in [0, 1), got {args.stall:g}")
    if args.wave is not None:
        from .runner import check_wave_file

        if args.fast:
            raise UsageError("--wave: the fast harness (--fast) records no waveforms; run "
                             "without --fast (cocotb)")
        args.wave = check_wave_file(args.wave, args.simulator)
    seed = args.seed if args.random_weights else None
    if args.build is not None:
        from ..netfile import load as load_npz
        from ..runtime.layout import DesignLayout

        name = DesignLayout.load(Path(args.build) / "layout.json").network
        net = load_npz(Path(args.build) / f"{name}.npz")
        if args.network is not None and load_network(args.network, seed).name != name:
            raise ValueError(f"{args.network} is not the network of {args.build} ({name})")
    else:
        net = load_network(args.network, seed, require_params=True)
    if net.random_weights:
        print(random_weights_note(net))
    labels = None
    if args.images:
        images, labels = load_test_set(args.images)
        if images.ndim not in (3, 4) or len(images) == 0:
            raise UsageError(f"--images {args.images}: expected a batch of images "
                             f"(N×C×H×W or N×H×W[×C]), got an array of shape {images.shape}")
        images = images[:args.count]
        labels = None if labels is None else labels[:args.count]
    else:
        c, h, w = net.input_shape
        rng = np.random.default_rng(args.seed)
        images = rng.integers(0, 256, size=(args.count, c, h, w), dtype=np.uint8)

    t0 = time.perf_counter()
    batch = args.batch or len(images)
    sim_args = dict(simulator=args.simulator, stall=args.stall, seed=args.seed + 1,
                    engine="fast" if args.fast else "cocotb", waves=args.wave,
                    reporter=Reporter("[deploy-sim]"), batches=-(-len(images) // batch))
    if args.build is not None:
        board = SimBoard.from_build(args.build, **sim_args)
    else:
        from ..flow.build import plan_design

        design = plan_design(net, clock_mhz=args.clock_mhz, arch=args.arch,
                             ddr_layers=args.ddr_layers, hp_ports=args.hp_ports,
                             engine_lanes=args.engine_lanes,
                             progress=lambda msg: print(msg, file=sys.stderr))
        net = design.network
        board = SimBoard.from_network(net, clock_mhz=args.clock_mhz, plan=design.plan,
                                      **sim_args)
    lay = board.layout
    acc = Accelerator(None, lay, board, network=net, per_frame=args.per_frame,
                      max_batch=max(len(images), args.batch or 1),
                      ddr_weights=_ddr_weights(args.build, net, lay))
    detecting = lay.task == "yolo-voc"
    if detecting:  # the frames detect() sends, the golden outputs, then the board
        frames8, placements = acc.detection_frames(images)
        frames = to_frames(frames8, lay.input.shape, lay.input.dtype)
    else:  # the frames classify() sends (an imagenet network's preprocessing included)
        frames = acc.input_frames(images)
    gold = golden.forward(net, frames, keep=False).output
    if detecting:
        res, (scale, offset), same_boxes = _detect(args, acc, images, gold, placements,
                                                   batch, net)
    else:
        k = 5 if lay.task == "imagenet" and lay.kind_of_output() == "scores" else None
        res = acc.classify(images, batch=batch, k=k)
    wall = time.perf_counter() - t0
    n = len(images)
    same = np.all(res.outputs.reshape(n, -1) == gold.reshape(n, -1), axis=1)

    print(f"network {net.name}: {n} images through the simulated board "
          f"({args.simulator}{' fast harness' if args.fast else ''}, stall {args.stall:g}"
          f"{', one transfer per frame' if args.per_frame else ''})")
    print(f"  input  {lay.input.shape} {lay.input.dtype}: {lay.input.beats_per_frame} beats × "
          f"{lay.input.tdata_bits} bits per frame")
    print(f"  output {lay.output.shape} {lay.output.dtype}: {lay.output.beats_per_frame} "
          f"beats × {lay.output.tdata_bits} bits per frame")
    if detecting:
        for i in range(min(args.show, n)):
            ok = "" if same[i] else "  ≠ GOLDEN"
            print(f"  image {i}: {len(res.detections[i])} object(s){ok}")
            for d in res.detections[i][:10]:
                print(f"    {d}")
        how = "the export's scale and offset per channel" if np.ndim(scale) else \
            f"scale {scale:g}, offset {offset:g}"
        print(f"boxes ({how}) equal the golden model's plus post-processing on "
              f"{same_boxes} of {n} images")
    elif res.labels is not None:
        top = res.top_classes() if lay.task == "imagenet" else None
        for i in range(min(args.show, n)):
            truth = "" if labels is None else f"  label {labels[i]}"
            ok = "" if same[i] else "  ≠ GOLDEN"
            if top is None:
                print(f"  image {i}: {res.labels[i]}{truth}{ok}")
                continue
            print(f"  image {i}:{truth}{ok}")
            for rank, (idx, name, score) in enumerate(top[i], 1):
                sc = "" if score is None else f"  score {score}"
                print(f"    {rank}. {name} (class {idx}){sc}")
    if not detecting and res.labels is not None and args.show < n:
        print("  ...")
    if labels is not None and getattr(res, "top1", None) is not None:
        print(f"accuracy: {res.accuracy(labels):.2%} ({n} images)")
    t = res.timing
    print(f"simulated: {t.cycles_per_image:,.1f} cycles/image (design's steady state: "
          f"{lay.cycles_per_frame:,} cycles/frame) → {t.fps:,.0f} frames/s at "
          f"{lay.clock_mhz:g} MHz")
    if t.latency_cycles:
        print(f"latency: {t.latency_cycles[0]:,} cycles for the first image, "
              f"{np.mean(t.latency_cycles):,.1f} on average in the batch")
    if t.counters:
        c = t.counters
        print(f"accelerator counters (sum over {t.calls} batch(es)): {c['CYCLES']:,} cycles "
              f"START→DONE, {c['STALL_CYCLES']:,} weight-stall cycles, "
              f"{c['BYTES_READ']:,} bytes read from DDR ({c['BYTES_READ'] / n:,.0f} per image)")
    print(f"wall time {wall:.1f} s")
    if detecting and same_boxes != n:
        print("MISMATCH: the board's boxes differ from the golden model's")
        return 1
    if not same.all():
        bad = np.flatnonzero(~same)
        print(f"MISMATCH with the golden model on {bad.size} of {n} images: "
              f"{bad[:20].tolist()}")
        return 1
    print(f"bit-exact with the golden model on all {n} images")
    return 0


def _ddr_weights(build: str | None, net, lay) -> dict | Path | None:
    """A hybrid or engine design's DDR parameters: the build's bundle file when there is
    one, else the network's (:func:`lowbit_hdl.flow.deploy.ddr_parameters`)."""
    from ..flow.deploy import ddr_parameters
    from ..runtime.control import DDR_WEIGHTS_FILE

    if lay.ddr is None:
        return None
    if build is not None and (Path(build) / "deploy" / DDR_WEIGHTS_FILE).exists():
        return Path(build) / "deploy" / DDR_WEIGHTS_FILE
    return ddr_parameters(lay.ddr, net.infer())

def _detect(args: argparse.Namespace, acc, images, gold, placements, batch: int,
            net) -> tuple:
    """Run ``images`` through ``acc.detect``: (its result, the scale used, on how many
    images its boxes equal those of the golden grids ``gold`` decoded the same way)."""
    from ..runtime.yolo import DEFAULT_CONF_THRESH, VOC_CLASSES, demo_scale, detect_grid

    if args.scale is not None:
        scale, offset = args.scale, 0.0 if args.offset is None else args.offset
    elif net.output_scale is not None:  # the training export's
        if args.offset is not None:
            raise UsageError("--offset without --scale: give both, or neither to use the "
                             "network export's")
        scale, offset = np.asarray(net.output_scale), np.asarray(net.output_offset)
    elif net.random_weights:
        scale, offset = demo_scale(gold), 0.0 if args.offset is None else args.offset
    else:
        raise UsageError("--scale: a detector with trained weights needs the scale of its "
                         "output accumulators (real value = scale·q + offset); `train --voc` "
                         "records it in the network file")
    conf = DEFAULT_CONF_THRESH if args.conf is None else args.conf
    res = acc.detect(images, scale, offset, conf_thresh=conf, batch=batch)
    names = acc.layout.labels or VOC_CLASSES
    same = sum(res.detections[i] == detect_grid(gold[i], scale, offset,
                                                placement=placements[i], conf_thresh=conf,
                                                class_names=names)
               for i in range(len(gold)))
    return res, (scale, offset), same
