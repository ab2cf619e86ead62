#!/usr/bin/env python3
"""Run the sample images (or your own) through this bundle's accelerator on a PYNQ board.

Run on the board, in this folder, next to <network>.bit and <network>.hwh (the network is
the one named in layout.json):

    sudo -E /usr/local/share/pynq-venv/bin/python3 run.py [--batch N] [--count N] [--per-frame]
    sudo -E /usr/local/share/pynq-venv/bin/python3 run.py --image cat.jpg dog.png

Prints the predictions, the accuracy on the labelled samples, whether every output equals
the golden model's (computed when the bundle was written), the timing and, on boards that
report it, the power. What a prediction is depends on the network's task (layout.json):
an ImageNet classifier ("imagenet") prints the top-5 classes with their names; a Tiny-YOLO
detector ("yolo-voc") prints the boxes and saves each image with its boxes drawn as
<name>_boxes.png (--out folder). validate.py and deploy.ipynb use the functions below.
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
    draw_boxes,
    read_network_info,
    write_png,
)
from lowbit_runtime.yolo import (  # noqa: E402
    DEFAULT_CONF_THRESH,
    DEFAULT_NMS_THRESH,
    demo_scale,
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


def check_outputs(outputs, expected) -> int:
    """Print whether every output equals the golden model's; 1 when one differs, else 0."""
    n = len(outputs)
    same = np.all(outputs.reshape(n, -1) == expected.reshape(n, -1), axis=1)
    print(f"bit-exact with the golden model: {int(same.sum())} of {len(same)} images")
    if not same.all():
        print(f"MISMATCH on images {np.flatnonzero(~same)[:20].tolist()}")
        return 1
    return 0


def print_timing_power(res) -> None:
    """The timing line and the power line (or that the board reports none)."""
    print(f"timing: {res.timing.summary()}")
    if res.power_w:
        total = sum(res.power_w.values())
        rails = ", ".join(f"{k} {v:.3f} W" for k, v in sorted(res.power_w.items()))
        print(f"power: {total:.3f} W ({rails})")
    else:
        print("power: not reported by this board")


def report(res, labels=None, expected=None, names=None, top=False) -> int:
    """Print predictions, accuracy, agreement with the golden outputs, timing and power of
    a classification result; 1 when an output differs from the golden model's, else 0.
    ``top``: every returned class with its name (and score when the design gives one)
    instead of the top-1; ``names``: how the images are called (default: image i)."""
    n = len(res.outputs)
    if res.labels is not None:
        shown = min(10, n)
        for i in range(shown):
            truth = "" if labels is None else f"  (label {int(labels[i])})"
            what = names[i] if names is not None else f"image {i}"
            if top:
                print(f"  {what}:{truth}")
                for rank, (idx, name, score) in enumerate(res.top_classes()[i], 1):
                    sc = "" if score is None else f"  score {score}"
                    print(f"    {rank}. {name} (class {idx}){sc}")
            else:
                print(f"  {what}: {res.labels[i]}{truth}")
        if shown < n:
            print("  ...")
    if labels is not None and res.top1 is not None:
        print(f"accuracy: {res.accuracy(labels):.2%} ({len(labels)} images)")
    status = 0
    if expected is not None:
        status = check_outputs(res.outputs, expected)
    print_timing_power(res)
    return status


def detection_scale(scale, samples=None, offset=None):
    """``(scale, offset)`` of the output grid (real value of an output integer q:
    scale·q + offset): ``scale`` (and ``offset``, default 0) when given; else those the
    trained network's export records in <network>.npz (one per channel); for a network
    with random weights (whose boxes mean nothing) the scale that maps the largest |output|
    of the bundled samples' golden grids to 4, so that the demo finds some boxes; else an
    error."""
    if scale is not None:
        return float(scale), 0.0 if offset is None else float(offset)
    info = read_network_info(HERE / f"{network_name()}.npz")
    if info["output_scale"] is not None:
        if offset is not None:
            raise LayoutError("--offset without --scale: give both, or neither to use the "
                              "export's")
        print("decoding with the output scale and offset of the network's export")
        return info["output_scale"], info["output_offset"]
    if random_weights_note() is None:
        raise LayoutError("give --scale (and --offset): the real value of an output integer "
                          "q is scale·q + offset, from the network's export (train --voc "
                          "records it in the network file)")
    _, _, expected = load_samples(samples)
    scale = demo_scale(expected if expected is not None else [])
    print(f"random weights: decoding with scale {scale:.6g} (largest sample output → 4)")
    return scale, 0.0 if offset is None else float(offset)


def report_detections(res, out_dir, pictures, names=None, expected=None) -> int:
    """Print the boxes of each image (the first 10), save the images with their boxes drawn
    as ``<name>_boxes.png`` in ``out_dir``, print agreement with the golden outputs, timing
    and power; 1 when an output differs from the golden model's, else 0."""
    n = len(res.outputs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        what = names[i] if names is not None else f"image {i}"
        dets = res.detections[i]
        if i < 10:
            print(f"  {what}: {len(dets)} object(s)")
            for d in dets[:20]:
                print(f"    {d}")
        path = out_dir / f"{Path(str(what)).stem.replace(' ', '_')}_boxes.png"
        write_png(path, draw_boxes(pictures[i], dets))
        if i < 10:
            print(f"    saved {path}")
    if n > 10:
        print("  ...")
    status = 0 if expected is None else check_outputs(res.outputs, expected)
    print_timing_power(res)
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
    p.add_argument("--image", nargs="+", default=None, metavar="FILE",
                   help="run these image files instead of the samples (Pillow decodes "
                        "JPEG/PNG; .npy needs nothing)")
    d = p.add_argument_group("detection (yolo-voc networks)")
    d.add_argument("--scale", type=float, default=None,
                   help="real value of an output integer q is scale·q + offset (default: "
                        "those the trained network's export records; random-weight "
                        "networks choose one)")
    d.add_argument("--offset", type=float, default=None, help="default 0 with --scale")
    d.add_argument("--conf", type=float, default=DEFAULT_CONF_THRESH,
                   help="confidence threshold (default %(default)s)")
    d.add_argument("--nms", type=float, default=DEFAULT_NMS_THRESH,
                   help="NMS IoU threshold (default %(default)s)")
    d.add_argument("--stretch", action="store_true",
                   help="resize images to the input instead of letterboxing them")
    d.add_argument("--out", default=".", help="folder for the <name>_boxes.png images")
    args = p.parse_args(argv)

    task = DesignLayout.load(HERE / "layout.json").task
    if args.image:
        images, labels, expected, names = list(args.image), None, None, list(args.image)
    else:
        images, labels, expected = load_samples(args.samples, args.count)
        names = None
    note = random_weights_note()
    if note:
        print(note)
    scale, offset = detection_scale(args.scale, args.samples, args.offset) \
        if task == "yolo-voc" else (None, None)
    acc = open_accelerator(args.bitfile, backend, per_frame=args.per_frame)
    try:
        if task == "yolo-voc":
            res = acc.detect(images, scale, offset, conf_thresh=args.conf,
                             nms_thresh=args.nms, letterboxed=not args.stretch,
                             batch=args.batch)
        else:  # an ImageNet classifier shows its top 5 (a TopK design: what it returns)
            scores = acc.layout.kind_of_output() == "scores"
            res = acc.classify(images, batch=args.batch,
                               k=5 if task == "imagenet" and scores else None)
    finally:
        acc.close()
    print(f"network {acc.layout.network}: {len(images)} images")
    if task == "yolo-voc":
        pictures = images if args.image else [im.transpose(1, 2, 0) for im in images]
        return report_detections(res, args.out, pictures, names, expected)
    return report(res, labels, expected, names, top=task == "imagenet")


if __name__ == "__main__":
    sys.exit(guarded(main))
