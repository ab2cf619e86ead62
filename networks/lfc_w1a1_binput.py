"""BNN-PYNQ LFC-W1A1 as BNN-PYNQ runs it: MNIST MLP 784-1024-1024-1024-10, 1-bit weights and
activations and binarized input pixels (BIPOLAR: +1 where the pixel is ≥ 128). The like-for-
like counterpart of BNN-PYNQ's LFC; ``lfc_w1a1.py`` is the same network on 8-bit pixels."""

from bnn_pynq import mlp

network = mlp("lfc_w1a1_binput", [1024, 1024, 1024], [(32, 49), (64, 32), (64, 32), (10, 16)],
              wbits=1, abits=1, binary_input=True)
