"""The board runtime: exactly what ships to the PYNQ board, nothing else.

Its modules (``dtypes``, ``words``, ``ddr``, ``ddrimage``, ``regs``, ``layout``, ``hwh``,
``backend``, ``control``, ``preprocess``, ``imagenet``, ``yolo``, ``vocmap``,
``accelerator``) import only numpy, the standard library and each other (relatively);
``imagenet_classes.txt`` is its one data file (the ImageNet class names). ``pynq`` itself is
imported when a :class:`PynqBackend` loads its overlay (and Pillow, when installed, when
:func:`~.preprocess.load_image` reads an image file other than ``.npy``).
The deployment bundle copies this folder whole as ``lowbit_runtime/``
(:mod:`lowbit_hdl.flow.deploy`). The simulated board and the fake PYNQ of the development
machine live in :mod:`lowbit_hdl.sim`.
"""

from .accelerator import Accelerator, ClassifyResult, DetectResult, Timing, read_network_info
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
from .imagenet import imagenet_classes, imagenet_frames, imagenet_input, top_k_classes
from .layout import TASKS, DesignLayout, IpNames, LayoutError, StreamLayout
from .preprocess import PreprocessError, load_test_set, quantize, read_idx, to_frames, topk
from .vocmap import MapResult, VocObject, evaluate, read_voc_folder, read_voc_xml, voc_ap
from .yolo import (
    VOC_ANCHORS,
    VOC_CLASSES,
    Detection,
    Placement,
    detect_grid,
    draw_boxes,
    letterbox,
    resize_to_input,
    write_png,
)

__all__ = [
    "Accelerator", "ClassifyResult", "DetectResult", "Timing", "read_network_info",
    "Backend", "BackendError", "DmaError", "DmaResetError", "DmaTimeoutError", "Framing",
    "FramingError", "OverlayError", "PynqBackend", "StreamStats",
    "DDR_WEIGHTS_FILE", "AcceleratorError", "HybridControl",
    "DmaConfig", "HwhError", "dma_config",
    "TASKS", "DesignLayout", "IpNames", "LayoutError", "StreamLayout",
    "PreprocessError", "load_test_set", "quantize", "read_idx", "to_frames", "topk",
    "imagenet_classes", "imagenet_frames", "imagenet_input", "top_k_classes",
    "MapResult", "VocObject", "evaluate", "read_voc_folder", "read_voc_xml", "voc_ap",
    "VOC_ANCHORS", "VOC_CLASSES", "Detection", "Placement", "detect_grid", "draw_boxes",
    "letterbox", "resize_to_input", "write_png",
]
