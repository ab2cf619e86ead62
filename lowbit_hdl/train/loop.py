"""Training loop pieces: batching on the device, CIFAR-style augmentation, one epoch of
quantization-aware training, evaluation in the exact integer eval mode, and :func:`fit`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .model import QuantNet

__all__ = [
    "EpochStats",
    "random_crop_flip",
    "make_optimizer",
    "make_scheduler",
    "schedule_factor",
    "train_epoch",
    "evaluate",
    "fit",
    "pick_device",
    "sqr_hinge_loss",
    "LOSSES",
    "ProgressLine",
    "recalibrate_bn",
    "AMP_MODES",
    "DeviceImages",
    "as_device",
]

LOSSES = ("ce", "sqr-hinge")
AMP_MODES = ("off", "bf16")


class DeviceImages:
    """A lazy uint8 image array (e.g. :class:`lowbit_hdl.train.data.FolderImages`) seen as
    a tensor on ``device``: ``len``, ``.device`` and indexing by an int, a slice or an index
    tensor, which loads just those images. Lets the training loop run over image sets that
    do not fit in memory."""

    def __init__(self, images, device: torch.device) -> None:
        self.images = images
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key) -> torch.Tensor:
        if torch.is_tensor(key):
            key = key.cpu().numpy()
        return torch.from_numpy(np.asarray(self.images[key])).to(self.device)


def as_device(x, device: torch.device) -> torch.Tensor | DeviceImages:
    """``x`` on ``device``: a numpy array or tensor as one tensor, a lazy image array (any
    other object with ``len`` and indexing, e.g. an image folder) as :class:`DeviceImages`."""
    if torch.is_tensor(x) or isinstance(x, np.ndarray):
        return torch.as_tensor(x).to(device)
    return DeviceImages(x, device)


@dataclass
class EpochStats:
    """Figures of one epoch: mean training loss and accuracy (training mode), test accuracy
    of the eval-mode (integer) model (NaN where the epoch was not evaluated), learning rate
    and wall time in seconds."""

    epoch: int
    loss: float
    train_acc: float
    test_acc: float
    lr: float
    seconds: float

    def to_dict(self) -> dict:
        """The fields as a dict; an epoch without evaluation has ``test_acc`` None (valid
        JSON)."""
        d = asdict(self)
        if math.isnan(d["test_acc"]):
            d["test_acc"] = None
        return d


class ProgressLine:
    """Progress of the running epoch on one terminal line (``\\r``-rewritten, at most every
    ``interval`` seconds): batches done, a bar, elapsed time and an estimate of the rest.
    Call it as ``fit``'s ``progress``; :meth:`clear` wipes the line before other output."""

    def __init__(self, epochs: int, stream=None, interval: float = 0.5, width: int = 24
                 ) -> None:
        import sys

        self.epochs = epochs
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.width = width
        self._t0 = 0.0
        self._last = -1e9
        self._len = 0

    def __call__(self, epoch: int, done: int, total: int) -> None:
        now = time.perf_counter()
        if done == 1:
            self._t0 = now
        if now - self._last < self.interval and done < total:
            return
        self._last = now
        el = now - self._t0
        eta = el / done * (total - done) if done else 0.0
        fill = self.width * done // max(1, total)
        line = (f"epoch {epoch}/{self.epochs} [{'#' * fill}{'.' * (self.width - fill)}] "
                f"{done}/{total} batches  {el:.0f} s, about {eta:.0f} s left")
        self.stream.write("\r" + line.ljust(self._len))
        self.stream.flush()
        self._len = len(line)

    def clear(self) -> None:
        if self._len:
            self.stream.write("\r" + " " * self._len + "\r")
            self.stream.flush()
            self._len = 0


def pick_device(name: str | None = None) -> torch.device:
    """``name`` as a device, or CUDA when available, else the CPU."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def random_crop_flip(x: torch.Tensor, pad: int = 4, flip: bool = True,
                     fill: float = 0.0) -> torch.Tensor:
    """Random crop of the padded images (``pad`` pixels of ``fill`` each side) back to their
    size, and a random horizontal flip with probability 1/2; one draw per image, on x's
    device."""
    n, c, h, w = x.shape
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad), value=fill)
    oy = torch.randint(0, 2 * pad + 1, (n,), device=dev)
    ox = torch.randint(0, 2 * pad + 1, (n,), device=dev)
    rows = oy[:, None] + torch.arange(h, device=dev)
    cols = ox[:, None] + torch.arange(w, device=dev)
    out = xp[torch.arange(n, device=dev)[:, None, None, None],
             torch.arange(c, device=dev)[None, :, None, None],
             rows[:, None, :, None], cols[:, None, None, :]]
    if flip:
        f = torch.rand(n, device=dev) < 0.5
        out = torch.where(f[:, None, None, None], out.flip(3), out)
    return out


def sqr_hinge_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Squared hinge loss of BinaryNet / Brevitas' bnn_pynq: targets +1 for the label and -1
    elsewhere, ``mean((max(0, 1 - t·s))²)`` over all scores."""
    t = F.one_hot(labels, scores.shape[1]).to(scores.dtype) * 2 - 1
    return torch.clamp(1 - t * scores, min=0).square().mean()


def _loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "ce":
        return F.cross_entropy
    if name == "sqr-hinge":
        return sqr_hinge_loss
    raise ValueError(f"unknown loss {name!r} (one of {LOSSES})")



def timed_epochs(start_epoch: int, epochs: int, deadline: float | None,
                 history: list) -> Iterator[tuple[int, float]]:
    """Epochs ``start_epoch + 1 … epochs`` with their start time (``time.perf_counter``),
    ending early when the next one would pass ``deadline`` at the pace of the slowest epoch
    in ``history`` so far (its entries' ``seconds``)."""
    for epoch in range(start_epoch + 1, epochs + 1):
        t0 = time.perf_counter()
        slowest = max((h.seconds for h in history), default=0.0)
        if deadline is not None and t0 + slowest > deadline:
            return
        yield epoch, t0

def make_optimizer(model: QuantNet, lr: float = 1e-2, weight_decay: float = 0.0
                   ) -> torch.optim.Optimizer:
    """Adam over all parameters (weight decay only on the latent weights, if any)."""
    weights = [m.weight for m in model.mvtu.values()]
    ids = {id(p) for p in weights}
    others = [p for p in model.parameters() if id(p) not in ids]
    return torch.optim.Adam([{"params": weights, "weight_decay": weight_decay},
                             {"params": others, "weight_decay": 0.0}], lr=lr)


def schedule_factor(kind: str, epoch: int, epochs: int) -> float:
    """Learning-rate factor for 0-based ``epoch`` of ``epochs``: ``"cosine"`` is
    ``(1 + cos(π·epoch/epochs)) / 2``, ``"step"`` divides by 10 at 50 % and 75 %."""
    epochs = max(1, epochs)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(epoch, epochs) / epochs))
    if kind == "step":
        ms = (max(1, epochs // 2), max(1, 3 * epochs // 4))
        return 0.1 ** sum(epoch >= m for m in ms)
    raise ValueError(f"unknown schedule {kind!r} (cosine or step)")


def make_scheduler(opt: torch.optim.Optimizer, kind: str, epochs: int, done: int = 0
                   ) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-epoch schedule in closed form (:func:`schedule_factor`), stepped once per epoch.

    ``done`` epochs already trained (resuming: after loading the optimizer state) sets the
    learning rate for epoch ``done + 1``; the schedule depends only on the epoch and the
    total, so a resumed run continues exactly where it stopped.
    """
    schedule_factor(kind, 0, epochs)  # validates kind
    if done > 0:
        for g in opt.param_groups:
            g.setdefault("initial_lr", g["lr"])
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: schedule_factor(kind, e, epochs), last_epoch=done - 1)


def _check_amp(amp: str) -> None:
    if amp not in AMP_MODES:
        raise ValueError(f"unknown amp mode {amp!r} (one of {AMP_MODES})")


def train_epoch(model: QuantNet, opt: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor, batch_size: int = 100, augment: bool = False,
                max_batches: int | None = None, shift: int = 0, loss: str = "ce",
                progress: Callable[[int, int], None] | None = None, amp: str = "off",
                forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
                pad_value: float = 0.0) -> tuple[float, float]:
    """One epoch over ``x`` (uint8 NCHW on the model's device, or the input levels of
    :func:`lowbit_hdl.train.data.input_levels`) in random order; returns the mean loss and
    the training accuracy. Latent weights are clipped after every step.

    ``augment``: CIFAR-style random crop (pad 4) and horizontal flip; ``shift``: random
    translation by up to ``shift`` pixels (no flip; for digits); the padding of both is
    ``pad_value`` (the input level of a black pixel). The running loss
    and accuracy stay on the device, so the loop never waits for the GPU. ``loss``: ``"ce"``
    (cross-entropy) or ``"sqr-hinge"`` (:func:`sqr_hinge_loss`). ``progress(done, total)`` is
    called after every batch (counts of batches). ``amp="bf16"`` runs the forward pass under
    bfloat16 autocast (convolutions and matrix products in bf16, the loss in float32); the
    eval path stays exact regardless. ``forward`` replaces ``model(x)`` in the training step
    (e.g. a ``torch.compile``-d model sharing its parameters).
    """
    loss_fn = _loss_fn(loss)
    _check_amp(amp)
    fwd = model if forward is None else forward
    model.train()
    n = len(x)
    total = -(-n // batch_size)
    if max_batches is not None:
        total = min(total, max_batches)
    perm = torch.randperm(n, device=x.device)
    total_loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    seen = 0
    for bi, s in enumerate(range(0, n, batch_size)):
        if max_batches is not None and bi >= max_batches:
            break
        idx = perm[s:s + batch_size]
        xb = x[idx].float()
        if augment:
            xb = random_crop_flip(xb, fill=pad_value)
        elif shift:
            xb = random_crop_flip(xb, pad=shift, flip=False, fill=pad_value)
        yb = y[idx]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            scores = fwd(xb)
        scores = scores.float()
        lv = loss_fn(scores, yb)
        opt.zero_grad(set_to_none=True)
        lv.backward()
        opt.step()
        model.clip_weights()
        total_loss += lv.detach() * len(idx)
        correct += (scores.detach().argmax(1) == yb).sum()
        seen += len(idx)
        if progress is not None:
            progress(bi + 1, total)
    return float(total_loss) / max(1, seen), int(correct) / max(1, seen)


@torch.no_grad()
def recalibrate_bn(model: QuantNet, x: torch.Tensor, batch_size: int = 500) -> None:
    """Replace every BatchNorm's (and the score layer's) running statistics by their exact
    average over ``x`` (uint8 NCHW on the model's device, no augmentation), computed with the
    final weights. The running estimates of training lag behind the weights (momentum 0.1 over
    the last few hundred batches); the eval model and the exported thresholds use the
    recalibrated ones. Weights do not change."""
    from .model import ScalarNorm

    norms = [m for m in model.modules()
             if isinstance(m, (nn.modules.batchnorm._BatchNorm, ScalarNorm))]
    saved = [m.momentum for m in norms]
    dropout, model.dropout = model.dropout, 0.0
    for m in norms:
        if isinstance(m, ScalarNorm):
            m.running_var.zero_()
        else:
            m.reset_running_stats()
    model.train()
    try:
        for i, s in enumerate(range(0, len(x), batch_size)):
            for m in norms:  # cumulative average: batch i gets weight 1/(i+1)
                m.momentum = 1.0 / (i + 1)
            model(x[s:s + batch_size].float())
    finally:
        for m, mom in zip(norms, saved, strict=True):
            m.momentum = mom
        model.dropout = dropout
        model.eval()


@torch.no_grad()
def evaluate(model: QuantNet, x: torch.Tensor, y: torch.Tensor | None = None,
             batch_size: int = 500) -> tuple[float, np.ndarray]:
    """Eval-mode (exact integer) predictions of ``x``; returns (accuracy, predictions).
    The accuracy is NaN without labels."""
    model.eval()
    preds = []
    for s in range(0, len(x), batch_size):
        preds.append(model.predict(x[s:s + batch_size]).cpu())
    p = torch.cat(preds).numpy() if preds else np.zeros(0, dtype=np.int64)
    acc = float("nan") if y is None else float((p == y.cpu().numpy()).mean())
    return acc, p


def fit(model: QuantNet, x_train: np.ndarray | torch.Tensor, y_train: np.ndarray | torch.Tensor,
        epochs: int, x_test: np.ndarray | torch.Tensor | None = None,
        y_test: np.ndarray | torch.Tensor | None = None, lr: float = 1e-2,
        batch_size: int = 100, schedule: str = "cosine", augment: bool = False,
        weight_decay: float = 0.0, opt: torch.optim.Optimizer | None = None,
        sched: torch.optim.lr_scheduler.LRScheduler | None = None, start_epoch: int = 0,
        max_batches: int | None = None, shift: int = 0, deadline: float | None = None,
        loss: str = "ce", progress: Callable[[int, int, int], None] | None = None,
        on_epoch: Callable[[EpochStats], None] | None = None, amp: str = "off",
        compile_forward: bool = False, eval_every: int = 1, pad_value: float = 0.0
        ) -> list[EpochStats]:
    """Train ``model`` for epochs ``start_epoch+1 .. epochs`` with Adam and a per-epoch
    schedule; evaluates the eval-mode model on the test split (if given) after every epoch
    and calls ``on_epoch`` with the figures. Arrays go to the model's device once; lazy
    image arrays (an image folder) are loaded batch by batch (:func:`as_device`).

    ``deadline`` (a :func:`time.perf_counter` value): no epoch is started that would, at the
    pace of the slowest epoch so far, end after it; the history then stops early (resume from
    a checkpoint to go on). ``progress(epoch, batches_done, batches_total)`` is called after
    every training batch. ``amp`` and ``compile_forward`` speed up training only
    (:func:`train_epoch`'s ``amp``; ``torch.compile`` of the training forward pass):
    evaluation and export use the uncompiled, exact float path. ``eval_every`` N evaluates
    the test split only every N-th epoch and after the last (the others get a NaN test
    accuracy): on a CPU the exact evaluation of 10,000 CIFAR images costs a good part of an
    epoch. ``pad_value`` fills the padding of the crop and shift augmentation (the input
    level of pixel 0, :func:`lowbit_hdl.train.data.input_levels`)."""
    _loss_fn(loss)  # validates the names before any work
    _check_amp(amp)
    if eval_every < 1:
        raise ValueError(f"eval_every must be ≥ 1, got {eval_every}")
    device = next(model.parameters()).device
    xt = as_device(x_train, device)  # lazy image arrays stay lazy (DeviceImages)
    yt = torch.as_tensor(np.asarray(y_train) if not torch.is_tensor(y_train) else y_train)
    yt = yt.to(device).long()
    xv = yv = None
    if x_test is not None and y_test is not None:
        xv = as_device(x_test, device)
        yv = torch.as_tensor(np.asarray(y_test) if not torch.is_tensor(y_test) else y_test)
        yv = yv.to(device).long()
    if opt is None:
        opt = make_optimizer(model, lr, weight_decay)
    if sched is None:
        sched = make_scheduler(opt, schedule, epochs, start_epoch)
    forward = torch.compile(model) if compile_forward else None
    history: list[EpochStats] = []
    for epoch, t0 in timed_epochs(start_epoch, epochs, deadline, history):
        cur_lr = opt.param_groups[0]["lr"]
        cb = None if progress is None else (lambda d, t, e=epoch: progress(e, d, t))
        mean_loss, tr_acc = train_epoch(model, opt, xt, yt, batch_size, augment,
                                        max_batches, shift, loss, cb, amp, forward,
                                        pad_value)
        sched.step()
        due = epoch % eval_every == 0 or epoch == epochs
        te_acc = evaluate(model, xv, yv)[0] if xv is not None and due else float("nan")
        st = EpochStats(epoch, mean_loss, tr_acc, te_acc, cur_lr, time.perf_counter() - t0)
        history.append(st)
        if on_epoch is not None:
            on_epoch(st)
    return history
