"""Training from an ImageNet-style image folder (``DIR/train/<class>/*.JPEG``,
``DIR/val/<class>/``): the lazy reader's geometry (centre crop, random crops and flips), its
errors, and the ``train`` command end to end on a small folder of generated JPEG images."""

# ruff: noqa: E402  (imports follow pytest.importorskip)

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from lowbit_hdl import golden, netfile
from lowbit_hdl.cli import main
from lowbit_hdl.train.data import FolderImages, is_image_folder, load_dataset, load_image_folder
from lowbit_hdl.train.loop import DeviceImages, as_device

pytestmark = pytest.mark.usefixtures("one_thread")

#: class → mean colour (learnable from colour alone)
COLOURS = {"n01_red": (200, 40, 40), "n02_green": (40, 190, 60), "n03_blue": (50, 50, 210)}


def make_folder(root: Path, n_train: int = 20, n_val: int = 6, seed: int = 0) -> Path:
    """Generated JPEGs of random sizes: a noisy class colour with a random grey square."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for cls, rgb in COLOURS.items():
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                h, w = rng.integers(20, 48), rng.integers(20, 48)
                img = np.clip(rng.normal(rgb, 30, size=(h, w, 3)), 0, 255).astype(np.uint8)
                y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
                img[y:y + h // 3, x:x + w // 3] = rng.integers(0, 256)
                Image.fromarray(img).save(d / f"{cls}_{i}.JPEG", quality=90)
            (d / "notes.txt").write_text("not an image")  # ignored
    return root


def test_reader_geometry(tmp_path):
    root = tmp_path / "imgs"
    (root / "train" / "a").mkdir(parents=True)
    (root / "val" / "a").mkdir(parents=True)
    # 40×20 (H×W) image with a distinct value per row: the centre crop is predictable
    img = np.repeat(np.arange(40, dtype=np.uint8)[:, None] * 6, 20, axis=1)
    Image.fromarray(np.stack([img] * 3, axis=-1)).save(root / "train" / "a" / "x.png")
    Image.fromarray(np.stack([img] * 3, axis=-1)).save(root / "val" / "a" / "x.png")
    assert is_image_folder(root) and not is_image_folder(tmp_path)
    ds = load_image_folder(root, (3, 7, 7), workers=1)
    assert ds.labels == ["a"] and ds.x_test.shape == (1, 3, 7, 7) and len(ds.x_train) == 1
    x = ds.x_test[0]
    # shorter side 20 → round(7·256/224) = 8 (scale 0.4): the centre 7×7 of the scaled image
    # covers source rows 11.25 … 28.75 → row means ascend from about 6·12 to 6·28
    assert x.dtype == np.uint8 and x.shape == (3, 7, 7)
    assert np.all(np.diff(x[0, :, 3].astype(int)) > 0)
    assert 60 <= x[0, 0, 3] <= 90 and 150 <= x[0, 6, 3] <= 180
    np.testing.assert_array_equal(ds.x_test[0], x)  # evaluation is deterministic
    # training crops: random, always the network's size, each a crop of the picture
    crops = ds.x_train[np.zeros(16, dtype=int)]
    assert crops.shape == (16, 3, 7, 7)
    assert len({c.tobytes() for c in crops}) > 8
    assert np.array_equal(ds.x_train.evaluation()[0], x)
    gray = FolderImages(ds.x_test.files, (5, 6), channels=1)
    assert gray[np.arange(1)].shape == (1, 1, 5, 6)
    assert np.asarray(gray).shape == (1, 1, 5, 6)
    # on a device: a lazy tensor-like view, loaded by index tensors and slices
    dev = as_device(ds.x_test, torch.device("cpu"))
    assert isinstance(dev, DeviceImages) and len(dev) == 1
    assert torch.equal(dev[torch.tensor([0])][0], torch.from_numpy(x))
    assert dev[0:1].dtype == torch.uint8


def test_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_image_folder(tmp_path, (3, 8, 8))
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no test split"):
        load_image_folder(tmp_path, (3, 8, 8))
    (tmp_path / "val" / "b").mkdir(parents=True)
    with pytest.raises(ValueError, match="no class folder with images"):
        load_image_folder(tmp_path, (3, 8, 8))
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "train" / "a" / "x.jpg")
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "val" / "b" / "x.jpg")
    with pytest.raises(ValueError, match="class folder.* b not in"):
        load_image_folder(tmp_path, (3, 8, 8))
    (tmp_path / "val" / "b" / "x.jpg").rename(tmp_path / "val" / "x.jpg")  # flat: no class
    with pytest.raises(ValueError, match="val: no images"):
        load_image_folder(tmp_path, (3, 8, 8))
    (tmp_path / "val" / "a").mkdir()
    (tmp_path / "val" / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    ds = load_dataset("folder", tmp_path, (3, 8, 8))
    with pytest.raises(ValueError, match="broken.jpg: cannot read the image"):
        ds.x_test[0]
    with pytest.raises(IndexError):
        ds.x_test[5]
    with pytest.raises(ValueError, match="needs the network's input shape"):
        load_dataset("folder", tmp_path)


def test_train_command_on_an_image_folder(tmp_path, capsys):
    """3 classes of generated JPEGs through a small conv net with a "same" padded pool:
    trains, exports, golden == torch on every test image, class names become the labels."""
    data = make_folder(tmp_path / "data")
    net_file = tmp_path / "tiny.py"
    net_file.write_text(
        "from lowbit_hdl import BIPOLAR, FC, INT, UINT, Conv, MaxPool, Network\n"
        "network = Network('tiny', (3, 16, 16), [\n"
        "    Conv('c0', 8, 3, padding=1, weight_dtype=INT(4), act=UINT(2)),\n"
        "    MaxPool('p0', 3, 2, padding='same'),\n"
        "    Conv('c1', 8, 3, padding=1, weight_dtype=BIPOLAR, act=UINT(2)),\n"
        "    MaxPool('p1', 2),\n"
        "    FC('f', 3, weight_dtype=BIPOLAR, act=None)], UINT(8))\n")
    out, summ = tmp_path / "tiny.npz", tmp_path / "tiny.json"
    rc = main(["train", str(net_file), "--data", str(data), "--epochs", "4",
               "--batch-size", "10", "--lr", "0.02", "--out", str(out), "--threads", "1",
               "--device", "cpu", "--workers", "2", "--summary", str(summ),
               "--recalibrate-bn"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "dataset folder: 60 train, 18 test images" in text
    assert "decisions identical on 18/18 images" in text
    s = json.loads(summ.read_text())
    assert s["dataset"] == "folder" and s["agree"] == 18
    assert s["golden_test_acc"] >= 0.8  # colour classes: far above chance (1/3)
    int_net = netfile.load(out)
    assert int_net.labels == list(COLOURS)
    ds = load_dataset("folder", data, (3, 16, 16))
    pred = golden.top1(int_net, np.asarray(ds.x_test))
    assert float((pred == ds.y_test).mean()) == s["golden_test_acc"]
