#!/usr/bin/env python3
"""Accuracy of this bundle's accelerator on a test set, on a PYNQ board.

    sudo -E /usr/local/share/pynq-venv/bin/python3 validate.py --dataset t10k-images-idx3-ubyte
    sudo -E /usr/local/share/pynq-venv/bin/python3 validate.py --dataset test.npz --batch 100

(``--labels FILE`` where the labels are not next to the images; the PYNQ images keep pynq
in the virtual environment /usr/local/share/pynq-venv, and PYNQ needs root.)

Test sets: .npz with "images" (and "labels"), MNIST IDX files (labels found next to the
images), CIFAR-10 binary batches (test_batch.bin).

A detector (task "yolo-voc") is evaluated on a PascalVOC folder instead, by mAP:

    sudo -E /usr/local/share/pynq-venv/bin/python3 validate.py --voc VOCdevkit/VOC2007 \
        --scale S [--offset O] [--split test] [--limit N]

(Annotations/<id>.xml, JPEGImages/<id>.jpg (or .png, .npy), ImageSets/Main/<split>.txt;
detections with score > --conf, default 0.005 as Darknet's ``valid``; boxes shifted to
VOC's 1-based pixels and clamped to 1…width, 1…height as Darknet writes them; AP by VOC2007's
11 points and by all points.)
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

from lowbit_runtime import DesignLayout, LayoutError, load_test_set  # noqa: E402
from lowbit_runtime.vocmap import evaluate, read_voc_folder, voc_detections  # noqa: E402
from run import detection_scale, guarded, open_accelerator  # noqa: E402


def voc_images(voc, split="test", limit=None):
    """(image ids, image files, annotations) of a VOC folder's split."""
    voc = Path(voc)
    split_file = voc / "ImageSets" / "Main" / f"{split}.txt"
    if split_file.is_file():
        ids = [x.strip() for x in split_file.read_text().splitlines() if x.strip()]
    else:  # no split list: every annotation
        ids = sorted(p.stem for p in (voc / "Annotations").glob("*.xml"))
    ids = ids[:limit] if limit is not None else ids
    if not ids:
        raise LayoutError(f"{voc}: no images (no {split_file} and no Annotations/*.xml)")
    files = []
    for i in ids:
        found = [voc / "JPEGImages" / f"{i}{ext}" for ext in (".jpg", ".jpeg", ".png", ".npy")]
        found = [f for f in found if f.is_file()]
        if not found:
            raise FileNotFoundError(f"{voc / 'JPEGImages'}: no image for {i}")
        files.append(found[0])
    return ids, files, read_voc_folder(voc / "Annotations", ids)


def validate_voc(args, backend=None) -> int:
    """mAP of a detector on a VOC folder."""
    ids, files, truth = voc_images(args.voc, args.split, args.limit)
    scale, offset = detection_scale(args.scale, offset=args.offset)
    acc = open_accelerator(args.bitfile, backend)
    batch = args.batch or acc.max_batch
    dets = []
    device_s = 0.0
    t0 = time.perf_counter()
    try:
        for s in range(0, len(files), batch):
            res = acc.detect(files[s:s + batch], scale, offset, conf_thresh=args.conf,
                             batch=batch)
            device_s += res.timing.device_s
            for j, found in enumerate(res.detections):
                pl = res.placements[j]  # VOC's 1-based pixels, as Darknet's valid writes
                dets += voc_detections(ids[s + j], found, pl.orig_w, pl.orig_h)
            print(f"batch {s // batch}: {min(s + batch, len(files))}/{len(files)} images")
    finally:
        acc.close()
    wall = time.perf_counter() - t0
    names = acc.layout.labels or None
    r07 = evaluate(dets, truth, names, use_07_metric=True)
    rall = evaluate(dets, truth, names, use_07_metric=False)
    print(r07.summary())
    print(f"mAP: {r07.map:.2%} (VOC2007 11-point), {rall.map:.2%} (all-point), "
          f"{len(files)} images, {len(dets)} detections")
    print(f"throughput: {len(files) / device_s if device_s else float('inf'):,.1f} images/s "
          f"on the device, {len(files) / wall:,.1f} images/s end to end")
    return 0


def main(argv=None, backend=None) -> int:
    """Classify the whole test set in batches and report top-1 accuracy and speed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="test set file")
    src.add_argument("--voc", help="PascalVOC folder (a detector's mAP)")
    p.add_argument("--labels", default=None, help="labels file (MNIST IDX)")
    p.add_argument("--bitfile", default=None, help="default: <network>.bit in this folder")
    p.add_argument("--batch", type=int, default=None, help="frames per DMA round trip")
    p.add_argument("--limit", type=int, default=None, help="use the first N images")
    p.add_argument("--resize", action="store_true", help="resize images to the input size")
    d = p.add_argument_group("detection (--voc)")
    d.add_argument("--split", default="test", help="ImageSets/Main/<split>.txt")
    d.add_argument("--scale", type=float, default=None,
                   help="real value = scale·q + offset (default: the network export's)")
    d.add_argument("--offset", type=float, default=None, help="default 0 with --scale")
    d.add_argument("--conf", type=float, default=0.005, help="confidence threshold")
    args = p.parse_args(argv)
    if args.voc is not None:
        if DesignLayout.load(HERE / "layout.json").task != "yolo-voc":
            raise LayoutError("--voc evaluates a detector (task yolo-voc); this network "
                              "classifies: use --dataset")
        return validate_voc(args, backend)

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
