"""BNN-PYNQ LFC-W1A2: MNIST MLP 784-1024-1024-1024-10, 1-bit weights, 2-bit activations."""

from bnn_pynq import mlp

network = mlp("lfc_w1a2", [1024, 1024, 1024], [(32, 49), (64, 32), (64, 32), (10, 16)],
              wbits=1, abits=2)
