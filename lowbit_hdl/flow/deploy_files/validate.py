#!/usr/bin/env python3
"""Accuracy of this bundle's accelerator on a test set, on a PYNQ board.

    sudo -E /usr/local/share/pynq-venv/bin/python3 validate.py --dataset t10k-images-idx3-ubyte
    sudo -E /usr/local/share/pynq-venv/bin/python3 validate.py --dataset test.npz --batch 100

(``--labels FILE`` where the labels are not next to the images; the PYNQ images keep pynq
in the virtual environment /usr/local/share/pynq-venv, and PYNQ needs root.)

Test sets: .npz with "images" (and "labels"), MNIST IDX files (labels found next to the
images), CIFAR-10 binary batches (test_batch.bin).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from lowbit_runtime import load_test_set  # noqa: E402
from run import guarded, open_accelerator  # noqa: E402


def main(argv=None, backend=None) -> int:
    """Classify the whole test set in batches and report top-1 accuracy and speed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="test set file")
    p.add_argument("--labels", default=None, help="labels file (MNIST IDX)")
    p.add_argument("--bitfile", default=None, help="default: <network>.bit in this folder")
    p.add_argument("--batch", type=int, default=None, help="frames per DMA round trip")
    p.add_argument("--limit", type=int, default=None, help="use the first N images")
    p.add_argument("--resize", action="store_true", help="resize images to the input size")
    args = p.parse_args(argv)

    images, labels = load_test_set(args.dataset, args.labels)
    if labels is None:
        print("error: the test set has no labels", file=sys.stderr)
        return 2
    if args.limit is not None:
        images, labels = images[:args.limit], labels[:args.limit]
    acc = open_accelerator(args.bitfile, backend)
    batch = args.batch or acc.max_batch
    correct = 0
    device_s = 0.0
    t0 = time.perf_counter()
    try:
        for s in range(0, len(images), batch):
            res = acc.classify(images[s:s + batch], batch=batch, resize=args.resize)
            correct += int(np.sum(res.top1 == labels[s:s + batch]))
            device_s += res.timing.device_s
            done = min(s + batch, len(images))
            print(f"batch {s // batch}: {done}/{len(images)} images, "
                  f"running accuracy {correct / done:.2%}")
    finally:
        acc.close()
    wall = time.perf_counter() - t0
    n = len(images)
    print(f"accuracy: {correct}/{n} = {correct / n:.2%}")
    device_fps = n / device_s if device_s else float("inf")
    print(f"throughput: {device_fps:,.1f} images/s on the device, "
          f"{n / wall:,.1f} images/s end to end")
    return 0


if __name__ == "__main__":
    sys.exit(guarded(main))
