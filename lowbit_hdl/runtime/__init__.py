"""The board runtime: exactly what ships to the PYNQ board, nothing else.

Its modules (``dtypes``, ``words``, ``ddr``, ``ddrimage``, ``regs``, ``layout``, ``hwh``,
``backend``, ``control``, ``preprocess``, ``accelerator``) import only numpy, the standard
library and each other (relatively);
``pynq`` itself is imported when a :class:`PynqBackend` loads its overlay (and Pillow, when
installed, when :func:`~.preprocess.load_image` reads an image file other than ``.npy``).
The deployment bundle copies this folder whole as ``lowbit_runtime/``
(:mod:`lowbit_hdl.flow.deploy`). The simulated board and the fake PYNQ of the development
machine live in :mod:`lowbit_hdl.sim`.
"""

from .accelerator import Accelerator, ClassifyResult, Timing, read_network_info
from .backend import (
    Backend,
    BackendError,
    DmaError,
    DmaResetError,
    DmaTimeoutError,
    Framing,
    FramingError,
    OverlayError,
    PynqBackend,
    StreamStats,
)
from .control import DDR_WEIGHTS_FILE, AcceleratorError, HybridControl
from .hwh import DmaConfig, HwhError, dma_config
from .layout import DesignLayout, IpNames, LayoutError, StreamLayout
from .preprocess import PreprocessError, load_test_set, quantize, read_idx, to_frames, topk

__all__ = [
    "Accelerator", "ClassifyResult", "Timing", "read_network_info",
    "Backend", "BackendError", "DmaError", "DmaResetError", "DmaTimeoutError", "Framing",
    "FramingError", "OverlayError", "PynqBackend", "StreamStats",
    "DDR_WEIGHTS_FILE", "AcceleratorError", "HybridControl",
    "DmaConfig", "HwhError", "dma_config",
    "DesignLayout", "IpNames", "LayoutError", "StreamLayout",
    "PreprocessError", "load_test_set", "quantize", "read_idx", "to_frames", "topk",
]
