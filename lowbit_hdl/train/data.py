"""Dataset readers without torchvision: MNIST / Fashion-MNIST IDX files (raw or ``.gz``, read
by :func:`lowbit_hdl.runtime.preprocess.read_idx`) and CIFAR-10 ``cifar-10-batches-py``
pickles. Images come back as uint8 NCHW arrays, labels as int64; the readers need only NumPy
(augmentation, in :mod:`lowbit_hdl.train.loop`, uses torch).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime.preprocess import read_idx  # the one IDX reader (it ships with the runtime)

__all__ = [
    "Dataset",
    "read_idx",
    "load_mnist",
    "load_cifar10",
    "load_dataset",
    "dataset_for_shape",
    "DATASETS",
]

DATASETS = ("mnist", "fashion-mnist", "cifar10")

_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


@dataclass
class Dataset:
    """Train and test splits: images uint8 (N, C, H, W), labels int64 (N,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

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


def dataset_for_shape(shape: tuple[int, ...]) -> str:
    """Dataset name for a network input shape: 1×28×28 → mnist, 3×32×32 → cifar10."""
    shape = tuple(int(d) for d in shape)
    if shape == (1, 28, 28):
        return "mnist"
    if shape == (3, 32, 32):
        return "cifar10"
    raise ValueError(f"no dataset for input shape {'×'.join(map(str, shape))}; pass --dataset")


def load_dataset(name: str, root: str | Path) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`) from ``root``."""
    if name == "mnist":
        return load_mnist(root)
    if name == "fashion-mnist":
        return load_mnist(root, fashion=True)
    if name == "cifar10":
        return load_cifar10(root)
    raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
