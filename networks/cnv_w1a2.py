"""BNN-PYNQ CNV-W1A2 on CIFAR-10 (32×32×3, 8-bit pixels)."""

from bnn_pynq import cnv

network = cnv(wbits=1, abits=2)
