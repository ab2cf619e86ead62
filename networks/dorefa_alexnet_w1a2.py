"""ImageNet classifier, DoReFa-Net AlexNet family with 1-bit weights and 2-bit activations,
as in Xilinx QNN-MO-PYNQ. First and last layers keep 8-bit weights (as DoReFa-Net does).

Pools are "valid" (no padding), so the spatial sizes run 224 → 54 → 26 → 12 → 5. The weights
(about 50 Mbit) do not fit the 4.9 Mbit of BRAM on xc7z020: this topology needs the layer
offload engine that streams weights from DDR; `info` shows the figures.
"""

from lowbit_hdl import BIPOLAR, FC, INT, UINT, Conv, MaxPool, Network, TopK

A2 = UINT(2)

network = Network(
    "dorefa_alexnet_w1a2",
    input_shape=(3, 224, 224),
    input_dtype=UINT(8),
    layers=[
        Conv("conv0", 96, kernel=12, stride=4, weight_dtype=INT(8), act=A2, pe=48, simd=3),
        Conv("conv1", 256, kernel=5, padding=2, weight_dtype=BIPOLAR, act=A2, pe=64, simd=32),
        MaxPool("pool0", kernel=3, stride=2),
        Conv("conv2", 384, kernel=3, padding=1, weight_dtype=BIPOLAR, act=A2, pe=32, simd=32),
        MaxPool("pool1", kernel=3, stride=2),
        Conv("conv3", 384, kernel=3, padding=1, weight_dtype=BIPOLAR, act=A2, pe=16, simd=32),
        Conv("conv4", 256, kernel=3, padding=1, weight_dtype=BIPOLAR, act=A2, pe=16, simd=32),
        MaxPool("pool2", kernel=3, stride=2),
        FC("fc0", 4096, weight_dtype=BIPOLAR, act=A2, pe=16, simd=64),
        FC("fc1", 4096, weight_dtype=BIPOLAR, act=A2, pe=16, simd=64),
        FC("fc2", 1000, weight_dtype=INT(8), act=None, pe=8, simd=32),
        TopK("top5", k=5),
    ],
    description="DoReFa-Net AlexNet W1A2 for ImageNet (QNN-MO-PYNQ family)",
    task="imagenet",  # board-side pre- and post-processing (lowbit_hdl.runtime.imagenet)
)
