"""Quantization-aware training (PyTorch) and exact export to integer lowbit-hdl networks.

Importing this package does not import torch; the names below load their module (and torch)
on first use::

    from lowbit_hdl.train import build_model, export
    model = build_model(net)          # torch nn.Module of the network's layer list
    ...                               # train it (see lowbit_hdl.train.loop)
    int_net = export(model.eval())    # lowbit_hdl Network with integer weights/thresholds
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "build_model", "QuantNet", "QuantMVTU",
    "export", "integer_thresholds", "compare_with_golden",
    "WeightQuant", "ActQuant", "GradQuant",
    "load_dataset", "load_image_folder", "Dataset", "FolderImages",
    "fit", "train_epoch", "evaluate",
    "VocDetection", "RegionSpec", "region_loss", "fit_detection", "evaluate_detector",
]

_WHERE = {
    "build_model": "model", "QuantNet": "model", "QuantMVTU": "model",
    "export": "exporter", "integer_thresholds": "exporter",
    "compare_with_golden": "exporter",
    "WeightQuant": "quant", "ActQuant": "quant", "GradQuant": "quant",
    "load_dataset": "data", "load_image_folder": "data", "Dataset": "data",
    "FolderImages": "data",
    "fit": "loop", "train_epoch": "loop", "evaluate": "loop",
    "VocDetection": "voc", "RegionSpec": "region", "region_loss": "region",
    "fit_detection": "detect", "evaluate_detector": "detect",
}


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
