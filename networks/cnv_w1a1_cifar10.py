"""BNN-PYNQ CNV-W1A1 trained on CIFAR-10: the cnv_w1a1 topology (six 3×3 convs, 64-64-128-128-
256-256, two FC 512, 1-bit weights and activations, 8-bit pixels in) with the integer weights
and thresholds exported by ``python -m lowbit_hdl train`` (80 epochs, ``--act-grad approxsign
--recalibrate-bn --seed 1``, see docs/training.md; 79.71 % on the 10,000 test images of the
JPEG CIFAR-10 copy, torch and golden model alike). Sample images:
``networks/data/cifar10_samples.npz``.
"""

from bnn_pynq import cnv

network = cnv(wbits=1, abits=1)
PARAMS = "cnv_w1a1_trained.npz"
