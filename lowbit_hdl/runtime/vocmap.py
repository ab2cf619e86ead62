"""PascalVOC detection evaluation: average precision per class and mAP, as the VOC devkit
(``VOCevaldet.m``) and its Python port (``voc_eval.py`` of py-faster-rcnn) compute them.

* **Annotations** (:func:`read_voc_xml`): one XML file per image, ``<object>`` elements
  with ``<name>``, ``<bndbox>`` (``xmin ymin xmax ymax``, 1-based inclusive pixel
  coordinates) and ``<difficult>`` (0 when absent).
* **Matching**, per class: detections sorted by decreasing score (ties keep their given
  order); each is compared with every ground-truth box of its image and class by IoU with
  VOC's inclusive-pixel convention (``w = xmax − xmin + 1``; ``plus_one=False`` uses
  continuous coordinates). The best-overlapping ground truth decides: IoU ≥ 0.5 with a
  *difficult* one → the detection is ignored (neither true nor false positive); with
  one not yet matched → true positive, and the box is matched; with one already matched →
  false positive (a duplicate); IoU < 0.5 → false positive. Difficult boxes do not count
  in the number of positives.
* **AP** from the precision/recall curve (:func:`voc_ap`): VOC2007's 11-point
  interpolation (mean over r = 0, 0.1, …, 1 of the best precision at recall ≥ r; the r
  are ``i·0.1`` in floating point as the devkit's ``0:0.1:1`` and ``voc_eval.py``'s
  ``np.arange(0, 1.1, 0.1)`` make them, so a recall of exactly 3/10 does not reach
  r = 0.30000000000000004) or the all-point area under the monotone precision envelope
  (VOC2010 on). A class without
  non-difficult ground truth has AP ``nan`` and is left out of the mean.

Numpy and the standard library only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["VocObject", "ClassAP", "MapResult", "read_voc_xml", "read_voc_folder",
           "voc_ap", "match_detections", "evaluate", "voc_detections"]


@dataclass(frozen=True)
class VocObject:
    """One annotated object: class name, box (xmin, ymin, xmax, ymax) as in the file,
    difficult flag."""

    name: str
    box: tuple[float, float, float, float]
    difficult: bool = False


@dataclass
class ClassAP:
    """One class's evaluation: AP, the number of (non-difficult) positives, and the
    precision/recall curve over the ranked detections (ignored ones left out)."""

    name: str
    ap: float
    npos: int
    precision: np.ndarray
    recall: np.ndarray
    tp: np.ndarray  # per ranked, non-ignored detection: 1 true positive, 0 false


@dataclass
class MapResult:
    """:func:`evaluate`'s result: AP per class and their mean over classes with positives."""

    classes: dict[str, ClassAP] = field(default_factory=dict)
    use_07_metric: bool = True

    @property
    def ap(self) -> dict[str, float]:
        return {k: v.ap for k, v in self.classes.items()}

    @property
    def map(self) -> float:
        aps = [v.ap for v in self.classes.values() if v.npos > 0]
        return float(np.mean(aps)) if aps else float("nan")

    def summary(self) -> str:
        metric = "VOC2007 11-point" if self.use_07_metric else "all-point"
        lines = [f"{k:>12s}: {v.ap * 100:6.2f}  ({v.npos} objects)"
                 for k, v in self.classes.items()]
        return "\n".join(lines + [f"{'mAP':>12s}: {self.map * 100:6.2f}  ({metric} AP)"])


def read_voc_xml(path: str | Path) -> list[VocObject]:
    """The objects of one VOC annotation file (``ValueError`` naming the file when it is
    not one)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path}: not valid XML ({e})") from None
    objs = []
    for i, obj in enumerate(root.iter("object")):
        try:
            name = (obj.findtext("name") or "").strip()
            bb = obj.find("bndbox")
            if not name or bb is None:
                raise ValueError("no name or bndbox")
            box = tuple(float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            diff = obj.findtext("difficult")
            difficult = bool(int(float(diff))) if diff and diff.strip() else False
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: object {i} is malformed ({e})") from None
        objs.append(VocObject(name, box, difficult))  # type: ignore[arg-type]
    return objs


def read_voc_folder(folder: str | Path, ids: Iterable[str] | None = None
                    ) -> dict[str, list[VocObject]]:
    """``{image id: objects}`` of the ``<id>.xml`` files in ``folder`` (VOC's
    ``Annotations/``), all of them or those of ``ids`` (e.g. the lines of
    ``ImageSets/Main/test.txt``)."""
    folder = Path(folder)
    if ids is None:
        paths = sorted(folder.glob("*.xml"))
    else:
        paths = [folder / f"{i.strip()}.xml" for i in ids if i.strip()]
    return {p.stem: read_voc_xml(p) for p in paths}


def voc_detections(image_id: str, detections: Iterable[Any], width: int, height: int
                   ) -> list[tuple[str, str, float, tuple[float, float, float, float]]]:
    """One image's detections (objects with ``x0 y0 x1 y1`` in 0-based continuous pixels,
    ``class_name`` and ``score``, as :class:`lowbit_hdl.runtime.yolo.Detection`) →
    :func:`evaluate`'s ``(image id, class, score, box)`` in VOC's 1-based pixels, clamped to
    the ``width`` × ``height`` image as Darknet's ``valid`` writes them:
    ``(max(x0 + 1, 1), max(y0 + 1, 1), min(x1 + 1, width), min(y1 + 1, height))``."""
    return [(image_id, d.class_name, float(d.score),
             (max(d.x0 + 1, 1), max(d.y0 + 1, 1), min(d.x1 + 1, width), min(d.y1 + 1, height)))
            for d in detections]


def voc_ap(recall: Any, precision: Any, use_07_metric: bool = True) -> float:
    """AP of a precision/recall curve (detections ranked best first): VOC2007's 11-point
    interpolation, or the all-point area under the precision envelope."""
    rec = np.asarray(recall, dtype=np.float64).reshape(-1)
    prec = np.asarray(precision, dtype=np.float64).reshape(-1)
    if rec.shape != prec.shape:
        raise ValueError(f"{rec.size} recall values but {prec.size} precision values")
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):  # i·0.1 in floating point, as the devkit
            sel = prec[rec >= t]
            ap += (sel.max() if sel.size else 0.0) / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _iou(box: np.ndarray, gts: np.ndarray, plus_one: bool) -> np.ndarray:
    e = 1.0 if plus_one else 0.0
    iw = np.maximum(np.minimum(box[2], gts[:, 2]) - np.maximum(box[0], gts[:, 0]) + e, 0.0)
    ih = np.maximum(np.minimum(box[3], gts[:, 3]) - np.maximum(box[1], gts[:, 1]) + e, 0.0)
    inter = iw * ih
    union = (box[2] - box[0] + e) * (box[3] - box[1] + e) + \
        (gts[:, 2] - gts[:, 0] + e) * (gts[:, 3] - gts[:, 1] + e) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_detections(detections: Sequence[tuple[str, float, Sequence[float]]],
                     ground_truth: Mapping[str, Sequence[VocObject]], class_name: str,
                     iou_thresh: float = 0.5, plus_one: bool = True
                     ) -> tuple[np.ndarray, int]:
    """One class's detections ``(image id, score, (x0, y0, x1, y1))`` against the ground
    truth → (per detection in ranked order: 1 true positive, 0 false positive, −1
    ignored; the number of non-difficult positives)."""
    gts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    npos = 0
    for img, objs in ground_truth.items():
        mine = [o for o in objs if o.name == class_name]
        boxes = np.array([o.box for o in mine], dtype=np.float64).reshape(-1, 4)
        diff = np.array([o.difficult for o in mine], dtype=bool)
        gts[img] = (boxes, diff)
        npos += int((~diff).sum())
    scores = np.array([float(d[1]) for d in detections], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    taken = {img: np.zeros(len(b), dtype=bool) for img, (b, _) in gts.items()}
    out = np.zeros(len(detections), dtype=np.int64)
    for rank, j in enumerate(order):
        img, _, box = detections[j]
        if img not in gts:
            raise ValueError(f"detection on image {img!r}, which has no annotation")
        boxes, diff = gts[img]
        if boxes.shape[0] == 0:
            continue  # false positive (0)
        ov = _iou(np.asarray(box, dtype=np.float64), boxes, plus_one)
        m = int(np.argmax(ov))
        if ov[m] >= iou_thresh:
            if diff[m]:
                out[rank] = -1
            elif not taken[img][m]:
                out[rank] = 1
                taken[img][m] = True
    return out, npos


def evaluate(detections: Iterable[tuple[str, str, float, Sequence[float]]],
             ground_truth: Mapping[str, Sequence[VocObject]],
             classes: Sequence[str] | None = None, *, use_07_metric: bool = True,
             iou_thresh: float = 0.5, plus_one: bool = True) -> MapResult:
    """AP per class and mAP.

    ``detections``: ``(image id, class name, score, (x0, y0, x1, y1))`` in the annotations'
    pixel coordinates (for VOC files: 1-based; add 1 to 0-based boxes, as Darknet's
    ``valid`` does when it writes VOC result files); ``ground_truth``: ``{image id:
    objects}`` (:func:`read_voc_folder`) over every evaluated image, also those without
    detections; ``classes``: default all classes of the ground truth, sorted.
    """
    dets = list(detections)
    if classes is None:
        classes = sorted({o.name for objs in ground_truth.values() for o in objs})
    res = MapResult(use_07_metric=use_07_metric)
    for cname in classes:
        mine = [(d[0], d[2], d[3]) for d in dets if d[1] == cname]
        flags, npos = match_detections(mine, ground_truth, cname, iou_thresh, plus_one)
        tp = (flags[flags >= 0] == 1).astype(np.float64)
        ctp, cfp = np.cumsum(tp), np.cumsum(1.0 - tp)
        rec = ctp / npos if npos else np.full(tp.shape, np.nan)
        prec = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
        ap = voc_ap(rec, prec, use_07_metric) if npos else float("nan")
        res.classes[cname] = ClassAP(cname, ap, npos, prec, rec, tp.astype(np.int64))
    return res
