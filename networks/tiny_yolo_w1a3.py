"""Tiny-YOLO-style PascalVOC detector with 1-bit weights and 3-bit activations
(QNN-MO-PYNQ family). First and last layers keep 8-bit weights. The output is the raw
13×13×125 accumulator grid (5 anchors × (20 classes + 5 box values)) decoded on the ARM.

Darknet's sixth max-pool (2×2, stride 1, "same" padding) is left out: pools here are valid.
The weights (about 15 Mbit) exceed on-chip BRAM, so this needs the layer offload engine.
"""

from lowbit_hdl import BIPOLAR, INT, UINT, Conv, MaxPool, Network

A3 = UINT(3)


def conv(name, ch, pe, simd, k=3, w=BIPOLAR, act=A3):
    return Conv(name, ch, kernel=k, padding=k // 2, weight_dtype=w, act=act, pe=pe, simd=simd)


network = Network(
    "tiny_yolo_w1a3",
    input_shape=(3, 416, 416),
    input_dtype=UINT(8),
    layers=[
        conv("conv0", 16, pe=16, simd=3, w=INT(8)), MaxPool("pool0", 2),
        conv("conv1", 32, pe=16, simd=16), MaxPool("pool1", 2),
        conv("conv2", 64, pe=16, simd=32), MaxPool("pool2", 2),
        conv("conv3", 128, pe=16, simd=32), MaxPool("pool3", 2),
        conv("conv4", 256, pe=16, simd=32), MaxPool("pool4", 2),
        conv("conv5", 512, pe=16, simd=32),
        conv("conv6", 1024, pe=32, simd=32),
        conv("conv7", 1024, pe=32, simd=32),
        conv("conv8", 125, pe=5, simd=32, k=1, w=INT(8), act=None),
    ],
    description="Tiny-YOLO W1A3 for PascalVOC (QNN-MO-PYNQ family)",
    task="yolo-voc",  # board-side pre- and post-processing (lowbit_hdl.runtime.yolo)
)
