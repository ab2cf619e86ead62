"""Tiny-YOLO (PascalVOC) pre- and post-processing on the board: image → the 3×416×416 UINT8
input of ``networks/tiny_yolo_w1a3.py``, its integer 125×13×13 output grid → boxes.

**Input.** :func:`letterbox` scales the image to fit 416×416 keeping its aspect ratio
(Darknet's ``letterbox_image``: ``new_w = 416, new_h = H·416 // W`` when the width limits,
else the other way round), centres it at ``((416 − new_w) // 2, (416 − new_h) // 2)`` and
fills the rest with grey 128 (Darknet's 0.5); :func:`resize_to_input` stretches it to
416×416 instead (Darknet before letterboxing). Both resize with
:func:`~.preprocess.resize_image` (bilinear, pixel centres aligned; Darknet's own resize
aligns the corner pixels instead, a sub-pixel difference) and return the frame with a
:class:`Placement` that maps boxes back to the image.

**Output grid** (Darknet's ``[region]`` layer of ``tiny-yolo-voc.cfg``). The design outputs
``q`` with shape (C, H, W) = (A·(5 + K), 13, 13), A = 5 anchors, K = 20 classes: channel
``c = a·(5 + K) + e``, anchor-major, the same order as Darknet's ``entry_index`` (its output
is planar, ``n·H·W·(coords + classes + 1) + entry·H·W + row·W + col``), with entries
``e`` = 0 tx, 1 ty, 2 tw, 3 th, 4 to (objectness), 5 … 5 + K − 1 the class scores. The
integers become real values ``t = scale · q + offset`` (``scale`` and ``offset``: numbers or
one per channel, what the export of the last layer's accumulator gives). For the cell at
(row, col) and anchor a with size ``(aw, ah)`` in cells:

* ``x = (col + σ(tx)) / W``, ``y = (row + σ(ty)) / H`` (box centre, fraction of the input),
* ``w = aw · exp(tw) / W``, ``h = ah · exp(th) / H``,
* objectness ``σ(to)``, class probabilities ``softmax(t_5 … t_{5+K−1})``,
* score of class k: ``σ(to) · p_k``; a (box, class) pair is kept when its score > the
  confidence threshold (Darknet's ``prob > thresh``).

**NMS** per class as Darknet's ``do_nms_sort``: the kept pairs of a class in order of
decreasing score (ties: lower cell index first, cells counted as ``(a·H + row)·W + col``),
each removes the later ones whose IoU with it is > ``nms_thresh`` (default 0.45). A box
can carry several classes. Boxes are then mapped back through the :class:`Placement` to the
original image's pixels (with the integer offset the image was placed at; Darknet's
``correct_region_boxes`` uses ``(416 − new_w)/2`` unrounded, half a pixel apart when the
difference is odd) and clipped to it.

Numpy and the standard library only; :func:`draw_boxes` and :func:`write_png` draw and save
results without Pillow.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .preprocess import (
    PreprocessError,
    _check_pixels,
    image_items,
    resize_image,
    rgb_image,
)

__all__ = ["VOC_CLASSES", "VOC_ANCHORS", "DEFAULT_CONF_THRESH", "DEFAULT_NMS_THRESH",
           "Placement", "Detection", "letterbox", "resize_to_input", "detection_frames",
           "demo_scale", "region_values", "decode_region", "box_iou", "nms", "detect_grid",
           "draw_boxes", "write_png"]

#: the 20 PascalVOC classes in Darknet's ``voc.names`` order (class index k)
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
#: tiny-yolo-voc's anchors (width, height) in grid cells
VOC_ANCHORS = ((1.08, 1.19), (3.42, 4.41), (6.63, 11.38), (9.42, 5.11), (16.62, 10.52))
#: Darknet's ``detector test`` defaults of the YOLOv2 era (``-thresh .24``, ``nms = .45``)
DEFAULT_CONF_THRESH = 0.24
DEFAULT_NMS_THRESH = 0.45


@dataclass(frozen=True)
class Placement:
    """Where an image went in the network input: the image (``orig_h`` × ``orig_w``) was
    resized to ``new_h`` × ``new_w`` and put at (``top``, ``left``) of the ``size_h`` ×
    ``size_w`` input."""

    orig_h: int
    orig_w: int
    new_h: int
    new_w: int
    top: int
    left: int
    size_h: int
    size_w: int

    @classmethod
    def identity(cls, h: int, w: int) -> Placement:
        """An image that is the input itself."""
        return cls(h, w, h, w, 0, 0, h, w)

    def to_image(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes (…, 4) as (x0, y0, x1, y1) fractions of the input → pixels of the original
        image (not clipped)."""
        b = np.asarray(boxes, dtype=np.float64)
        sx, sy = self.orig_w / self.new_w, self.orig_h / self.new_h
        out = np.empty_like(b)
        out[..., 0::2] = (b[..., 0::2] * self.size_w - self.left) * sx
        out[..., 1::2] = (b[..., 1::2] * self.size_h - self.top) * sy
        return out

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_image`: boxes (…, 4) as (x0, y0, x1, y1) pixels of the
        original image → fractions of the input (not clipped)."""
        b = np.asarray(boxes, dtype=np.float64)
        sx, sy = self.orig_w / self.new_w, self.orig_h / self.new_h
        out = np.empty_like(b)
        out[..., 0::2] = (b[..., 0::2] / sx + self.left) / self.size_w
        out[..., 1::2] = (b[..., 1::2] / sy + self.top) / self.size_h
        return out


@dataclass(frozen=True)
class Detection:
    """One detected object: a box in the original image's pixels (``x0, y0`` top left,
    ``x1, y1`` bottom right, continuous coordinates, 0 … width/height), its class and
    score (objectness · class probability)."""

    x0: float
    y0: float
    x1: float
    y1: float
    class_index: int
    class_name: str
    score: float
    objectness: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    def __str__(self) -> str:
        return (f"{self.class_name} {self.score:.3f} at ({self.x0:.1f}, {self.y0:.1f}) – "
                f"({self.x1:.1f}, {self.y1:.1f})")


def _check_size(size: Any) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    if not (isinstance(size, (tuple, list)) and len(size) == 2
            and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                    for s in size)):
        raise TypeError(f"size must be an int or (height, width), got {size!r}")
    if min(size) < 1:
        raise ValueError(f"size={size} must be ≥ 1")
    return int(size[0]), int(size[1])


def letterbox(image: Any, size: Any = 416, fill: int = 128) -> tuple[np.ndarray, Placement]:
    """One image (a file, or ``uint8`` H×W / H×W×C / C×H×W) → (3×H×W ``uint8`` input frame,
    :class:`Placement`): scaled to fit ``size`` (an int or (height, width)) with its aspect
    ratio kept, centred, the border ``fill``."""
    sh, sw = _check_size(size)
    if not 0 <= int(fill) <= 255:
        raise ValueError(f"fill={fill} must be in 0..255")
    img = rgb_image(image)
    h, w = img.shape[:2]
    if sw / w < sh / h:  # Darknet's rule, integer sizes as it computes them
        new_w, new_h = sw, max(1, (h * sw) // w)
    else:
        new_h, new_w = sh, max(1, (w * sh) // h)
    top, left = (sh - new_h) // 2, (sw - new_w) // 2
    out = np.full((sh, sw, 3), int(fill), dtype=np.uint8)
    out[top:top + new_h, left:left + new_w] = resize_image(img, new_h, new_w)
    return np.ascontiguousarray(out.transpose(2, 0, 1)), \
        Placement(h, w, new_h, new_w, top, left, sh, sw)


def resize_to_input(image: Any, size: Any = 416) -> tuple[np.ndarray, Placement]:
    """One image → (3×H×W ``uint8`` input frame, :class:`Placement`), stretched to
    ``size`` without keeping the aspect ratio."""
    sh, sw = _check_size(size)
    img = rgb_image(image)
    h, w = img.shape[:2]
    out = resize_image(img, sh, sw)
    return np.ascontiguousarray(out.transpose(2, 0, 1)), Placement(h, w, sh, sw, 0, 0, sh, sw)


def detection_frames(images: Any, shape: Any, letterboxed: bool = True
                     ) -> tuple[np.ndarray, list[Placement]]:
    """Images (one, a list, or a batch array: :func:`~.preprocess.image_items`) → the
    detector's ``uint8`` input frames N×C×H×W (``shape`` = (C, H, W)) and each image's
    :class:`Placement`. An array of exactly the input size (C×H×W or H×W×C) passes
    unchanged; every other image is letterboxed (``letterboxed=False``: stretched)."""
    c, h, w = (int(v) for v in shape)
    items = image_items(images)
    frames = np.empty((len(items), c, h, w), dtype=np.uint8)
    placements: list[Placement] = []
    for i, item in enumerate(items):
        if not isinstance(item, (str, Path)):
            x = np.asarray(item)
            _check_pixels(x, f"image {i}")
            if x.shape in ((c, h, w), (h, w, c)):
                frames[i] = x if x.shape == (c, h, w) else x.transpose(2, 0, 1)
                placements.append(Placement.identity(h, w))
                continue
        if c != 3:
            raise PreprocessError(f"images are letterboxed as RGB; the input has {c} "
                                  "channel(s)")
        frames[i], pl = (letterbox if letterboxed else resize_to_input)(item, (h, w))
        placements.append(pl)
    return frames, placements


def demo_scale(outputs: Any, peak: float = 4.0) -> float:
    """The scale that maps the largest ``|q|`` of ``outputs`` to ``peak``: for networks with
    random weights, whose boxes mean nothing, so that a demo decodes some (trained networks
    take the scale of their export)."""
    m = float(np.max(np.abs(np.asarray(outputs)))) if np.size(outputs) else 0.0
    return float(peak) / max(m, 1.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # no overflow warnings for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def region_values(grid: Any, scale: Any, offset: Any = 0.0) -> np.ndarray:
    """The integer output grid (C, H, W) → real values ``scale · q + offset`` (float64);
    ``scale`` and ``offset`` are numbers or one per channel (shape (C,))."""
    q = np.asarray(grid)
    if not (np.issubdtype(q.dtype, np.integer) or np.issubdtype(q.dtype, np.floating)):
        raise TypeError(f"grid must be a numeric array, got dtype {q.dtype}")
    if q.ndim != 3:
        raise ValueError(f"grid must be (C, H, W) (one image), got shape {q.shape}")
    vals = []
    for what, v in (("scale", scale), ("offset", offset)):
        a = np.asarray(v, dtype=np.float64)
        if a.ndim == 0:
            vals.append(a)
        elif a.shape == (q.shape[0],):
            vals.append(a[:, None, None])
        else:
            raise ValueError(f"{what} must be a number or one per channel ({q.shape[0]},), "
                             f"got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what} must be finite")
    return q.astype(np.float64) * vals[0] + vals[1]


def decode_region(grid: Any, scale: Any, offset: Any = 0.0,
                  anchors: Any = VOC_ANCHORS, num_classes: int = 20
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one image's output grid (see the module's description).

    Returns ``(boxes, objectness, probs)`` over the A·H·W cells in Darknet's order (index
    ``(a·H + row)·W + col``): ``boxes`` (A·H·W, 4) as (x, y, w, h) centre and size in
    fractions of the input, ``objectness`` (A·H·W,) and class probabilities (A·H·W, K).
    """
    t = region_values(grid, scale, offset)
    anc = np.asarray(anchors, dtype=np.float64)
    if anc.ndim != 2 or anc.shape[1] != 2 or anc.shape[0] < 1:
        raise ValueError(f"anchors must be (width, height) pairs, got shape {anc.shape}")
    na, per = anc.shape[0], 5 + int(num_classes)
    c, h, w = t.shape
    if c != na * per:
        raise ValueError(f"the grid has {c} channels; {na} anchors × (5 + {num_classes}) "
                         f"= {na * per} expected")
    t = t.reshape(na, per, h, w)
    col = np.arange(w, dtype=np.float64)[None, None, :]
    row = np.arange(h, dtype=np.float64)[None, :, None]
    with np.errstate(over="ignore"):
        bx = (col + _sigmoid(t[:, 0])) / w
        by = (row + _sigmoid(t[:, 1])) / h
        bw = anc[:, 0, None, None] * np.exp(t[:, 2]) / w
        bh = anc[:, 1, None, None] * np.exp(t[:, 3]) / h
    obj = _sigmoid(t[:, 4])
    cls = t[:, 5:]
    e = np.exp(cls - cls.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    boxes = np.stack([bx, by, bw, bh], axis=-1).reshape(-1, 4)
    return boxes, obj.reshape(-1), probs.transpose(0, 2, 3, 1).reshape(-1, int(num_classes))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of corner boxes (x0, y0, x1, y1): ``a`` (4,) against ``b`` (M, 4) → (M,); 0 when
    the union is empty."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0])
    ih = np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1])
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    with np.errstate(invalid="ignore"):
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) \
            - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return iou


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thresh: float = DEFAULT_NMS_THRESH
        ) -> np.ndarray:
    """Greedy non-maximum suppression of one class: indices of the kept boxes in order of
    decreasing score (ties: lower index first). ``boxes`` (N, 4) are corners
    (x0, y0, x1, y1); a box is removed when its IoU with a kept, better one is >
    ``iou_thresh``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size != b.shape[0]:
        raise ValueError(f"{b.shape[0]} boxes but {s.size} scores")
    order = np.argsort(-s, kind="stable")
    alive = np.ones(order.size, dtype=bool)
    keep = []
    for i in range(order.size):
        if not alive[i]:
            continue
        keep.append(int(order[i]))
        rest = np.flatnonzero(alive[i + 1:]) + i + 1
        if rest.size:
            iou = box_iou(b[order[i]], b[order[rest]])
            alive[rest[iou > iou_thresh]] = False
    return np.asarray(keep, dtype=np.int64)


def _corners(xywh: np.ndarray) -> np.ndarray:
    x, y, w, h = (xywh[:, i] for i in range(4))
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=1)


def detect_grid(grid: Any, scale: Any, offset: Any = 0.0, *,
                placement: Placement | None = None,
                conf_thresh: float = DEFAULT_CONF_THRESH,
                nms_thresh: float = DEFAULT_NMS_THRESH, anchors: Any = VOC_ANCHORS,
                class_names: Any = VOC_CLASSES) -> list[Detection]:
    """One image's output grid → its detections, best score first.

    Decoding (:func:`decode_region`), confidence threshold (score > ``conf_thresh``),
    per-class NMS (IoU > ``nms_thresh`` suppresses), boxes mapped through ``placement`` to
    the original image's pixels and clipped to it (without ``placement``: fractions
    0 … 1 of the input).
    """
    names = tuple(class_names)
    if not 0 <= conf_thresh < 1:
        raise ValueError(f"conf_thresh={conf_thresh} must be in [0, 1)")
    if not 0 <= nms_thresh <= 1:
        raise ValueError(f"nms_thresh={nms_thresh} must be in [0, 1]")
    boxes, obj, probs = decode_region(grid, scale, offset, anchors, len(names))
    corners = _corners(boxes)  # fractions of the input
    if placement is None:  # fractions of the input
        placement = Placement.identity(1, 1)
    img = placement.to_image(corners)
    img[:, 0::2] = np.clip(img[:, 0::2], 0, placement.orig_w)
    img[:, 1::2] = np.clip(img[:, 1::2], 0, placement.orig_h)
    scores = obj[:, None] * probs
    found: list[tuple[float, int, int]] = []  # (score, class, cell)
    for k in range(len(names)):
        cand = np.flatnonzero(scores[:, k] > conf_thresh)
        if cand.size == 0:
            continue
        kept = cand[nms(corners[cand], scores[cand, k], nms_thresh)]
        found.extend((float(scores[i, k]), k, int(i)) for i in kept)
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    return [Detection(*(float(v) for v in img[i]), k, names[k], s, float(obj[i]))
            for s, k, i in found]


# --------------------------------------------------------------------------------------------
# drawing and saving (no Pillow)
# --------------------------------------------------------------------------------------------

#: box colours, one per class (cycled)
_COLOURS = np.array([(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
                     (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
                     (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
                     (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
                     (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128)],
                    dtype=np.uint8)


def draw_boxes(image: Any, detections: list[Detection], thickness: int = 2) -> np.ndarray:
    """A copy of ``image`` (H×W×3 ``uint8``, or anything :func:`letterbox` takes) with each
    detection's box drawn as a rectangle ``thickness`` pixels wide, in its class's colour."""
    img = rgb_image(image).copy()
    h, w = img.shape[:2]
    t = max(1, int(thickness))
    for d in detections:
        x0, x1 = (int(np.clip(np.floor(v), 0, w - 1)) for v in (d.x0, d.x1))
        y0, y1 = (int(np.clip(np.floor(v), 0, h - 1)) for v in (d.y0, d.y1))
        c = _COLOURS[d.class_index % len(_COLOURS)]
        img[y0:min(y0 + t, y1 + 1), x0:x1 + 1] = c
        img[max(y1 - t + 1, y0):y1 + 1, x0:x1 + 1] = c
        img[y0:y1 + 1, x0:min(x0 + t, x1 + 1)] = c
        img[y0:y1 + 1, max(x1 - t + 1, x0):x1 + 1] = c
    return img


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an H×W×3 (RGB) or H×W (grey) ``uint8`` image as a PNG file (zlib, no
    Pillow)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise PreprocessError(f"write_png needs uint8 pixels, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        colour = 0
    elif img.ndim == 3 and img.shape[2] == 3:
        colour = 2
    else:
        raise PreprocessError(f"write_png needs H×W or H×W×3 pixels, got shape {img.shape}")
    h, w = img.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, -1)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour,
                                                              0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b"")
    path = Path(path)
    path.write_bytes(png)
    return path
