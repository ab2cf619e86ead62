"""BNN-PYNQ TFC-W1A1 as BNN-PYNQ runs it: MNIST MLP 784-64-64-64-10, 1-bit weights and
activations and binarized input pixels (BIPOLAR: +1 where the pixel is ≥ 128). The like-for-
like counterpart of BNN-PYNQ's TFC; ``tfc_w1a1.py`` is the same network on 8-bit pixels."""

from bnn_pynq import mlp

network = mlp("tfc_w1a1_binput", [64, 64, 64], [(16, 49), (8, 8), (8, 8), (10, 8)],
              wbits=1, abits=1, binary_input=True)
