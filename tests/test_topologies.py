"""The seed networks follow their originals: DoReFa-Net's AlexNet (tensorpack
alexnet-dorefa.py) and Darknet's tiny-yolo-voc.cfg, shapes and padding layer by layer."""

from pathlib import Path

import numpy as np

from lowbit_hdl import golden
from lowbit_hdl.netfile import load_network
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT

NETWORKS = Path(__file__).resolve().parent.parent / "networks"


def test_dorefa_alexnet_shapes():
    net = load_network(NETWORKS / "dorefa_alexnet_w1a2.py", seed=None)
    infos = {i.name: i for i in net.infer()}
    assert [(i.name, i.out_shape) for i in net.infer()] == [
        ("conv0", (96, 54, 54)), ("conv1", (256, 54, 54)), ("pool0", (256, 27, 27)),
        ("conv2", (384, 27, 27)), ("pool1", (384, 14, 14)), ("conv3", (384, 14, 14)),
        ("conv4", (256, 14, 14)), ("pool2", (256, 6, 6)), ("fc0", (4096, 1, 1)),
        ("fc1", (4096, 1, 1)), ("fc2", (1000, 1, 1)), ("top5", (5, 1, 1))]
    assert infos["conv0"].pads == (0, 0, 0, 0) and infos["conv0"].layer.kernel == 12
    assert infos["conv0"].layer.stride == 4
    assert infos["conv1"].pads == (2, 2, 2, 2) and infos["conv2"].pads == (1, 1, 1, 1)
    # "same" 3×3/2 pools: TensorFlow puts the odd pixel of padding at the bottom/right
    assert infos["pool0"].pads == (0, 1, 0, 1) and infos["pool1"].pads == (1, 1, 1, 1)
    assert infos["pool2"].pads == (0, 0, 0, 0)
    assert infos["fc0"].mw == 6 * 6 * 256 == 9216
    assert infos["conv0"].layer.weight_dtype == INT(8) == infos["fc2"].layer.weight_dtype
    mid = [i for i in net.infer() if i.is_mvtu and i.name not in ("conv0", "fc2")]
    assert all(i.layer.weight_dtype == BIPOLAR and i.out_dtype == UINT(2) for i in mid)
    # dense convs where the original has split=2 (documented): 2× those weights
    assert infos["conv1"].mw * infos["conv1"].mh == 2 * 307_200


def test_tiny_yolo_shapes_and_frame():
    """Darknet's sizes; the sixth pool keeps 13×13 by padding the bottom row and the right
    column; a random-weights frame goes through the golden model (about 1.5 s)."""
    net = load_network(NETWORKS / "tiny_yolo_w1a3.py", seed=3)
    infos = net.infer()
    sizes = [(i.name, i.out_shape) for i in infos]
    assert sizes == [
        ("conv0", (16, 416, 416)), ("pool0", (16, 208, 208)), ("conv1", (32, 208, 208)),
        ("pool1", (32, 104, 104)), ("conv2", (64, 104, 104)), ("pool2", (64, 52, 52)),
        ("conv3", (128, 52, 52)), ("pool3", (128, 26, 26)), ("conv4", (256, 26, 26)),
        ("pool4", (256, 13, 13)), ("conv5", (512, 13, 13)), ("pool5", (512, 13, 13)),
        ("conv6", (1024, 13, 13)), ("conv7", (1024, 13, 13)), ("conv8", (125, 13, 13))]
    pool5 = net.infer()[11]
    assert (pool5.layer.kernel, pool5.layer.stride, pool5.pads) == (2, 1, (0, 1, 0, 1))
    assert infos[-1].layer.kernel == 1 and infos[-1].layer.act is None
    x = np.random.default_rng(0).integers(0, 256, size=(1, 3, 416, 416))
    res = golden.forward(net, x)
    assert res.output.shape == (1, 125, 13, 13)
    c5, p5 = res.intermediates["conv5"], res.intermediates["pool5"]
    # the max over each window's real pixels: interior, last column, last row, corner
    np.testing.assert_array_equal(p5[:, :, :12, :12], np.maximum.reduce(
        [c5[:, :, :12, :12], c5[:, :, 1:, :12], c5[:, :, :12, 1:], c5[:, :, 1:, 1:]]))
    np.testing.assert_array_equal(p5[:, :, :12, 12], np.maximum(c5[:, :, :12, 12],
                                                                c5[:, :, 1:, 12]))
    np.testing.assert_array_equal(p5[:, :, 12, :12], np.maximum(c5[:, :, 12, :12],
                                                                c5[:, :, 12, 1:]))
    np.testing.assert_array_equal(p5[:, :, 12, 12], c5[:, :, 12, 12])
    assert len(np.unique(c5)) == 8  # all 3-bit levels occur
