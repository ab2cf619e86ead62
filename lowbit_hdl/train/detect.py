"""Detection training: quantization-aware training of a region-head model
(:func:`lowbit_hdl.train.model.build_model` with ``head="region"``) with the YOLOv2 region
loss (:mod:`lowbit_hdl.train.region`) on a VOC-style folder
(:class:`lowbit_hdl.train.voc.VocDetection`), and its evaluation by VOC mAP.

The evaluation decodes exactly what the board decodes: the integer output grid ``q`` of the
eval-mode model (equal to the golden model's once exported) with the per-channel
``(scale, offset)`` that the export records, through
:func:`lowbit_hdl.runtime.yolo.detect_grid` (threshold, NMS, boxes mapped back to each
image) and :func:`lowbit_hdl.runtime.vocmap.evaluate`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..runtime.vocmap import MapResult, evaluate, voc_detections
from ..runtime.yolo import detect_grid
from .loop import make_optimizer, make_scheduler, timed_epochs
from .model import QuantNet
from .region import RegionSpec, region_loss
from .voc import VocDetection

__all__ = ["DetEpochStats", "EVAL_CONF_THRESH", "region_spec_for", "train_detection_epoch",
           "output_grids", "evaluate_detector", "fit_detection"]

#: confidence threshold of the mAP evaluation (Darknet's ``valid``: ``thresh = .005``)
EVAL_CONF_THRESH = 0.005


def region_spec_for(model: QuantNet, **scales: float) -> RegionSpec:
    """The :class:`RegionSpec` (VOC anchors, 20 classes, tiny-yolo-voc's scales, ``scales``
    overriding) of a region-head model; ``ValueError`` when its output grid does not have
    A·(5 + K) channels."""
    if model.head != "region":
        raise ValueError("detection training needs a model with head='region'")
    spec = RegionSpec(**scales)
    c = model.infos[-1].out_shape[0]
    if c != spec.channels:
        raise ValueError(f"network {model.net.name}: its output has {c} channels; the region "
                         f"layer needs {len(spec.anchors)} anchors × (5 + "
                         f"{spec.num_classes}) = {spec.channels}")
    return spec


@dataclass
class DetEpochStats:
    """Figures of one epoch: mean training loss per image and its parts (``coord``,
    ``obj``, ``noobj``, ``cls``), the test mAP (VOC2007 11-point; NaN where the epoch was
    not evaluated), learning rate, wall time in seconds."""

    epoch: int
    loss: float
    parts: dict[str, float] = field(default_factory=dict)
    test_map: float = float("nan")
    lr: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        if math.isnan(d["test_map"]):
            d["test_map"] = None
        return d


def train_detection_epoch(model: QuantNet, opt: torch.optim.Optimizer, data: VocDetection,
                          spec: RegionSpec, batch_size: int = 64, seen: int = 0,
                          max_batches: int | None = None,
                          progress: Callable[[int, int], None] | None = None
                          ) -> tuple[float, dict[str, float], int]:
    """One epoch over ``data`` (augmented as it is set up) in random order; returns the mean
    loss per image, its parts, and the number of images seen after it (``seen`` before:
    it ends the region loss's prior term). Latent weights are clipped after every step."""
    device = next(model.parameters()).device
    model.train()
    n = len(data)
    perm = torch.randperm(n).numpy()
    total = -(-n // batch_size)
    if max_batches is not None:
        total = min(total, max_batches)
    sums = {"loss": 0.0, "coord": 0.0, "obj": 0.0, "noobj": 0.0, "cls": 0.0}
    count = 0
    for bi in range(total):
        idx = perm[bi * batch_size:(bi + 1) * batch_size]
        frames, targets, _ = data.batch(idx)
        out = model(torch.from_numpy(frames).to(device))
        loss, parts = region_loss(out.float(), targets, spec, seen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.clip_weights()
        k = len(idx)
        seen += k
        count += k
        sums["loss"] += float(loss.detach()) * k
        for key, v in parts.items():
            sums[key] += v * k
        if progress is not None:
            progress(bi + 1, total)
    mean = {k: v / max(1, count) for k, v in sums.items()}
    return mean.pop("loss"), mean, seen


@torch.no_grad()
def output_grids(model: QuantNet, frames: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """The eval-mode model's integer output grids (N, C, H, W) int64 of uint8 ``frames``:
    what the golden model of the exported network computes."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(frames), batch_size):
        rec = model.intermediates(torch.from_numpy(frames[s:s + batch_size]).to(device))
        out.append(rec[model.score_layer])
    return np.concatenate(out)


def evaluate_detector(grids_of: Callable[[np.ndarray], np.ndarray], data: VocDetection,
                      scale, offset, *, limit: int | None = None, batch_size: int = 32,
                      conf_thresh: float = EVAL_CONF_THRESH
                      ) -> tuple[MapResult, np.ndarray]:
    """mAP of a detector on ``data`` (no augmentation): ``grids_of(frames)`` gives the
    integer output grids of uint8 frames N×3×H×W (the torch eval model,
    :func:`output_grids`, or the golden model of the export), decoded with ``scale`` and
    ``offset`` (per channel) as the board does, boxes mapped to each image, compared with
    its annotations (difficult ones ignored). Returns the VOC2007 11-point result and the
    grids (int64)."""
    ev = data.evaluation()
    n = len(ev) if limit is None else min(limit, len(ev))
    dets: list = []
    grids = []
    for s in range(0, n, batch_size):
        idx = list(range(s, min(n, s + batch_size)))
        frames, _, placements = ev.batch(idx)
        q = np.asarray(grids_of(frames))
        grids.append(q)
        for j, i in enumerate(idx):
            found = detect_grid(q[j], scale, offset, placement=placements[j],
                                conf_thresh=conf_thresh, class_names=ev.class_names)
            pl = placements[j]
            dets += voc_detections(ev.ids[i], found, pl.orig_w, pl.orig_h)
    res = evaluate(dets, ev.ground_truth(list(range(n))), list(ev.class_names),
                   use_07_metric=True)
    return res, np.concatenate(grids) if grids else np.zeros((0,), np.int64)


def fit_detection(model: QuantNet, train: VocDetection, epochs: int,
                  test: VocDetection | None = None, *, spec: RegionSpec | None = None,
                  lr: float = 1e-3, batch_size: int = 64, schedule: str = "cosine",
                  weight_decay: float = 0.0, opt: torch.optim.Optimizer | None = None,
                  sched: torch.optim.lr_scheduler.LRScheduler | None = None,
                  start_epoch: int = 0, seen: int = 0, max_batches: int | None = None,
                  eval_every: int = 1, test_limit: int | None = None,
                  deadline: float | None = None,
                  progress: Callable[[int, int, int], None] | None = None,
                  on_epoch: Callable[[DetEpochStats, int], None] | None = None
                  ) -> list[DetEpochStats]:
    """Train a region-head ``model`` for epochs ``start_epoch+1 .. epochs`` (Adam, per-epoch
    schedule as :func:`lowbit_hdl.train.loop.fit`); after every ``eval_every``-th epoch and
    the last, the test mAP of the eval-mode (integer) model with its current output scale
    (:func:`evaluate_detector`, the first ``test_limit`` images). ``on_epoch(stats, seen)``
    is called after every epoch; ``deadline`` stops before an epoch that would end after it
    (at the pace of the slowest so far)."""
    spec = spec if spec is not None else region_spec_for(model)
    if eval_every < 1:
        raise ValueError(f"eval_every must be ≥ 1, got {eval_every}")
    if opt is None:
        opt = make_optimizer(model, lr, weight_decay)
    if sched is None:
        sched = make_scheduler(opt, schedule, epochs, start_epoch)
    history: list[DetEpochStats] = []
    for epoch, t0 in timed_epochs(start_epoch, epochs, deadline, history):
        cur_lr = opt.param_groups[0]["lr"]
        cb = None if progress is None else (lambda d, t, e=epoch: progress(e, d, t))
        loss, parts, seen = train_detection_epoch(model, opt, train, spec, batch_size, seen,
                                                  max_batches, cb)
        sched.step()
        m = float("nan")
        if test is not None and (epoch % eval_every == 0 or epoch == epochs):
            scale, offset = model.output_affine()
            res, _ = evaluate_detector(lambda f: output_grids(model, f), test, scale, offset,
                                       limit=test_limit)
            m = res.map
        st = DetEpochStats(epoch, loss, parts, m, cur_lr, time.perf_counter() - t0)
        history.append(st)
        if on_epoch is not None:
            on_epoch(st, seen)
    return history
