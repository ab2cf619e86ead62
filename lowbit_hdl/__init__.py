"""lowbit-hdl: low-bit-width neural networks to streaming FPGA accelerators, from Python."""

from .dtypes import BIPOLAR, INT, UINT, DataType
from .ir import FC, Conv, LayerInfo, MaxPool, Network, NetworkError, TopK

__all__ = [
    "BIPOLAR", "INT", "UINT", "DataType",
    "FC", "Conv", "LayerInfo", "MaxPool", "Network", "NetworkError", "TopK",
]
__version__ = "0.1.0"
