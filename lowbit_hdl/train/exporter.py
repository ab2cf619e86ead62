"""Export of a trained :class:`~lowbit_hdl.train.model.QuantNet` to an integer network.

For every Conv/FC layer with an activation the eval model computes
``out = act(acc·a + b)`` (:func:`~lowbit_hdl.train.model.affine_levels`, float64) of the
exact integer accumulator ``acc``. That function is monotone: non-decreasing in ``acc`` when
``a ≥ 0`` and non-increasing when ``a < 0`` (every IEEE operation in it rounds monotonically).
For a channel with ``a < 0`` the exporter negates the channel's weights (BIPOLAR and the
narrow-range INT levels are closed under negation) so that the hardware accumulator is
``-acc``. Each threshold ``T_i`` is then the smallest integer ``t`` in
``[acc_min, acc_max]`` (from :class:`~lowbit_hdl.ir.LayerInfo`) with
``act(σ·t·a + b) ≥ level_i`` (``σ`` the channel's sign), found by bisection with that same
function; ``acc_max + 1`` when no accumulator reaches the level. Hence
``Σ_i [σ·acc ≥ T_i]`` equals the eval model's level for every accumulator in range, by
construction, and the exported network reproduces the torch eval model bit for bit.

A detector (``head="region"``) has no thresholds on its last layer: its eval-mode output is
``acc·scale_c + offset_c`` in float64 (:meth:`~lowbit_hdl.train.model.QuantMVTU.
output_affine`), and the export records these very numbers as the network's
``output_scale`` and ``output_offset`` (saved in the ``.npz``'s JSON, whose float text
round-trips exactly), so the board's ``scale·q + offset`` of the integer output grid (the
accumulators, equal to the torch model's) is the torch eval output bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch

from ..golden import forward as golden_forward
from ..ir import Network
from .model import QuantMVTU, QuantNet, affine_levels
from .quant import ActQuant

__all__ = ["integer_thresholds", "export_layer", "export", "compare_with_golden"]


@torch.no_grad()
def integer_thresholds(a: torch.Tensor, b: torch.Tensor, act: ActQuant, acc_min: int,
                       acc_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer thresholds reproducing ``act(acc·a + b)`` for every integer accumulator.

    Returns ``(thresholds, sign)``: ``thresholds`` (C, T) int64 ascending per channel, and
    ``sign`` (C,) ±1, -1 where ``a < 0`` (that channel's weights must be negated). ``a`` and
    ``b`` are float64 per-channel tensors; the search evaluates
    :func:`~lowbit_hdl.train.model.affine_levels` itself.
    """
    a = a.detach().double().cpu().reshape(-1)
    b = b.detach().double().cpu().reshape(-1)
    sign = torch.where(a < 0, -1, 1).to(torch.int64)
    targets = torch.tensor(act.target_levels(), dtype=torch.float64)
    c, t = a.numel(), targets.numel()
    if abs(acc_min) >= 1 << 52 or abs(acc_max) >= 1 << 52:
        raise ValueError("accumulator range too large for an exact float64 search")
    lo = torch.full((c, t), acc_min, dtype=torch.int64)
    hi = torch.full((c, t), acc_max + 1, dtype=torch.int64)
    a2, b2, s2 = a[:, None], b[:, None], sign[:, None]

    def reaches(v: torch.Tensor) -> torch.Tensor:
        # hardware accumulator v = σ·acc, i.e. acc = σ·v (exact in float64)
        lv = affine_levels((s2 * v).double(), a2, b2, act)
        return (lv >= targets[None, :]) | (v > acc_max)

    while bool((lo < hi).any()):
        mid = torch.div(lo + hi, 2, rounding_mode="floor")
        ok = reaches(mid)
        active = lo < hi
        hi = torch.where(active & ok, mid, hi)
        lo = torch.where(active & ~ok, mid + 1, lo)
    return lo.numpy().astype(np.int64), sign.numpy()


def export_layer(mod: QuantMVTU) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer ``(weights, thresholds)`` of one layer (thresholds ``None`` for act=None)."""
    w = mod.integer_weights().cpu().numpy()
    w = np.rint(w).astype(np.int64)
    if mod.act is None:
        return w, None
    a, b = mod.eval_affine()
    thr, sign = integer_thresholds(a, b, mod.act, mod.info.acc_min, mod.info.acc_max)
    w = w * sign.reshape((-1,) + (1,) * (w.ndim - 1))
    return w, thr


def export(model: QuantNet, name: str | None = None) -> Network:
    """Integer network (a copy of the model's topology) with weights and thresholds attached
    (a region head: also its ``output_scale``/``output_offset``); save it with
    :func:`lowbit_hdl.netfile.save`. Uses the BatchNorm running statistics, i.e. the
    eval-mode model."""
    net = model.net.copy()
    if name:
        net.name = name
    for lay in net.layers:
        if lay.name in model.mvtu:
            mod = model.mvtu[lay.name]
            assert isinstance(mod, QuantMVTU)
            lay.weights, lay.thresholds = export_layer(mod)
    if model.head == "region":
        scale, offset = model.output_affine()
        net.output_scale = tuple(float(v) for v in scale)
        net.output_offset = tuple(float(v) for v in offset)
    net.infer(check_params=True)
    return net


@torch.no_grad()
def compare_with_golden(model: QuantNet, net: Network, images: np.ndarray,
                        batch: int = 512) -> dict[str, int]:
    """Number of mismatching elements per layer between the eval-mode torch model and
    ``golden.forward(net, images)`` (all zeros when the export is exact)."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        mism: dict[str, int] = {}
        for s in range(0, len(images), batch):
            x = np.asarray(images[s:s + batch])
            mine = model.intermediates(torch.as_tensor(x).to(device))
            gold = golden_forward(net, x).intermediates
            for k, g in gold.items():
                m = mine.get(k)
                bad = g.size if m is None or m.shape != g.shape else int((m != g).sum())
                mism[k] = mism.get(k, 0) + bad
        return mism
    finally:
        model.train(was_training)
