"""ImageNet classifier: DoReFa-Net's AlexNet with 1-bit weights and 2-bit activations.

Follows tensorpack's ``examples/DoReFa-Net/alexnet-dorefa.py`` (W,A = 1,2), layer by layer:

=========  =====================================  ============  ==================
layer      original                               output        here
=========  =====================================  ============  ==================
conv0      96 × 12×12, stride 4, VALID            96×54×54      same (INT8 weights)
conv1      256 × 5×5, SAME, split=2               256×54×54     dense, padding 2
pool0      max 3×3 / 2, SAME (``pool1``)          256×27×27     ``padding="same"``
conv2      384 × 3×3, SAME                        384×27×27     padding 1
pool1      max 3×3 / 2, SAME (``pool2``)          384×14×14     ``padding="same"``
conv3      384 × 3×3, SAME, split=2               384×14×14     dense, padding 1
conv4      256 × 3×3, SAME, split=2               256×14×14     dense, padding 1
pool2      max 3×3 / 2, VALID (``pool4``)         256×6×6       valid
fc0        4096 (input 6·6·256 = 9216)            4096          same
fc1        4096                                   4096          same
fc2        1000 (``fct``), full precision, bias   1000          INT8 weights, no bias
top5       (softmax)                              5 indices     TopK(5)
=========  =====================================  ============  ==================

Differences that remain (also in docs/topologies.md):

* **Grouped convolutions** (``split=2`` on conv1, conv3, conv4) are dense here: lowbit-hdl
  has no grouped convolution yet (IR, golden model, MVTU weight matrix, torch model). The
  dense layer is a different, larger network (the grouped one would need zero weights off
  the groups, which BIPOLAR weights cannot express), trained as such. It costs 2× the
  weights and MACs of those three layers: conv1 614,400 instead of 307,200 weights, conv3
  1,327,104 instead of 663,552, conv4 884,736 instead of 442,368 (1.42 Mbit more in all),
  and 2× their cycles at equal folding (conv1 is the bottleneck of the folding below).
* **First and last layers**: DoReFa keeps conv0 and fct in full precision (fct with a bias, its
  input the unquantized ``clip(x, 0, 1)`` of fc1). Here both have INT8 weights, fc1's output
  is quantized to 2 bits like every other activation, and fc2 has no bias (its raw
  accumulators go to the top-5).
* **Activations**: DoReFa's ``round(3·clip(x, 0, 1))/3`` after BatchNorm; here each
  channel's 3 integer thresholds, into which BatchNorm, the weight scale ``E|w|`` of the
  binarized layers and the input scale are folded. Any monotone 2-bit step function is
  representable, so this is a superset. DoReFa max-pools *before* the activation
  (conv → BN → pool → activate); here the pool follows the thresholds. Both give the same
  result because the quantized activation is monotone non-decreasing
  (``act(max x) = max act(x)``), whatever the sign of the BatchNorm scale.
* **Input**: the 8-bit RGB image as UINT8 (DoReFa divides by 255: a scale folded into
  conv0's thresholds); no per-pixel mean subtraction.
* **Gradients**: 6-bit gradient quantization is a training option here (``--grad-bits``).
* Layer names: pools ``pool0..2`` are tensorpack's ``pool1``, ``pool2``, ``pool4``; ``fc2`` is
  ``fct``.

The weights (91.3 Mbit with dense convs, 32.8 Mbit of them fc2's INT8 weights) do not fit the
4.9 Mbit of BRAM on xc7z020: this topology needs the DDR weight streaming of the hybrid
architecture; ``info`` shows the figures.
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
        MaxPool("pool0", kernel=3, stride=2, padding="same"),
        Conv("conv2", 384, kernel=3, padding=1, weight_dtype=BIPOLAR, act=A2, pe=32, simd=32),
        MaxPool("pool1", kernel=3, stride=2, padding="same"),
        Conv("conv3", 384, kernel=3, padding=1, weight_dtype=BIPOLAR, act=A2, pe=16, simd=32),
        Conv("conv4", 256, kernel=3, padding=1, weight_dtype=BIPOLAR, act=A2, pe=16, simd=32),
        MaxPool("pool2", kernel=3, stride=2),
        FC("fc0", 4096, weight_dtype=BIPOLAR, act=A2, pe=16, simd=64),
        FC("fc1", 4096, weight_dtype=BIPOLAR, act=A2, pe=16, simd=64),
        FC("fc2", 1000, weight_dtype=INT(8), act=None, pe=8, simd=32),
        TopK("top5", k=5),
    ],
    description="DoReFa-Net AlexNet W1A2 for ImageNet (tensorpack alexnet-dorefa.py; dense "
                "instead of grouped conv1/conv3/conv4)",
    task="imagenet",  # board-side pre- and post-processing (lowbit_hdl.runtime.imagenet)
)
