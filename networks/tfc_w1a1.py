"""BNN-PYNQ TFC-W1A1: MNIST MLP 784-64-64-64-10, 1-bit weights and activations."""

from bnn_pynq import mlp

network = mlp("tfc_w1a1", [64, 64, 64], [(16, 49), (8, 8), (8, 8), (10, 8)], wbits=1, abits=1)
