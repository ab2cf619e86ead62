"""``train``: quantization-aware training of a network file on MNIST / Fashion-MNIST /
CIFAR-10 or an ImageNet-style image folder, checkpoints, exact export to an integer ``.npz``
network, and the test accuracy of both the torch model and the exported golden model (they
must agree image for image). With ``--voc`` a detector (a raw A·(5 + K)-channel output
grid, e.g. ``networks/tiny_yolo_w1a3.py``) is trained with the YOLOv2 region loss on a
PascalVOC-style folder and evaluated by mAP; its export also records the output grid's
scale and offset.

    python -m lowbit_hdl train networks/tfc_w1a1.py --data DIR --epochs 10 --out tfc.npz
    python -m lowbit_hdl train networks/tiny_yolo_w1a3.py --voc VOCdevkit/VOC2007 --epochs 100

Torch is imported only when the command runs, so the rest of the CLI works without it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

from ..errors import UsageError
from .data import DATASETS

__all__ = ["add_arguments", "run", "run_detection"]

#: classification-only options and their defaults: --voc refuses other values
_CLASSIFY_ONLY = {"dataset": "auto", "loss": "ce", "dropout": 0.0, "shift": 0,
                  "recalibrate_bn": False, "skip_golden": False, "amp": "off",
                  "compile": False}


def _stopped_early(hist: list, start: int, args: argparse.Namespace, ckpt: Path) -> bool:
    """Whether ``--time-limit`` ended the training before ``--epochs`` (and say so)."""
    done = hist[-1].epoch if hist else start
    if done < args.epochs:
        print(f"stopped after epoch {done} of {args.epochs}: the next epoch would pass the "
              f"--time-limit of {args.time_limit:g} s; checkpoint {ckpt} (go on with --resume)")
        return True
    return False


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register the ``train`` options on ``p``."""
    p.add_argument("network", help="networks/<net>.py topology or saved .npz network (only "
                   "its layer list is used: training starts from random weights)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="dataset folder: MNIST IDX files (DIR or DIR/MNIST/raw, raw or .gz), "
                        "CIFAR-10 pickles (DIR or DIR/cifar-10-batches-py) or an "
                        "ImageNet-style folder (DIR/train/<class>/*.JPEG, DIR/val/<class>/); "
                        "or --voc for a detector")
    p.add_argument("--dataset", choices=("auto", *DATASETS), default="auto",
                   help="dataset (default: folder when DIR/train/ has class folders, else "
                        "from the input shape, 1×28×28 → mnist, 3×32×32 → cifar10)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="threads decoding an image folder's files (default: min(8, CPUs))")
    p.add_argument("--epochs", type=int, default=10, help="total epochs (default 10)")
    p.add_argument("--device", default=None, help="torch device, e.g. cuda or cpu "
                   "(default: cuda when available)")
    p.add_argument("--out", default=None, metavar="FILE.npz",
                   help="exported integer network (default: <network>_trained.npz)")
    p.add_argument("--checkpoint", default=None, metavar="FILE.pt",
                   help="checkpoint written every epoch (default: <out>.ckpt.pt)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint (model, optimizer, epoch; the schedule "
                        "follows --epochs)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="mini-batch size (default 100; --voc: 64)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (default 0.01; --voc: 0.001)")
    p.add_argument("--loss", choices=("ce", "sqr-hinge"), default="ce",
                   help="cross-entropy (default) or squared hinge (BinaryNet, Brevitas)")
    p.add_argument("--schedule", choices=("cosine", "step"), default="cosine",
                   help="per-epoch learning-rate schedule (default cosine)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="on latent weights only")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="dropout probability on the input of every FC layer (default 0)")
    p.add_argument("--weight-mode", choices=("uniform", "dorefa"), default="uniform",
                   help="k-bit weight mapping (default uniform)")
    p.add_argument("--weight-init", choices=("auto", "fanin", "unit"), default="auto",
                   help="latent weight init: U(±1/√MW) (fanin), U(-1,1) (unit); auto = unit "
                        "for fixed-range INT weights, fanin otherwise")
    p.add_argument("--act-grad", choices=("hardtanh", "approxsign"), default="hardtanh",
                   help="STE of 1-bit activations: 1[|x|≤1] (hardtanh, default) or "
                        "max(0, 2-2|x|) (approxsign, Bi-Real Net)")
    p.add_argument("--weight-scale", action="store_true",
                   help="scale weights per tensor (mean|w| for 1 bit, max|w| for k bits)")
    p.add_argument("--grad-bits", type=int, default=None, metavar="K",
                   help="quantize back-propagated gradients to K bits (DoReFa; default off)")
    p.add_argument("--no-augment", action="store_true",
                   help="CIFAR-10: no random crop (pad 4) + horizontal flip")
    p.add_argument("--shift", type=int, default=0, metavar="N",
                   help="MNIST-style augmentation: random translation by up to N pixels "
                        "(zero fill; default 0 = off; not with CIFAR's crop)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="stop before an epoch that would end more than S seconds after the "
                        "start (checkpoint kept, no export, exit status 3; --resume goes on)")
    p.add_argument("--recalibrate-bn", action="store_true",
                   help="before the export, replace BatchNorm's running statistics by their "
                        "exact average over the (unaugmented) training images")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show the running epoch's progress on one line of stderr (default: "
                        "when stderr is a terminal)")
    p.add_argument("--skip-golden", action="store_true",
                   help="export but leave the golden-model check of the test set for later: "
                        "writes the torch predictions to <out>.pred.npy for "
                        "'python bench/train_accuracy.py check' (saves GPU-machine time)")
    p.add_argument("--eval-every", type=int, default=1, metavar="N",
                   help="evaluate the test set every N epochs and after the last (default 1; "
                        "a larger N saves CPU time on CIFAR)")
    p.add_argument("--amp", choices=("off", "bf16"), default="off",
                   help="bf16: training forward pass under bfloat16 autocast (about 1.6x "
                        "faster on an AVX-512 CPU); evaluation and export stay exact")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the training forward pass (needs a C++ compiler on "
                        "the CPU, Triton on CUDA; evaluation is not compiled)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--max-batches", type=int, default=None, metavar="N",
                   help="at most N batches per epoch (quick runs and timing)")
    p.add_argument("--summary", default=None, metavar="FILE.json",
                   help="also write the figures (history, accuracies, times) as JSON")
    p.add_argument("--test-limit", type=int, default=None, metavar="N",
                   help="evaluate torch and golden models on the first N test images only "
                        "(quick runs; default: the whole test set)")
    d = p.add_argument_group("detection (a Tiny-YOLO-style network on a VOC folder)")
    d.add_argument("--voc", default=None, metavar="DIR",
                   help="PascalVOC-style folder (DIR/JPEGImages/, DIR/Annotations/*.xml, "
                        "DIR/ImageSets/Main/<split>.txt): train the detector with the YOLOv2 "
                        "region loss instead of a classifier (instead of --data)")
    d.add_argument("--train-split", default="trainval", metavar="NAME",
                   help="image set trained on (default trainval)")
    d.add_argument("--test-split", default="test", metavar="NAME",
                   help="image set evaluated by mAP (default test)")
    d.add_argument("--jitter", type=float, default=0.2,
                   help="random crop: each edge moves by up to this fraction (Darknet's "
                        "jitter, default 0.2); --no-augment turns crop and flip off")
    d.add_argument("--stretch", action="store_true",
                   help="resize images to the input instead of letterboxing them (the "
                        "board must then decode with --stretch too)")


def _paths(args: argparse.Namespace, stem: str) -> tuple[Path, Path]:
    out = Path(args.out) if args.out else Path(f"{stem}_trained.npz")
    ckpt = Path(args.checkpoint) if args.checkpoint else out.with_suffix(".ckpt.pt")
    return out, ckpt


def _save_atomic(obj: object, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_json(obj: dict, path: Path) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")


def run(args: argparse.Namespace) -> int:
    """Train, checkpoint, export and check; returns 0 when torch and golden agree."""
    if (args.data is None) == (args.voc is None):
        raise UsageError("give --data (a classifier's data set) or --voc (a detector's VOC "
                         "folder), one of them")
    if args.voc is not None:
        return run_detection(args)
    args.batch_size = 100 if args.batch_size is None else args.batch_size
    args.lr = 1e-2 if args.lr is None else args.lr
    import numpy as np
    import torch

    from .. import netfile
    from ..golden import top1 as golden_top1
    from ..runtime.dtypes import UINT
    from .data import (
        FolderImages,
        dataset_for_shape,
        input_levels,
        is_image_folder,
        load_dataset,
    )
    from .exporter import export
    from .loop import (
        EpochStats,
        ProgressLine,
        as_device,
        evaluate,
        fit,
        make_optimizer,
        make_scheduler,
        pick_device,
        recalibrate_bn,
    )
    from .model import build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.shift < 0:
        print(f"train: --shift must be ≥ 0, got {args.shift}", file=sys.stderr)
        return 2
    if args.eval_every < 1:
        print(f"train: --eval-every must be ≥ 1, got {args.eval_every}", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print(f"train: --workers must be ≥ 1, got {args.workers}", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    net = netfile.load_network(args.network, seed=None)
    infos = net.infer()
    t0 = time.perf_counter()
    try:
        name = args.dataset
        if name == "auto":
            name = "folder" if is_image_folder(args.data) else \
                dataset_for_shape(net.input_shape)
        ds = load_dataset(name, args.data, net.input_shape, args.seed, args.workers)
    except (ValueError, FileNotFoundError) as e:
        print(f"train: {e}", file=sys.stderr)
        return 2
    if ds.shape != net.input_shape:
        print(f"train: dataset {ds.name} images are {ds.shape}, network {net.name} expects "
              f"{net.input_shape}", file=sys.stderr)
        return 2
    try:  # pixels → the integer levels of the network's input type
        ds, pad_value = input_levels(ds, net.input_dtype)
    except ValueError as e:
        print(f"train: {e}", file=sys.stderr)
        return 2
    score_info = [i for i in infos if i.is_mvtu][-1]
    if score_info.mh < ds.classes:
        print(f"train: network {net.name} has {score_info.mh} outputs, dataset {ds.name} has "
              f"{ds.classes} classes", file=sys.stderr)
        return 2
    print(f"dataset {ds.name}: {len(ds.y_train)} train, {len(ds.y_test)} test images "
          f"({time.perf_counter() - t0:.1f} s)"
          + (f"; pixels → {net.input_dtype} input levels" if net.input_dtype != UINT(8)
             else ""))
    if args.test_limit is not None:
        ds.x_test = ds.x_test.head(args.test_limit) if isinstance(ds.x_test, FolderImages) \
            else ds.x_test[:args.test_limit]
        ds.y_test = ds.y_test[:args.test_limit]
        print(f"evaluating on the first {len(ds.y_test)} test images only")
    dropout = args.dropout
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = build_model(net, weight_mode=args.weight_mode, weight_scale=args.weight_scale,
                        grad_bits=args.grad_bits, dropout=dropout,
                        weight_init=args.weight_init, act_grad=args.act_grad).to(device)
    opt = make_optimizer(model, args.lr, args.weight_decay)
    sched = make_scheduler(opt, args.schedule, args.epochs)
    out, ckpt = _paths(args, Path(args.network).stem)
    start, best, best_epoch = 0, -1.0, 0
    history: list[dict] = []
    if args.resume and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        if state.get("network") != net.name:
            print(f"train: checkpoint {ckpt} is for network {state.get('network')}, not "
                  f"{net.name}", file=sys.stderr)
            return 2
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, best, best_epoch = state["epoch"], state["best"], state["best_epoch"]
        sched = make_scheduler(opt, args.schedule, args.epochs, start)
        history = list(state.get("history", []))
        if "rng" in state:
            torch.set_rng_state(state["rng"].cpu())
        print(f"resumed from {ckpt} after epoch {start} (best test {100 * best:.2f}% "
              f"at epoch {best_epoch})")
    elif args.resume:
        print(f"no checkpoint at {ckpt}: starting from scratch")
    n_par = sum(p.numel() for p in model.parameters())
    print(f"training {net.name} on {device} ({n_par:,} parameters, dropout {dropout}, "
          f"batch {args.batch_size}, Adam lr {args.lr}, {args.schedule} schedule"
          + (f", {args.grad_bits}-bit gradients" if args.grad_bits else "")
          + (f", shift ±{args.shift}" if args.shift else "")
          + (f", {args.loss} loss" if args.loss != "ce" else "")
          + (f", {args.act_grad} STE" if args.act_grad != "hardtanh" else "")
          + (f", {args.amp} autocast" if args.amp != "off" else "")
          + (", compiled" if args.compile else "") + ")")
    width = len(str(args.epochs))

    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressLine(args.epochs) if show else None

    def on_epoch(st: EpochStats) -> None:
        nonlocal best, best_epoch
        if bar is not None:
            bar.clear()
        if st.test_acc > best:
            best, best_epoch = st.test_acc, st.epoch
        history.append(st.to_dict())
        test = "    -  " if math.isnan(st.test_acc) else f"{100 * st.test_acc:6.2f}%"
        print(f"epoch {st.epoch:{width}d}/{args.epochs}  loss {st.loss:.4f}  "
              f"train {100 * st.train_acc:6.2f}%  test {test}  "
              f"lr {st.lr:.2e}  {st.seconds:6.1f} s", flush=True)
        _save_atomic({"network": net.name, "epoch": st.epoch, "best": best,
                      "best_epoch": best_epoch, "model": model.state_dict(),
                      "optimizer": opt.state_dict(), "schedule": args.schedule,
                      "history": history, "rng": torch.get_rng_state(),
                      "args": {k: v for k, v in vars(args).items()
                               if isinstance(v, (int, float, str, bool, type(None)))}},
                     ckpt)

    t_train = time.perf_counter()
    deadline = None if args.time_limit is None else t_start + args.time_limit
    augment = ds.name == "cifar10" and not args.no_augment
    hist = fit(model, ds.x_train, ds.y_train, args.epochs, ds.x_test, ds.y_test,
               batch_size=args.batch_size, augment=augment,
               shift=0 if augment else args.shift, opt=opt, sched=sched, start_epoch=start,
               max_batches=args.max_batches, deadline=deadline, loss=args.loss,
               progress=bar, on_epoch=on_epoch, amp=args.amp, compile_forward=args.compile,
               eval_every=args.eval_every, pad_value=pad_value)
    if _stopped_early(hist, start, args, ckpt):
        return 3
    if args.epochs > start:
        print(f"trained epochs {start + 1}..{args.epochs} in "
              f"{time.perf_counter() - t_train:.1f} s; best test {100 * best:.2f}% at epoch "
              f"{best_epoch} (the exported model is the last epoch's)")

    model.eval()
    x_test = as_device(ds.x_test, device)
    y_test = torch.as_tensor(ds.y_test)
    torch_acc, torch_pred = evaluate(model, x_test, y_test)
    if args.recalibrate_bn:
        t1 = time.perf_counter()
        x_train = ds.x_train.evaluation() if isinstance(ds.x_train, FolderImages) \
            else ds.x_train  # unaugmented
        recalibrate_bn(model, as_device(x_train, device))
        before = torch_acc
        torch_acc, torch_pred = evaluate(model, x_test, y_test)
        print(f"BatchNorm statistics recalibrated on {len(ds.y_train)} training images "
              f"({time.perf_counter() - t1:.1f} s): test {100 * before:.2f}% → "
              f"{100 * torch_acc:.2f}%")
    int_net = export(model)
    score_mh = [i for i in int_net.infer() if i.is_mvtu][-1].mh
    if int_net.labels is None and ds.labels is not None and len(ds.labels) == score_mh:
        int_net.labels = list(ds.labels)  # an image folder's class folder names
    netfile.save(int_net, out)
    print(f"exported integer network to {out} ({out.stat().st_size:,} bytes)")
    n_test = len(ds.y_test)
    summary = {
        "network": net.name, "dataset": ds.name, "device": str(device),
        "threads": torch.get_num_threads(), "epochs": args.epochs,
        "train_seconds": sum(h["seconds"] for h in history),
        "best_test_acc": best, "best_epoch": best_epoch,
        "torch_test_acc": torch_acc, "test_images": n_test, "out": str(out),
        "history": history,
        "args": {k: v for k, v in vars(args).items()
                 if isinstance(v, (int, float, str, bool, type(None)))},
    }
    print(f"test accuracy, torch eval model:     {100 * torch_acc:.2f}% ({n_test} images)")
    if args.skip_golden:
        pred_path = out.with_suffix(".pred.npy")
        np.save(pred_path, torch_pred.astype(np.int64))
        if args.summary:
            _write_json(summary, Path(args.summary))
        print(f"golden check skipped: torch predictions in {pred_path}; check with\n"
              f"  python bench/train_accuracy.py check {out} --data {args.data}"
              + (f" --summary {args.summary}" if args.summary else ""))
        return 0
    t1 = time.perf_counter()
    saved = netfile.load(out)
    if isinstance(ds.x_test, FolderImages):  # decoded chunk by chunk
        gold_pred = np.concatenate([golden_top1(saved, ds.x_test[s:s + 500])
                                    for s in range(0, len(ds.x_test), 500)])
    else:
        gold_pred = golden_top1(saved, ds.x_test)
    gold_acc = float((gold_pred == ds.y_test).mean())
    agree = int((gold_pred == torch_pred).sum())
    print(f"test accuracy, golden integer model: {100 * gold_acc:.2f}% ({n_test} images, "
          f"{time.perf_counter() - t1:.1f} s)")
    print(f"decisions identical on {agree}/{n_test} images")
    summary.update(golden_test_acc=gold_acc, agree=agree)
    if args.summary:
        _write_json(summary, Path(args.summary))
    if agree != n_test:
        print("train: ERROR: the exported network disagrees with the torch model",
              file=sys.stderr)
        return 1
    return 0


def run_detection(args: argparse.Namespace) -> int:
    """``train --voc``: train a detector with the region loss, checkpoint, export (with the
    output grid's scale and offset), and check the export: the golden model's integer grids
    equal the torch eval model's, their real values ``scale·q + offset`` equal its float
    output, and both give the same test mAP."""
    import numpy as np
    import torch

    from .. import netfile
    from ..errors import NetworkError
    from ..golden import forward as golden_forward
    from ..runtime.dtypes import UINT
    from ..runtime.yolo import region_values
    from .detect import (
        DetEpochStats,
        evaluate_detector,
        fit_detection,
        output_grids,
        region_spec_for,
    )
    from .exporter import export
    from .loop import ProgressLine, make_optimizer, make_scheduler, pick_device
    from .model import build_model
    from .voc import VocDetection

    bad = [f"--{k.replace('_', '-')}" for k, v in _CLASSIFY_ONLY.items()
           if getattr(args, k) != v]
    if bad:
        raise UsageError(f"--voc trains a detector: {', '.join(bad)} apply to classifiers only")
    batch_size = 64 if args.batch_size is None else args.batch_size
    lr = 1e-3 if args.lr is None else args.lr
    for what, v, ok in (("--batch-size", batch_size, batch_size >= 1),
                        ("--eval-every", args.eval_every, args.eval_every >= 1),
                        ("--workers", args.workers, args.workers is None or args.workers >= 1),
                        ("--jitter", args.jitter, 0 <= args.jitter < 0.5),
                        ("--epochs", args.epochs, args.epochs >= 1)):
        if not ok:
            raise UsageError(f"{what}: {v} is out of range")
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    net = netfile.load_network(args.network, seed=None)
    net.infer()
    if net.input_dtype != UINT(8) or net.input_shape[0] != 3:
        raise NetworkError(f"network {net.name}: a detector trained on VOC images takes RGB "
                           f"UINT8 frames (3×H×W), not {net.input_dtype} "
                           f"{'×'.join(map(str, net.input_shape))}")
    size = net.input_shape[1:]
    t0 = time.perf_counter()
    augment = not args.no_augment
    train = VocDetection(args.voc, args.train_split, size, train=augment,
                         jitter=args.jitter if augment else 0.0, flip=augment,
                         letterboxed=not args.stretch, seed=args.seed, workers=args.workers)
    test = VocDetection(args.voc, args.test_split, size, letterboxed=not args.stretch,
                        workers=args.workers)
    n_test = len(test) if args.test_limit is None else min(args.test_limit, len(test))
    print(f"VOC folder {args.voc}: {len(train)} {args.train_split} images "
          f"({train.num_objects} objects), {len(test)} {args.test_split} images"
          + (f" (evaluating the first {n_test})" if n_test < len(test) else "")
          + f" ({time.perf_counter() - t0:.1f} s)")
    device = pick_device(args.device)
    model = build_model(net, weight_mode=args.weight_mode, weight_scale=args.weight_scale,
                        grad_bits=args.grad_bits, weight_init=args.weight_init,
                        act_grad=args.act_grad, head="region").to(device)
    try:
        spec = region_spec_for(model)
    except ValueError as e:
        raise NetworkError(str(e)) from None
    opt = make_optimizer(model, lr, args.weight_decay)
    sched = make_scheduler(opt, args.schedule, args.epochs)
    out, ckpt = _paths(args, Path(args.network).stem)
    start, seen, best, best_epoch = 0, 0, -1.0, 0
    history: list[dict] = []
    if args.resume and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        if state.get("network") != net.name or state.get("task") != "detect":
            raise UsageError(f"checkpoint {ckpt} is not a detector checkpoint of network "
                             f"{net.name}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, seen = state["epoch"], state["seen"]
        best, best_epoch = state["best"], state["best_epoch"]
        sched = make_scheduler(opt, args.schedule, args.epochs, start)
        history = list(state.get("history", []))
        if "rng" in state:
            torch.set_rng_state(state["rng"].cpu())
        print(f"resumed from {ckpt} after epoch {start} ({seen} images seen)")
    elif args.resume:
        print(f"no checkpoint at {ckpt}: starting from scratch")
    n_par = sum(p.numel() for p in model.parameters())
    print(f"training detector {net.name} on {device} ({n_par:,} parameters, region loss "
          f"with {len(spec.anchors)} anchors × {spec.num_classes} classes, batch "
          f"{batch_size}, Adam lr {lr}, {args.schedule} schedule, "
          + (f"jitter {args.jitter:g} + flip" if augment else "no augmentation") + ")")
    width = len(str(args.epochs))
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressLine(args.epochs) if show else None

    def on_epoch(st: DetEpochStats, seen_now: int) -> None:
        nonlocal best, best_epoch
        if bar is not None:
            bar.clear()
        if not math.isnan(st.test_map) and st.test_map > best:
            best, best_epoch = st.test_map, st.epoch
        history.append(st.to_dict())
        p = st.parts
        m = "   -   " if math.isnan(st.test_map) else f"{100 * st.test_map:6.2f}%"
        print(f"epoch {st.epoch:{width}d}/{args.epochs}  loss {st.loss:.4f} (coord "
              f"{p['coord']:.3f}, obj {p['obj']:.3f}, noobj {p['noobj']:.3f}, cls "
              f"{p['cls']:.3f})  test mAP {m}  lr {st.lr:.2e}  {st.seconds:6.1f} s",
              flush=True)
        _save_atomic({"network": net.name, "task": "detect", "epoch": st.epoch,
                      "seen": seen_now, "best": best, "best_epoch": best_epoch,
                      "model": model.state_dict(), "optimizer": opt.state_dict(),
                      "history": history, "rng": torch.get_rng_state()}, ckpt)

    t_train = time.perf_counter()
    deadline = None if args.time_limit is None else t_start + args.time_limit
    hist = fit_detection(model, train, args.epochs, test, spec=spec, batch_size=batch_size,
                         opt=opt, sched=sched, start_epoch=start, seen=seen,
                         max_batches=args.max_batches, eval_every=args.eval_every,
                         test_limit=args.test_limit, deadline=deadline,
                         progress=bar, on_epoch=on_epoch)
    if _stopped_early(hist, start, args, ckpt):
        return 3
    if args.epochs > start:
        print(f"trained epochs {start + 1}..{args.epochs} in "
              f"{time.perf_counter() - t_train:.1f} s")

    model.eval()
    int_net = export(model)
    netfile.save(int_net, out)
    print(f"exported integer network to {out} ({out.stat().st_size:,} bytes) with the output "
          f"grid's scale and offset per channel (real value = scale·q + offset)")
    t1 = time.perf_counter()
    torch_res, torch_q = evaluate_detector(lambda f: output_grids(model, f), test,
                                           *model.output_affine(), limit=n_test)
    saved = netfile.load(out)
    scale, offset = np.asarray(saved.output_scale), np.asarray(saved.output_offset)
    exact = 0

    def golden_grids(frames: np.ndarray) -> np.ndarray:
        nonlocal exact
        q = golden_forward(saved, frames, keep=False).output
        with torch.no_grad():  # the torch eval model's real-valued output grid
            t = model(torch.from_numpy(frames).to(device)).double().cpu().numpy()
        exact += sum(np.array_equal(t[i], region_values(q[i], scale, offset))
                     for i in range(len(q)))
        return q

    gold_res, gold_q = evaluate_detector(golden_grids, test, scale, offset, limit=n_test)
    same = int(sum(np.array_equal(a, b) for a, b in zip(torch_q, gold_q, strict=True)))
    for k, c in torch_res.classes.items():
        if c.npos:
            print(f"  {k:>12s}: AP {100 * c.ap:6.2f}%  ({c.npos} objects)")
    print(f"test mAP (VOC2007 11-point), torch eval model:     {100 * torch_res.map:.2f}% "
          f"({n_test} images)")
    print(f"test mAP (VOC2007 11-point), golden integer model: {100 * gold_res.map:.2f}% "
          f"({time.perf_counter() - t1:.1f} s)")
    print(f"integer output grids identical on {same}/{n_test} images; scale·q + offset "
          f"equals the torch model's output on {exact}/{n_test}")
    if args.summary:
        _write_json({"network": net.name, "dataset": "voc", "voc": str(args.voc),
                     "device": str(device), "epochs": args.epochs,
                     "train_seconds": sum(h["seconds"] for h in history),
                     "best_test_map": best, "best_epoch": best_epoch,
                     "torch_test_map": torch_res.map, "golden_test_map": gold_res.map,
                     "test_images": n_test, "grids_identical": same, "values_exact": exact,
                     "out": str(out), "history": history,
                     "args": {k: v for k, v in vars(args).items()
                              if isinstance(v, (int, float, str, bool, type(None)))}},
                    Path(args.summary))
    if same != n_test or exact != n_test:
        print("train: ERROR: the exported network disagrees with the torch model",
              file=sys.stderr)
        return 1
    return 0
