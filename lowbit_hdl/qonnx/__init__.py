"""QONNX import and export: Brevitas/FINN models in, lowbit networks out (and back).

:func:`load` / :func:`import_model` turn a QONNX graph (``Quant``, ``BipolarQuant``,
``MultiThreshold``, Conv/Gemm/MatMul, batch norm, scales, biases, max-pool) into a
:class:`~lowbit_hdl.ir.Network` with integer weights and exactly folded integer thresholds;
:func:`export` writes a network as a QONNX graph that qonnx's executor runs to the golden
model's integer outputs. Needs the ``qonnx`` extra (``pip install -e '.[qonnx]'``).
"""

from __future__ import annotations

from .check import CheckReport, check, random_codes
from .exporter import export, to_model
from .importer import ImportResult, InputMapping, LayerMap, import_model, load

__all__ = ["CheckReport", "ImportResult", "InputMapping", "LayerMap", "check", "export",
           "import_model", "load", "random_codes", "to_model"]
