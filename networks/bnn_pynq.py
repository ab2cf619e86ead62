"""Shared builders for the BNN-PYNQ family (TFC, LFC, CNV); the topology files call these.

Precisions follow Brevitas' bnn_pynq examples: ``W{w}A{a}`` = w-bit weights, a-bit
activations (1 = BIPOLAR). Inputs are 8-bit pixels, or for the MLPs with ``binary_input``
BIPOLAR pixels as BNN-PYNQ and Brevitas have them (``+1`` where the pixel is ≥ 128, the
threshold the preprocessing applies, see ``lowbit_hdl.runtime.preprocess.quantize``); the
last layer emits raw accumulators into a top-1 label select.
"""

from lowbit_hdl import BIPOLAR, FC, INT, UINT, Conv, MaxPool, Network, TopK

CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                  "ship", "truck"]
DIGITS = [str(i) for i in range(10)]


def wtype(bits):
    return BIPOLAR if bits == 1 else INT(bits)


def atype(bits):
    return BIPOLAR if bits == 1 else UINT(bits)


def mlp(name, hidden, folding, wbits=1, abits=1, shape=(1, 28, 28), classes=10,
        binary_input=False):
    """MNIST multi-layer perceptron: ``folding`` is a list of (PE, SIMD) per FC layer;
    ``binary_input``: BIPOLAR input pixels (BNN-PYNQ's), else 8-bit ones."""
    sizes = list(hidden) + [classes]
    layers = []
    for i, (n, (pe, simd)) in enumerate(zip(sizes, folding, strict=True)):
        last = i == len(sizes) - 1
        layers.append(FC(f"fc{i}", n, weight_dtype=wtype(wbits),
                         act=None if last else atype(abits), pe=pe, simd=simd))
    layers.append(TopK("top", k=1))
    title = name.upper().replace("_", "-")
    dims = "-".join(str(d) for d in [shape[0] * shape[1] * shape[2], *hidden, classes])
    pixels = "binarized pixels (≥ 128 → +1)" if binary_input else "8-bit pixels"
    return Network(name, shape, layers, BIPOLAR if binary_input else UINT(8), labels=DIGITS,
                   description=f"BNN-PYNQ {title}: MLP {dims} on MNIST, {pixels}")


# CNV folding from BNN-PYNQ / FINN's cnv-w1a1 design point (≤ 32,768 cycles per frame)
CNV_FOLDING = {
    "conv0": (16, 3), "conv1": (32, 32), "conv2": (16, 32), "conv3": (16, 32),
    "conv4": (4, 32), "conv5": (1, 32), "fc0": (1, 4), "fc1": (1, 8), "fc2": (5, 1),
}


def cnv(wbits=1, abits=1, folding=None):
    """CIFAR-10 CNV: 3 pairs of 3×3 convs (64, 128, 256), 2×2 pools, FC 512-512-10."""
    f = dict(CNV_FOLDING, **(folding or {}))
    w, a = wtype(wbits), atype(abits)

    def conv(name, ch):
        pe, simd = f[name]
        return Conv(name, ch, kernel=3, weight_dtype=w, act=a, pe=pe, simd=simd)

    def fc(name, n, act):
        pe, simd = f[name]
        return FC(name, n, weight_dtype=w, act=act, pe=pe, simd=simd)

    layers = [
        conv("conv0", 64), conv("conv1", 64), MaxPool("pool0", 2),
        conv("conv2", 128), conv("conv3", 128), MaxPool("pool1", 2),
        conv("conv4", 256), conv("conv5", 256),
        fc("fc0", 512, a), fc("fc1", 512, a), fc("fc2", 10, None),
        TopK("top", k=1),
    ]
    return Network(f"cnv_w{wbits}a{abits}", (3, 32, 32), layers, UINT(8),
                   labels=CIFAR10_LABELS,
                   description=f"BNN-PYNQ CNV-W{wbits}A{abits} for CIFAR-10")
