"""BNN-PYNQ TFC-W1A2: MNIST MLP 784-64-64-64-10, 1-bit weights, 2-bit activations."""

from bnn_pynq import mlp

network = mlp("tfc_w1a2", [64, 64, 64], [(16, 49), (8, 8), (8, 8), (10, 8)], wbits=1, abits=2)
