"""PascalVOC-style detection data for training: a folder with ``JPEGImages/<id>.jpg``,
``Annotations/<id>.xml`` and ``ImageSets/Main/<split>.txt`` (one image id per line), as
the VOC2007 and VOC2012 devkits lay them out.

* **Annotations** are read by the evaluator's reader
  (:func:`lowbit_hdl.runtime.vocmap.read_voc_xml`); class names must be among the 20 VOC
  classes (:data:`lowbit_hdl.runtime.yolo.VOC_CLASSES`, Darknet's ``voc.names`` order, the
  class index of the output grid). Objects marked *difficult* are left out of the training
  targets (as Darknet's ``voc_label.py`` does) and kept for the evaluation.
* **Boxes**: a VOC box ``xmin ymin xmax ymax`` (1-based pixels) is the 0-based box
  ``(xmin − 1, ymin − 1, xmax − 1, ymax − 1)`` in continuous image coordinates
  (Darknet's ``voc_label.py``: centre ``(xmin + xmax)/2 − 1``, width ``xmax − xmin``);
  the evaluation adds the 1 back to detections
  (:func:`lowbit_hdl.runtime.vocmap.voc_detections`, as Darknet's ``valid``).
* **Input frames** come from the board's own preprocessing
  (:func:`lowbit_hdl.runtime.yolo.letterbox`, or :func:`~lowbit_hdl.runtime.yolo.
  resize_to_input` for ``letterboxed=False``), so that training and the board see the same
  pixels; the boxes go through the same :class:`~lowbit_hdl.runtime.yolo.Placement`.
* **Augmentation** (training only): Darknet-style jitter, a crop of the image whose four
  edges move independently by up to ``jitter`` of its width/height (inwards or outwards;
  outside the image is grey 128), then a horizontal flip with probability 1/2. Boxes are
  clipped to the crop; a box narrower or lower than 0.001 of the input is dropped
  (Darknet's ``correct_boxes``).

Targets are ``(M, 5)`` float64 rows ``(class, x, y, w, h)``: centre and size as fractions of
the network input, as :mod:`lowbit_hdl.train.region` takes them. Numpy and Pillow only (no
torch).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..runtime.preprocess import PreprocessError, rgb_image
from ..runtime.vocmap import VocObject, read_voc_xml
from ..runtime.yolo import VOC_CLASSES, Placement, letterbox, resize_to_input

__all__ = ["VocDetection", "is_voc_folder", "from_voc_box", "IMAGE_DIR",
           "ANNOTATION_DIR", "SETS_DIR", "IMAGE_SUFFIXES"]

IMAGE_DIR = "JPEGImages"
ANNOTATION_DIR = "Annotations"
SETS_DIR = Path("ImageSets") / "Main"
#: the file names an image may have, tried in this order (VOC ships .jpg)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")
#: Darknet's ``correct_boxes``: boxes smaller than this (fraction of the input) are dropped
_MIN_SIZE = 0.001


def from_voc_box(box: tuple[float, float, float, float]) -> np.ndarray:
    """A VOC box (1-based ``xmin ymin xmax ymax``) → 0-based continuous image coordinates
    ``(x0, y0, x1, y1)`` (Darknet's ``voc_label.py``)."""
    return np.asarray(box, dtype=np.float64) - 1.0


def is_voc_folder(root: str | Path) -> bool:
    """Whether ``root`` has the VOC layout (``JPEGImages/``, ``Annotations/``,
    ``ImageSets/Main/``)."""
    r = Path(root)
    return all((r / d).is_dir() for d in (IMAGE_DIR, ANNOTATION_DIR, SETS_DIR))


class VocDetection:
    """The images and annotations of one split of a VOC-style folder.

    Parameters
    ----------
    root : folder with ``JPEGImages/``, ``Annotations/``, ``ImageSets/Main/<split>.txt``.
    split : the image set, e.g. ``"trainval"``, ``"train"``, ``"val"``, ``"test"``.
    size : the network input (height, width).
    train : draw the augmentation (``jitter``, ``flip``) anew at every access.
    jitter : fraction by which each crop edge may move (Darknet's ``jitter``, 0.2 in
        ``tiny-yolo-voc.cfg``); 0 turns the crop off.
    flip : horizontal flip with probability 1/2 (training only).
    letterboxed : letterbox the image into the input (default, the runtime's default)
        rather than stretch it.
    seed : of the augmentation's random numbers.
    workers : threads decoding images (default ``min(8, CPUs)``).

    Raises
    ------
    DatasetError
        Not a VOC folder, an unknown split, a missing image or annotation, an annotation
        that is not valid VOC XML, has no object or names a class outside the 20 VOC
        classes.
    """

    def __init__(self, root: str | Path, split: str, size: tuple[int, int], *,
                 train: bool = False, jitter: float = 0.2, flip: bool = True,
                 letterboxed: bool = True, seed: int = 0, workers: int | None = None
                 ) -> None:
        root = Path(root)
        if not 0 <= jitter < 0.5:
            raise ValueError(f"jitter={jitter} must be in [0, 0.5)")
        if not is_voc_folder(root):
            raise DatasetError(f"{root}: not a VOC folder (it needs {IMAGE_DIR}/, "
                               f"{ANNOTATION_DIR}/ and {SETS_DIR.as_posix()}/<split>.txt)")
        sets = root / SETS_DIR
        ids_file = sets / f"{split}.txt"
        if not ids_file.is_file():
            have = sorted(p.stem for p in sets.glob("*.txt") if "_" not in p.stem)
            raise DatasetError(f"{ids_file}: no such image set (this folder has: "
                               f"{', '.join(have) or 'none'})")
        ids = [ln.split()[0] for ln in ids_file.read_text().splitlines() if ln.strip()]
        if not ids:
            raise DatasetError(f"{ids_file}: lists no image")
        self.root, self.split = root, split
        self.size = (int(size[0]), int(size[1]))
        self.train, self.jitter, self.flip = train, float(jitter), flip
        self.letterboxed = letterboxed
        self.workers = workers if workers is not None else min(8, os.cpu_count() or 1)
        self.ids: list[str] = ids
        self.class_names = VOC_CLASSES
        index = {k: i for i, k in enumerate(VOC_CLASSES)}
        self.objects: dict[str, list[VocObject]] = {}
        self.files: list[Path] = []
        self._truths: list[np.ndarray] = []  # (M, 5): class, x0, y0, x1, y1 (0-based px)
        for i in ids:
            xml = root / ANNOTATION_DIR / f"{i}.xml"
            if not xml.is_file():
                raise DatasetError(f"{xml}: missing annotation of image {i} (listed in "
                                   f"{ids_file.name})")
            try:
                objs = read_voc_xml(xml)
            except ValueError as e:
                raise DatasetError(str(e)) from None
            if not objs:
                raise DatasetError(f"{xml}: has no <object> (a training image needs at "
                                   "least one annotated object)")
            bad = sorted({o.name for o in objs if o.name not in index})
            if bad:
                raise DatasetError(f"{xml}: unknown class {', '.join(map(repr, bad))} (the "
                                   f"20 VOC classes are {', '.join(VOC_CLASSES)})")
            img = next((root / IMAGE_DIR / f"{i}{s}" for s in IMAGE_SUFFIXES
                        if (root / IMAGE_DIR / f"{i}{s}").is_file()), None)
            if img is None:
                raise DatasetError(f"{root / IMAGE_DIR / (i + '.jpg')}: missing image "
                                   f"(listed in {ids_file.name})")
            self.objects[i] = objs
            self.files.append(img)
            keep = [o for o in objs if not o.difficult]
            t = np.array([[index[o.name], *from_voc_box(o.box)] for o in keep],
                         dtype=np.float64).reshape(-1, 5)
            self._truths.append(t)
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (f"VocDetection({str(self.root)!r}, {self.split!r}, {len(self)} images, "
                f"{'train' if self.train else 'eval'})")

    @property
    def num_objects(self) -> int:
        """Objects of the training targets (difficult ones left out)."""
        return sum(len(t) for t in self._truths)

    def evaluation(self) -> VocDetection:
        """The same images without augmentation (and with a random stream of its own, so
        evaluating does not change the training's draws)."""
        ev = object.__new__(VocDetection)
        ev.__dict__.update(self.__dict__)
        ev.train = False
        ev._rng = np.random.default_rng(0)
        return ev

    def ground_truth(self, indices: list[int] | None = None) -> dict[str, list[VocObject]]:
        """``{image id: objects}`` (difficult ones included) for
        :func:`lowbit_hdl.runtime.vocmap.evaluate`."""
        idx = range(len(self)) if indices is None else indices
        return {self.ids[i]: self.objects[self.ids[i]] for i in idx}

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as H×W×3 uint8 (as the file holds it)."""
        try:
            return rgb_image(self.files[i])
        except (OSError, PreprocessError, ValueError) as e:
            raise DatasetError(f"{self.files[i]}: cannot read the image ({e})") from None

    def sample(self, i: int, rng: np.random.Generator | None = None
               ) -> tuple[np.ndarray, np.ndarray, Placement]:
        """Image ``i`` as (input frame 3×H×W uint8, targets (M, 5) ``(class, x, y, w, h)``
        as fractions of the input, :class:`Placement` of the image in the input);
        augmented with ``rng`` (default: the data set's own) when :attr:`train`. The
        placement maps to the pixels of the image before the crop only without
        augmentation."""
        img = self.image(i)
        t = self._truths[i]
        cls, boxes = t[:, 0], t[:, 1:].copy()
        aug = self.train
        rng = self._rng if rng is None else rng
        if aug and self.jitter > 0:
            img, boxes = _jitter_crop(img, boxes, self.jitter, rng)
        frame, pl = (letterbox if self.letterboxed else resize_to_input)(img, self.size)
        fr = pl.to_input(boxes)
        fr = np.clip(fr, 0.0, 1.0)
        if aug and self.flip and rng.random() < 0.5:
            frame = np.ascontiguousarray(frame[:, :, ::-1])
            fr[:, [0, 2]] = 1.0 - fr[:, [2, 0]]
        w, h = fr[:, 2] - fr[:, 0], fr[:, 3] - fr[:, 1]
        keep = (w > _MIN_SIZE) & (h > _MIN_SIZE)
        targets = np.stack([cls, (fr[:, 0] + fr[:, 2]) / 2, (fr[:, 1] + fr[:, 3]) / 2, w, h],
                           axis=1)[keep]
        return frame, targets, pl

    def batch(self, indices) -> tuple[np.ndarray, list[np.ndarray], list[Placement]]:
        """:meth:`sample` of several images: (frames N×3×H×W uint8, targets, placements);
        one random stream per image, so the result does not depend on the threads."""
        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
        seeds = self._rng.integers(1 << 63, size=len(idx))
        jobs = [(i, np.random.default_rng(s)) for i, s in zip(idx, seeds, strict=True)]
        if self.workers > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(self.workers) as pool:
                out = list(pool.map(lambda a: self.sample(*a), jobs))
        else:
            out = [self.sample(*a) for a in jobs]
        h, w = self.size
        frames = np.empty((len(idx), 3, h, w), dtype=np.uint8)
        for k, (f, _, _) in enumerate(out):
            frames[k] = f
        return frames, [o[1] for o in out], [o[2] for o in out]


def _jitter_crop(img: np.ndarray, boxes: np.ndarray, jitter: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Darknet's jitter: each edge of the crop moves by an integer in [−jitter·size,
    +jitter·size] (positive: inwards); outside the image is grey 128. Boxes (x0, y0, x1,
    y1, pixels) shift with the crop and are clipped to it."""
    h, w = img.shape[:2]
    dw, dh = int(jitter * w), int(jitter * h)
    pl, pr = (int(v) for v in rng.integers(-dw, dw + 1, 2))
    pt, pb = (int(v) for v in rng.integers(-dh, dh + 1, 2))
    cw, ch = max(1, w - pl - pr), max(1, h - pt - pb)
    out = np.full((ch, cw, 3), 128, dtype=np.uint8)
    sx0, sy0 = max(0, pl), max(0, pt)
    sx1, sy1 = min(w, pl + cw), min(h, pt + ch)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - pt:sy1 - pt, sx0 - pl:sx1 - pl] = img[sy0:sy1, sx0:sx1]
    b = boxes - np.array([pl, pt, pl, pt], dtype=np.float64)
    b[:, 0::2] = np.clip(b[:, 0::2], 0, cw)
    b[:, 1::2] = np.clip(b[:, 1::2], 0, ch)
    return out, b
