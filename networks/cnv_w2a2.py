"""BNN-PYNQ CNV-W2A2 on CIFAR-10 (32×32×3, 8-bit pixels)."""

from bnn_pynq import cnv

network = cnv(wbits=2, abits=2)
