"""Board-side pre- and post-processing with known answers: ImageNet resize / centre crop and
named top-k (runtime/imagenet.py), Tiny-YOLO letterbox, region decoding, NMS, drawing
(runtime/yolo.py), and the Accelerator's classify/detect on a fake board."""

import math

import numpy as np
import pytest
from helpers import board_files

from lowbit_hdl import FC, INT, UINT, Conv, Network
from lowbit_hdl.flow.plan import plan_network
from lowbit_hdl.golden import forward
from lowbit_hdl.runtime import Accelerator, LayoutError, PynqBackend
from lowbit_hdl.runtime.imagenet import (
    imagenet_classes,
    imagenet_frames,
    imagenet_input,
    resize_shorter,
    top_k_classes,
)
from lowbit_hdl.runtime.layout import DesignLayout, StreamLayout
from lowbit_hdl.runtime.preprocess import PreprocessError
from lowbit_hdl.runtime.yolo import (
    VOC_ANCHORS,
    VOC_CLASSES,
    Placement,
    box_iou,
    decode_region,
    detect_grid,
    draw_boxes,
    letterbox,
    nms,
    region_values,
    resize_to_input,
    write_png,
)
from lowbit_hdl.sim.fakepynq import FakeDevice, FakePynq

# --------------------------------------------------------------------------------------------
# ImageNet
# --------------------------------------------------------------------------------------------


def test_imagenet_class_names():
    names = imagenet_classes()
    assert len(names) == 1000 == len(set(names))
    assert (names[0], names[1], names[9], names[281], names[285], names[999]) == \
        ("tench", "goldfish", "ostrich", "tabby", "Egyptian cat", "toilet tissue")
    assert all(n == n.strip() and n for n in names)


def test_resize_shorter_sizes():
    assert resize_shorter(np.zeros((300, 500, 3), np.uint8)).shape == (256, 426, 3)
    assert resize_shorter(np.zeros((500, 300, 3), np.uint8)).shape == (426, 256, 3)
    assert resize_shorter(np.zeros((100, 100, 1), np.uint8), 64).shape == (64, 64, 1)
    with pytest.raises(ValueError, match="≥ 1"):
        resize_shorter(np.zeros((4, 4, 3), np.uint8), 0)
    with pytest.raises(TypeError):
        resize_shorter(np.zeros((4, 4, 3), np.uint8), 2.5)


def _ramps(h: int, w: int) -> np.ndarray:
    """R = column // 4, G = row // 4, B = 7 (H×W×3 uint8)."""
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (np.arange(w) // 4)[None, :]
    img[..., 1] = (np.arange(h) // 4)[:, None]
    img[..., 2] = 7
    return img


def test_imagenet_input_known_answer():
    # 512×1024 → shorter side 256 is an exact halving: output pixel j sits at source 2j + 0.5,
    # the mean of source pixels 2j and 2j + 1, which have the same value (source // 4), so
    # the result is j // 2. The 224 crop starts at ((256 - 224) // 2, (512 - 224) // 2) =
    # (16, 144).
    x = imagenet_input(_ramps(512, 1024))
    assert x.shape == (3, 224, 224) and x.dtype == np.uint8
    r, c = np.arange(224)[:, None], np.arange(224)[None, :]
    np.testing.assert_array_equal(x[0], np.broadcast_to((144 + c) // 2, (224, 224)))
    np.testing.assert_array_equal(x[1], np.broadcast_to((16 + r) // 2, (224, 224)))
    assert np.all(x[2] == 7)
    # a tall image: the crop is centred vertically; C×H×W input gives the same
    tall = _ramps(1024, 512)
    y = imagenet_input(tall.transpose(2, 0, 1))
    np.testing.assert_array_equal(y[1], np.broadcast_to((144 + r) // 2, (224, 224)))
    np.testing.assert_array_equal(y[0], np.broadcast_to((16 + c) // 2, (224, 224)))
    # grayscale → three equal channels; RGBA → alpha dropped
    g = imagenet_input(np.full((300, 400), 90, np.uint8))
    assert g.shape == (3, 224, 224) and np.all(g == 90)
    rgba = np.dstack([_ramps(512, 1024), np.zeros((512, 1024), np.uint8)])
    np.testing.assert_array_equal(imagenet_input(rgba), x)
    with pytest.raises(PreprocessError, match="uint8"):
        imagenet_input(np.zeros((300, 300, 3), np.float32))
    with pytest.raises(ValueError, match="resize_to"):
        imagenet_input(_ramps(300, 300), 224, 200)


def test_imagenet_frames(tmp_path):
    ready = np.random.default_rng(0).integers(0, 256, (3, 224, 224), dtype=np.uint8)
    np.save(tmp_path / "big.npy", _ramps(512, 1024))
    out = imagenet_frames([ready, ready.transpose(1, 2, 0), tmp_path / "big.npy",
                           _ramps(512, 1024)])
    assert out.shape == (4, 3, 224, 224)
    np.testing.assert_array_equal(out[0], ready)  # already the input size: unchanged
    np.testing.assert_array_equal(out[1], ready)
    np.testing.assert_array_equal(out[2], imagenet_input(_ramps(512, 1024)))
    np.testing.assert_array_equal(out[3], out[2])
    batch = imagenet_frames(np.stack([_ramps(300, 300)] * 2))
    assert batch.shape == (2, 3, 224, 224)
    with pytest.raises(PreprocessError, match="no images"):
        imagenet_frames([])


def test_top_k_classes():
    s = np.zeros(1000, np.int64)
    s[[281, 285, 9]] = [5, 7, 7]  # a tie: the lower index first
    top = top_k_classes(s, 3)
    assert top == [(9, "ostrich", 7), (285, "Egyptian cat", 7), (281, "tabby", 5)]
    assert all(type(v) is int for _, _, v in top)
    assert top_k_classes(s.reshape(1000, 1, 1), 1) == [(9, "ostrich", 7)]
    batch = np.stack([s, -s]).astype(np.float32).reshape(2, 1000, 1, 1)
    both = top_k_classes(batch, 2)
    assert both[0][0] == (9, "ostrich", 7.0) and type(both[0][0][2]) is float
    assert both[1] == [(0, "tench", 0.0), (1, "goldfish", 0.0)]
    assert top_k_classes([3, 1, 2], 2, names=["a", "b", "c"]) == [(0, "a", 3), (2, "c", 2)]
    # unsigned scores keep their order (no wrap-around when negated)
    assert top_k_classes(np.array([1, 200, 3], np.uint8), 1, "xyz") == [(1, "y", 200)]
    with pytest.raises(ValueError, match="k=0"):
        top_k_classes(s, 0)
    with pytest.raises(ValueError, match="2 names for 3"):
        top_k_classes([1, 2, 3], 1, names=["a", "b"])
    with pytest.raises(TypeError):
        top_k_classes(np.array(["a", "b"]), 1)


# --------------------------------------------------------------------------------------------
# Tiny-YOLO: letterbox, decoding, NMS
# --------------------------------------------------------------------------------------------


def test_letterbox_known_answer():
    tall = np.full((200, 100, 3), 50, np.uint8)  # height limits: 416 × 208, left 104
    frame, pl = letterbox(tall)
    assert frame.shape == (3, 416, 416) and frame.dtype == np.uint8
    assert pl == Placement(200, 100, 416, 208, 0, 104, 416, 416)
    assert np.all(frame[:, :, 104:312] == 50)
    assert np.all(frame[:, :, :104] == 128) and np.all(frame[:, :, 312:] == 128)
    wide = np.full((100, 300, 3), 9, np.uint8)  # width limits: 138 × 416 (100·416 // 300)
    frame, pl = letterbox(wide, fill=0)
    assert pl == Placement(100, 300, 138, 416, 139, 0, 416, 416)
    assert np.all(frame[:, 139:277] == 9) and np.all(frame[:, :139] == 0) \
        and np.all(frame[:, 277:] == 0)
    # the placement maps the image's area in the input back onto the whole image
    corners = np.array([[0, 139 / 416, 1, 277 / 416]])
    np.testing.assert_allclose(pl.to_image(corners), [[0, 0, 300, 100]])
    frame, pl = resize_to_input(wide, (32, 64))
    assert frame.shape == (3, 32, 64) and pl == Placement(100, 300, 32, 64, 0, 0, 32, 64)
    np.testing.assert_allclose(pl.to_image(np.array([0.5, 0.5, 1, 1])), [150, 50, 300, 100])
    with pytest.raises(TypeError):
        letterbox(tall, size=4.5)
    with pytest.raises(ValueError, match="fill"):
        letterbox(tall, fill=300)


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_decode_region_hand_made_grid():
    # 2 anchors × (5 + 3 classes) = 16 channels on a 2×3 grid; real value = 0.5·q + offset
    anchors = ((1.0, 2.0), (3.0, 0.5))
    q = np.zeros((16, 2, 3), np.int64)
    offset = np.zeros(16)
    a, row, col = 1, 1, 2
    base = a * 8
    q[base + 0, row, col] = 2  # tx = 1
    q[base + 1, row, col] = -4  # ty = -2
    offset[base + 2] = math.log(2)  # tw = ln 2 everywhere for anchor 1
    q[base + 3, row, col] = 0  # th = 0
    q[base + 4, row, col] = 6  # to = 3
    q[base + 5:base + 8, row, col] = [0, 2, 4]  # class values 0, 1, 2
    boxes, obj, probs = decode_region(q, 0.5, offset, anchors, 3)
    assert boxes.shape == (12, 4) and obj.shape == (12,) and probs.shape == (12, 3)
    i = (a * 2 + row) * 3 + col  # Darknet's cell order
    assert i == 11
    np.testing.assert_allclose(boxes[i], [(2 + _sig(1)) / 3, (1 + _sig(-2)) / 2,
                                          3.0 * 2 / 3, 0.5 / 2])
    assert obj[i] == pytest.approx(_sig(3))
    e = np.exp([0.0, 1.0, 2.0])
    np.testing.assert_allclose(probs[i], e / e.sum())
    # an all-zero cell of anchor 0: centre of its cell, anchor size, uniform classes
    np.testing.assert_allclose(boxes[0], [0.5 / 3, 0.5 / 2, 1 / 3, 2 / 2])
    np.testing.assert_allclose(probs[0], [1 / 3] * 3)
    assert obj[0] == 0.5


def _darknet_decode(t: np.ndarray, anchors, classes: int):
    """Darknet's region layer on its planar output, index by index (entry_index,
    get_region_box, the class loop): (x, y, w, h, objectness, probs) per cell index."""
    c, h, w = t.shape
    flat = t.reshape(-1)
    coords = 4
    out = {}
    for n in range(len(anchors)):
        for i in range(h * w):
            row, col = divmod(i, w)

            def entry(e, n=n, i=i):
                return n * w * h * (coords + classes + 1) + e * w * h + i
            x = (col + _sig(flat[entry(0)])) / w
            y = (row + _sig(flat[entry(1)])) / h
            bw = math.exp(flat[entry(2)]) * anchors[n][0] / w
            bh = math.exp(flat[entry(3)]) * anchors[n][1] / h
            obj = _sig(flat[entry(4)])
            cl = [flat[entry(5 + j)] for j in range(classes)]
            m = max(cl)
            ex = [math.exp(v - m) for v in cl]
            out[n * h * w + i] = (x, y, bw, bh, obj, [v / sum(ex) for v in ex])
    return out


def test_decode_region_against_darknet_indexing():
    rng = np.random.default_rng(1)
    q = rng.integers(-40, 40, (125, 13, 13))
    scale = rng.uniform(0.02, 0.08, 125)
    boxes, obj, probs = decode_region(q, scale, -0.1)
    ref = _darknet_decode(region_values(q, scale, -0.1), VOC_ANCHORS, 20)
    for i in rng.choice(845, 60, replace=False):
        x, y, w, h, o, p = ref[int(i)]
        np.testing.assert_allclose(boxes[i], [x, y, w, h], rtol=1e-12)
        assert obj[i] == pytest.approx(o, rel=1e-12)
        np.testing.assert_allclose(probs[i], p, rtol=1e-10)


def test_region_values_checks():
    q = np.ones((125, 13, 13), np.int64)
    assert region_values(q, 2, 1)[0, 0, 0] == 3
    with pytest.raises(ValueError, match="one per channel"):
        region_values(q, np.ones(3))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        region_values(q[None], 1.0)
    with pytest.raises(ValueError, match="finite"):
        region_values(q, float("nan"))
    with pytest.raises(ValueError, match="126 channels"):
        decode_region(np.zeros((126, 13, 13)), 1.0)


def test_box_iou_and_nms_cases():
    a = [0, 0, 10, 10]
    np.testing.assert_allclose(box_iou(a, [[1, 0, 11, 10], [5, 0, 15, 10], [20, 20, 30, 30],
                                           [0, 0, 10, 5]]), [90 / 110, 50 / 150, 0, 0.5])
    assert box_iou([0, 0, 0, 0], [[0, 0, 0, 0]])[0] == 0  # empty union
    # A suppresses B (IoU .538 > .45); C overlaps only B, which is gone, so C stays
    boxes = np.array([[3, 0, 13, 10], [0, 0, 10, 10], [6, 0, 16, 10]], float)
    np.testing.assert_array_equal(nms(boxes, [0.8, 0.9, 0.7]), [1, 2])
    # IoU exactly at the threshold is kept (Darknet suppresses only when IoU > thresh)
    np.testing.assert_array_equal(nms([[0, 0, 10, 10], [0, 0, 10, 5]], [0.9, 0.8], 0.5), [0, 1])
    np.testing.assert_array_equal(nms([[0, 0, 10, 10], [0, 0, 10, 5]], [0.9, 0.8], 0.49), [0])
    # equal scores: the lower index wins
    np.testing.assert_array_equal(nms([[0, 0, 10, 10], [0, 0, 10, 10]], [0.5, 0.5]), [0])
    assert nms(np.zeros((0, 4)), []).size == 0
    with pytest.raises(ValueError, match="2 boxes but 1"):
        nms(np.zeros((2, 4)), [1.0])


def test_nms_against_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(30):
        n = int(rng.integers(1, 25))
        xy = rng.uniform(0, 50, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (n, 2))], axis=1)
        scores = rng.choice([0.3, 0.5, 0.7, 0.9], n)  # ties included
        thr = float(rng.uniform(0.2, 0.7))
        # brute force: repeatedly take the best remaining box (lowest index on ties), drop
        # every remaining box overlapping it by more than thr
        left, keep = list(range(n)), []
        while left:
            best = min(left, key=lambda i: (-scores[i], i))
            keep.append(best)
            left = [i for i in left if i != best and _iou(boxes[best], boxes[i]) <= thr]
        assert nms(boxes, scores, thr).tolist() == keep


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _grid_with(objects, scale=0.25):
    """A 125×13×13 integer grid (real value = scale·q) that is "nothing" everywhere
    (objectness −25) except the (anchor, row, col, to, class, tx, ty, tw, th) cells given."""
    q = np.zeros((125, 13, 13), np.int64)
    q[4::25] = -100
    for a, r, c, to, k, tx, ty, tw, th in objects:
        ch = a * 25
        q[ch:ch + 5, r, c] = [tx, ty, tw, th, to]
        q[ch + 5 + k, r, c] = 40  # class value 10: softmax ≈ 1 for class k
    return q


def test_detect_grid_threshold_nms_and_placement():
    p_k = 1 / (1 + 19 * math.exp(-10))  # probability of the one-hot class (value 10)
    q = _grid_with([
        (2, 6, 6, 40, 14, 0, 0, 0, 0),  # person at the input's centre, objectness σ(10)
        (2, 6, 7, 8, 14, 0, 0, 0, 0),  # person one cell right (IoU .74), σ(2): NMS drops it
        (0, 1, 2, 0, 11, 0, 0, 0, 0),  # dog, objectness σ(0) = .5: score .5 > .24
        (0, 10, 10, -8, 7, 0, 0, 0, 0),  # cat, objectness σ(-2) = .12 < .24: dropped
    ])
    _, pl = letterbox(np.zeros((200, 100, 3), np.uint8))  # image at x 104…312 of the input
    dets = detect_grid(q, 0.25, placement=pl)
    assert [(d.class_name, d.class_index) for d in dets] == [("person", 14), ("dog", 11)]
    assert len(VOC_CLASSES) == 20 and VOC_CLASSES[11] == "dog" and VOC_CLASSES[14] == "person"
    person, dog = dets
    assert person.score == pytest.approx(_sig(10) * p_k)
    assert person.objectness == pytest.approx(_sig(10))
    assert dog.score == pytest.approx(0.5 * p_k)
    # person: centre (208, 208) in input pixels, 6.63 × 11.38 cells of 32 pixels; the input
    # maps to the image by x' = (x − 104)·100/208, y' = y·200/416, then clipped to 100 × 200
    h_in = 11.38 * 32
    assert person.box == pytest.approx((0.0, (208 - h_in / 2) * 200 / 416, 100.0,
                                        (208 + h_in / 2) * 200 / 416))
    # dog: cell (row 1, col 2) of anchor 0 (1.08 × 1.19 cells)
    cx, cy, bw, bh = 2.5 * 32, 1.5 * 32, 1.08 * 32, 1.19 * 32
    exp_box = [(cx - bw / 2 - 104) * 100 / 208, (cy - bh / 2) * 200 / 416,
               (cx + bw / 2 - 104) * 100 / 208, (cy + bh / 2) * 200 / 416]
    exp_box = [min(max(v, 0), lim) for v, lim in zip(exp_box, (100, 200, 100, 200),
                                                       strict=True)]
    np.testing.assert_allclose(dog.box, exp_box)
    # without NMS the second person appears; with a high threshold only the first is left
    assert len(detect_grid(q, 0.25, placement=pl, nms_thresh=1.0)) == 3
    assert len(detect_grid(q, 0.25, placement=pl, conf_thresh=0.6)) == 1
    # without a placement: fractions of the input
    frac = detect_grid(q, 0.25)[0]
    assert frac.x0 == pytest.approx(0.5 - 6.63 / 26) and frac.y1 == pytest.approx(
        0.5 + 11.38 / 26)
    assert str(frac).startswith("person 0.99")
    with pytest.raises(ValueError, match="conf_thresh"):
        detect_grid(q, 0.25, conf_thresh=1.5)


def test_detect_grid_overflow_is_harmless():
    q = _grid_with([(2, 6, 6, 40, 14, 0, 0, 4000, 4000)])  # exp(1000): infinite box
    dets = detect_grid(q, 0.25, placement=Placement.identity(416, 416))
    assert len(dets) == 1 and dets[0].box == (0.0, 0.0, 416.0, 416.0)


def test_draw_boxes_and_png(tmp_path):
    img = np.full((40, 60, 3), 10, np.uint8)
    q = _grid_with([(0, 6, 6, 40, 0, 0, 0, 0, 0)])
    det = detect_grid(q, 0.25, placement=Placement.identity(40, 60))[0]
    drawn = draw_boxes(img, [det], thickness=1)
    x0, y0, x1, y1 = (int(np.floor(v)) for v in det.box)
    edge = drawn[y0, x0:x1 + 1]
    assert np.all(edge == edge[0]) and not np.all(edge[0] == 10)
    assert np.all(drawn[y0 + 1:y1, x0 + 1:x1] == 10)  # inside untouched
    assert np.all(img == 10)  # a copy
    PIL = pytest.importorskip("PIL.Image")
    p = write_png(tmp_path / "boxes.png", drawn)
    with PIL.open(p) as im:
        np.testing.assert_array_equal(np.asarray(im), drawn)
    write_png(tmp_path / "g.png", drawn[..., 0])
    with PIL.open(tmp_path / "g.png") as im:
        np.testing.assert_array_equal(np.asarray(im), drawn[..., 0])
    with pytest.raises(PreprocessError):
        write_png(tmp_path / "x.png", drawn.astype(np.float32))


# --------------------------------------------------------------------------------------------
# the Accelerator's classify and detect on a fake board
# --------------------------------------------------------------------------------------------


def _fake_acc(tmp_path, net, lay=None, fn=None):
    lay = lay or plan_network(net).layout()
    bit = board_files(tmp_path, lay)
    dev = FakeDevice.from_layout(lay, fn or (lambda x: forward(net, x).output))
    return Accelerator(bit, backend=PynqBackend(FakePynq(dev)), network=net)


def test_accelerator_classify_imagenet(tmp_path):
    net = Network("inet", (3, 32, 32), [
        Conv("c0", 4, kernel=8, stride=8, weight_dtype=INT(8), act=UINT(2), pe=4, simd=3),
        FC("fc", 1000, weight_dtype=INT(8), act=None, pe=8, simd=8)],
        UINT(8), task="imagenet").randomize(4)
    acc = _fake_acc(tmp_path, net)
    assert acc.task == "imagenet" and acc.layout.labels is None
    img = np.random.default_rng(3).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    res = acc.classify([img, img[:, ::-1]], k=5)
    frames = imagenet_frames([img, img[:, ::-1]], 32, 36)  # 256·32 // 224 = 36
    gold = forward(net, frames.astype(np.int64)).output
    np.testing.assert_array_equal(res.outputs, gold)
    top = res.top_classes()
    assert top == top_k_classes(gold, 5)
    assert res.labels == [imagenet_classes()[t[0][0]] for t in top]
    assert len(top) == 2 and len(top[0]) == 5 and top[0][0][2] == gold[0].max()
    # quantized frames go straight through
    same = acc.classify(frames, quantized=True, k=5)
    np.testing.assert_array_equal(same.outputs, gold)
    # the network and the layout must agree on the task
    other = Network("inet", (3, 32, 32), net.layers, UINT(8))
    with pytest.raises(LayoutError, match="task None ≠ layout's 'imagenet'"):
        acc.check_network(other)


def test_classify_top_classes_of_index_outputs(tmp_path):
    from helpers import tiny_layout, tiny_net

    net = tiny_net()
    acc = _fake_acc(tmp_path, net, tiny_layout(net))
    imgs = np.random.default_rng(0).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    res = acc.classify(imgs)
    gold = forward(net, imgs[:, None].astype(np.int64)).output.reshape(3, -1)
    assert res.top_classes() == [[(int(i), net.labels[i], None) for i in row] for row in gold]
    assert res.top_classes(1)[0] == [(int(gold[0, 0]), net.labels[gold[0, 0]], None)]


def _detector(seed=5):
    """3×32×32 → a raw 2-anchor, 2-class region grid 14×2×2."""
    return Network("det", (3, 32, 32), [
        Conv("c0", 14, kernel=16, stride=16, weight_dtype=INT(8), act=None, pe=2, simd=3)],
        UINT(8), task="yolo-voc").randomize(seed)


def test_accelerator_detect_matches_golden_plus_postprocessing(tmp_path):
    net = _detector()
    acc = _fake_acc(tmp_path, net)
    anchors = ((1.0, 1.0), (2.0, 0.5))
    rng = np.random.default_rng(6)
    imgs = [rng.integers(0, 256, (20, 50, 3), dtype=np.uint8),
            rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)]  # already the input size
    res = acc.detect(imgs, 0.001, 0.0, conf_thresh=0.1, anchors=anchors, class_names="ab")
    f0, pl0 = letterbox(imgs[0], (32, 32))
    frames = np.stack([f0, imgs[1]]).astype(np.int64)
    gold = forward(net, frames).output
    np.testing.assert_array_equal(res.outputs, gold)
    assert res.placements == [pl0, Placement.identity(32, 32)]
    for i in range(2):
        assert res.detections[i] == detect_grid(gold[i], 0.001, 0.0,
                                                placement=res.placements[i],
                                                conf_thresh=0.1, anchors=anchors,
                                                class_names="ab")
    assert sum(len(d) for d in res.detections) > 0  # the case is not empty
    assert res.timing.images == 2
    stretched = acc.detect(imgs[:1], 0.001, letterboxed=False, anchors=anchors,
                           class_names="ab")
    assert stretched.placements[0] == Placement(20, 50, 32, 32, 0, 0, 32, 32)


def test_accelerator_detect_takes_the_export_scale(tmp_path):
    """A network whose export records a per-channel output scale and offset: detect()
    decodes with them by default, exactly as detect_grid with the same numbers."""
    net = _detector()
    rng = np.random.default_rng(8)
    net.output_scale = tuple(float(v) for v in rng.uniform(0.001, 0.02, 14))
    net.output_offset = tuple(float(v) for v in rng.uniform(-1, 1, 14))
    anchors = ((1.0, 1.0), (2.0, 0.5))
    acc = _fake_acc(tmp_path, net)
    sc, off = acc.output_affine()
    np.testing.assert_array_equal(sc, net.output_scale)
    imgs = [rng.integers(0, 256, (20, 50, 3), dtype=np.uint8)]
    res = acc.detect(imgs, conf_thresh=0.05, anchors=anchors, class_names="ab")
    assert res.detections[0] == detect_grid(res.outputs[0], sc, off,
                                            placement=res.placements[0], conf_thresh=0.05,
                                            anchors=anchors, class_names="ab")
    assert res.detections[0] != detect_grid(res.outputs[0], sc, 0.0,
                                            placement=res.placements[0], conf_thresh=0.05,
                                            anchors=anchors, class_names="ab")
    # a given scale still wins; an offset alone is refused
    given = acc.detect(imgs, 0.001, conf_thresh=0.05, anchors=anchors, class_names="ab")
    assert given.detections[0] == detect_grid(res.outputs[0], 0.001, 0.0,
                                              placement=res.placements[0], conf_thresh=0.05,
                                              anchors=anchors, class_names="ab")
    with pytest.raises(ValueError, match="offset without scale"):
        acc.detect(imgs, offset=0.5, anchors=anchors, class_names="ab")
    # without an exported scale (random weights, no network given) detect needs one
    plain = _fake_acc(tmp_path / "plain", _detector())
    assert plain.output_affine() is None
    with pytest.raises(LayoutError, match="give scale"):
        plain.detect(imgs, anchors=anchors, class_names="ab")


def test_accelerator_detect_maps_boxes_to_the_image(tmp_path):
    """A device returning a hand-made grid: the box comes back in the image's pixels, and
    the device saw the letterboxed frame."""
    lay = DesignLayout("hand", StreamLayout((3, 32, 32), "UINT8", 4, 32),
                       StreamLayout((14, 2, 2), "INT8", 7, 56), 100.0, 100, None, "raw",
                       task="yolo-voc")
    seen = []

    def device(x):
        seen.append(x.copy())
        q = np.zeros((len(x), 14, 2, 2), np.int64)
        q[:, 4] = q[:, 11] = -100  # no object anywhere …
        q[:, 7 + 1, 1, 0] = -100  # … but anchor 1 at row 1, col 0, σ(ty) ≈ 0
        q[:, 7 + 4, 1, 0] = 100
        q[:, 7 + 5, 1, 0] = 100  # class 0
        return q

    acc = _fake_acc(tmp_path, None, lay, device)
    img = np.full((16, 64, 3), 200, np.uint8)  # 4:1 → 8 rows × 32 in the input, top 12
    res = acc.detect(img, 0.1, anchors=((1.0, 1.0), (1.0, 0.5)), class_names=["x", "y"])
    frame, pl = letterbox(img, (32, 32))
    np.testing.assert_array_equal(seen[0][0], frame)
    assert pl.top == 12 and pl.new_h == 8
    [d] = res.detections[0]
    # centre (0.5/2, (1 + 0)/2) of the input, size (1/2, 0.5/2) → input pixels x 0…16,
    # y 12…20 → image: x·2, (y − 12)·2
    assert d.class_name == "x"
    assert d.box == pytest.approx((0.0, 0.0, 32.0, 16.0), abs=0.01)
    with pytest.raises(LayoutError, match="feature map"):
        _fake_acc(tmp_path / "s", None,
                  DesignLayout("hand", lay.input, StreamLayout((14, 1, 1), "INT8", 14, 112),
                               100.0, 100, None, "scores"), lambda x: x).detect(img, 1.0)


def test_task_field(tmp_path):
    """A network's task travels: Network → .npz → plan → layout.json → Accelerator."""
    from lowbit_hdl.errors import NetworkError
    from lowbit_hdl.netfile import load, save
    from lowbit_hdl.runtime import TASKS, read_network_info

    assert TASKS == ("imagenet", "yolo-voc")
    net = _detector()
    save(net, tmp_path / "det.npz")
    assert load(tmp_path / "det.npz").task == "yolo-voc"
    assert read_network_info(tmp_path / "det.npz")["task"] == "yolo-voc"
    lay = plan_network(net).layout()
    lay.save(tmp_path / "layout.json")
    assert DesignLayout.load(tmp_path / "layout.json") == lay and lay.task == "yolo-voc"
    plain = Network("p", (1, 2, 2), [FC("f", 2, act=None)], UINT(8))
    assert plan_network(plain).layout().task is None
    save(plain.randomize(0), tmp_path / "p.npz")
    assert read_network_info(tmp_path / "p.npz")["task"] is None
    with pytest.raises(NetworkError, match="task='coco'"):
        Network("x", (1, 2, 2), [FC("f", 2, act=None)], UINT(8), task="coco").infer()
    with pytest.raises(LayoutError, match="task='coco'"):
        DesignLayout(**{**lay.__dict__, "task": "coco"})
