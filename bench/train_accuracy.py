"""Accuracy benchmarks of quantization-aware training (not tests): LFC-W1A1 on MNIST and
CNV-W1A1 on CIFAR-10, each trained with ``python -m lowbit_hdl train``, exported and checked
against the golden model on the full test set.

    python bench/train_accuracy.py lfc --data /work/shared/datasets --epochs 40 --threads 1
    python bench/train_accuracy.py cnv --data DIR_WITH_CIFAR_PICKLES --epochs 200 --device cuda
    python bench/train_accuracy.py cnv-timing --data DIR_WITH_CIFAR_PICKLES --batches 10

``lfc`` and ``cnv`` write ``OUT_DIR/<bench>.npz``, the checkpoint, a JSON summary and append a
line to ``OUT_DIR/results.md``; rerun with ``--resume`` to continue an interrupted run.
``cnv-timing`` trains a handful of batches and states the seconds per batch and per epoch on
this machine. Extra arguments after ``--`` go to ``lowbit_hdl train`` unchanged.
CIFAR-10 pickles from the JPEG copy: ``python /work/shared/datasets/cifar10_jpeg.py DEST``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCHES = {
    # name: (network file, default epochs, default extra train arguments)
    "lfc": ("networks/lfc_w1a1.py", 40, ["--dropout", "0.2", "--batch-size", "100"]),
    "cnv": ("networks/cnv_w1a1.py", 200, ["--batch-size", "100"]),
}


def _train(argv: list[str]) -> int:
    from lowbit_hdl.cli import main

    return main(["train", *argv])


def run_bench(name: str, args: argparse.Namespace, extra: list[str]) -> int:
    """Train one benchmark network and record its figures."""
    network, epochs, defaults = BENCHES[name]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = out_dir / f"{name}.json"
    argv = [str(ROOT / network), "--data", args.data, "--epochs",
            str(args.epochs or epochs), "--out", str(out_dir / f"{name}.npz"),
            "--summary", str(summary), *defaults, *extra]
    if args.device:
        argv += ["--device", args.device]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    if args.resume:
        argv.append("--resume")
    print("python -m lowbit_hdl train " + " ".join(argv), flush=True)
    rc = _train(argv)
    if summary.is_file():
        s = json.loads(summary.read_text())
        line = (f"| {s['network']} | {s['dataset']} | {s['epochs']} | {s['device']} "
                f"({s['threads']} threads) | {s['train_seconds'] / 60:.1f} min | "
                f"{100 * s['torch_test_acc']:.2f}% | {100 * s['golden_test_acc']:.2f}% | "
                f"{s['agree']}/{s['test_images']} |")
        with open(out_dir / "results.md", "a") as f:
            f.write(line + "\n")
        print(line)
    return rc


def cnv_timing(args: argparse.Namespace) -> int:
    """Seconds per training batch of CNV-W1A1 (batch 100) on this machine."""
    import numpy as np
    import torch

    from lowbit_hdl.netfile import load_network
    from lowbit_hdl.train.data import load_cifar10
    from lowbit_hdl.train.loop import make_optimizer, pick_device, train_epoch
    from lowbit_hdl.train.model import build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    net = load_network(ROOT / "networks/cnv_w1a1.py", seed=None)
    ds = load_cifar10(args.data)
    n = 100 * (args.batches + 1)
    x = torch.as_tensor(np.ascontiguousarray(ds.x_train[:n])).to(device)
    y = torch.as_tensor(ds.y_train[:n]).to(device)
    model = build_model(net).to(device)
    opt = make_optimizer(model, 5e-3)
    train_epoch(model, opt, x, y, 100, augment=True, max_batches=1)  # warm-up
    t0 = time.perf_counter()
    train_epoch(model, opt, x, y, 100, augment=True, max_batches=args.batches)
    per_batch = (time.perf_counter() - t0) / args.batches
    t0 = time.perf_counter()
    model.eval()
    with torch.no_grad():
        model.predict(x[:500])
    per_test = (time.perf_counter() - t0) / 500
    epoch = per_batch * len(ds.y_train) / 100 + per_test * len(ds.y_test)
    print(f"CNV-W1A1 on {device} ({torch.get_num_threads()} threads): {per_batch:.2f} s per "
          f"training batch of 100, {1000 * per_test:.1f} ms per test image → about "
          f"{epoch / 60:.0f} min per epoch ({len(ds.y_train)} train + {len(ds.y_test)} test)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", choices=[*BENCHES, "cnv-timing"])
    p.add_argument("--data", required=True, help="dataset folder (see lowbit_hdl train)")
    p.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--out-dir", default=str(ROOT / "runs" / "bench"))
    p.add_argument("--batches", type=int, default=10, help="cnv-timing: batches to time")
    args = p.parse_args(argv)
    if args.bench == "cnv-timing":
        return cnv_timing(args)
    return run_bench(args.bench, args, extra)


if __name__ == "__main__":
    sys.exit(main())
