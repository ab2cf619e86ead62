"""BNN-PYNQ TFC-W1A1 trained on MNIST: the tfc_w1a1 topology (784-64-64-64-10, 1-bit weights
and activations, 8-bit pixels in) with the integer weights and thresholds exported by
``python -m lowbit_hdl train`` (see docs/training.md; 95.41 % on the 10,000 MNIST test images,
torch and golden model alike). Sample images: ``networks/data/mnist_samples.npz``.
"""

from bnn_pynq import mlp

network = mlp("tfc_w1a1", [64, 64, 64], [(16, 49), (8, 8), (8, 8), (10, 8)], wbits=1, abits=1)
PARAMS = "tfc_w1a1_trained.npz"
