"""Pre- and post-processing: input quantisation, accepted image forms, errors, test sets."""

import gzip
import importlib.util

import numpy as np
import pytest

from lowbit_hdl.runtime.preprocess import (
    PreprocessError,
    labels_of,
    load_image,
    load_test_set,
    quantize,
    read_idx,
    resize_image,
    to_frames,
    topk,
)

RNG = np.random.default_rng(7)


def test_quantize_rules():
    p = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(quantize(p, "UINT8"), np.arange(256))
    # round(p·3/255): 0..42 → 0, 43..127 → 1, 128..212 → 2, 213..255 → 3
    q2 = quantize(p, "UINT2")
    assert [int(q2[i]) for i in (0, 42, 43, 127, 128, 212, 213, 255)] == [0, 0, 1, 1, 2, 2, 3, 3]
    np.testing.assert_array_equal(q2, np.rint(p.astype(int) * 3 / 255))
    np.testing.assert_array_equal(quantize(p, "UINT1"), (p >= 128).astype(int))
    np.testing.assert_array_equal(quantize(p, "BIPOLAR"), np.where(p >= 128, 1, -1))
    np.testing.assert_array_equal(quantize(p, "INT8"), np.arange(256) - 128)
    q4 = quantize(p, "INT4")
    assert q4.min() == -8 and q4.max() == 7
    with pytest.raises(PreprocessError, match="uint8"):
        quantize(p.astype(np.float32), "UINT8")
    with pytest.raises(PreprocessError, match="unknown input data type"):
        quantize(p, "FLOAT")


def _nchw(n, c, h, w):
    return RNG.integers(0, 256, (n, c, h, w), dtype=np.uint8)


@pytest.mark.parametrize("form", ["HW", "HWC", "CHW", "NHW", "NHWC", "NCHW", "list",
                                  "list_hw"])
def test_grayscale_forms(form):
    x = _nchw(3, 1, 6, 5)
    arg = {"HW": x[0, 0], "HWC": x[0].transpose(1, 2, 0), "CHW": x[0], "NHW": x[:, 0],
           "NHWC": x.transpose(0, 2, 3, 1), "NCHW": x, "list": list(x),
           "list_hw": [im[0] for im in x]}[form]
    out = to_frames(arg, (1, 6, 5), "UINT8")
    n = 1 if form in ("HW", "HWC", "CHW") else 3
    np.testing.assert_array_equal(out, x[:n].astype(np.int64))
    assert out.dtype == np.int64


@pytest.mark.parametrize("form", ["HWC", "CHW", "NHWC", "NCHW"])
def test_rgb_forms(form):
    x = _nchw(2, 3, 4, 7)
    arg = {"HWC": x[0].transpose(1, 2, 0), "CHW": x[0], "NHWC": x.transpose(0, 2, 3, 1),
           "NCHW": x}[form]
    out = to_frames(arg, (3, 4, 7), "UINT2")
    n = 1 if form in ("HWC", "CHW") else 2
    np.testing.assert_array_equal(out, quantize(x[:n], "UINT2"))


def test_wrong_inputs_are_rejected_clearly():
    x = _nchw(2, 1, 8, 8)
    with pytest.raises(PreprocessError, match="uint8.*float"):
        to_frames(x.astype(np.float32) / 255, (1, 8, 8), "UINT8")
    with pytest.raises(PreprocessError, match="uint8"):
        to_frames(x.astype(np.int64), (1, 8, 8), "UINT8")
    with pytest.raises(PreprocessError, match="resize"):
        to_frames(x, (1, 9, 8), "UINT8")
    with pytest.raises(PreprocessError, match="resize"):
        to_frames(x[0, 0], (1, 9, 8), "UINT8")
    with pytest.raises(PreprocessError, match="convert=True"):
        to_frames(_nchw(1, 3, 8, 8), (1, 8, 8), "UINT8")
    with pytest.raises(PreprocessError, match="2 to 4 dimensions"):
        to_frames(x[None], (1, 8, 8), "UINT8")
    with pytest.raises(PreprocessError, match="no images"):
        to_frames([], (1, 8, 8), "UINT8")
    with pytest.raises(PreprocessError, match="empty batch"):
        to_frames(x[:0], (1, 8, 8), "UINT8")
    with pytest.raises(PreprocessError, match="a list holds single images"):
        to_frames([x], (1, 8, 8), "UINT8")
    with pytest.raises(FileNotFoundError):
        to_frames("no/such/image.png", (1, 8, 8), "UINT8")


def test_quantized_frames_pass_through_checked():
    f = RNG.integers(0, 4, (2, 1, 3, 3))
    np.testing.assert_array_equal(to_frames(f, (1, 3, 3), "UINT2", quantized=True), f)
    with pytest.raises(PreprocessError, match="out of range"):
        to_frames(f + 1, (1, 3, 3), "UINT2", quantized=True)
    with pytest.raises(PreprocessError, match="out of range"):
        to_frames(np.zeros((1, 1, 3, 3), int), (1, 3, 3), "BIPOLAR", quantized=True)
    with pytest.raises(PreprocessError, match="must be N"):
        to_frames(f[:, :, :2], (1, 3, 3), "UINT2", quantized=True)
    with pytest.raises(PreprocessError, match="integers"):
        to_frames(f.astype(float), (1, 3, 3), "UINT2", quantized=True)


def test_channel_conversion():
    rgb = _nchw(1, 3, 4, 4)[0].transpose(1, 2, 0)
    gray = to_frames(rgb, (1, 4, 4), "UINT8", convert=True)[0, 0]
    expect = np.rint(rgb.astype(float) @ [0.299, 0.587, 0.114])
    np.testing.assert_array_equal(gray, expect)
    g = _nchw(1, 1, 4, 4)[0, 0]
    out = to_frames(g, (3, 4, 4), "UINT8", convert=True)[0]
    assert all(np.array_equal(out[i], g) for i in range(3))
    rgba = np.concatenate([rgb, np.full((4, 4, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(to_frames(rgba, (3, 4, 4), "UINT8", convert=True)[0],
                                  rgb.transpose(2, 0, 1))


def test_resize_and_crop():
    img = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    # same size: unchanged; 2× down: bilinear averages 2×2 blocks
    assert resize_image(img[..., None], 4, 4) is not None
    small = to_frames(img, (1, 2, 2), "UINT8", resize=True)[0, 0]
    np.testing.assert_array_equal(small, [[25, 45], [105, 125]])
    crop = to_frames(img, (1, 2, 2), "UINT8", crop=True)[0, 0]
    np.testing.assert_array_equal(crop, img[1:3, 1:3])
    wide = np.zeros((4, 8), np.uint8)
    wide[:, 2:6] = 200  # centre square survives crop-to-aspect then resize
    out = to_frames(wide, (1, 2, 2), "UINT8", resize=True, crop=True)[0, 0]
    np.testing.assert_array_equal(out, np.full((2, 2), 200))
    with pytest.raises(PreprocessError, match="centre-crop"):
        to_frames(img, (1, 6, 6), "UINT8", crop=True)
    # batches of different-size images through a list
    frames = to_frames([img, np.zeros((7, 3), np.uint8)], (1, 5, 5), "UINT8", resize=True)
    assert frames.shape == (2, 1, 5, 5)


def test_image_files(tmp_path):
    img = _nchw(1, 1, 5, 5)[0, 0]
    np.save(tmp_path / "a.npy", img)
    np.testing.assert_array_equal(load_image(tmp_path / "a.npy"), img)
    np.testing.assert_array_equal(to_frames([tmp_path / "a.npy"], (1, 5, 5), "UINT8")[0, 0],
                                  img)
    if importlib.util.find_spec("PIL") is None:
        (tmp_path / "b.png").write_bytes(b"\x89PNG")
        with pytest.raises(PreprocessError, match="Pillow"):
            load_image(tmp_path / "b.png")
    else:  # pragma: no cover - depends on the machine
        from PIL import Image

        Image.fromarray(img).save(tmp_path / "b.png")
        np.testing.assert_array_equal(to_frames(tmp_path / "b.png", (1, 5, 5), "UINT8")[0, 0],
                                      img)


def test_topk_and_labels():
    s = np.array([[1, 5, 5, 2], [-3, -1, -2, -1]])
    np.testing.assert_array_equal(topk(s, 1), [[1], [1]])
    np.testing.assert_array_equal(topk(s, 3), [[1, 2, 3], [1, 3, 2]])
    with pytest.raises(ValueError):
        topk(s, 5)
    assert labels_of(np.array([0, 2]), ["a", "b", "c"]) == ["a", "c"]
    assert labels_of(np.array([[0, 9]]), ["a", "b"]) == [["a", "<9?>"]]
    assert labels_of(np.array([3, 1]), None) == [3, 1]


def _idx(path, arr):
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def test_load_test_set_formats(tmp_path):
    x = _nchw(5, 1, 28, 28)
    y = RNG.integers(0, 10, 5)
    np.savez(tmp_path / "t.npz", images=x, labels=y)
    xi, yi = load_test_set(tmp_path / "t.npz")
    np.testing.assert_array_equal(xi, x)
    np.testing.assert_array_equal(yi, y)
    np.savez(tmp_path / "u.npz", x=x)
    assert load_test_set(tmp_path / "u.npz")[1] is None

    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", x[:, 0])
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", y)
    xi, yi = load_test_set(tmp_path / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(xi, x[:, 0])
    np.testing.assert_array_equal(yi, y)

    c = _nchw(3, 3, 32, 32)
    cl = np.array([4, 0, 9], np.uint8)
    rec = np.concatenate([cl[:, None], c.reshape(3, -1)], axis=1)
    rec.tofile(tmp_path / "test_batch.bin")
    xi, yi = load_test_set(tmp_path / "test_batch.bin")
    np.testing.assert_array_equal(xi, c)
    np.testing.assert_array_equal(yi, cl)

    np.savez(tmp_path / "bad.npz", images=x, labels=y[:3])
    with pytest.raises(PreprocessError, match="5 images but 3 labels"):
        load_test_set(tmp_path / "bad.npz")
    np.savez(tmp_path / "nokey.npz", pixels=x)
    with pytest.raises(PreprocessError, match="no 'images'"):
        load_test_set(tmp_path / "nokey.npz")
    (tmp_path / "t.csv").write_text("1,2")
    with pytest.raises(PreprocessError, match="unknown test set format"):
        load_test_set(tmp_path / "t.csv")
    with pytest.raises(FileNotFoundError):
        load_test_set(tmp_path / "missing.npz")


def test_read_idx_is_the_one_idx_reader(tmp_path):
    from lowbit_hdl.train import data

    assert data.read_idx is read_idx  # the trainer's MNIST reader uses the runtime's
    a = np.arange(-6, 6, dtype=">i2").reshape(3, 4)
    head = bytes([0, 0, 0x0B, 2]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(head + a.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "t10k-images-idx3-ubyte"), a)
    # a test set of images must be unsigned bytes
    with pytest.raises(PreprocessError, match="unsigned-byte"):
        load_test_set(tmp_path / "t10k-images-idx3-ubyte")
    (tmp_path / "odd").write_bytes(bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]))
    with pytest.raises(PreprocessError, match="element type 0x42"):
        read_idx(tmp_path / "odd")
