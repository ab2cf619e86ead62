"""Ordinary images → the network's input frames, and outputs → classes.

Input quantisation (the same rule the trainer uses for 8-bit pixels, ``level = pixel`` with
scale 1/255, generalised to other input types): a ``uint8`` pixel ``p`` becomes

* ``UINTk``: ``round(p · (2**k − 1) / 255)`` (``UINT8``: ``p`` itself),
* ``INTk``: ``round(p · (2**k − 1) / 255) − 2**(k−1)``,
* ``BIPOLAR``: ``+1`` if ``p ≥ 128`` else ``−1``.

Accepted images: a single image as ``H×W`` (grayscale), ``H×W×C`` or ``C×H×W`` ``uint8``
arrays; batches as ``N×H×W`` (grayscale), ``N×H×W×C`` or ``N×C×H×W``; a list of such images
or of image files (Pillow, if installed; ``.npy`` files always). Sizes must match the
network unless ``resize`` and/or ``crop`` are asked for.

Test sets (:func:`load_test_set`): ``.npz`` arrays, MNIST IDX files (:func:`read_idx`, which
the trainer's dataset readers use as well) and CIFAR-10 binary batches. Numpy only.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .dtypes import DataType, parse_dtype

__all__ = [
    "PreprocessError",
    "quantize",
    "load_image",
    "to_frames",
    "resize_image",
    "center_crop",
    "image_items",
    "rgb_image",
    "topk",
    "labels_of",
    "read_idx",
    "load_test_set",
]


class PreprocessError(ValueError):
    """Images that cannot be turned into the network's input (shape, type, size)."""


def _dtype(dtype: str) -> DataType:
    try:
        return parse_dtype(dtype)
    except ValueError as e:
        raise PreprocessError(f"unknown input data type {dtype!r}") from e


def quantize(pixels: np.ndarray, dtype: str) -> np.ndarray:
    """``uint8`` pixels → integer levels of the network input type ``dtype`` (int64)."""
    p = np.asarray(pixels)
    if p.dtype != np.uint8:
        raise PreprocessError(f"quantize expects uint8 pixels, got {p.dtype}")
    dt = _dtype(dtype)
    x = p.astype(np.int64)
    if dt.is_bipolar:
        return np.where(x >= 128, 1, -1).astype(np.int64)
    n = (1 << dt.bits) - 1
    # round(x·n/255) in integers; x·n·2 is even and 255 odd, so there are no ties
    lv = (2 * x * n + 255) // 510
    return lv + dt.min


def load_image(path: str | Path, channels: int | None = None) -> np.ndarray:
    """An image file as ``uint8`` (H×W×C, or H×W for grayscale). ``.npy`` files are read
    with numpy; other formats need Pillow. ``channels`` 1 or 3 converts the mode."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image file {path} does not exist")
    if path.suffix.lower() == ".npy":
        return np.load(path)
    try:
        from PIL import Image
    except ImportError as e:
        raise PreprocessError(f"reading {path.name} needs Pillow (pip install pillow); "
                              "or pass the image as a uint8 numpy array") from e
    with Image.open(path) as im:
        if channels == 1:
            im = im.convert("L")
        elif channels == 3:
            im = im.convert("RGB")
        return np.asarray(im, dtype=np.uint8)


def resize_image(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an H×W×C ``uint8`` image (pixel centres aligned, numpy only)."""
    h, w = img.shape[:2]
    if (h, w) == (height, width):
        return img
    ys = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    xs = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    f = img.astype(np.float64)
    top = f[y0][:, x0] * (1 - fx) + f[y0][:, x1] * fx
    bot = f[y1][:, x0] * (1 - fx) + f[y1][:, x1] * fx
    return np.clip(np.rint(top * (1 - fy) + bot * fy), 0, 255).astype(np.uint8)


def center_crop(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """The central ``height × width`` window of an H×W×C image (which must be as large)."""
    h, w = img.shape[:2]
    if h < height or w < width:
        raise PreprocessError(f"cannot centre-crop a {h}×{w} image to {height}×{width}; "
                              "pass resize=True as well")
    t, lft = (h - height) // 2, (w - width) // 2
    return img[t:t + height, lft:lft + width]


def _crop_to_aspect(img: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = img.shape[:2]
    if h * width > w * height:  # too tall
        return center_crop(img, max(1, w * height // width), w)
    return center_crop(img, h, max(1, h * width // height))


def _convert_channels(img: np.ndarray, c: int, convert: bool) -> np.ndarray:
    """H×W×C' → H×W×c: grayscale ↔ RGB, RGBA → RGB, only with ``convert``."""
    have = img.shape[2]
    if have == c:
        return img
    if not convert:
        raise PreprocessError(f"image has {have} channel(s), the network takes {c}; pass "
                              "convert=True to convert (RGB→gray, gray→RGB, RGBA→RGB)")
    if have == 4:
        img, have = img[..., :3], 3
        if c == 3:
            return img
    if have == 3 and c == 1:
        luma = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    if have == 1:
        return np.repeat(img, c, axis=2)
    raise PreprocessError(f"cannot convert a {have}-channel image to {c} channels")


def image_items(images: Any) -> list[Any]:
    """One image (file or array), a list of them, or a batch array N×… → a list of single
    images (files stay paths; N×H×W arrays count as one image, 4-D arrays as batches)."""
    if isinstance(images, (str, Path)):
        return [images]
    if isinstance(images, (list, tuple)):
        if not images:
            raise PreprocessError("no images given")
        return list(images)
    arr = np.asarray(images)
    if arr.ndim == 4:
        if arr.shape[0] == 0:
            raise PreprocessError("empty batch")
        return list(arr)
    return [arr]


def rgb_image(image: Any) -> np.ndarray:
    """One image → H×W×3 ``uint8``: a file (:func:`load_image`) or a ``uint8`` array H×W
    (grey, repeated), H×W×C or C×H×W with C = 1, 3 or 4 (alpha dropped)."""
    if isinstance(image, (str, Path)):
        image = load_image(image, channels=3)
    x = np.asarray(image)
    _check_pixels(x, "the image")
    return _convert_channels(_single_to_hwc(x, (3, 0, 0), exact=False), 3, convert=True)


def _check_pixels(x: np.ndarray, what: str) -> None:
    if x.dtype != np.uint8:
        hint = " (scale floats in [0, 1] with (x * 255).round().astype(np.uint8))" \
            if np.issubdtype(x.dtype, np.floating) else ""
        raise PreprocessError(f"{what} must be uint8 pixels, got dtype {x.dtype}{hint}; "
                              "already-quantised integer frames go with quantized=True")


def _single_to_hwc(x: np.ndarray, shape: tuple[int, int, int], exact: bool) -> np.ndarray:
    """One image array → H×W×C' (C' may still differ from the network's C)."""
    c, h, w = shape
    if x.ndim == 2:
        return x[..., None]
    if x.ndim != 3:
        raise PreprocessError(f"an image must be H×W, H×W×C or C×H×W, got shape {x.shape}")
    if exact:
        if x.shape[:2] == (h, w) and (x.shape[2] in (1, 3, 4) or x.shape[2] == c):
            return x
        if x.shape[1:] == (h, w):
            return x.transpose(1, 2, 0)
        raise PreprocessError(f"image of shape {x.shape} does not match the network input "
                              f"{c}×{h}×{w} (H×W×C or C×H×W); pass resize=True or crop=True")
    if x.shape[2] in (1, 3, 4):
        return x
    if x.shape[0] in (1, 3, 4):
        return x.transpose(1, 2, 0)
    raise PreprocessError(f"cannot tell the channel axis of an image of shape {x.shape}")


def _split_images(x: np.ndarray, shape: tuple[int, int, int], exact: bool) -> list[np.ndarray]:
    """A single image or a batch array → list of H×W×C' images."""
    c, h, w = shape
    if x.ndim == 2:
        return [_single_to_hwc(x, shape, exact)]
    if x.ndim == 3:
        if exact:
            if x.shape in ((h, w, c), (c, h, w)):
                return [_single_to_hwc(x, shape, exact)]
            if x.shape[:2] == (h, w) and x.shape[2] in (1, 3, 4):  # H×W×C', other C'
                return [x]
            if x.shape[1:] == (h, w):  # N×H×W grayscale batch
                return [im[..., None] for im in x]
            raise PreprocessError(f"array of shape {x.shape} matches neither an image nor a "
                                  f"grayscale batch for input {c}×{h}×{w}; pass resize=True")
        if x.shape[2] in (1, 3, 4) or (x.shape[0] in (1, 3, 4) and x.shape[2] > 4):
            return [_single_to_hwc(x, shape, exact)]
        return [im[..., None] for im in x]
    if x.ndim == 4:
        if x.shape[0] == 0:
            raise PreprocessError("empty batch")
        if exact:
            if x.shape[1:] == (c, h, w):
                return list(x.transpose(0, 2, 3, 1))
            if x.shape[1:3] == (h, w):  # N×H×W×C'
                return list(x)
            if x.shape[2:] == (h, w) and x.shape[1] in (1, 3, 4):  # N×C'×H×W
                return list(x.transpose(0, 2, 3, 1))
            raise PreprocessError(f"batch of shape {x.shape} matches neither N×C×H×W nor "
                                  f"N×H×W×C for input {c}×{h}×{w}; pass resize=True")
        if x.shape[1] in (1, 3, 4) and x.shape[3] not in (1, 3, 4):
            return list(x.transpose(0, 2, 3, 1))
        return list(x)
    raise PreprocessError(f"images must have 2 to 4 dimensions, got shape {x.shape}")


def to_frames(images: Any, shape: Sequence[int], dtype: str, *, resize: bool = False,
              crop: bool = False, convert: bool = False, quantized: bool = False) -> np.ndarray:
    """Images → integer frames N×C×H×W of the network input type (int64).

    ``shape`` is the network input (C, H, W) and ``dtype`` its type (``"UINT8"``,
    ``"BIPOLAR"``, …), e.g. ``layout.input.shape`` and ``layout.input.dtype``. Sizes must
    match unless ``resize`` (bilinear, to H×W) and/or ``crop`` (centre crop: to H×W alone,
    to the H:W aspect ratio before resizing together with ``resize``) are given. Channel
    counts must match unless ``convert``. With ``quantized`` the input is already integer
    frames N×C×H×W (or C×H×W) of the network's type and is only checked.
    """
    c, h, w = (int(s) for s in shape)
    if quantized:
        x = np.asarray(images)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1:] != (c, h, w):
            raise PreprocessError(f"quantized frames must be N×{c}×{h}×{w}, got {x.shape}")
        if not np.issubdtype(x.dtype, np.integer):
            raise PreprocessError(f"quantized frames must be integers, got {x.dtype}")
        xi = x.astype(np.int64)
        if not _dtype(dtype).allowed(xi):
            raise PreprocessError(f"quantized frames out of range for {dtype}: "
                                  f"{xi.min()}..{xi.max()}")
        return xi
    exact = not (resize or crop)
    if isinstance(images, (str, Path)):
        images = [images]
    if isinstance(images, (list, tuple)):
        if not images:
            raise PreprocessError("no images given")
        flat: list[np.ndarray] = []
        for i, item in enumerate(images):
            if isinstance(item, (str, Path)):
                item = load_image(item, channels=c if c in (1, 3) else None)
            arr = np.asarray(item)
            _check_pixels(arr, f"image {i}")
            if arr.ndim == 4:
                raise PreprocessError(f"image {i}: a list holds single images, got a batch "
                                      f"{arr.shape}")
            flat.append(_single_to_hwc(arr, (c, h, w), exact))
    else:
        arr = np.asarray(images)
        _check_pixels(arr, "images")
        flat = _split_images(arr, (c, h, w), exact)
    out = np.empty((len(flat), h, w, c), dtype=np.uint8)
    for i, img in enumerate(flat):
        if crop and resize:
            img = _crop_to_aspect(img, h, w)
        elif crop:
            img = center_crop(img, h, w)
        if resize:
            img = resize_image(img, h, w)
        if img.shape[:2] != (h, w):
            raise PreprocessError(f"image {i} is {img.shape[0]}×{img.shape[1]}, the network "
                                  f"takes {h}×{w}; pass resize=True or crop=True")
        out[i] = _convert_channels(img, c, convert)
    return quantize(out.transpose(0, 3, 1, 2), dtype)


def topk(scores: np.ndarray, k: int = 1) -> np.ndarray:
    """Indices of the ``k`` largest values of each row, largest first, ties to the lower
    index (what the hardware TopK does)."""
    s = np.asarray(scores)
    s = s.reshape(s.shape[0], -1)
    if not 1 <= k <= s.shape[1]:
        raise ValueError(f"k={k} must be in 1..{s.shape[1]}")
    return np.argsort(-s.astype(np.int64), axis=1, kind="stable")[:, :k]


def labels_of(indices: np.ndarray, labels: Sequence[str] | None) -> list[Any]:
    """Class names for an index array (N,) or (N, k); indices themselves without labels."""
    idx = np.asarray(indices)
    if labels is None:
        return idx.tolist()
    names = list(labels)

    def name(i: int) -> str:
        return names[i] if 0 <= i < len(names) else f"<{i}?>"
    if idx.ndim == 1:
        return [name(int(i)) for i in idx]
    return [[name(int(i)) for i in row] for row in idx]


# --------------------------------------------------------------------------------------------
# test sets
# --------------------------------------------------------------------------------------------


#: IDX element type codes → numpy dtypes
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
              0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """One IDX file (the MNIST format), raw or gzip-compressed (told by its magic bytes).

    Raises :class:`PreprocessError` for a file that is not IDX, has an unknown element type
    or is shorter than its dimensions say.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise PreprocessError(f"{path}: not an IDX file (bad magic)")
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise PreprocessError(f"{path}: unknown IDX element type 0x{code:02x}")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    dt = np.dtype(_IDX_TYPES[code])
    start = 4 + 4 * ndim
    count = int(np.prod(dims)) if dims else 0
    if len(data) - start < count * dt.itemsize:
        raise PreprocessError(f"{path}: truncated IDX file ({dims} elements of {dt})")
    return np.frombuffer(data, dtype=dt, count=count, offset=start).reshape(dims)


def _read_idx_uint8(path: Path) -> np.ndarray:
    arr = read_idx(path)
    if arr.dtype != np.uint8:
        raise PreprocessError(f"{path.name}: not an unsigned-byte IDX file")
    return arr


#: files a test-set folder is searched for, in order (MNIST IDX, CIFAR-10 binary or JPEG copy)
_TEST_SET_FILES = ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz", "test_batch.bin",
                   "cifar10_jpeg.npz")


def _find_test_set(folder: Path) -> Path:
    for sub in (".", "raw", "MNIST/raw", "cifar-10-batches-bin"):
        for fname in _TEST_SET_FILES:
            cand = folder / sub / fname
            if cand.is_file():
                return cand
    raise PreprocessError(f"{folder}: no test set found (looked for {', '.join(_TEST_SET_FILES)}"
                          " in it and in raw/, MNIST/raw/, cifar-10-batches-bin/)")


def _decode_jpeg_split(z: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split of a JPEG-scan archive (``jpeg_header`` + ``<split>_scans`` +
    ``<split>_offsets`` + ``<split>_labels``, e.g. the CIFAR-10 copy of the project's shared
    datasets) → N×H×W×C uint8 images and labels. Needs Pillow."""
    import io

    try:
        from PIL import Image
    except ImportError as e:
        raise PreprocessError("decoding a JPEG test set needs Pillow (pip install pillow)") from e
    header = z["jpeg_header"].tobytes()
    scans, offsets = z[f"{split}_scans"], z[f"{split}_offsets"]
    images = [np.asarray(Image.open(io.BytesIO(header + scans[offsets[i]:offsets[i + 1]]
                                               .tobytes())).convert("RGB"), dtype=np.uint8)
              for i in range(len(offsets) - 1)]
    return np.stack(images), z[f"{split}_labels"].astype(np.int64).reshape(-1)


def _read_npz_test_set(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``images`` (or ``x``, ``x_test``) and ``labels`` (or ``y``, ``y_test``) of a .npz;
    :class:`PreprocessError` for a damaged or foreign file."""
    import zipfile
    import zlib

    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise PreprocessError(f"{path.name}: a single array, not a .npz archive")
        with z:
            if "jpeg_header" in z.files and "test_scans" in z.files:
                return _decode_jpeg_split(z, "test")
            key = next((k for k in ("images", "x", "x_test") if k in z.files), None)
            if key is None:
                raise PreprocessError(f"{path.name}: no 'images' array (keys: {z.files})")
            images = z[key]
            lkey = next((k for k in ("labels", "y", "y_test") if k in z.files), None)
            labels = z[lkey] if lkey else None
    except PreprocessError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, OSError) as e:
        if isinstance(e, (PermissionError, FileNotFoundError, IsADirectoryError)):
            raise
        raise PreprocessError(f"{path.name}: damaged or not a .npz archive "
                              f"({type(e).__name__}: {e})") from None
    if labels is not None and not np.issubdtype(labels.dtype, np.integer):
        raise PreprocessError(f"{path.name}: labels must be integers, got {labels.dtype}")
    return images, None if labels is None else labels.astype(np.int64).reshape(-1)


def load_test_set(path: str | Path, labels_path: str | Path | None = None
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """A test set as (uint8 images, int64 labels or None).

    * ``.npz`` with ``images`` (or ``x``) and optionally ``labels`` (or ``y``),
    * ``.npz`` of JPEG scans sharing one header (``jpeg_header``, ``test_scans``,
      ``test_offsets``, ``test_labels``: the CIFAR-10 copy ``cifar10_jpeg.npz``) → its test
      split, N×32×32×3 (decoding needs Pillow),
    * MNIST IDX files (``t10k-images-idx3-ubyte[.gz]``; labels from ``labels_path`` or the
      matching ``…labels-idx1-ubyte`` file next to it) → N×28×28,
    * CIFAR-10 binary batches (``test_batch.bin``: 1 label byte + 3×32×32 bytes per record)
      → N×3×32×32,
    * a folder holding one of those test files (also under ``raw/``, ``MNIST/raw/`` or
      ``cifar-10-batches-bin/``).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"test set {path} does not exist")
    if path.is_dir():
        path = _find_test_set(path)
    name = path.name.lower()
    if name.endswith(".npz"):
        images, labels = _read_npz_test_set(path)
    elif "idx3-ubyte" in name or "images-idx" in name:
        images = _read_idx_uint8(path)
        if labels_path is None:
            cand = path.parent / path.name.replace("images-idx3", "labels-idx1")
            labels_path = cand if cand.exists() else None
        labels = _read_idx_uint8(Path(labels_path)).astype(np.int64) if labels_path else None
    elif name.endswith(".bin"):
        raw = np.fromfile(path, np.uint8)
        rec = 1 + 3 * 32 * 32
        if raw.size % rec:
            raise PreprocessError(f"{path.name}: not a CIFAR-10 binary batch")
        raw = raw.reshape(-1, rec)
        images, labels = raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)
    else:
        raise PreprocessError(f"{path.name}: unknown test set format (.npz, MNIST IDX, "
                              "CIFAR-10 .bin)")
    if labels is not None and len(labels) != len(images):
        raise PreprocessError(f"{path.name}: {len(images)} images but {len(labels)} labels")
    return images, labels
