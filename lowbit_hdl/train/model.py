"""Torch model built from a lowbit-hdl :class:`~lowbit_hdl.ir.Network` layer list.

The model carries integer *levels* between layers (pixels 0..255, ±1, 0..2**k-1) as float
tensors, NCHW like the user API. Each Conv/FC layer is

    training:  pre = op(levels, w_levels · s_w) · s_in  →  [grad quant]  →  BN  →  act levels
    eval:      acc = op(levels, w_levels)                (exact integer accumulator)
               z   = acc · a + b                         (float64, a and b per channel)
               out = act(z)                              (same formula as the export)

with ``s_in`` the value of one input level and ``a = s_in·s_w·γ/√(σ²+ε)``,
``b = β − μ·γ/√(σ²+ε)`` folded from BatchNorm's running statistics (:meth:`QuantMVTU.
eval_affine`). The exporter derives every integer threshold from the very same ``a``, ``b``
and activation formula, so the eval model and the integer network agree bit for bit.

The last layer (``act=None``) has no per-channel affine: its scores are the accumulator times
one positive scalar (a per-tensor normalization with a learned positive gain), so its argmax
is the argmax of the integer accumulators.

A detector (``head="region"``) instead gives its last layer a per-channel gain and bias
(:class:`RegionNorm`): the real output is ``t = acc·scale_c + offset_c`` in float64, with
``(scale, offset)`` from :meth:`QuantMVTU.output_affine`; the export records exactly these
numbers with the network (``Network.output_scale``/``output_offset``), so the board's
``scale·q + offset`` of the integer output equals the torch eval model's output bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..ir import FC, Conv, LayerInfo, MaxPool, Network, NetworkError, TopK
from .quant import ActQuant, GradQuant, WeightQuant, level_scale

__all__ = ["QuantMVTU", "ScalarNorm", "RegionNorm", "QuantNet", "build_model",
           "affine_levels", "WEIGHT_INITS", "HEADS"]

WEIGHT_INITS = ("auto", "fanin", "unit")
#: what the last layer's raw output is: class scores (argmax) or a detector's region grid
HEADS = ("scores", "region")

_F32_EXACT = 1 << 23  # |acc| below this: float32 holds every accumulator exactly, with margin


def affine_levels(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                  act: ActQuant) -> torch.Tensor:
    """The eval-mode activation of an integer accumulator: ``act(acc·a + b)`` in float64.

    ``acc`` must be float64; ``a`` and ``b`` float64 broadcastable to it. Two elementwise
    IEEE operations and the quantizer, so the result is identical for any tensor shape and
    device: the exporter's threshold search calls this same function.
    """
    z = acc * a
    z = z + b
    return act.eval_levels(z)


class ScalarNorm(nn.Module):
    """Per-tensor normalization of the raw scores: ``x / √(var + eps) · exp(log_gain)``.

    One variance for the whole tensor (running estimate in eval) and one positive learned
    gain, so the scores stay a positive multiple of the accumulators (argmax unchanged).
    """

    def __init__(self, eps: float = 1e-4, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.log_gain = nn.Parameter(torch.zeros(()))
        self.register_buffer("running_var", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            var = x.detach().var() if x.numel() > 1 else torch.ones((), device=x.device)
            with torch.no_grad():
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var)
        else:
            var = self.running_var
        return x / torch.sqrt(var + self.eps) * torch.exp(self.log_gain)

    def factor(self) -> float:
        """The positive eval-mode factor ``exp(log_gain) / √(running_var + eps)``."""
        return math.exp(float(self.log_gain.detach())) / math.sqrt(
            float(self.running_var) + self.eps)


class RegionNorm(ScalarNorm):
    """:class:`ScalarNorm` followed by a per-channel gain and bias (NCHW input): the
    linear last layer of a detector, whose channels (box offsets, objectness, class scores)
    each need their own scale and offset. Eval-mode output: ``acc·scale_c + offset_c``
    (:meth:`QuantMVTU.output_affine`)."""

    def __init__(self, channels: int, eps: float = 1e-4, momentum: float = 0.1) -> None:
        super().__init__(eps, momentum)
        self.gain = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y * self.gain[None, :, None, None] + self.bias[None, :, None, None]


class QuantMVTU(nn.Module):
    """One Conv or FC layer: quantized weights, BatchNorm (or :class:`ScalarNorm` for the
    raw-score last layer), quantized activation. Input and output are NCHW level tensors."""

    def __init__(self, info: LayerInfo, weight_mode: str = "uniform",
                 weight_scale: bool = False, grad_bits: int | None = None,
                 bn_eps: float = 1e-4, bn_momentum: float = 0.1,
                 weight_init: str = "auto", act_grad: str = "hardtanh",
                 region: bool = False) -> None:
        super().__init__()
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"weight init must be one of {WEIGHT_INITS}, got {weight_init!r}")
        lay = info.layer
        if not isinstance(lay, (Conv, FC)):
            raise TypeError(f"QuantMVTU needs a Conv or FC layer, got {type(lay).__name__}")
        self.info = info
        self.name = lay.name
        self.is_conv = isinstance(lay, Conv)
        self.out_channels = info.mh
        self.in_scale = level_scale(info.in_dtype)
        self.weight = nn.Parameter(torch.empty(info.weight_shape))
        self.wq = WeightQuant(lay.weight_dtype, weight_mode, weight_scale)
        # "unit": U(-1, 1), the whole clipping range (BinaryConnect / Brevitas); "fanin":
        # U(±1/√MW). Fixed-range INT(k) levels need "unit": with "fanin" every latent weight
        # would round to level 0 and the network would start (and stay) dead.
        if weight_init == "auto":
            fixed_int = (not lay.weight_dtype.is_bipolar and weight_mode == "uniform"
                         and not weight_scale)
            weight_init = "unit" if fixed_int else "fanin"
        bound = 1.0 if weight_init == "unit" else 1.0 / math.sqrt(info.mw)
        nn.init.uniform_(self.weight, -bound, bound)
        self.gq = GradQuant(grad_bits)
        self.act: ActQuant | None = (None if lay.act is None
                                     else ActQuant(lay.act, act_grad))
        self.norm: nn.Module
        if region and self.act is not None:
            raise ValueError(f"layer {lay.name}: a region head needs act=None")
        if region:
            self.norm = RegionNorm(info.mh, bn_eps, bn_momentum)
        elif self.act is None:
            self.norm = ScalarNorm(bn_eps, bn_momentum)
        elif self.is_conv:
            self.norm = nn.BatchNorm2d(info.mh, eps=bn_eps, momentum=bn_momentum)
        else:
            self.norm = nn.BatchNorm1d(info.mh, eps=bn_eps, momentum=bn_momentum)
        big = max(abs(info.acc_min), abs(info.acc_max)) >= _F32_EXACT
        self.eval_dtype = torch.float64 if big else torch.float32

    # -- the linear operator ------------------------------------------------------------------

    def _op(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.is_conv:
            lay = self.info.layer
            if lay.padding:
                p = lay.padding
                x = F.pad(x, (p, p, p, p), value=float(self.info.pad_value))
            return F.conv2d(x, w, stride=lay.stride)
        flat = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # (H, W, C) flatten order
        return F.linear(flat, w)[:, :, None, None]

    # -- training and eval forward ------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Training: float STE path. Eval: exact integer accumulator + folded activation.
        Returns the output levels (or, for the last layer, the scores) as NCHW."""
        if self.training:
            return self.forward_train(x)
        return self.forward_eval(x)[1]

    def forward_train(self, x: torch.Tensor) -> torch.Tensor:
        """The quantization-aware training path (batch statistics in BatchNorm)."""
        pre = self._op(x, self.wq(self.weight)) * self.in_scale
        pre = self.gq(pre)
        if self.act is None:
            return self.norm(pre)
        if not self.is_conv:
            return self.act(self.norm(pre.flatten(1)))[:, :, None, None]
        return self.act(self.norm(pre))

    def integer_weights(self) -> torch.Tensor:
        """Integer weight levels (float tensor, no gradient)."""
        return self.wq.integer(self.weight)[0]

    @torch.no_grad()
    def accumulate(self, x: torch.Tensor) -> torch.Tensor:
        """Integer accumulators of the level tensor ``x`` (NCHW, in ``eval_dtype``)."""
        w = self.integer_weights().to(self.eval_dtype)
        # TF32 (or an enclosing bf16 autocast) would round 8-bit pixels times multi-bit
        # weights: keep full float32 products
        cudnn = torch.backends.cudnn.flags(enabled=True, benchmark=torch.backends.cudnn.benchmark,
                                           deterministic=False, allow_tf32=False)
        with torch.autocast(x.device.type, enabled=False), cudnn:
            prev = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = False
            try:
                return torch.round(self._op(x.to(self.eval_dtype), w))
            finally:
                torch.backends.cuda.matmul.allow_tf32 = prev

    @torch.no_grad()
    def eval_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel float64 ``(a, b)`` with eval-mode ``z = acc·a + b`` (layers with an
        activation), computed on the CPU from BatchNorm's running statistics."""
        if self.act is None:
            raise ValueError(f"layer {self.name}: act=None has no per-channel affine")
        bn = self.norm
        assert isinstance(bn, nn.modules.batchnorm._BatchNorm)
        s_w = self.wq.integer(self.weight)[1]
        gamma = bn.weight.detach().double().cpu()
        beta = bn.bias.detach().double().cpu()
        mean = bn.running_mean.detach().double().cpu()
        var = bn.running_var.detach().double().cpu()
        inv = gamma / torch.sqrt(var + bn.eps)
        a = inv * (self.in_scale * s_w)
        b = beta - mean * inv
        return a, b

    def score_factor(self) -> float:
        """Positive factor of the eval-mode scores of the last layer: ``acc · factor``."""
        if self.act is not None:
            raise ValueError(f"layer {self.name}: has an activation, not raw scores")
        assert isinstance(self.norm, ScalarNorm)
        return self.in_scale * self.wq.integer(self.weight)[1] * self.norm.factor()

    @torch.no_grad()
    def output_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel float64 ``(scale, offset)`` (CPU) of a region head: its eval-mode
        output is ``acc·scale + offset``, and the export records these numbers."""
        if not isinstance(self.norm, RegionNorm):
            raise ValueError(f"layer {self.name}: not a region head")
        gain = self.norm.gain.detach().double().cpu()
        scale = torch.tensor(self.score_factor(), dtype=torch.float64) * gain
        return scale, self.norm.bias.detach().double().cpu().clone()

    @torch.no_grad()
    def forward_eval(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(integer accumulators, output) of the eval path; the output is the activation
        levels (float32) or, for the last layer, the scores ``acc · factor`` (in
        ``eval_dtype``; strictly increasing in ``acc``, so the argmax is the accumulator's)."""
        acc = self.accumulate(x)
        if isinstance(self.norm, RegionNorm):  # float64: t = acc·scale + offset
            scale, offset = self.output_affine()
            shape = (1, -1, 1, 1)
            z = acc.double() * scale.to(acc.device).reshape(shape)
            return acc, z + offset.to(acc.device).reshape(shape)
        if self.act is None:
            return acc, acc * self.score_factor()
        a, b = self.eval_affine()
        shape = (1, -1, 1, 1)
        a = a.to(acc.device).reshape(shape)
        b = b.to(acc.device).reshape(shape)
        return acc, affine_levels(acc.double(), a, b, self.act).float()

    @torch.no_grad()
    def clip_weights(self) -> None:
        """Keep latent weights in [-1, 1] where the quantizer clips (BinaryConnect)."""
        if self.wq.clips_latent:
            self.weight.clamp_(-1.0, 1.0)


class QuantNet(nn.Module):
    """Quantization-aware torch model of a lowbit-hdl network.

    ``forward(images)`` takes NCHW images of the network's input levels (uint8 or float;
    for UINT8 input the pixels 0..255; other input types:
    :func:`lowbit_hdl.train.data.input_levels`) and returns the (N, classes) scores of the
    last layer (``head="region"``: its NCHW output grid, the real values the region layer
    decodes). In eval mode every layer runs the exact
    integer path, so :meth:`intermediates` equals the golden model of the exported network.
    """

    def __init__(self, net: Network, weight_mode: str = "uniform", weight_scale: bool = False,
                 grad_bits: int | None = None, dropout: float = 0.0, bn_eps: float = 1e-4,
                 bn_momentum: float = 0.1, weight_init: str = "auto",
                 act_grad: str = "hardtanh", head: str = "scores") -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.head = head
        self.net = net.copy()
        self.infos = self.net.infer()
        mvtus = [i for i in self.infos if i.is_mvtu]
        if not mvtus:
            raise NetworkError(f"network {net.name}: has no Conv/FC layer to train")
        last = mvtus[-1]
        if last.layer.act is not None:
            raise NetworkError(
                f"network {net.name}: training needs raw scores from the last Conv/FC layer "
                f"(act=None), but layer {last.name} has act={last.layer.act}")
        for info in self.infos[last.index + 1:]:
            if not isinstance(info.layer, TopK):
                raise NetworkError(f"layer {info.name}: only TopK may follow the raw-score "
                                   f"layer {last.name}")
        if head == "region" and last.index != len(self.infos) - 1:
            raise NetworkError(f"network {net.name}: a region head needs the raw output grid "
                               f"of layer {last.name} as the network's output")
        self.score_layer = last.name
        self.mvtu = nn.ModuleDict({
            i.name: QuantMVTU(i, weight_mode, weight_scale, grad_bits, bn_eps, bn_momentum,
                              weight_init, act_grad,
                              region=head == "region" and i.name == last.name)
            for i in mvtus})
        self.dropout = dropout
        self.input_dtype = self.net.input_dtype

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() == 3:
            images = images[None]
        if tuple(images.shape[1:]) != self.net.input_shape:
            raise ValueError(f"network {self.net.name}: input must be N×{self.net.input_shape}"
                             f" (NCHW), got {tuple(images.shape)}")
        return images.float()

    def _run(self, images: torch.Tensor, record: dict[str, torch.Tensor] | None = None
             ) -> torch.Tensor:
        x = self._prepare(images)
        for info in self.infos:
            lay = info.layer
            if isinstance(lay, (Conv, FC)):
                mod = self.mvtu[lay.name]
                if isinstance(lay, FC) and self.dropout > 0:
                    x = F.dropout(x, self.dropout, self.training)
                if record is not None:
                    acc, x = mod.forward_eval(x)
                    record[lay.name] = acc if lay.act is None else x
                else:
                    x = mod(x)
                if lay.name == self.score_layer and record is None:
                    return x if self.head == "region" else x.flatten(1)
            elif isinstance(lay, MaxPool):
                if any(info.pads):  # (top, bottom, left, right); -inf never wins the max
                    pt, pb, pl, pr = info.pads
                    x = F.pad(x, (pl, pr, pt, pb), value=float("-inf"))
                x = F.max_pool2d(x, lay.kernel, lay.stride if lay.stride is not None
                                 else lay.kernel)
                if record is not None:
                    record[lay.name] = x
            elif isinstance(lay, TopK):
                assert record is not None
                scores = record[self.score_layer].flatten(1)
                # stable descending sort: ties keep the lower index first, as the golden model
                order = torch.sort(-scores, dim=1, stable=True).indices[:, :lay.k]
                record[lay.name] = order[:, :, None, None]
        return x.flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Scores (N, classes) of the last layer; a region head: its (N, C, H, W) grid."""
        return self._run(images)

    def output_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """A region head's per-channel ``(scale, offset)`` (float64 numpy): the real value
        of the last layer's integer output ``q`` is ``scale·q + offset``."""
        mod = self.mvtu[self.score_layer]
        assert isinstance(mod, QuantMVTU)
        s, o = mod.output_affine()
        return s.numpy(), o.numpy()

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class index per image (argmax, first index on ties); use in eval mode."""
        return self.forward(images).argmax(dim=1)

    @torch.no_grad()
    def intermediates(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """Every layer's integer output (NCHW int64, last MVTU: its raw accumulators, TopK:
        indices) of the eval path, keyed by layer name like ``golden.forward``."""
        if self.training:
            raise RuntimeError("intermediates() needs eval mode (call model.eval())")
        rec: dict[str, torch.Tensor] = {}
        self._run(images, rec)
        return {k: np.rint(v.double().cpu().numpy()).astype(np.int64) for k, v in rec.items()}

    @torch.no_grad()
    def clip_weights(self) -> None:
        """Clip latent weights of every layer into [-1, 1] where the quantizer expects it."""
        for mod in self.mvtu.values():
            mod.clip_weights()


def build_model(net: Network, weight_mode: str = "uniform", weight_scale: bool = False,
                grad_bits: int | None = None, dropout: float = 0.0, bn_eps: float = 1e-4,
                bn_momentum: float = 0.1, weight_init: str = "auto",
                act_grad: str = "hardtanh", head: str = "scores") -> QuantNet:
    """Torch model of ``net``'s layer list for quantization-aware training.

    ``weight_mode`` ("uniform" or "dorefa") and ``weight_scale`` choose the weight quantizer
    (:mod:`lowbit_hdl.train.quant`); ``grad_bits`` enables k-bit stochastic gradient
    quantization (off by default); ``dropout`` applies to the input of every FC layer during
    training; ``weight_init`` ("auto", "fanin" or "unit") sets the latent weights' initial
    range (:class:`QuantMVTU`); ``act_grad`` ("hardtanh" or "approxsign") the STE of BIPOLAR
    activations (:func:`lowbit_hdl.train.quant.bipolar_act`). The network must end with a
    Conv/FC layer with ``act=None`` (optionally followed by TopK). ``head="region"`` makes
    it a detector: the last layer gets a per-channel scale and offset (:class:`RegionNorm`)
    and the model returns its output grid (no TopK allowed).
    """
    return QuantNet(net, weight_mode, weight_scale, grad_bits, dropout, bn_eps, bn_momentum,
                    weight_init, act_grad, head)
