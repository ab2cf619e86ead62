"""ImageNet pre- and post-processing on the board: image → the 3×224×224 UINT8 input of an
ImageNet classifier (``networks/dorefa_alexnet_w1a2.py``), scores → named top-k classes.

Preprocessing, the usual single-crop evaluation of ImageNet classifiers (DoReFa-Net's and
torchvision's): the shorter side is resized to 256 pixels, the longer one to
``int(256 · long / short)`` (truncated, as torchvision does), bilinearly with pixel centres
aligned and no antialiasing (:func:`~.preprocess.resize_image`, numpy only, deterministic:
the same bytes on every machine); then the central 224×224 window is cut out, its top-left
corner at ``((H − 224) // 2, (W − 224) // 2)`` (:func:`~.preprocess.center_crop`). Channels
stay in the image's order (RGB for files read with Pillow); the result is C×H×W ``uint8``,
the network's input frame (the pixel itself is the UINT8 level, :func:`~.preprocess.quantize`).

The 1000 class names ship as ``imagenet_classes.txt`` beside this module (provenance in its
header). Numpy and the standard library only (Pillow only to decode image files).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .preprocess import (
    _check_pixels,
    center_crop,
    image_items,
    resize_image,
    rgb_image,
)

__all__ = ["CLASSES_FILE", "imagenet_classes", "resize_shorter", "imagenet_input",
           "imagenet_frames", "top_k_classes"]

#: the 1000 class names, one per line in class order, after ``#`` comment lines
CLASSES_FILE = Path(__file__).resolve().with_name("imagenet_classes.txt")


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet class names, index = class (read once from :data:`CLASSES_FILE`)."""
    lines = CLASSES_FILE.read_text(encoding="utf-8").splitlines()
    names = tuple(x for x in lines if x and not x.startswith("#"))
    if len(names) != 1000:
        raise RuntimeError(f"{CLASSES_FILE.name} holds {len(names)} names, not 1000")
    return names


def resize_shorter(img: np.ndarray, shorter: int = 256) -> np.ndarray:
    """An H×W×C ``uint8`` image with its shorter side resized to ``shorter`` pixels and its
    longer side to ``int(shorter · long / short)`` (bilinear, :func:`~.preprocess.resize_image`)."""
    if not isinstance(shorter, (int, np.integer)) or isinstance(shorter, bool):
        raise TypeError(f"shorter must be an int, got {type(shorter).__name__}")
    if shorter < 1:
        raise ValueError(f"shorter={shorter} must be ≥ 1")
    h, w = img.shape[:2]
    if h <= w:
        size = (int(shorter), int(shorter * w / h))
    else:
        size = (int(shorter * h / w), int(shorter))
    return resize_image(img, *size)


def imagenet_input(image: Any, size: int = 224, resize_to: int = 256) -> np.ndarray:
    """One image → the classifier's input frame, 3×``size``×``size`` ``uint8`` (C×H×W).

    ``image`` is a file (Pillow decodes it; ``.npy`` without) or a ``uint8`` array H×W
    (grayscale, repeated to 3 channels), H×W×3, H×W×4 (alpha dropped) or 3×H×W. The
    shorter side is resized to ``resize_to``, then the centre ``size``×``size`` is cut (see
    the module's description).
    """
    if resize_to < size:
        raise ValueError(f"resize_to={resize_to} must be ≥ size={size}")
    img = resize_shorter(rgb_image(image), resize_to)
    return np.ascontiguousarray(center_crop(img, size, size).transpose(2, 0, 1))


def imagenet_frames(images: Any, size: int = 224, resize_to: int = 256) -> np.ndarray:
    """Images → N×3×``size``×``size`` ``uint8`` input frames.

    ``images``: one image or file (as :func:`imagenet_input`), a list of them, or a batch
    array N×H×W×C / N×C×H×W (:func:`~.preprocess.image_items`). An image that is already
    ``size``×``size`` (3×size×size or size×size×3) is taken as preprocessed and passes
    unchanged; every other image goes through :func:`imagenet_input`.
    """
    items = image_items(images)
    out = np.empty((len(items), 3, size, size), dtype=np.uint8)
    for i, item in enumerate(items):
        if not isinstance(item, (str, Path)):
            x = np.asarray(item)
            _check_pixels(x, f"image {i}")
            if x.shape == (3, size, size):
                out[i] = x
                continue
            if x.shape == (size, size, 3):
                out[i] = x.transpose(2, 0, 1)
                continue
        out[i] = imagenet_input(item, size, resize_to)
    return out


def top_k_classes(scores: Any, k: int = 5, names: Sequence[str] | None = None
                  ) -> list[tuple[int, str, Any]] | list[list[tuple[int, str, Any]]]:
    """The ``k`` best classes as ``(index, name, score)``, best first.

    ``scores``: one image's class scores (a vector, or C×1×1 as a design outputs them) →
    a list of ``k`` tuples; a batch N×classes (or N×C×1×1) → a list of such lists. Ties
    go to the lower index (as the hardware TopK). ``names`` default to the ImageNet
    classes; a score keeps its type (a Python int for integer scores, float for floating
    ones).
    """
    s = np.asarray(scores)
    if s.dtype == object or not (np.issubdtype(s.dtype, np.integer)
                                 or np.issubdtype(s.dtype, np.floating)):
        raise TypeError(f"scores must be a numeric array, got dtype {s.dtype}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if s.ndim in (1, 3):  # one image: classes, or C×1×1 as the design outputs it
        single, rows = True, s.reshape(1, -1)
    elif s.ndim in (2, 4):  # a batch: N×classes or N×C×1×1
        single, rows = False, s.reshape(s.shape[0], -1)
    else:
        raise ValueError(f"scores must be (classes,), (C, 1, 1), (N, classes) or "
                         f"(N, C, 1, 1), got shape {s.shape}")
    if not 1 <= k <= rows.shape[1]:
        raise ValueError(f"k={k} must be in 1..{rows.shape[1]}")
    cls = tuple(names) if names is not None else imagenet_classes()
    if len(cls) < rows.shape[1]:
        raise ValueError(f"{len(cls)} names for {rows.shape[1]} classes")
    keys = -rows.astype(np.int64) if np.issubdtype(rows.dtype, np.integer) else -rows
    order = np.argsort(keys, axis=1, kind="stable")[:, :k]
    result = [[(int(i), cls[int(i)], rows[n, int(i)].item()) for i in order[n]]
              for n in range(rows.shape[0])]
    return result[0] if single else result
