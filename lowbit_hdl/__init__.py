"""lowbit-hdl: low-bit-width neural networks to streaming FPGA accelerators, from Python."""

from .ir import FC, Conv, LayerInfo, MaxPool, Network, NetworkError, TopK
from .runtime.dtypes import BIPOLAR, INT, UINT, DataType

__all__ = [
    "BIPOLAR", "INT", "UINT", "DataType",
    "FC", "Conv", "LayerInfo", "MaxPool", "Network", "NetworkError", "TopK",
]
__version__ = "0.1.0"
