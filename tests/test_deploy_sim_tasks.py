"""deploy-sim for task networks: an ImageNet-style classifier (ImageNet preprocessing, named
top 5) and a Tiny-YOLO-style detector (letterbox, region decoding, NMS) run through the
simulated board, and their classes / boxes equal the golden model's plus post-processing."""

import numpy as np
import pytest
from helpers import QUICK_SIM as FAST
from helpers import SIMS

pytestmark = pytest.mark.skipif(not SIMS, reason="no HDL simulator")

IMAGENET = """
from lowbit_hdl import FC, INT, UINT, Conv, Network

network = Network("inet", (3, 16, 16), [
    Conv("c0", 1, kernel=8, stride=8, weight_dtype=INT(8), act=UINT(2), pe=1, simd=3),
    FC("fc", 1000, weight_dtype=INT(8), act=None, pe=8, simd=4)],
    UINT(8), task="imagenet")
"""

DETECTOR = """
from lowbit_hdl import INT, UINT, Conv, Network

# 5 anchors × (5 + 1 class) = 30 channels on a 2×2 grid
network = Network("det", (3, 8, 8), [
    Conv("c0", 30, kernel=4, stride=4, weight_dtype=INT(8), act=None, pe=5, simd=3)],
    UINT(8), labels=["thing"], task="yolo-voc")
"""


def test_deploy_sim_imagenet_top5(tmp_path, capsys):
    from lowbit_hdl.cli import main
    from lowbit_hdl.golden import forward
    from lowbit_hdl.netfile import load_network
    from lowbit_hdl.runtime.imagenet import imagenet_frames, top_k_classes

    (tmp_path / "inet.py").write_text(IMAGENET)
    imgs = np.random.default_rng(1).integers(0, 256, (3, 20, 30, 3), dtype=np.uint8)
    np.savez(tmp_path / "imgs.npz", images=imgs)
    rc = main(["deploy-sim", str(tmp_path / "inet.py"), "--images", str(tmp_path / "imgs.npz"),
               "--simulator", FAST, "--random-weights"])
    out = capsys.readouterr().out
    assert rc == 0, out
    net = load_network(tmp_path / "inet.py", seed=0)
    gold = forward(net, imagenet_frames(imgs, 16, 256 * 16 // 224).astype(np.int64)).output
    for i, classes in enumerate(top_k_classes(gold, 5)):
        block = f"  image {i}:\n" + "".join(f"    {r}. {name} (class {idx})  score {s}\n"
                                            for r, (idx, name, s) in enumerate(classes, 1))
        assert block in out, out
    assert "bit-exact with the golden model on all 3 images" in out


def test_deploy_sim_detector_boxes(tmp_path, capsys):
    from lowbit_hdl.cli import main

    (tmp_path / "det.py").write_text(DETECTOR)
    imgs = np.random.default_rng(2).integers(0, 256, (2, 6, 12, 3), dtype=np.uint8)
    np.savez(tmp_path / "imgs.npz", images=imgs)
    rc = main(["deploy-sim", str(tmp_path / "det.py"), "--images", str(tmp_path / "imgs.npz"),
               "--simulator", FAST, "--random-weights", "--conf", "0.05"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "image 0: " in out and "object(s)" in out and "thing " in out
    assert "equal the golden model's plus post-processing on 2 of 2 images" in out
    assert "bit-exact with the golden model on all 2 images" in out
    # a detector with trained weights needs its scale: one line, exit status 2
    from lowbit_hdl.netfile import load_network, save

    net = load_network(tmp_path / "det.py", seed=0)
    net.random_weights = {}
    save(net, tmp_path / "det.npz")
    rc = main(["deploy-sim", str(tmp_path / "det.npz"), "--count", "1", "--simulator", FAST])
    err = capsys.readouterr().err
    assert rc != 0 and "error: --scale: a detector with trained weights" in err, err
    # … unless its export records the scale and offset of its output (train --voc)
    net.output_scale, net.output_offset = (0.002,) * 30, (0.5,) * 30
    save(net, tmp_path / "det.npz")
    rc = main(["deploy-sim", str(tmp_path / "det.npz"), "--count", "1", "--simulator", FAST,
               "--conf", "0.05"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "boxes (the export's scale and offset per channel) equal the golden model's plus " \
        "post-processing on 1 of 1 images" in out
