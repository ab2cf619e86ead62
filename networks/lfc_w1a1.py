"""BNN-PYNQ LFC-W1A1: MNIST MLP 784-1024-1024-1024-10, 1-bit weights and activations."""

from bnn_pynq import mlp

network = mlp("lfc_w1a1", [1024, 1024, 1024], [(32, 49), (64, 32), (64, 32), (10, 16)],
              wbits=1, abits=1)
