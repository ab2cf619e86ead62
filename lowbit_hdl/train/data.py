"""Dataset readers without torchvision: MNIST / Fashion-MNIST IDX files (raw or ``.gz``, read
by :func:`lowbit_hdl.runtime.preprocess.read_idx`), CIFAR-10 ``cifar-10-batches-py``
pickles and ImageNet-style image folders (one sub-folder per class, JPEG files; decoded
lazily, batch by batch, with Pillow). Images come back as uint8 NCHW arrays (an image
folder as a :class:`FolderImages`, which indexes like one), labels as int64; the readers
need only NumPy and Pillow (augmentation of the in-memory sets, in
:mod:`lowbit_hdl.train.loop`, uses torch).
"""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime.dtypes import UINT, DataType
from ..runtime.preprocess import (
    quantize,
    read_idx,  # the one IDX reader (it ships with the runtime)
)

__all__ = [
    "Dataset",
    "FolderImages",
    "read_idx",
    "load_mnist",
    "load_cifar10",
    "load_image_folder",
    "load_dataset",
    "dataset_for_shape",
    "input_levels",
    "is_image_folder",
    "DATASETS",
    "IMAGE_SUFFIXES",
]

DATASETS = ("mnist", "fashion-mnist", "cifar10", "folder")
#: files an image folder's class folders may hold (case-insensitive); others are ignored
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
#: split folders of an image folder: training, then the first of the test names present
_TRAIN_SPLIT, _TEST_SPLITS = "train", ("val", "validation", "test")
#: evaluation geometry of an image folder: shorter side to size · 256/224, centre crop
RESIZE_RATIO = 256 / 224

_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


@dataclass
class Dataset:
    """Train and test splits: images uint8 (N, C, H, W), labels int64 (N,); ``labels`` the
    class names where the data has them (an image folder's class folder names)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: list[str] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train {len(self.y_train)}, test {len(self.y_test)}, "
                f"shape {self.shape})")


def _find(root: Path, subdirs: list[str], stem: str) -> Path | None:
    for sub in subdirs:
        for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
            p = root / sub / name if sub else root / name
            if p.is_file():
                return p
    return None


def load_mnist(root: str | Path, fashion: bool = False) -> Dataset:
    """MNIST (or Fashion-MNIST) from the four IDX files, raw or ``.gz``, found in ``root``,
    ``root/MNIST/raw`` (``root/FashionMNIST/raw`` for Fashion-MNIST) or ``root/raw``."""
    root = Path(root)
    subdirs = ["", "FashionMNIST/raw" if fashion else "MNIST/raw", "raw"]
    arrays = {}
    for key, stem in _MNIST_FILES.items():
        p = _find(root, subdirs, stem)
        if p is None:
            where = ", ".join(str(root / s) for s in subdirs)
            raise FileNotFoundError(f"{stem}[.gz] not found in {where}")
        arrays[key] = read_idx(p)
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{root}: {split} images {x.shape} and labels {y.shape} do not "
                             "match (expected N×H×W and N)")
    return Dataset("fashion-mnist" if fashion else "mnist",
                   np.ascontiguousarray(arrays["train_x"][:, None].astype(np.uint8)),
                   arrays["train_y"].astype(np.int64),
                   np.ascontiguousarray(arrays["test_x"][:, None].astype(np.uint8)),
                   arrays["test_y"].astype(np.int64))


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}
    data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(d["labels"], dtype=np.int64)
    if len(data) != len(labels):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data, labels


def load_cifar10(root: str | Path) -> Dataset:
    """CIFAR-10 from the ``cifar-10-batches-py`` pickles (``data_batch_1..5``,
    ``test_batch``) in ``root`` or ``root/cifar-10-batches-py``."""
    root = Path(root)
    folder = None
    for cand in (root, root / "cifar-10-batches-py"):
        if (cand / "data_batch_1").is_file() and (cand / "test_batch").is_file():
            folder = cand
            break
    if folder is None:
        raise FileNotFoundError(f"CIFAR-10 pickles (data_batch_1..5, test_batch) not found in "
                                f"{root} or {root / 'cifar-10-batches-py'}")
    parts = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)
             if (folder / f"data_batch_{i}").is_file()]
    xt, yt = _read_cifar_batch(folder / "test_batch")
    return Dataset("cifar10", np.concatenate([p[0] for p in parts]),
                   np.concatenate([p[1] for p in parts]), xt, yt)


class FolderImages:
    """The images of a list of files as a lazy uint8 N×C×H×W array: indexing (an int, a
    slice or an index array) decodes just those files (Pillow, ``workers`` threads).

    Evaluation geometry (``train=False``): the shorter side is resized (bilinear) to
    ``round(max(H, W) · 256/224)`` and the central H×W window is taken (the usual ImageNet
    centre crop, 256 → 224). Training (``train=True``): every access draws a new random
    crop of 8 %–100 % of the image area with aspect ratio 3/4–4/3 (falling back to the
    centre crop), resized to H×W, flipped horizontally half of the time. ``channels`` 3
    converts to RGB, 1 to grayscale.

    ``np.asarray(images)`` decodes every file: meant for small folders only.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, files: list[Path], size: tuple[int, int], channels: int = 3,
                 train: bool = False, seed: int = 0, workers: int | None = None) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels={channels} must be 1 or 3")
        self.files = list(files)
        self.size = (int(size[0]), int(size[1]))
        self.channels = channels
        self.train = train
        self.workers = workers if workers is not None else min(8, os.cpu_count() or 1)
        self._rng = np.random.default_rng(seed)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), self.channels, *self.size)

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return (f"FolderImages({len(self.files)} files, {self.channels}×{self.size[0]}×"
                f"{self.size[1]}, {'train' if self.train else 'eval'})")

    def head(self, n: int) -> FolderImages:
        """The first ``n`` images (same geometry), still lazy."""
        return FolderImages(self.files[:n], self.size, self.channels, self.train,
                            int(self._rng.integers(1 << 31)), self.workers)

    def evaluation(self) -> FolderImages:
        """The same images in the evaluation geometry (centre crop, no flip)."""
        return FolderImages(self.files, self.size, self.channels, False, 0, self.workers)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        x = self[np.arange(len(self))]
        return x if dtype is None else x.astype(dtype)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._load_many([int(key)])[0]
        if isinstance(key, slice):
            idx = list(range(*key.indices(len(self))))
        else:
            idx = [int(i) for i in np.asarray(key).reshape(-1)]
        return self._load_many(idx)

    def _load_many(self, idx: list[int]) -> np.ndarray:
        n = len(self.files)
        for i in idx:
            if not -n <= i < n:
                raise IndexError(f"index {i} out of range for {n} images")
        seeds = self._rng.integers(1 << 63, size=len(idx))  # one draw per image, any order
        out = np.empty((len(idx), *self.shape[1:]), dtype=np.uint8)
        jobs = list(zip(idx, seeds, strict=True))
        if self.workers > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(self.workers) as pool:  # Pillow releases the GIL
                for k, img in enumerate(pool.map(lambda a: self._load(*a), jobs)):
                    out[k] = img
        else:
            for k, job in enumerate(jobs):
                out[k] = self._load(*job)
        return out

    def _load(self, i: int, seed: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        path = self.files[i]
        h, w = self.size
        try:
            with Image.open(path) as im:
                im = im.convert("RGB" if self.channels == 3 else "L")
                box = self._crop_box(im.width, im.height, np.random.default_rng(seed))
                im = im.resize((w, h), Image.BILINEAR, box=box)
                if self.train and seed & 1:
                    im = im.transpose(Image.FLIP_LEFT_RIGHT)
                a = np.asarray(im, dtype=np.uint8)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise ValueError(f"{path}: cannot read the image ({e})") from None
        return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)

    def _crop_box(self, iw: int, ih: int, rng: np.random.Generator
                  ) -> tuple[float, float, float, float]:
        """The source window (left, top, right, bottom) that is resized to H×W."""
        h, w = self.size
        if self.train:
            area = iw * ih
            for _ in range(10):
                a = area * rng.uniform(0.08, 1.0)
                ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))) * w / h
                cw, ch = np.sqrt(a * ratio), np.sqrt(a / ratio)
                if cw <= iw and ch <= ih:
                    x0, y0 = rng.uniform(0, iw - cw), rng.uniform(0, ih - ch)
                    return (x0, y0, x0 + cw, y0 + ch)
        # centre crop of the image resized so that its shorter side is max(H, W)·256/224
        scale = round(max(h, w) * RESIZE_RATIO) / min(iw, ih)
        cw, ch = min(iw, w / scale), min(ih, h / scale)
        x0, y0 = (iw - cw) / 2, (ih - ch) / 2
        return (x0, y0, x0 + cw, y0 + ch)


def _class_files(split: Path) -> dict[str, list[Path]]:
    """Class folder name → its image files (sorted), for the class folders of ``split``."""
    out = {}
    for d in sorted(p for p in split.iterdir() if p.is_dir()):
        files = sorted(f for f in d.iterdir()
                       if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        out[d.name] = files
    return out


def is_image_folder(root: str | Path) -> bool:
    """Whether ``root`` looks like an ImageNet-style folder (``root/train/<class>/``)."""
    train = Path(root) / _TRAIN_SPLIT
    return train.is_dir() and any(p.is_dir() for p in train.iterdir())


def load_image_folder(root: str | Path, shape: tuple[int, int, int], seed: int = 0,
                      workers: int | None = None) -> Dataset:
    """An ImageNet-style folder: ``root/train/<class>/*.JPEG`` and
    ``root/val/<class>/*.JPEG`` (or ``validation/``, ``test/``), one sub-folder per class.

    Classes are the train split's sub-folders in sorted order (label ``i`` = the ``i``-th
    name, as torchvision's ``ImageFolder``); a test class folder must be one of them. The
    images are :class:`FolderImages` of the network's input ``shape`` (C, H, W): random
    crops and flips for training, the centre crop for testing. Files other than
    :data:`IMAGE_SUFFIXES` are ignored.
    """
    root = Path(root)
    c, h, w = (int(d) for d in shape)
    train_dir = root / _TRAIN_SPLIT
    if not train_dir.is_dir():
        raise FileNotFoundError(f"{train_dir}: no such folder (an image folder holds "
                                "train/<class>/ and val/<class>/ sub-folders)")
    test_dir = next((root / t for t in _TEST_SPLITS if (root / t).is_dir()), None)
    if test_dir is None:
        raise FileNotFoundError(f"{root}: no test split ({', '.join(_TEST_SPLITS)}/<class>/)")
    train = _class_files(train_dir)
    classes = [k for k, v in train.items() if v]
    if not classes:
        raise ValueError(f"{train_dir}: no class folder with images "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    index = {k: i for i, k in enumerate(classes)}
    test = _class_files(test_dir)
    unknown = sorted(k for k, v in test.items() if v and k not in index)
    if unknown:
        raise ValueError(f"{test_dir}: class folder(s) {', '.join(unknown[:3])} not in "
                         f"{train_dir}")

    def split(files: dict[str, list[Path]]) -> tuple[list[Path], np.ndarray]:
        pairs = [(f, index[k]) for k, fs in files.items() if k in index for f in fs]
        return [f for f, _ in pairs], np.array([y for _, y in pairs], dtype=np.int64)

    f_train, y_train = split(train)
    f_test, y_test = split(test)
    if not f_test:
        raise ValueError(f"{test_dir}: no images")
    return Dataset("folder",
                   FolderImages(f_train, (h, w), c, train=True, seed=seed, workers=workers),
                   y_train, FolderImages(f_test, (h, w), c, workers=workers), y_test,
                   labels=classes)


def dataset_for_shape(shape: tuple[int, ...]) -> str:
    """Dataset name for a network input shape: 1×28×28 → mnist, 3×32×32 → cifar10."""
    shape = tuple(int(d) for d in shape)
    if shape == (1, 28, 28):
        return "mnist"
    if shape == (3, 32, 32):
        return "cifar10"
    raise ValueError(f"no dataset for input shape {'×'.join(map(str, shape))}; pass --dataset")


def load_dataset(name: str, root: str | Path, shape: tuple[int, int, int] | None = None,
                 seed: int = 0, workers: int | None = None) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`) from ``root``; an image folder (``"folder"``)
    needs the network input ``shape`` (C, H, W), and takes the random ``seed`` of its
    training crops and the decoding threads ``workers``."""
    if name == "folder":
        if shape is None:
            raise ValueError("an image folder needs the network's input shape")
        return load_image_folder(root, shape, seed, workers)
    if name == "mnist":
        return load_mnist(root)
    if name == "fashion-mnist":
        return load_mnist(root, fashion=True)
    if name == "cifar10":
        return load_cifar10(root)
    raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")


def input_levels(ds: Dataset, dtype: DataType) -> tuple[Dataset, int]:
    """``ds`` with its uint8 pixels replaced by the integer levels of the network input type
    ``dtype``, by the rule the runtime applies before the board
    (:func:`lowbit_hdl.runtime.preprocess.quantize`; BIPOLAR: +1 where the pixel is ≥ 128),
    and the level of pixel 0, which fills the padding of shifted or cropped training images
    (so augmenting levels equals quantizing augmented pixels). UINT8 input: ``ds`` itself
    and 0. Levels are stored as int8 or int16 arrays; image folders need UINT8 input."""
    if not isinstance(dtype, DataType):
        raise TypeError(f"input_levels: dtype must be a DataType, got {dtype!r}")
    if dtype == UINT(8):
        return ds, 0
    if isinstance(ds.x_train, FolderImages) or isinstance(ds.x_test, FolderImages):
        raise ValueError(f"image folders need UINT8 network input, not {dtype}")
    store = np.int8 if -128 <= dtype.min and dtype.max <= 127 else np.int16

    def levels(x: np.ndarray) -> np.ndarray:
        return quantize(np.asarray(x), str(dtype)).astype(store)

    fill = int(quantize(np.zeros(1, np.uint8), str(dtype))[0])
    return Dataset(ds.name, levels(ds.x_train), ds.y_train, levels(ds.x_test), ds.y_test,
                   ds.labels), fill
