"""Detection training: the VOC reader (layout, errors, letterbox geometry, augmentation), the
YOLOv2 region loss on hand-computed cases, the region head's exact export of the output
scale/offset, and ``train --voc`` end to end on a small generated VOC folder."""

# ruff: noqa: E402  (imports follow pytest.importorskip)

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from lowbit_hdl import BIPOLAR, INT, UINT, Conv, MaxPool, Network, golden, netfile
from lowbit_hdl.cli import main
from lowbit_hdl.errors import DatasetError, NetworkError
from lowbit_hdl.runtime.yolo import VOC_ANCHORS, VOC_CLASSES, decode_region, region_values
from lowbit_hdl.train.detect import evaluate_detector, output_grids, train_detection_epoch
from lowbit_hdl.train.exporter import export
from lowbit_hdl.train.loop import make_optimizer
from lowbit_hdl.train.model import build_model
from lowbit_hdl.train.region import (
    RegionSpec,
    region_boxes,
    region_loss,
    region_targets,
    shape_iou_anchor,
)
from lowbit_hdl.train.voc import VocDetection

pytestmark = pytest.mark.usefixtures("one_thread")

#: class → colour of its square (learnable from colour alone)
COLOURS = {"car": (220, 30, 30), "dog": (30, 200, 30), "person": (30, 30, 220)}


def _xml(objs, w=80, h=64) -> str:
    body = "".join(f"<object><name>{n}</name><difficult>{int(d)}</difficult><bndbox>"
                   f"<xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                   f"<ymax>{b[3]}</ymax></bndbox></object>" for n, b, d in objs)
    return (f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth>"
            f"</size>{body}</annotation>")


def make_voc(root: Path, n: int = 48, seed: int = 0, w: int = 80, h: int = 64,
             split: str = "trainval") -> Path:
    """A VOC folder of ``n`` w×h JPEGs: grey noise with one square of a class colour (side
    22–39 pixels, anywhere), its box in the annotation."""
    rng = np.random.default_rng(seed)
    for d in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / d).mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        img = rng.integers(90, 150, size=(h, w, 3)).astype(np.uint8)
        name = list(COLOURS)[i % len(COLOURS)]
        s = int(rng.integers(22, 40))
        x0, y0 = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        img[y0:y0 + s, x0:x0 + s] = COLOURS[name]
        iid = f"{i:06d}"
        Image.fromarray(img).save(root / "JPEGImages" / f"{iid}.jpg", quality=95)
        (root / "Annotations" / f"{iid}.xml").write_text(
            _xml([(name, (x0 + 1, y0 + 1, x0 + s, y0 + s), False)], w, h))
        ids.append(iid)
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


A3 = UINT(3)


def _conv(name, ch, k=3, w=BIPOLAR, act=A3):
    return Conv(name, ch, kernel=k, padding=k // 2, weight_dtype=w, act=act)


#: a Tiny-YOLO-like detector: 64×64 input, 8×8 grid of 5 anchors × (5 + 20)
TINY_DET = """
from lowbit_hdl import BIPOLAR, INT, UINT, Conv, MaxPool, Network

def conv(name, ch, k=3, w=BIPOLAR, act=UINT(3)):
    return Conv(name, ch, kernel=k, padding=k // 2, weight_dtype=w, act=act)

network = Network("tiny_det", (3, 64, 64), [
    conv("conv0", 16, w=INT(8)), MaxPool("pool0", 2),
    conv("conv1", 32), MaxPool("pool1", 2),
    conv("conv2", 64), MaxPool("pool2", 2),
    conv("conv3", 125, k=1, w=INT(8), act=None)], task="yolo-voc")
"""


def tiny_det() -> Network:
    return Network("tiny_det", (3, 64, 64), [
        _conv("conv0", 16, w=INT(8)), MaxPool("pool0", 2),
        _conv("conv1", 32), MaxPool("pool1", 2),
        _conv("conv2", 64), MaxPool("pool2", 2),
        _conv("conv3", 125, k=1, w=INT(8), act=None)], task="yolo-voc")


# --------------------------------------------------------------------------------------------
# the VOC reader
# --------------------------------------------------------------------------------------------


def test_reader_letterbox_geometry_and_difficult(tmp_path):
    root = tmp_path / "voc"
    for d in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / d).mkdir(parents=True)
    img = np.full((40, 80, 3), 100, np.uint8)
    Image.fromarray(img).save(root / "JPEGImages" / "a.png")
    (root / "Annotations" / "a.xml").write_text(_xml([
        ("dog", (11, 6, 30, 25), False), ("cat", (41, 11, 60, 30), True)], 80, 40))
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    ds = VocDetection(root, "train", (64, 64), workers=1)
    frame, t, pl = ds.sample(0)
    # 80×40 → 64×32 letterboxed at top 16; the VOC box (11, 6)–(30, 25) is 0-based
    # (10, 5)–(29, 24) (Darknet's voc_label), × 0.8, y + 16
    assert (pl.new_h, pl.new_w, pl.top, pl.left) == (32, 64, 16, 0)
    assert frame.shape == (3, 64, 64) and frame[0, 0, 0] == 128 and frame[0, 30, 30] == 100
    x0, x1, y0, y1 = 8.0, 23.2, 5 * 0.8 + 16, 24 * 0.8 + 16
    np.testing.assert_allclose(t, [[VOC_CLASSES.index("dog"), (x0 + x1) / 128,
                                    (y0 + y1) / 128, (x1 - x0) / 64, (y1 - y0) / 64]])
    # the difficult cat is no training target but stays in the ground truth
    gt = ds.ground_truth()["a"]
    assert [(o.name, o.difficult) for o in gt] == [("dog", False), ("cat", True)]
    # the placement maps the target back to the 0-based box
    c = t[0, 1:]
    back = pl.to_image(np.array([c[0] - c[2] / 2, c[1] - c[3] / 2,
                                 c[0] + c[2] / 2, c[1] + c[3] / 2]))
    np.testing.assert_allclose(back, [10, 5, 29, 24], atol=1e-9)


def test_reader_augmentation_keeps_boxes_on_the_object(tmp_path):
    root = make_voc(tmp_path / "voc", n=6, split="train")
    ds = VocDetection(root, "train", (64, 64), train=True, jitter=0.2, seed=3, workers=1)
    flips = set()
    for k in range(24):
        frame, t, _ = ds.sample(k % 6)
        name = list(COLOURS)[k % 6 % 3]
        assert len(t) == 1 and int(t[0, 0]) == VOC_CLASSES.index(name)
        _, x, y, w, h = t[0]
        # the square's colour fills the box (away from its resampled edges)
        xs = slice(int(math.ceil((x - w / 2) * 64)) + 1, int((x + w / 2) * 64) - 1)
        ys = slice(int(math.ceil((y - h / 2) * 64)) + 1, int((y + h / 2) * 64) - 1)
        inside = frame[:, ys, xs].reshape(3, -1).mean(axis=1)
        np.testing.assert_allclose(inside, COLOURS[name], atol=12)
        ref, t0, _ = ds.evaluation().sample(k % 6)
        flips.add(bool((t[0, 1] < 0.5) != (t0[0, 1] < 0.5)))
    assert flips == {True, False}  # flipped sometimes, not always
    # the evaluation view is not augmented and draws nothing
    a, ta, _ = ds.evaluation().sample(0)
    b, tb, _ = ds.evaluation().sample(0)
    np.testing.assert_array_equal(a, b) and np.testing.assert_array_equal(ta, tb)


def test_reader_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a VOC folder"):
        VocDetection(tmp_path, "train", (64, 64))
    root = make_voc(tmp_path / "voc", n=3, split="train")
    with pytest.raises(DatasetError, match=r"test.txt: no such image set \(this folder has: "
                                           r"train\)"):
        VocDetection(root, "test", (64, 64))
    (root / "ImageSets/Main/empty.txt").write_text("\n")
    with pytest.raises(DatasetError, match="lists no image"):
        VocDetection(root, "empty", (64, 64))
    (root / "JPEGImages" / "000001.jpg").unlink()
    with pytest.raises(DatasetError, match=r"000001.jpg: missing image"):
        VocDetection(root, "train", (64, 64))
    (root / "ImageSets/Main/s.txt").write_text("000000\n")
    (root / "Annotations/000000.xml").write_text(_xml([]))
    with pytest.raises(DatasetError, match="000000.xml: has no <object>"):
        VocDetection(root, "s", (64, 64))
    (root / "Annotations/000000.xml").write_text(_xml([("unicorn", (1, 1, 9, 9), False)]))
    with pytest.raises(DatasetError, match="000000.xml: unknown class 'unicorn'"):
        VocDetection(root, "s", (64, 64))
    (root / "Annotations/000000.xml").write_text("<annotation><object>")
    with pytest.raises(DatasetError, match="000000.xml: not valid XML"):
        VocDetection(root, "s", (64, 64))
    (root / "Annotations/000000.xml").unlink()
    with pytest.raises(DatasetError, match="000000.xml: missing annotation"):
        VocDetection(root, "s", (64, 64))
    (root / "ImageSets/Main/u.txt").write_text("000002\n")
    (root / "JPEGImages" / "000002.jpg").write_bytes(b"not a jpeg")
    ds = VocDetection(root, "u", (64, 64))
    with pytest.raises(DatasetError, match="000002.jpg: cannot read the image"):
        ds.sample(0)


# --------------------------------------------------------------------------------------------
# the region loss
# --------------------------------------------------------------------------------------------

SPEC = RegionSpec()
G = 13  # the tiny-yolo-voc grid


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _grid(n=1, fill=-40.0) -> torch.Tensor:
    """An output grid (n, 125, 13, 13) float64: every objectness −40 (σ ≈ 0), else 0."""
    out = torch.zeros((n, SPEC.channels, G, G), dtype=torch.float64)
    out.view(n, 5, 25, G, G)[:, :, 4] = fill
    return out


def test_boxes_decode_as_the_runtime():
    out = torch.randn((2, SPEC.channels, 3, 4), dtype=torch.float64,
                      generator=torch.Generator().manual_seed(1))
    mine = region_boxes(out)  # (N, A, H, W, 4)
    for b in range(2):
        boxes, _, _ = decode_region(out[b].numpy(), 1.0, 0.0)  # cells (a·H + row)·W + col
        np.testing.assert_allclose(mine[b].reshape(-1, 4).numpy(), boxes, rtol=1e-12)
    assert SPEC.anchors == VOC_ANCHORS and SPEC.num_classes == len(VOC_CLASSES) == 20


def test_best_anchor_by_shape_iou():
    # 2×2 cells: anchor 0 (1.08×1.19) IoU 1.2852/4 = 0.321, anchor 1 (3.42×4.41) IoU
    # 4/15.0822 = 0.265, the others less
    assert shape_iou_anchor(2 / G, 2 / G, (G, G)) == 0
    # 3×4 cells: anchor 0 IoU 1.2852/12 = 0.107, anchor 1 12/15.0822 = 0.796
    assert shape_iou_anchor(3 / G, 4 / G, (G, G)) == 1
    for a, (aw, ah) in enumerate(VOC_ANCHORS):  # each anchor's own shape picks it
        assert shape_iou_anchor(aw / G, ah / G, (G, G)) == a


def test_assignment_cell_anchor_targets_and_weights():
    # a 9.42×5.11-cell box (anchor 3's shape) centred at cell (row 2, col 6) + (0.7, 0.3)
    w, h = 9.42 / G, 5.11 / G
    truth = [[7, 6.7 / G, 2.3 / G, w, h]]
    tg = region_targets(_grid(), [truth], SPEC, seen=SPEC.prior_images)
    assert tg.responsible.sum() == 1 and bool(tg.responsible[0, 3, 2, 6])
    assert int(tg.cls[0, 3, 2, 6]) == 7
    np.testing.assert_allclose(tg.coord[0, 3, 2, 6].numpy(), [0.7, 0.3, 0.0, 0.0],
                               atol=1e-12)
    assert float(tg.coord_w[0, 3, 2, 6]) == pytest.approx(2 - w * h)
    assert float(tg.obj_w[0, 3, 2, 6]) == SPEC.object_scale
    # rescore: the objectness target is the IoU of the predicted box (the anchor's own
    # shape at the cell centre: offset (−0.2, +0.2) cells) with the truth
    inter = (9.42 - 0.2) * (5.11 - 0.2)
    assert float(tg.obj[0, 3, 2, 6]) == pytest.approx(inter / (2 * 9.42 * 5.11 - inter))
    # no prior term once 12 800 images are seen; before, 0.01 towards the anchor
    assert float(tg.coord_w.sum()) == pytest.approx(2 - w * h)
    early = region_targets(_grid(), [truth], SPEC, seen=0)
    assert float(early.coord_w[0, 0, 0, 0]) == 0.01
    np.testing.assert_allclose(early.coord[0, 0, 0, 0].numpy(), [0.5, 0.5, 0, 0])
    assert float(early.coord_w[0, 3, 2, 6]) == pytest.approx(2 - w * h)
    # a second truth in the same cell and anchor replaces the first (Darknet overwrites)
    two = region_targets(_grid(), [truth + [[2, 6.5 / G, 2.5 / G, w, h]]], SPEC, seen=1 << 20)
    assert two.responsible.sum() == 1 and int(two.cls[0, 3, 2, 6]) == 2


def test_noobject_ignored_above_the_iou_threshold():
    w, h = 9.42 / G, 5.11 / G
    truth = [[7, 6.7 / G, 2.3 / G, w, h]]
    out = _grid()
    t = out.view(1, 5, 25, G, G)
    # anchor 4 of the same cell predicts the truth's box exactly: IoU 1 > 0.6
    t[0, 4, 0, 2, 6], t[0, 4, 1, 2, 6] = _logit(0.7), _logit(0.3)
    t[0, 4, 2, 2, 6], t[0, 4, 3, 2, 6] = math.log(9.42 / 16.62), math.log(5.11 / 10.52)
    # anchor 4 of the cell to the right: shifted by one cell, IoU (8.42·5.11)/(2·9.42·5.11
    # − 8.42·5.11) = 0.809 > 0.6; two cells right: 7.42/11.42 = 0.650; three: 0.517 ≤ 0.6
    for d in (1, 2, 3):
        t[0, 4, 0, 2, 6 + d], t[0, 4, 1, 2, 6 + d] = _logit(0.7), _logit(0.3)
        t[0, 4, 2, 2, 6 + d], t[0, 4, 3, 2, 6 + d] = t[0, 4, 2, 2, 6], t[0, 4, 3, 2, 6]
    tg = region_targets(out, [truth], SPEC, seen=1 << 20)
    assert float(tg.best_iou[0, 4, 2, 6]) == pytest.approx(1.0)
    ious = [float(tg.best_iou[0, 4, 2, 6 + d]) for d in (1, 2, 3)]
    assert ious == pytest.approx([8.42 / 10.42, 7.42 / 11.42, 6.42 / 12.42])
    assert [float(tg.obj_w[0, 4, 2, 6 + d]) for d in (0, 1, 2, 3)] == [0.0, 0.0, 0.0, 1.0]
    assert float(tg.obj_w[0, 0, 2, 6]) == SPEC.noobject_scale  # a small anchor: low IoU


def _perfect(k=7):
    """A grid that predicts its one truth exactly: (grid, truths)."""
    w, h = 9.42 / G, 5.11 / G
    truth = [[k, 6.7 / G, 2.3 / G, w * 1.3, h * 0.8]]
    out = _grid()
    t = out.view(1, 5, 25, G, G)
    t[0, 3, 0, 2, 6], t[0, 3, 1, 2, 6] = _logit(0.7), _logit(0.3)
    t[0, 3, 2, 2, 6], t[0, 3, 3, 2, 6] = math.log(1.3), math.log(0.8)
    t[0, 3, 4, 2, 6] = 40.0
    t[0, 3, 5 + k, 2, 6] = 40.0
    return out, [truth]


def test_perfect_prediction_is_the_minimum_and_gradients_point_back():
    out, truths = _perfect()
    seen = SPEC.prior_images
    loss, parts = region_loss(out, truths, SPEC, seen)
    assert float(loss) < 1e-12 and all(v < 1e-12 for v in parts.values())
    assert shape_iou_anchor(truths[0][0][3], truths[0][0][4], (G, G)) == 3
    for e in (0, 1, 2, 3, 4, 5 + 7):  # each entry moved either way costs more
        for d in ((-0.3, 0.3) if e < 4 else (-40.0,)):  # σ(±40) saturates: move it to 0
            moved = out.clone()
            moved.view(1, 5, 25, G, G)[0, 3, e, 2, 6] += d
            assert float(region_loss(moved, truths, SPEC, seen)[0]) > 1e-6, (e, d)
    # gradients: tx too small, tw too large, another class's score up, an empty cell's
    # objectness up: descent moves each back
    bad = out.clone()
    v = bad.view(1, 5, 25, G, G)
    v[0, 3, 0, 2, 6] -= 1.0
    v[0, 3, 2, 2, 6] += 0.5
    v[0, 3, 5 + 2, 2, 6] = 42.0
    v[0, 0, 4, 9, 9] = 1.0
    bad.requires_grad_(True)
    loss, parts = region_loss(bad, truths, SPEC, seen)
    loss.backward()
    g = bad.grad.view(1, 5, 25, G, G)
    assert g[0, 3, 0, 2, 6] < 0 and g[0, 3, 2, 2, 6] > 0
    assert g[0, 3, 5 + 2, 2, 6] > 0 and g[0, 3, 5 + 7, 2, 6] < 0
    assert g[0, 0, 4, 9, 9] > 0
    # the hand-computed parts: tw off by 0.5 → ½·(2 − w·h)·0.25; the empty cell's
    # objectness ½·1·σ(1)²; tx: ½·(2 − w·h)·(0.7 − σ(logit(0.7) − 1))²
    wh = truths[0][0][3] * truths[0][0][4]
    sx = 1 / (1 + math.exp(-(_logit(0.7) - 1)))
    coord = 0.5 * (2 - wh) * (0.25 + (0.7 - sx) ** 2)
    assert parts["coord"] == pytest.approx(coord, rel=1e-9)
    assert parts["noobj"] == pytest.approx(0.5 / (1 + math.exp(-1)) ** 2, rel=1e-9)
    # class 2 at 42, the truth's class 7 at 40, the other 18 at 0: −log softmax_7
    assert parts["cls"] == pytest.approx(math.log(1 + math.exp(2) + 18 * math.exp(-40)),
                                         rel=1e-12)


def test_loss_checks_its_inputs():
    with pytest.raises(ValueError, match="125 expected"):
        region_loss(torch.zeros((1, 30, 2, 2)), [[]])
    with pytest.raises(ValueError, match="class indices"):
        region_loss(_grid(), [[[20, 0.5, 0.5, 0.1, 0.1]]])
    with pytest.raises(ValueError, match="2 truth lists"):
        region_loss(_grid(), [[], []])
    loss, _ = region_loss(_grid(), [[]], SPEC, seen=1 << 20)  # no truth: only "no object"
    assert float(loss) == pytest.approx(0.5 * 845 / (1 + math.exp(40)) ** 2)


# --------------------------------------------------------------------------------------------
# the region head and its export
# --------------------------------------------------------------------------------------------


def test_export_records_the_exact_output_scale(tmp_path):
    root = make_voc(tmp_path / "voc", n=16, split="train")
    ds = VocDetection(root, "train", (64, 64), train=True, workers=1)
    model = build_model(tiny_det(), head="region")
    opt = make_optimizer(model, 1e-2)
    train_detection_epoch(model, opt, ds, SPEC, batch_size=8)  # BN and gain/bias move
    model.eval()
    net = export(model)
    assert len(net.output_scale) == len(net.output_offset) == 125
    assert any(v != 0 for v in net.output_offset)
    path = netfile.save(net, tmp_path / "det.npz")
    saved = netfile.load(path)
    assert saved.output_scale == net.output_scale  # the JSON text round-trips exactly
    frames, _, _ = ds.evaluation().batch(range(6))
    q = golden.forward(saved, frames).output
    np.testing.assert_array_equal(q, output_grids(model, frames))
    with torch.no_grad():
        t = model(torch.from_numpy(frames)).double().numpy()
    for i in range(len(frames)):  # the board's real values = the torch float output, exactly
        np.testing.assert_array_equal(t[i], region_values(q[i], saved.output_scale,
                                                          saved.output_offset))
    # the runtime reads them from the saved file as well
    from lowbit_hdl.runtime.accelerator import read_network_info

    info = read_network_info(path)
    np.testing.assert_array_equal(info["output_scale"], saved.output_scale)
    # the mAP path runs on either
    res, grids = evaluate_detector(lambda f: golden.forward(saved, f).output, ds,
                                   saved.output_scale, saved.output_offset, limit=4)
    assert grids.shape == (4, 125, 8, 8) and len(res.classes) == 20


def test_output_scale_is_checked():
    net = tiny_det()
    net.output_scale, net.output_offset = (1.0,) * 124, (0.0,) * 124
    with pytest.raises(NetworkError, match="124/124 values; the output has 125 channels"):
        net.infer()
    net.output_offset = None
    with pytest.raises(NetworkError, match="go together"):
        net.infer()
    net.output_scale, net.output_offset = (float("nan"),) * 125, (0.0,) * 125
    with pytest.raises(NetworkError, match="finite numbers"):
        net.infer()
    with pytest.raises(NetworkError, match="region head needs the raw output grid"):
        from lowbit_hdl import TopK

        build_model(Network("c", (3, 8, 8), [
            Conv("c0", 4, kernel=8, weight_dtype=INT(8), act=None), TopK("top", 1)]),
            head="region")


# --------------------------------------------------------------------------------------------
# the train command
# --------------------------------------------------------------------------------------------


def test_train_voc_command_learns_and_exports(tmp_path, capsys):
    """48 generated images, one coloured square each: 20 epochs (about 3 s of training on
    one core) bring the loss down many times and the mAP on the training images well above
    chance; the export's golden grids and real values equal the torch model's."""
    root = make_voc(tmp_path / "voc", n=48, split="trainval")
    (tmp_path / "tiny_det.py").write_text(TINY_DET)
    out = tmp_path / "det.npz"
    rc = main(["train", str(tmp_path / "tiny_det.py"), "--voc", str(root),
               "--test-split", "trainval", "--epochs", "20", "--batch-size", "16",
               "--lr", "0.01", "--eval-every", "10", "--jitter", "0.1", "--out", str(out),
               "--summary", str(tmp_path / "s.json"), "--workers", "1"])
    text = capsys.readouterr().out
    assert rc == 0, text
    s = json.loads((tmp_path / "s.json").read_text())
    losses = [h["loss"] for h in s["history"]]
    assert losses[-1] < losses[0] / 5, losses
    maps = [h["test_map"] for h in s["history"] if h["test_map"] is not None]
    # measured (seed 0): 54.9 % and 68.4 % after epochs 10 and 20, loss 32.5 → 1.46; seeds
    # 1, 2, 3 end at 74.8 %, 54.5 %, 78.9 %
    assert len(maps) == 2 and maps[0] < maps[-1] and maps[-1] > 0.3, maps
    assert s["torch_test_map"] == s["golden_test_map"] == maps[-1]
    assert s["grids_identical"] == s["values_exact"] == s["test_images"] == 48
    assert "integer output grids identical on 48/48 images" in text
    assert "epoch 20/20  loss" in text and "test mAP" in text
    net = netfile.load(out)
    assert net.task == "yolo-voc" and len(net.output_scale) == 125
    # the checkpoint resumes (nothing left to train) and exports the same network
    rc = main(["train", str(tmp_path / "tiny_det.py"), "--voc", str(root),
               "--test-split", "trainval", "--epochs", "20", "--batch-size", "16",
               "--out", str(tmp_path / "again.npz"), "--checkpoint",
               str(out.with_suffix(".ckpt.pt")), "--resume", "--workers", "1",
               "--test-limit", "8"])
    assert rc == 0 and "resumed from" in capsys.readouterr().out
    assert netfile.load(tmp_path / "again.npz").output_scale == net.output_scale


def test_train_voc_command_errors(tmp_path, capsys):
    root = make_voc(tmp_path / "voc", n=3, split="trainval")
    (tmp_path / "tiny_det.py").write_text(TINY_DET)
    net = str(tmp_path / "tiny_det.py")
    cases = [
        (["--voc", str(root), "--data", str(root)], "give --data"),
        ([], "give --data"),
        (["--voc", str(root), "--loss", "sqr-hinge"], "--loss apply to classifiers only"),
        (["--voc", str(root), "--train-split", "nope"], "nope.txt: no such image set"),
        (["--voc", str(tmp_path)], "not a VOC folder"),
        (["--voc", str(root), "--jitter", "0.7"], "--jitter: 0.7 is out of range"),
    ]
    for extra, msg in cases:
        rc = main(["train", net, *extra])
        err = capsys.readouterr().err
        assert rc != 0 and msg in err, (extra, err)
    (tmp_path / "small.py").write_text(TINY_DET.replace('conv("conv3", 125', 'conv("conv3", 30'))
    rc = main(["train", str(tmp_path / "small.py"), "--voc", str(root), "--test-split",
               "trainval"])
    err = capsys.readouterr().err
    assert rc == 1 and "its output has 30 channels; the region layer needs 5 anchors" in err
