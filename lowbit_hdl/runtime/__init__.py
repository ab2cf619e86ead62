"""On-board runtime (numpy only): stream layout, pre/post-processing, PYNQ and simulated
backends. Nothing on this path imports amaranth, torch or cocotb.

The modules ``layout``, ``hwh``, ``backend``, ``preprocess`` and ``accelerator`` import only
numpy, the standard library and each other (relatively), so the folder is copied as it is
into a deployment bundle (``lowbit_runtime/``). ``simboard``, ``sim_cmd`` and ``bundle``
are development-machine tools and are imported on their own.
"""

from .accelerator import Accelerator, ClassifyResult, Timing, read_network_info
from .backend import (
    Backend,
    BackendError,
    FakeDevice,
    FakePynq,
    FakePynqError,
    Framing,
    PynqBackend,
    StreamStats,
)
from .hwh import DmaConfig, HwhError, dma_config
from .layout import DesignLayout, LayoutError, StreamLayout
from .preprocess import PreprocessError, load_dataset, quantize, to_frames, topk

__all__ = [
    "Accelerator", "ClassifyResult", "Timing", "read_network_info",
    "Backend", "BackendError", "FakeDevice", "FakePynq", "FakePynqError", "Framing",
    "PynqBackend", "StreamStats",
    "DmaConfig", "HwhError", "dma_config",
    "DesignLayout", "LayoutError", "StreamLayout",
    "PreprocessError", "load_dataset", "quantize", "to_frames", "topk",
]
