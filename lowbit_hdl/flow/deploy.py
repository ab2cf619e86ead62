"""The deployment bundle: everything the PYNQ board needs next to the bitstream.

:func:`write_deploy_bundle` writes ``<build>/deploy/``::

    deploy/
      lowbit_runtime/     the runtime package (numpy only), copied from lowbit_hdl/runtime
      <net>.npz           the network with its integer weights (lowbit_hdl.netfile format)
      layout.json         the design's stream layout
      labels.txt          class names, one per line (when the network has labels)
      samples.npz         sample images (uint8 N×C×H×W), their labels when known, and the
                          golden model's outputs for them ("expected")
      run.py              classify the samples on the board: predictions, accuracy,
                          bit-exactness against the golden outputs, timing, power
      validate.py         accuracy on a whole test set (.npz, MNIST IDX, CIFAR-10 .bin)
      deploy.ipynb        the same as run.py as a Jupyter notebook
      README.md           what to copy where and what to run
      <net>.bit/.hwh      copied when the caller passes the bitstream

Development machine only (it runs the golden model).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .. import runtime
from ..runtime.layout import DesignLayout

__all__ = ["write_deploy_bundle", "RUNTIME_DIR", "RUNTIME_FILES", "PACKAGE"]

#: the board runtime package, shipped whole (numpy and the standard library only)
RUNTIME_DIR = Path(runtime.__file__).resolve().parent
#: its modules, in sorted order
RUNTIME_FILES = tuple(sorted(p.name for p in RUNTIME_DIR.glob("*.py")))
#: name of the runtime package inside the bundle
PACKAGE = "lowbit_runtime"

RUN_PY = '''#!/usr/bin/env python3
"""Classify the sample images with the {name} accelerator on a PYNQ board.

Run on the board, in this folder, next to {name}.bit and {name}.hwh:

    sudo python3 run.py [--batch N] [--count N] [--per-frame]

Prints the predictions, the accuracy on the labelled samples, whether every output equals
the golden model's (computed when the bundle was written), the timing and, on boards that
report it, the power.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from {package} import Accelerator  # noqa: E402

NETWORK = "{name}"


def main(argv=None, backend=None) -> int:
    """Run the samples; ``backend`` replaces the PYNQ board (tests, simulated board)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bitfile", default=str(HERE / (NETWORK + ".bit")))
    p.add_argument("--samples", default=str(HERE / "samples.npz"))
    p.add_argument("--batch", type=int, default=None, help="frames per DMA round trip")
    p.add_argument("--count", type=int, default=None, help="use the first N samples")
    p.add_argument("--per-frame", action="store_true", help="one DMA transfer per frame")
    args = p.parse_args(argv)

    with np.load(args.samples) as z:
        images = z["images"]
        labels = z["labels"] if "labels" in z else None
        expected = z["expected"] if "expected" in z else None
    if args.count is not None:
        images = images[:args.count]
        labels = None if labels is None else labels[:args.count]
        expected = None if expected is None else expected[:args.count]

    need_bit = backend is None or backend.requires_bitstream
    acc = Accelerator(args.bitfile if need_bit else None, HERE / "layout.json", backend,
                      network=HERE / (NETWORK + ".npz"), per_frame=args.per_frame)
    try:
        res = acc.classify(images, batch=args.batch)
    finally:
        acc.close()

    print("network " + NETWORK + ": " + str(len(images)) + " images")
    if res.labels is not None:
        shown = min(10, len(images))
        for i in range(shown):
            truth = "" if labels is None else "  (label " + str(int(labels[i])) + ")"
            print("  image " + str(i) + ": " + str(res.labels[i]) + truth)
        if shown < len(images):
            print("  ...")
    if labels is not None and res.top1 is not None:
        print("accuracy: {{:.2%}} ({{}} images)".format(res.accuracy(labels), len(labels)))
    status = 0
    if expected is not None:
        same = np.all(res.outputs.reshape(len(images), -1)
                      == expected.reshape(len(images), -1), axis=1)
        print("bit-exact with the golden model: {{}} of {{}} images".format(int(same.sum()),
                                                                       len(same)))
        if not same.all():
            print("MISMATCH on images " + str(np.flatnonzero(~same)[:20].tolist()))
            status = 1
    print("timing: " + res.timing.summary())
    if res.power_w:
        total = sum(res.power_w.values())
        rails = ", ".join(k + " {{:.3f}} W".format(v) for k, v in sorted(res.power_w.items()))
        print("power: {{:.3f}} W ({{}})".format(total, rails))
    else:
        print("power: not reported by this board")
    return status


if __name__ == "__main__":
    sys.exit(main())
'''

VALIDATE_PY = '''#!/usr/bin/env python3
"""Accuracy of the {name} accelerator on a test set, on a PYNQ board.

    sudo python3 validate.py --dataset t10k-images-idx3-ubyte [--labels FILE]
    sudo python3 validate.py --dataset test.npz --batch 100

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
sys.path.insert(0, str(HERE))

from {package} import Accelerator, load_dataset  # noqa: E402

NETWORK = "{name}"


def main(argv=None, backend=None) -> int:
    """Classify the whole test set in batches and report top-1 accuracy and speed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="test set file")
    p.add_argument("--labels", default=None, help="labels file (MNIST IDX)")
    p.add_argument("--bitfile", default=str(HERE / (NETWORK + ".bit")))
    p.add_argument("--batch", type=int, default=None, help="frames per DMA round trip")
    p.add_argument("--limit", type=int, default=None, help="use the first N images")
    p.add_argument("--resize", action="store_true", help="resize images to the input size")
    args = p.parse_args(argv)

    images, labels = load_dataset(args.dataset, args.labels)
    if labels is None:
        print("error: the test set has no labels", file=sys.stderr)
        return 2
    if args.limit is not None:
        images, labels = images[:args.limit], labels[:args.limit]
    need_bit = backend is None or backend.requires_bitstream
    acc = Accelerator(args.bitfile if need_bit else None, HERE / "layout.json", backend,
                      network=HERE / (NETWORK + ".npz"))
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
            print("batch {{}}: {{}}/{{}} images, running accuracy {{:.2%}}".format(
                s // batch, done, len(images), correct / done))
    finally:
        acc.close()
    wall = time.perf_counter() - t0
    n = len(images)
    print("accuracy: {{}}/{{}} = {{:.2%}}".format(correct, n, correct / n))
    print("throughput: {{:,.1f}} images/s on the device, {{:,.1f}} images/s end to end".format(
        n / device_s if device_s else float("inf"), n / wall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

README = """# {name} on PYNQ

Copy this folder to the board (for example to `/home/xilinx/jupyter_notebooks/{name}/`)
together with `{name}.bit` and `{name}.hwh` from the Vivado build, then on the board:

    sudo python3 run.py                       # the sample images: predictions, accuracy, timing
    sudo python3 validate.py --dataset FILE   # a whole test set
    # or open deploy.ipynb in Jupyter

Needs only numpy and pynq (present on PYNQ images). See docs/deploy.md of lowbit-hdl.
"""


def _notebook(name: str, package: str) -> dict[str, Any]:
    def md(text: str) -> dict[str, Any]:
        return {"cell_type": "markdown", "metadata": {}, "source": text.splitlines(True)}

    def code(text: str) -> dict[str, Any]:
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                "source": text.splitlines(True)}

    cells = [
        md(f"# {name} on PYNQ\n\nLoads the bitstream, classifies the sample images that "
           "came with the bundle and reports accuracy, agreement with the golden model, "
           "timing and power."),
        code(f"import numpy as np\nfrom {package} import Accelerator\n\n"
             f"acc = Accelerator('{name}.bit', 'layout.json', network='{name}.npz')\n"
             "acc.layout"),
        code("with np.load('samples.npz') as z:\n    images = z['images']\n"
             "    labels = z['labels'] if 'labels' in z else None\n"
             "    expected = z['expected']\nimages.shape"),
        code("res = acc.classify(images)\nprint(res.labels[:10])\n"
             "if labels is not None:\n    print('accuracy', res.accuracy(labels))\n"
             "print('bit-exact:', bool(np.array_equal(res.outputs, expected)))\n"
             "print(res.timing.summary())\nprint('power (W):', res.power_w)"),
        md("Single-image latency (one DMA round trip per image):"),
        code("one = acc.classify(images[:16], batch=1)\nprint(one.timing.summary())"),
        code("acc.close()"),
    ]
    for i, cell in enumerate(cells):  # nbformat 4.5 wants an id on every cell
        cell["id"] = f"cell-{i}"
    return {"cells": cells,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"},
                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def _samples(net: Any, layout: DesignLayout, samples: Any, count: int, seed: int
             ) -> tuple[np.ndarray, np.ndarray | None]:
    from ..runtime.preprocess import load_dataset

    if samples is None:
        c, h, w = layout.input.shape
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, size=(count, c, h, w), dtype=np.uint8), None
    if isinstance(samples, (str, Path)):
        images, labels = load_dataset(samples)
    else:
        images, labels = samples
        images = np.asarray(images)
        labels = None if labels is None else np.asarray(labels).astype(np.int64).reshape(-1)
    return images[:count], None if labels is None else labels[:count]


def write_deploy_bundle(out_dir: str | Path, net: Any, layout: DesignLayout, *,
                        samples: Any = None, sample_count: int = 100,
                        bitfile: str | Path | None = None, seed: int = 0) -> Path:
    """Write the deployment bundle to ``<out_dir>/deploy/`` and return that folder.

    ``out_dir`` is the build folder; ``net`` the :class:`lowbit_hdl.Network` with its
    parameters (the one the design was generated from); ``layout`` its
    :class:`DesignLayout`. ``samples`` (a test-set file for
    :func:`~lowbit_hdl.runtime.preprocess.load_dataset`, or ``(images, labels)`` with
    ``labels`` possibly ``None``; default: ``sample_count`` random images) gives the
    images run.py classifies; their golden-model outputs are stored so the board can
    check itself bit-exactly. ``bitfile`` copies ``<net>.bit`` and its ``.hwh`` in when
    they exist already. Rewrites the folder's files; leaves other files there alone.
    """
    from .. import golden, netfile
    from ..runtime.accelerator import read_network_info
    from ..runtime.preprocess import to_frames

    out = Path(out_dir) / "deploy"
    if layout.network != net.name:
        raise ValueError(f"layout is for {layout.network!r}, the network is {net.name!r}")
    info = read_network_info(net)
    if info["input_shape"] != tuple(layout.input.shape) or \
            info["input_dtype"] != layout.input.dtype.upper():
        raise ValueError("layout input does not match the network input")
    pkg = out / PACKAGE
    pkg.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_FILES:
        shutil.copyfile(RUNTIME_DIR / name, pkg / name)

    netfile.save(net, out / f"{net.name}.npz")
    built = Path(out_dir) / "layout.json"
    if built.exists() and _same_layout(built, layout):
        shutil.copyfile(built, out / "layout.json")  # keeps the build's extra keys (ip_names)
    else:
        layout.save(out / "layout.json")
    labels = layout.labels or (tuple(net.labels) if net.labels else None)
    if labels:
        (out / "labels.txt").write_text("".join(f"{x}\n" for x in labels))

    images, sample_labels = _samples(net, layout, samples, sample_count, seed)
    frames = to_frames(images, layout.input.shape, layout.input.dtype)
    expected = golden.forward(net, frames, keep=False).output
    c, h, w = layout.input.shape
    arrays: dict[str, np.ndarray] = {
        "images": frames_to_pixels(images, (c, h, w)), "expected": expected.astype(np.int64)}
    if sample_labels is not None:
        arrays["labels"] = sample_labels.astype(np.int64)
    with open(out / "samples.npz", "wb") as fh:
        np.savez_compressed(fh, **arrays)

    (out / "run.py").write_text(RUN_PY.format(name=net.name, package=PACKAGE))
    (out / "validate.py").write_text(VALIDATE_PY.format(name=net.name, package=PACKAGE))
    (out / "deploy.ipynb").write_text(json.dumps(_notebook(net.name, PACKAGE), indent=1) + "\n")
    (out / "README.md").write_text(README.format(name=net.name))
    if bitfile is not None:
        bit = Path(bitfile)
        for p in (bit, bit.with_suffix(".hwh")):
            if p.exists():
                shutil.copyfile(p, out / f"{net.name}{p.suffix}")
    return out


def _same_layout(path: Path, layout: DesignLayout) -> bool:
    try:
        return DesignLayout.load(path) == layout
    except (ValueError, OSError):
        return False


def frames_to_pixels(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Sample images as uint8 N×C×H×W (the form samples.npz stores)."""
    from ..runtime.preprocess import _split_images

    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ValueError(f"sample images must be uint8, got {arr.dtype}")
    hwc = _split_images(arr, shape, exact=True)
    return np.stack(hwc).transpose(0, 3, 1, 2).copy()
