"""PascalVOC detector: Darknet's Tiny-YOLO (``cfg/tiny-yolo-voc.cfg``, YOLOv2 family) with
1-bit weights and 3-bit activations, as in Xilinx QNN-MO-PYNQ. The output is the raw
13×13×125 accumulator grid (5 anchors × (20 classes + 4 box values + objectness)).

Layers as in the cfg: 416×416×3 input; 3×3 "same" convolutions with 16, 32, 64, 128, 256
and 512 filters, each followed by a 2×2 max-pool (stride 2 for the first five, 416 → 13;
stride 1 with "same" padding for the sixth, 13 → 13, padding one row at the bottom and one
column at the right); then 3×3 convolutions with 1024 and 1024 filters and a 1×1 linear
convolution with 125 filters (the region layer's input).

Differences that remain (also in docs/topologies.md):

* **Precision**: the first (conv0) and last (conv8) layers have INT8 weights, the others
  BIPOLAR (Darknet: float everywhere).
* **Activations**: Darknet's BatchNorm + leaky ReLU (slope 0.1) become 3-bit unsigned
  activations with 7 integer thresholds per channel (BatchNorm and scales folded in), as in
  QNN-MO-PYNQ's W1A3 network: negative pre-activations clip to level 0.
* **Last layer**: conv8 is linear with a bias in Darknet; here it outputs raw integer
  accumulators without bias, so the bias and the accumulator scale belong to the region
  decoding (sigmoid/exp/softmax with the VOC anchors) on the ARM; ``train --voc`` records
  them per channel in the exported network (``output_scale``, ``output_offset``).
* **Input**: the letterboxed RGB image as UINT8 (Darknet scales to 0..1: folded into conv0's
  thresholds).

The weights (16.8 Mbit) exceed the 4.9 Mbit of on-chip BRAM: this topology needs the DDR
weight streaming of the hybrid architecture; ``info`` shows the figures.
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
        MaxPool("pool5", 2, stride=1, padding="same"),  # 13 → 13: pads bottom and right
        conv("conv6", 1024, pe=32, simd=32),
        conv("conv7", 1024, pe=32, simd=32),
        conv("conv8", 125, pe=5, simd=32, k=1, w=INT(8), act=None),
    ],
    description="Tiny-YOLO W1A3 for PascalVOC (Darknet tiny-yolo-voc.cfg, QNN-MO-PYNQ family)",
    task="yolo-voc",  # board-side pre- and post-processing (lowbit_hdl.runtime.yolo)
)
