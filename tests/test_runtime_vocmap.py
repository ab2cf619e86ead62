"""VOC detection evaluation (runtime/vocmap.py): annotation files, matching rules (difficult,
duplicates, IoU 0.5 with VOC's inclusive pixels), AP by hand, and AP and the whole evaluation
against formulations written independently here."""

import math

import numpy as np
import pytest

from lowbit_hdl.runtime.vocmap import (
    VocObject,
    evaluate,
    match_detections,
    read_voc_folder,
    read_voc_xml,
    voc_ap,
)

XML = """<annotation>
  <folder>VOC2007</folder><filename>000001.jpg</filename>
  <size><width>353</width><height>500</height><depth>3</depth></size>
  <object><name>dog</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult>
    <bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox></object>
  <object><name>person</name><difficult>1</difficult>
    <bndbox><xmin>8</xmin><ymin>12</ymin><xmax>352</xmax><ymax>498</ymax></bndbox></object>
  <object><name> cat </name>
    <bndbox><xmin>1.5</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
</annotation>
"""


def test_read_voc_xml(tmp_path):
    (tmp_path / "000001.xml").write_text(XML)
    objs = read_voc_xml(tmp_path / "000001.xml")
    assert objs == [VocObject("dog", (48, 240, 195, 371), False),
                    VocObject("person", (8, 12, 352, 498), True),
                    VocObject("cat", (1.5, 2, 3, 4), False)]  # no <difficult>: 0
    (tmp_path / "000002.xml").write_text("<annotation></annotation>")
    assert read_voc_folder(tmp_path) == {"000001": objs, "000002": []}
    assert list(read_voc_folder(tmp_path, ["000002\n", ""])) == ["000002"]
    (tmp_path / "bad.xml").write_text("<annotation><object><name>x</name></object>"
                                      "</annotation>")
    with pytest.raises(ValueError, match="bad.xml: object 0 is malformed"):
        read_voc_xml(tmp_path / "bad.xml")
    (tmp_path / "junk.xml").write_text("<annotation>")
    with pytest.raises(ValueError, match="junk.xml: not valid XML"):
        read_voc_xml(tmp_path / "junk.xml")


def test_hand_computed_case():
    """Class cat: image a has A; image b has B and a difficult C. Ranked detections:
    .9 on A (TP), .8 on A again (duplicate: FP), .7 on C (difficult: ignored), .6 on
    nothing in b (FP), .5 on B (TP), plus one on image c (no cats: FP at .4).

    Without the ignored one: TP FP FP TP FP → recall .5 .5 .5 1 1, precision
    1 .5 1/3 .5 .4; all-point AP = .5·1 + .5·.5 = .75; 11-point: recall ≥ 0 … .5 → 1
    (6 points), ≥ .6 … 1 → .5 (5 points): 8.5/11."""
    gt = {"a": [VocObject("cat", (10, 10, 50, 50))],
          "b": [VocObject("cat", (100, 100, 150, 150)),
                VocObject("cat", (10, 10, 40, 40), difficult=True),
                VocObject("dog", (200, 200, 220, 220))],
          "c": [VocObject("dog", (0, 0, 5, 5))]}
    dets = [("b", "cat", 0.5, (101, 99, 150, 152)),
            ("a", "cat", 0.9, (10, 10, 50, 50)),
            ("a", "cat", 0.8, (12, 12, 50, 50)),
            ("b", "cat", 0.7, (10, 10, 41, 41)),
            ("b", "cat", 0.6, (300, 300, 350, 350)),
            ("c", "cat", 0.4, (0, 0, 5, 5)),
            ("b", "dog", 0.3, (200, 200, 220, 220))]
    flags, npos = match_detections([(d[0], d[2], d[3]) for d in dets if d[1] == "cat"], gt,
                                   "cat")
    assert npos == 2 and flags.tolist() == [1, 0, -1, 0, 1, 0]
    r07 = evaluate(dets, gt, use_07_metric=True)
    r10 = evaluate(dets, gt, use_07_metric=False)
    assert r10.ap["cat"] == pytest.approx(0.75)
    assert r07.ap["cat"] == pytest.approx(8.5 / 11)
    np.testing.assert_allclose(r10.classes["cat"].recall, [.5, .5, .5, 1, 1])
    np.testing.assert_allclose(r10.classes["cat"].precision, [1, .5, 1 / 3, .5, .4])
    # dog: one of two found, first: recall .5 at precision 1
    assert r10.ap["dog"] == 0.5 and r10.classes["dog"].npos == 2
    assert r07.ap["dog"] == pytest.approx(6 / 11)
    assert r10.map == pytest.approx((0.75 + 0.5) / 2)
    assert r07.map == pytest.approx((8.5 / 11 + 6 / 11) / 2)
    assert "mAP" in r07.summary() and "VOC2007 11-point" in r07.summary()


def test_iou_threshold_and_pixel_convention():
    gt = {"i": [VocObject("x", (1, 1, 10, 10))]}  # 10×10 pixels, inclusive
    half = [("i", 1.0, (1, 1, 10, 5))]  # 10×5 pixels: IoU exactly .5 → a match
    assert match_detections(half, gt, "x")[0].tolist() == [1]
    # in continuous coordinates the same boxes overlap 36/81 < .5
    assert match_detections(half, gt, "x", plus_one=False)[0].tolist() == [0]
    assert match_detections(half, gt, "x", iou_thresh=0.51)[0].tolist() == [0]


def test_edge_cases():
    gt = {"i": [VocObject("x", (0, 0, 9, 9))], "j": [VocObject("y", (0, 0, 9, 9), True)]}
    perfect = evaluate([("i", "x", 0.9, (0, 0, 9, 9))], gt, use_07_metric=False)
    assert perfect.ap["x"] == 1.0
    # no detections: AP 0; a class with only difficult objects: nan, left out of the mAP
    res = evaluate([], gt)
    assert res.ap["x"] == 0.0 and math.isnan(res.ap["y"]) and res.map == 0.0
    assert math.isnan(evaluate([], {}).map)
    with pytest.raises(ValueError, match="image 'k'"):
        evaluate([("k", "x", 0.5, (0, 0, 1, 1))], gt)
    # the devkit's 11 recall points are i·0.1 in floating point: 0.3 misses the fourth
    assert voc_ap([0.3], [1.0]) == pytest.approx(3 / 11)
    assert voc_ap([0.5], [1.0]) == pytest.approx(6 / 11)
    with pytest.raises(ValueError, match="2 recall values but 1"):
        voc_ap([0.1, 0.2], [1.0])
    # ties in score keep their given order: the first one matches, the second is a duplicate
    two = [("i", 0.5, (0, 0, 9, 9)), ("i", 0.5, (0, 0, 9, 8))]
    assert match_detections(two, gt, "x")[0].tolist() == [1, 0]


# --------------------------------------------------------------------------------------------
# independent formulations
# --------------------------------------------------------------------------------------------


def _ap_by_levels(rec, prec):
    """All-point AP: the interpolated precision p(r) = max{precision at recall ≥ r} is a
    step function that changes only at recall values; integrate it level by level."""
    area, last = 0.0, 0.0
    for r in sorted(set(rec.tolist())):
        area += (r - last) * max(p for p, q in zip(prec, rec, strict=True) if q >= r)
        last = r
    return area


def _ap_by_sampling(rec, prec, n=20000):
    """All-point AP as a midpoint-rule integral of p(r) over [0, 1]."""
    r = (np.arange(n) + 0.5) / n
    p = np.array([prec[rec >= x].max() if np.any(rec >= x) else 0.0 for x in r])
    return float(p.mean())


def _ap_11(rec, prec):
    vals = []
    for i in range(11):
        t = i * 0.1  # as the devkit computes it: 3·0.1 = 0.30000000000000004 > 0.3
        ok = [p for p, q in zip(prec, rec, strict=True) if q >= t]
        vals.append(max(ok) if ok else 0.0)
    return sum(vals) / 11


def test_ap_against_independent_formulations():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        tp = rng.random(n) < rng.uniform(0.1, 0.9)
        npos = int(tp.sum() + rng.integers(0, 5)) or 1
        ctp = np.cumsum(tp)
        rec = ctp / npos
        prec = ctp / np.arange(1, n + 1)
        assert voc_ap(rec, prec, False) == pytest.approx(_ap_by_levels(rec, prec), abs=1e-12)
        assert voc_ap(rec, prec, True) == pytest.approx(_ap_11(rec, prec), abs=1e-12)
    for _ in range(5):  # the slow one, fewer times
        n = int(rng.integers(5, 30))
        tp = rng.random(n) < 0.5
        npos = int(tp.sum()) + 2
        ctp = np.cumsum(tp)
        rec, prec = ctp / npos, ctp / np.arange(1, n + 1)
        assert voc_ap(rec, prec, False) == pytest.approx(_ap_by_sampling(rec, prec), abs=2e-3)


def _reference_eval(dets, gt, cname, thr=0.5):
    """VOC matching written out plainly: loops, inclusive pixels, difficult ignored."""
    used = {}
    npos = sum(1 for objs in gt.values() for o in objs if o.name == cname and not o.difficult)
    order = sorted(range(len(dets)), key=lambda i: (-dets[i][1], i))
    tp = []
    for i in order:
        img, _, b = dets[i]
        best, best_j = -1.0, None
        for j, o in enumerate(gt[img]):
            if o.name != cname:
                continue
            g = o.box
            iw = min(b[2], g[2]) - max(b[0], g[0]) + 1
            ih = min(b[3], g[3]) - max(b[1], g[1]) + 1
            if iw <= 0 or ih <= 0:
                ov = 0.0
            else:
                inter = iw * ih
                ov = inter / ((b[2] - b[0] + 1) * (b[3] - b[1] + 1)
                              + (g[2] - g[0] + 1) * (g[3] - g[1] + 1) - inter)
            if ov > best:
                best, best_j = ov, j
        if best_j is not None and best >= thr:
            if gt[img][best_j].difficult:
                continue
            if (img, best_j) in used:
                tp.append(0)
            else:
                used[(img, best_j)] = True
                tp.append(1)
        else:
            tp.append(0)
    tp = np.array(tp, dtype=float)
    ctp = np.cumsum(tp)
    rec = ctp / npos
    prec = ctp / np.arange(1, len(tp) + 1)
    return _ap_by_levels(rec, prec) if len(tp) else 0.0


def test_evaluate_against_reference_on_random_scenes():
    rng = np.random.default_rng(3)
    classes = ["a", "b"]
    for _ in range(20):
        gt, dets = {}, []
        for im in range(int(rng.integers(1, 5))):
            objs = []
            for _ in range(int(rng.integers(0, 5))):
                x, y = rng.integers(0, 60, 2)
                w, h = rng.integers(5, 30, 2)
                objs.append(VocObject(str(rng.choice(classes)), (x, y, x + w, y + h),
                                      bool(rng.random() < 0.2)))
            gt[f"im{im}"] = objs
            for o in objs:  # jittered copies of the truth, some twice (duplicates)
                for _ in range(int(rng.integers(0, 3))):
                    j = rng.integers(-6, 7, 4)
                    box = tuple(float(v) for v in np.array(o.box) + j)
                    dets.append((f"im{im}", o.name, float(rng.random()), box))
            for _ in range(int(rng.integers(0, 3))):  # pure false positives
                x, y = rng.integers(0, 60, 2)
                dets.append((f"im{im}", str(rng.choice(classes)), float(rng.random()),
                             (x, y, x + 10, y + 10)))
        res = evaluate(dets, gt, classes, use_07_metric=False)
        for c in classes:
            npos = sum(1 for objs in gt.values() for o in objs if o.name == c
                       and not o.difficult)
            if npos == 0:
                assert math.isnan(res.ap[c])
                continue
            mine = [(d[0], d[2], d[3]) for d in dets if d[1] == c]
            assert res.ap[c] == pytest.approx(_reference_eval(mine, gt, c), abs=1e-12)
