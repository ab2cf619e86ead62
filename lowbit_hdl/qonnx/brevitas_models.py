"""Brevitas' own bnn_pynq models as QONNX files, for the checks of this package (tests and
``bench/qonnx_bnn_pynq.py``): one owner of how they are built and made non-trivial.

torch and brevitas (the ``qonnx`` extra) are imported when :func:`export_bnn_pynq` runs.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BNN_PYNQ_CONFIGS", "export_bnn_pynq"]

#: every bnn_pynq configuration Brevitas defines
BNN_PYNQ_CONFIGS = ("tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "sfc_1w2a", "sfc_2w2a",
                    "lfc_1w1a", "lfc_1w2a", "cnv_1w1a", "cnv_1w2a", "cnv_2w2a")


def export_bnn_pynq(name: str, path: str | Path, seed: int = 0, batch: int = 1) -> None:
    """Export bnn_pynq model ``name`` (:data:`BNN_PYNQ_CONFIGS`) to QONNX at ``path``, its
    batch-norm and TensorNorm statistics and affine parameters drawn at random (seeded) so
    that the folded thresholds are not trivial; ``batch`` is the export's batch size."""
    import torch
    from brevitas.export import export_qonnx
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, False)
    for mod in model.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = mod.num_features
            mod.running_mean.data = torch.randn(n) * 3
            mod.running_var.data = torch.rand(n) * 5 + 0.5
            mod.weight.data = torch.randn(n)
            mod.bias.data = torch.randn(n)
        elif type(mod).__name__ == "TensorNorm":
            mod.running_mean.data = torch.randn(1)
            mod.running_var.data = torch.rand(1) + 0.5
            mod.weight.data = torch.rand(1) + 0.5
            mod.bias.data = torch.randn(1)
    model.eval()
    shape = (batch, 1, 28, 28) if "fc" in name else (batch, 3, 32, 32)
    export_qonnx(model, torch.rand(shape), str(path))
