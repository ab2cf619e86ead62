#!/usr/bin/env python3
"""Classify the sample images with this bundle's accelerator on a PYNQ board.

Run on the board, in this folder, next to <network>.bit and <network>.hwh (the network is
the one named in layout.json):

    sudo -E /usr/local/share/pynq-venv/bin/python3 run.py [--batch N] [--count N] [--per-frame]

Prints the predictions, the accuracy on the labelled samples, whether every output equals
the golden model's (computed when the bundle was written), the timing and, on boards that
report it, the power. validate.py and deploy.ipynb use the functions below as well.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from lowbit_runtime import (  # noqa: E402
    DDR_WEIGHTS_FILE,
    Accelerator,
    BackendError,
    DesignLayout,
    HwhError,
    LayoutError,
    PreprocessError,
    read_network_info,
)

#: what the board, its files or the user's inputs can get wrong: reported in one line
BOARD_ERRORS = (BackendError, HwhError, LayoutError, PreprocessError, OSError)


def network_name() -> str:
    """The bundle's network: layout.json names it; <name>.npz/.bit/.hwh sit next to it."""
    return DesignLayout.load(HERE / "layout.json").network


def random_weights_note() -> str | None:
    """A line saying which layers carry random (not trained) weights, when any do: the build
    recorded them in the bundle's network file."""
    rnd = read_network_info(HERE / f"{network_name()}.npz")["random_weights"]
    if not rnd:
        return None
    return (f"NOTE: layers {', '.join(sorted(rnd))} have RANDOM weights and thresholds (not "
            "trained): outputs can be checked bit for bit, predictions mean nothing")


def open_accelerator(bitfile=None, backend=None, per_frame=False) -> Accelerator:
    """The accelerator of this bundle (default bitstream: <network>.bit in this folder);
    ``backend`` replaces the PYNQ board (tests, simulated board)."""
    name = network_name()
    need_bit = backend is None or backend.requires_bitstream
    bit = (bitfile or HERE / f"{name}.bit") if need_bit else None
    weights = HERE / DDR_WEIGHTS_FILE  # hybrid designs: the weights read from DDR
    return Accelerator(bit, HERE / "layout.json", backend, network=HERE / f"{name}.npz",
                       per_frame=per_frame, ddr_weights=weights if weights.exists() else None)


def load_samples(path=None, count=None):
    """The bundled samples: (images, labels or None, golden outputs or None)."""
    with np.load(path or HERE / "samples.npz") as z:
        images = z["images"]
        labels = z["labels"] if "labels" in z else None
        expected = z["expected"] if "expected" in z else None
    if count is not None:
        images = images[:count]
        labels = None if labels is None else labels[:count]
        expected = None if expected is None else expected[:count]
    return images, labels, expected


def report(res, labels=None, expected=None) -> int:
    """Print predictions, accuracy, agreement with the golden outputs, timing and power of
    a classification result; 1 when an output differs from the golden model's, else 0."""
    n = len(res.outputs)
    if res.labels is not None:
        shown = min(10, n)
        for i in range(shown):
            truth = "" if labels is None else f"  (label {int(labels[i])})"
            print(f"  image {i}: {res.labels[i]}{truth}")
        if shown < n:
            print("  ...")
    if labels is not None and res.top1 is not None:
        print(f"accuracy: {res.accuracy(labels):.2%} ({len(labels)} images)")
    status = 0
    if expected is not None:
        same = np.all(res.outputs.reshape(n, -1) == expected.reshape(n, -1), axis=1)
        print(f"bit-exact with the golden model: {int(same.sum())} of {len(same)} images")
        if not same.all():
            print(f"MISMATCH on images {np.flatnonzero(~same)[:20].tolist()}")
            status = 1
    print(f"timing: {res.timing.summary()}")
    if res.power_w:
        total = sum(res.power_w.values())
        rails = ", ".join(f"{k} {v:.3f} W" for k, v in sorted(res.power_w.items()))
        print(f"power: {total:.3f} W ({rails})")
    else:
        print("power: not reported by this board")
    return status


def guarded(main, *args, **kwargs) -> int:
    """``main(*args, **kwargs)``, with the board's named errors (DMA faults, a missing or
    mismatched bitstream, bad inputs) printed as one line instead of a traceback (status 1)."""
    try:
        return main(*args, **kwargs)
    except BOARD_ERRORS as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        return 1


def main(argv=None, backend=None) -> int:
    """Run the samples; ``backend`` replaces the PYNQ board (tests, simulated board)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bitfile", default=None, help="default: <network>.bit in this folder")
    p.add_argument("--samples", default=str(HERE / "samples.npz"))
    p.add_argument("--batch", type=int, default=None, help="frames per DMA round trip")
    p.add_argument("--count", type=int, default=None, help="use the first N samples")
    p.add_argument("--per-frame", action="store_true", help="one DMA transfer per frame")
    args = p.parse_args(argv)

    images, labels, expected = load_samples(args.samples, args.count)
    note = random_weights_note()
    if note:
        print(note)
    acc = open_accelerator(args.bitfile, backend, per_frame=args.per_frame)
    try:
        res = acc.classify(images, batch=args.batch)
    finally:
        acc.close()
    print(f"network {acc.layout.network}: {len(images)} images")
    return report(res, labels, expected)


if __name__ == "__main__":
    sys.exit(guarded(main))
