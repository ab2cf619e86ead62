"""Accuracy benchmarks of quantization-aware training (not tests): LFC-W1A1 on MNIST and
CNV-W1A1, W1A2 and W2A2 on CIFAR-10, each trained with ``python -m lowbit_hdl train``,
exported and checked against the golden model on the full test set.

    python bench/train_accuracy.py lfc --data /work/shared/datasets --device cuda
    python bench/train_accuracy.py cnv --data DIR_WITH_CIFAR_PICKLES --device cuda
    python bench/train_accuracy.py cnv-timing --data DIR_WITH_CIFAR_PICKLES --batches 10 \
        [--amp off,bf16] [--compile]

Each bench (``lfc``, ``cnv``, ``cnv-w1a2``, ``cnv-w2a2``) writes ``OUT_DIR/<bench>.npz``, the
checkpoint and a JSON summary, and appends a line to ``OUT_DIR/results.md``; rerun with
``--resume`` to continue an interrupted run. ``cnv-timing`` trains a handful of batches and
states the seconds per batch and per epoch on this machine, per ``--amp`` mode (and, with
``--compile``, with the compiled forward pass too). ``check NET.npz --data DIR
[--summary S.json]`` runs the golden model of a network exported with ``train --skip-golden``
on the whole test set and compares it, image by image, with the torch predictions saved
beside it (``NET.pred.npy``): the GPU machine trains, this machine checks. Extra arguments
after ``--`` go to ``lowbit_hdl train`` unchanged. CIFAR-10 pickles from the JPEG copy:
``python /work/shared/datasets/cifar10_jpeg.py DEST``. Several runs in parallel on one GPU,
with a time limit and resume: ``bench/train_gpu.sh``.
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
    "lfc": ("networks/lfc_w1a1.py", 40,
            ["--dropout", "0.2", "--batch-size", "100", "--shift", "2"]),
    "cnv": ("networks/cnv_w1a1.py", 80, ["--batch-size", "100"]),
    "cnv-w1a2": ("networks/cnv_w1a2.py", 80, ["--batch-size", "100"]),
    "cnv-w2a2": ("networks/cnv_w2a2.py", 80, ["--batch-size", "100"]),
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
    """Seconds per training batch of CNV-W1A1 (batch 100) on this machine, for each of
    ``--amp`` modes, with and (``--compile``) without torch.compile of the forward pass."""
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
    n = 100 * (args.batches + 2)
    x = torch.as_tensor(np.ascontiguousarray(ds.x_train[:n])).to(device)
    y = torch.as_tensor(ds.y_train[:n]).to(device)
    per_test = 0.0
    for compiled in (False, True) if args.compile else (False,):
        for amp in args.amp.split(","):
            torch.manual_seed(0)
            model = build_model(net).to(device)
            opt = make_optimizer(model, 5e-3)
            fwd = torch.compile(model) if compiled else None
            # warm-up (and compilation): two batches
            train_epoch(model, opt, x, y, 100, augment=True, max_batches=2, amp=amp,
                        forward=fwd)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            train_epoch(model, opt, x, y, 100, augment=True, max_batches=args.batches,
                        amp=amp, forward=fwd)
            per_batch = (time.perf_counter() - t0) / args.batches
            if not per_test:
                t0 = time.perf_counter()
                model.eval()
                with torch.no_grad():
                    model.predict(x[:500])
                per_test = (time.perf_counter() - t0) / 500
            epoch = per_batch * len(ds.y_train) / 100 + per_test * len(ds.y_test)
            print(f"CNV-W1A1 on {device} ({torch.get_num_threads()} threads), amp {amp}"
                  f"{', compiled' if compiled else ''}: {per_batch:.3f} s per training batch "
                  f"of 100, {1000 * per_test:.2f} ms per test image → about {epoch:.0f} s "
                  f"per epoch ({len(ds.y_train)} train + {len(ds.y_test)} test)", flush=True)
    return 0


def check(argv: list[str]) -> int:
    """Golden model of an exported network vs the saved torch predictions, whole test set."""
    import numpy as np

    from lowbit_hdl import netfile
    from lowbit_hdl.golden import top1
    from lowbit_hdl.train.data import dataset_for_shape, input_levels, load_dataset

    p = argparse.ArgumentParser(prog="train_accuracy.py check")
    p.add_argument("network", help="exported network .npz (train --skip-golden)")
    p.add_argument("--data", required=True)
    p.add_argument("--dataset", default=None)
    p.add_argument("--summary", default=None, help="summary JSON to complete")
    args = p.parse_args(argv)
    path = Path(args.network)
    pred_path = path.with_suffix(".pred.npy")
    net = netfile.load(path)
    ds = load_dataset(args.dataset or dataset_for_shape(net.input_shape), args.data)
    ds, _ = input_levels(ds, net.input_dtype)  # pixels → input levels, as train does
    torch_pred = np.load(pred_path)
    n = len(ds.y_test)
    if torch_pred.shape != (n,):
        print(f"check: {pred_path} holds {torch_pred.shape[0]} predictions, the test set "
              f"{n} images", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    gold = top1(net, ds.x_test)
    gold_acc = float((gold == ds.y_test).mean())
    torch_acc = float((torch_pred == ds.y_test).mean())
    agree = int((gold == torch_pred).sum())
    print(f"{net.name} on {ds.name}: torch {100 * torch_acc:.2f}%, golden {100 * gold_acc:.2f}%"
          f" ({n} images, golden {time.perf_counter() - t0:.1f} s); decisions identical on "
          f"{agree}/{n}")
    if args.summary:
        sp = Path(args.summary)
        s = json.loads(sp.read_text())
        s.update(golden_test_acc=gold_acc, agree=agree, golden_checked_on="cpu")
        sp.write_text(json.dumps(s, indent=1) + "\n")
    return 0 if agree == n else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["check"]:
        return check(argv[1:])
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
    p.add_argument("--amp", default="off,bf16",
                   help="cnv-timing: comma-separated amp modes to time (default off,bf16)")
    p.add_argument("--compile", action="store_true",
                   help="cnv-timing: also time the torch.compile-d forward pass")
    args = p.parse_args(argv)
    if args.bench == "cnv-timing":
        return cnv_timing(args)
    return run_bench(args.bench, args, extra)


if __name__ == "__main__":
    sys.exit(main())
