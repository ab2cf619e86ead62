"""YOLOv2 region loss (Darknet's ``[region]`` layer of ``tiny-yolo-voc.cfg``) in torch.

The network output ``t`` (N, A·(5 + K), H, W) is read exactly as the board decodes it
(:func:`lowbit_hdl.runtime.yolo.decode_region`, whose constants this module imports):
channel ``a·(5 + K) + e`` of anchor ``a``, entries ``e`` = 0 tx, 1 ty, 2 tw, 3 th,
4 objectness, 5… class scores; box centre ``((col + σ(tx))/W, (row + σ(ty))/H)``, size
``(aw·e^tw/W, ah·e^th/H)`` with the anchors in cells, objectness ``σ(to)``, class
probabilities ``softmax``.

Targets per image are rows ``(class, x, y, w, h)``, centre and size as fractions of the
input (:class:`lowbit_hdl.train.voc.VocDetection`). The deltas are those of Darknet's
original YOLOv2 ``forward_region_layer`` (``rescore=1``, ``bias_match=1``, ``softmax=1``):

* **No object**: every (cell, anchor) pulls ``σ(to)`` towards 0 with weight
  ``noobject_scale``, unless its predicted box has IoU > ``thresh`` (0.6) with some truth
  of its image.
* **Prior** (the first ``prior_images`` = 12 800 images seen): every (cell, anchor) pulls
  its box towards the anchor centred in the cell (``σ(tx) = σ(ty) = 0.5``, ``tw = th = 0``)
  with weight ``prior_scale`` = 0.01.
* **Responsible anchor**: a truth falls in the cell ``(⌊y·H⌋, ⌊x·W⌋)``; of that cell's
  anchors, the one whose shape has the best IoU with the truth's (both centred at 0; the
  first on ties) is responsible. Its box is pulled towards the truth (``σ(tx) = x·W − col``,
  ``σ(ty) = y·H − row``, ``tw = log(w·W/aw)``, ``th = log(h·H/ah)``) with weight
  ``coord_scale·(2 − w·h)``; its ``σ(to)`` towards the IoU of its predicted box with the
  truth (``rescore``) with weight ``object_scale``; its class scores by softmax
  cross-entropy with weight ``class_scale`` (Darknet's class delta ``onehot − p`` is that
  loss's negative gradient). A later truth of the same cell and anchor replaces an earlier
  one, as Darknet's deltas are overwritten.

Each squared term is ``½·weight·(target − value)²``, so its negative gradient with respect
to the activated value is Darknet's delta ``weight·(target − value)``; the gradient
reaching ``tx``, ``ty`` and ``to`` carries the sigmoid's derivative as in the YOLOv2 code
of 2016/17 (later Darknet versions drop it for x and y). The loss is the sum over the
batch divided by the number of images (Darknet divides the learning rate by the batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..runtime.yolo import VOC_ANCHORS, VOC_CLASSES

__all__ = ["RegionSpec", "RegionTargets", "region_boxes", "region_targets", "region_loss",
           "shape_iou_anchor"]


@dataclass(frozen=True)
class RegionSpec:
    """The ``[region]`` parameters of ``tiny-yolo-voc.cfg`` (defaults)."""

    anchors: tuple[tuple[float, float], ...] = VOC_ANCHORS
    num_classes: int = len(VOC_CLASSES)
    object_scale: float = 5.0
    noobject_scale: float = 1.0
    class_scale: float = 1.0
    coord_scale: float = 1.0
    thresh: float = 0.6
    rescore: bool = True
    prior_images: int = 12800
    prior_scale: float = 0.01

    @property
    def per_anchor(self) -> int:
        return 5 + self.num_classes

    @property
    def channels(self) -> int:
        """Channels of the output grid: A·(5 + K)."""
        return len(self.anchors) * self.per_anchor


def _split(out: torch.Tensor, spec: RegionSpec) -> torch.Tensor:
    n, c, h, w = out.shape
    if c != spec.channels:
        raise ValueError(f"the output has {c} channels; {len(spec.anchors)} anchors × "
                         f"(5 + {spec.num_classes}) = {spec.channels} expected")
    return out.reshape(n, len(spec.anchors), spec.per_anchor, h, w)


def region_boxes(out: torch.Tensor, spec: RegionSpec = RegionSpec()) -> torch.Tensor:
    """Predicted boxes (N, A, H, W, 4) as (x, y, w, h) fractions of the input, decoded as
    :func:`lowbit_hdl.runtime.yolo.decode_region` does."""
    t = _split(out, spec)
    _, _, _, h, w = t.shape
    anc = torch.as_tensor(spec.anchors, dtype=t.dtype, device=t.device)
    col = torch.arange(w, dtype=t.dtype, device=t.device)[None, None, None, :]
    row = torch.arange(h, dtype=t.dtype, device=t.device)[None, None, :, None]
    bx = (col + torch.sigmoid(t[:, :, 0])) / w
    by = (row + torch.sigmoid(t[:, :, 1])) / h
    bw = anc[None, :, 0, None, None] * torch.exp(t[:, :, 2]) / w
    bh = anc[None, :, 1, None, None] * torch.exp(t[:, :, 3]) / h
    return torch.stack([bx, by, bw, bh], dim=-1)


def _iou_xywh(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of centre boxes (…, 4) broadcast against each other."""
    ax0, ax1 = a[..., 0] - a[..., 2] / 2, a[..., 0] + a[..., 2] / 2
    ay0, ay1 = a[..., 1] - a[..., 3] / 2, a[..., 1] + a[..., 3] / 2
    bx0, bx1 = b[..., 0] - b[..., 2] / 2, b[..., 0] + b[..., 2] / 2
    by0, by1 = b[..., 1] - b[..., 3] / 2, b[..., 1] + b[..., 3] / 2
    iw = (torch.minimum(ax1, bx1) - torch.maximum(ax0, bx0)).clamp(min=0)
    ih = (torch.minimum(ay1, by1) - torch.maximum(ay0, by0)).clamp(min=0)
    inter = iw * ih
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-30), torch.zeros_like(inter))


def shape_iou_anchor(w: float, h: float, grid: tuple[int, int],
                     anchors: tuple[tuple[float, float], ...] = VOC_ANCHORS) -> int:
    """The anchor whose shape (in fractions: ``aw/W × ah/H``) has the best IoU with a
    ``w × h`` box (fractions) when both are centred at 0; the first on ties."""
    gh, gw = grid
    best, best_iou = 0, -1.0
    for a, (aw, ah) in enumerate(anchors):
        pw, ph = aw / gw, ah / gh
        inter = min(w, pw) * min(h, ph)
        iou = inter / (w * h + pw * ph - inter)
        if iou > best_iou:
            best, best_iou = a, iou
    return best


@dataclass
class RegionTargets:
    """What :func:`region_targets` assigns, each (N, A, H, W) unless noted: ``coord``
    (…, 4) targets of (σ(tx), σ(ty), tw, th) and ``coord_w`` their weight; ``obj`` the
    objectness target and ``obj_w`` its weight; ``cls`` the class index of responsible
    anchors (−1 elsewhere); ``best_iou`` of each predicted box with the image's truths."""

    coord: torch.Tensor
    coord_w: torch.Tensor
    obj: torch.Tensor
    obj_w: torch.Tensor
    cls: torch.Tensor
    best_iou: torch.Tensor

    @property
    def responsible(self) -> torch.Tensor:
        """Mask of the (image, anchor, row, col) that a truth was assigned to."""
        return self.cls >= 0


def _truth_arrays(truths: list, n: int, spec: RegionSpec) -> list[np.ndarray]:
    """The truths of each image as float64 (M, 5) arrays, checked."""
    if len(truths) != n:
        raise ValueError(f"{len(truths)} truth lists for a batch of {n}")
    out = []
    for b, x in enumerate(truths):
        a = (x.detach().cpu().double().numpy() if torch.is_tensor(x)
             else np.asarray(x, dtype=np.float64)).reshape(-1, 5)
        k = a[:, 0]
        if a.size and (bool((k < 0).any()) or bool((k >= spec.num_classes).any())
                       or bool((k != np.round(k)).any())):
            raise ValueError(f"image {b}: class indices must be integers in "
                             f"0..{spec.num_classes - 1}")
        if a.size and not bool(((a[:, 3] > 0) & (a[:, 4] > 0)).all()):
            raise ValueError(f"image {b}: truth boxes must have w, h > 0")
        out.append(a)
    return out


@torch.no_grad()
def region_targets(out: torch.Tensor, truths: list, spec: RegionSpec = RegionSpec(),
                   seen: int = 0) -> RegionTargets:
    """Darknet's assignment for the output ``out`` (N, A·(5 + K), H, W) and the truths of
    each image (a list of N arrays or tensors (M, 5): class, x, y, w, h); ``seen``: images
    trained on before this batch (the prior term applies while it is below
    ``spec.prior_images``). The assignment is computed on the CPU and written to the
    output's device in one go."""
    t = _split(out, spec)
    n, na, _, h, w = t.shape
    tr = _truth_arrays(truths, n, spec)
    dev, dt = out.device, out.dtype
    boxes = region_boxes(out.detach(), spec)  # (N, A, H, W, 4)
    m = max((len(x) for x in tr), default=0)
    best_iou = torch.zeros((n, na, h, w), dtype=dt, device=dev)
    if m:
        pad = np.zeros((n, m, 4))
        valid = np.zeros((n, m), dtype=bool)
        for b, x in enumerate(tr):
            pad[b, :len(x)] = x[:, 1:]
            valid[b, :len(x)] = True
        pad_t = torch.as_tensor(pad, dtype=dt, device=dev)
        valid_t = torch.as_tensor(valid, device=dev)
        iou = _iou_xywh(boxes[:, :, :, :, None, :], pad_t[:, None, None, None, :, :])
        iou = torch.where(valid_t[:, None, None, None, :], iou, torch.zeros_like(iou))
        best_iou = iou.max(dim=-1).values
    obj = torch.zeros((n, na, h, w), dtype=dt, device=dev)
    obj_w = torch.where(best_iou > spec.thresh, torch.zeros_like(obj),
                        torch.full_like(obj, spec.noobject_scale))
    coord = torch.zeros((n, na, h, w, 4), dtype=dt, device=dev)
    coord_w = torch.zeros((n, na, h, w), dtype=dt, device=dev)
    if seen < spec.prior_images:
        coord[..., 0:2] = 0.5
        coord_w.fill_(spec.prior_scale)
    cls = torch.full((n, na, h, w), -1, dtype=torch.long, device=dev)
    # (image, anchor, row, col) → (class, truth x y w h, targets σx σy tw th, weight); a
    # later truth of the same slot replaces an earlier one
    slots: dict[tuple[int, int, int, int], tuple[float, ...]] = {}
    for b, x in enumerate(tr):
        for k, tx, ty, tw, th in x.tolist():
            i = min(max(int(math.floor(tx * w)), 0), w - 1)
            j = min(max(int(math.floor(ty * h)), 0), h - 1)
            a = shape_iou_anchor(tw, th, (h, w), spec.anchors)
            aw, ah = spec.anchors[a]
            slots[(b, a, j, i)] = (k, tx, ty, tw, th, tx * w - i, ty * h - j,
                                   math.log(tw * w / aw), math.log(th * h / ah),
                                   spec.coord_scale * (2.0 - tw * th))
    if slots:
        ix = torch.as_tensor(list(slots), dtype=torch.long, device=dev)
        v = torch.as_tensor(list(slots.values()), dtype=dt, device=dev)
        at = (ix[:, 0], ix[:, 1], ix[:, 2], ix[:, 3])
        coord[at] = v[:, 5:9]
        coord_w[at] = v[:, 9]
        obj[at] = _iou_xywh(boxes[at], v[:, 1:5]) if spec.rescore else 1.0
        obj_w[at] = spec.object_scale
        cls[at] = v[:, 0].round().long()
    return RegionTargets(coord, coord_w, obj, obj_w, cls, best_iou)


def region_loss(out: torch.Tensor, truths: list, spec: RegionSpec = RegionSpec(),
                seen: int = 0) -> tuple[torch.Tensor, dict[str, float]]:
    """The region loss of a batch (see the module's description) and its parts per image:
    ``{"coord", "obj", "noobj", "cls"}`` (floats; ``obj`` the responsible anchors'
    objectness term, ``noobj`` the others')."""
    tg = region_targets(out, truths, spec, seen)
    t = _split(out, spec)
    n = t.shape[0]
    vals = torch.stack([torch.sigmoid(t[:, :, 0]), torch.sigmoid(t[:, :, 1]),
                        t[:, :, 2], t[:, :, 3]], dim=-1)
    coord = 0.5 * (tg.coord_w[..., None] * (tg.coord - vals).square()).sum()
    so = torch.sigmoid(t[:, :, 4])
    obj_terms = 0.5 * tg.obj_w * (tg.obj - so).square()
    resp = tg.responsible
    obj = obj_terms[resp].sum()
    noobj = obj_terms[~resp].sum()
    if bool(resp.any()):
        logits = t[:, :, 5:].permute(0, 1, 3, 4, 2)[resp]  # (R, K)
        cls = spec.class_scale * F.cross_entropy(logits, tg.cls[resp], reduction="sum")
    else:
        cls = out.sum() * 0.0
    total = (coord + obj + noobj + cls) / n
    parts = {k: float(v.detach()) / n for k, v in
             (("coord", coord), ("obj", obj), ("noobj", noobj), ("cls", cls))}
    return total, parts
