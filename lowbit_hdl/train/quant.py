"""Quantizers with straight-through estimators (STE) for quantization-aware training.

Every quantizer separates the *integer level* (what the hardware stores or computes) from
the positive *scale* that turns it into a training-time value:

* weights, ``BIPOLAR``: level ``sign(w)`` (+1 at 0), scale 1 or ``mean|w|`` (per tensor);
  STE: the gradient passes unchanged (identity). Latent weights are kept in [-1, 1] by
  :meth:`lowbit_hdl.train.model.QuantNet.clip_weights` after each step (BinaryConnect).
* weights, ``INT(k)``: symmetric uniform narrow range, integer levels ``-m..m`` with
  ``m = 2**(k-1) - 1``; value = level / m (× ``max|w|`` with ``scale``). Mode ``"uniform"``
  maps ``clamp(w, -1, 1)`` (or ``w / max|w|`` with ``scale``) onto the levels, mode
  ``"dorefa"`` maps ``tanh(w) / max|tanh(w)|`` (DoReFa-Net's weight transform). STE: rounding
  passes the gradient unchanged; ``clamp`` and ``tanh`` are differentiated as usual.
* activations, ``UINT(k)``: level ``round(clamp(x, 0, 1) · n)``, ``n = 2**k - 1``, value =
  level / n (DoReFa); STE: gradient ``n · 1[0 ≤ x ≤ 1]`` for the level (1 inside the clipping
  range for the value).
* activations, ``BIPOLAR``: level ``+1`` iff ``x ≥ 0`` else ``-1``; STE with hardtanh
  clipping: gradient ``1[|x| ≤ 1]``, or (``grad="approxsign"``, Bi-Real Net's piecewise
  quadratic approximation of sign) ``max(0, 2 - 2|x|)``.
* gradients (off by default): :func:`quantize_grad` is the identity forward and replaces the
  back-propagated gradient ``g`` by DoReFa's stochastic k-bit quantization
  ``2M·(round(n·(g/(2M) + 1/2) + u)/n - 1/2)``, ``M = max|g|`` per sample, ``u ~ U[-1/2, 1/2)``,
  which is unbiased: ``E[q(g)] = g``.
* inputs: 8-bit images are integers 0..255 (level = pixel, scale 1/255).
"""

from __future__ import annotations

import torch
from torch import nn

from ..runtime.dtypes import DataType

__all__ = [
    "sign_ste",
    "round_ste",
    "bipolar_act",
    "uint_act_levels",
    "uint_act",
    "quantize_grad",
    "weight_levels",
    "quantize_weight",
    "level_scale",
    "uint_eval_levels",
    "bipolar_eval_levels",
    "WeightQuant",
    "ActQuant",
    "GradQuant",
    "WEIGHT_MODES",
    "ACT_GRADS",
]

WEIGHT_MODES = ("uniform", "dorefa")
ACT_GRADS = ("hardtanh", "approxsign")


class _SignSTE(torch.autograd.Function):
    """sign with +1 at 0; backward: identity."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return g


class _RoundSTE(torch.autograd.Function):
    """round half to even; backward: identity."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.round(x)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return g


class _BipolarAct(torch.autograd.Function):
    """±1 activation; backward: hardtanh STE, gradient 1[|x| ≤ 1], or (``approx``)
    ApproxSign, gradient max(0, 2 - 2|x|)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, approx: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.approx = approx
        return bipolar_eval_levels(x)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        if ctx.approx:
            return g * torch.clamp(2 - 2 * x.abs(), min=0).to(g.dtype), None
        return g * (x.abs() <= 1).to(g.dtype), None


class _UintActLevels(torch.autograd.Function):
    """Levels round(clamp(x, 0, 1)·n); backward: n·1[0 ≤ x ≤ 1]."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, n: int) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.n = n
        return uint_eval_levels(x, n)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return g * (ctx.n * ((x >= 0) & (x <= 1)).to(g.dtype)), None


class _GradQuant(torch.autograd.Function):
    """Identity forward; DoReFa stochastic k-bit quantization of the incoming gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bits: int) -> torch.Tensor:  # type: ignore[override]
        ctx.bits = bits
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        n = (1 << ctx.bits) - 1
        dims = tuple(range(1, g.dim())) if g.dim() > 1 else (0,)
        m = g.abs().amax(dim=dims, keepdim=True)
        safe = torch.where(m > 0, m, torch.ones_like(m))
        t = (g / (2 * safe) + 0.5) * n
        noise = torch.rand_like(g) - 0.5
        q = torch.clamp(torch.round(t + noise), 0, n)
        out = 2 * safe * (q / n - 0.5)
        return torch.where(m > 0, out, torch.zeros_like(out)), None


def uint_eval_levels(x: torch.Tensor, n: int) -> torch.Tensor:
    """``round(clamp(x, 0, 1) · n)`` without gradient tricks; the eval-mode formula."""
    return torch.round(torch.clamp(x, 0.0, 1.0) * n)


def bipolar_eval_levels(x: torch.Tensor) -> torch.Tensor:
    """+1 where ``x ≥ 0`` else -1 (same dtype as ``x``); the eval-mode formula."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)`` with +1 at 0; the gradient passes unchanged (identity STE)."""
    return _SignSTE.apply(x)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` (half to even); the gradient passes unchanged."""
    return _RoundSTE.apply(x)


def _check_act_grad(grad: str) -> None:
    if grad not in ACT_GRADS:
        raise ValueError(f"activation gradient must be one of {ACT_GRADS}, got {grad!r}")


def bipolar_act(x: torch.Tensor, grad: str = "hardtanh") -> torch.Tensor:
    """±1 activation (+1 iff ``x ≥ 0``). ``grad="hardtanh"``: STE gradient ``1[|x| ≤ 1]``;
    ``"approxsign"``: ``max(0, 2 - 2|x|)`` (Bi-Real Net)."""
    _check_act_grad(grad)
    return _BipolarAct.apply(x, grad == "approxsign")


def uint_act_levels(x: torch.Tensor, bits: int) -> torch.Tensor:
    """k-bit unsigned activation levels ``round(clamp(x, 0, 1)·(2**k-1))`` ∈ {0..2**k-1};
    STE gradient ``(2**k-1)·1[0 ≤ x ≤ 1]``."""
    return _UintActLevels.apply(x, (1 << bits) - 1)


def uint_act(x: torch.Tensor, bits: int) -> torch.Tensor:
    """DoReFa k-bit activation value ``round(clamp(x, 0, 1)·n)/n`` ∈ [0, 1], ``n = 2**k-1``;
    STE gradient ``1[0 ≤ x ≤ 1]``."""
    return uint_act_levels(x, bits) / ((1 << bits) - 1)


def quantize_grad(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Identity in the forward pass; quantizes the back-propagated gradient to ``bits`` bits
    with DoReFa's stochastic, unbiased formula (max over all axes but the batch axis)."""
    if bits < 1:
        raise ValueError(f"gradient bits must be ≥ 1, got {bits}")
    return _GradQuant.apply(x, bits)


def _check_weight_dtype(dtype: DataType) -> None:
    if dtype.kind == "uint":
        raise ValueError(f"weights must be BIPOLAR or INTk, got {dtype}")


def weight_levels(w: torch.Tensor, dtype: DataType, mode: str = "uniform",
                  scale: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer weight levels (float tensor, with STE gradient) and the positive per-tensor
    scale (detached 0-d tensor) such that the training value is ``levels · scale``.

    BIPOLAR: levels ±1, scale ``mean|w|`` with ``scale`` else 1. INT(k): narrow-range levels
    ``-m..m``, ``m = 2**(k-1)-1``; see the module docstring for ``mode``.
    """
    _check_weight_dtype(dtype)
    if mode not in WEIGHT_MODES:
        raise ValueError(f"weight mode must be one of {WEIGHT_MODES}, got {mode!r}")
    one = torch.ones((), dtype=w.dtype, device=w.device)
    if dtype.is_bipolar:
        s = w.detach().abs().mean().clamp_min(1e-12) if scale else one
        return sign_ste(w), s
    m = (1 << (dtype.bits - 1)) - 1
    if mode == "dorefa":
        t = torch.tanh(w)
        t = t / t.abs().max().clamp_min(1e-12)
        return round_ste(t * m), one / m
    if scale:
        mx = w.detach().abs().max().clamp_min(1e-12)
        return round_ste(w / mx * m), mx / m
    return round_ste(torch.clamp(w, -1.0, 1.0) * m), one / m


def quantize_weight(w: torch.Tensor, dtype: DataType, mode: str = "uniform",
                    scale: bool = False) -> torch.Tensor:
    """Training-time quantized weight value ``levels · scale`` (see :func:`weight_levels`)."""
    lv, s = weight_levels(w, dtype, mode, scale)
    return lv * s


def level_scale(dtype: DataType) -> float:
    """Value of one activation level: 1 for BIPOLAR, ``1/(2**k-1)`` for UINT(k) (so 8-bit
    pixels 0..255 map to [0, 1]), ``1/2**(k-1)`` for INT(k)."""
    if dtype.is_bipolar:
        return 1.0
    if dtype.kind == "uint":
        return 1.0 / ((1 << dtype.bits) - 1)
    return 1.0 / (1 << (dtype.bits - 1))


class WeightQuant(nn.Module):
    """Weight quantizer for one layer: ``forward(w)`` gives the training value with STE,
    :meth:`integer` the integer levels and scale used for export and eval."""

    def __init__(self, dtype: DataType, mode: str = "uniform", scale: bool = False) -> None:
        super().__init__()
        _check_weight_dtype(dtype)
        if mode not in WEIGHT_MODES:
            raise ValueError(f"weight mode must be one of {WEIGHT_MODES}, got {mode!r}")
        self.dtype = dtype
        self.mode = mode
        self.scale = scale

    @property
    def clips_latent(self) -> bool:
        """Whether latent weights should be kept in [-1, 1] after each optimizer step."""
        return self.dtype.is_bipolar or (self.mode == "uniform" and not self.scale)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return quantize_weight(w, self.dtype, self.mode, self.scale)

    @torch.no_grad()
    def integer(self, w: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(integer levels as a float tensor, positive scale as a Python float)."""
        lv, s = weight_levels(w.detach(), self.dtype, self.mode, self.scale)
        return lv, float(s)

    def extra_repr(self) -> str:
        return f"{self.dtype}, mode={self.mode}, scale={self.scale}"


class ActQuant(nn.Module):
    """Activation quantizer producing integer *levels* (±1 for BIPOLAR, 0..2**k-1 for
    UINT(k)) with STE gradients; ``scale`` is the value of one level. ``grad`` chooses the
    BIPOLAR STE (:func:`bipolar_act`); UINT(k) always uses its clipped identity."""

    def __init__(self, dtype: DataType, grad: str = "hardtanh") -> None:
        super().__init__()
        if dtype.kind not in ("bipolar", "uint"):
            raise ValueError(f"activations must be BIPOLAR or UINTk, got {dtype}")
        _check_act_grad(grad)
        self.dtype = dtype
        self.grad = grad
        self.n = 1 if dtype.is_bipolar else (1 << dtype.bits) - 1

    @property
    def scale(self) -> float:
        return level_scale(self.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dtype.is_bipolar:
            return bipolar_act(x, self.grad)
        return uint_act_levels(x, self.dtype.bits)

    def eval_levels(self, x: torch.Tensor) -> torch.Tensor:
        """Levels without autograd tricks (the eval-mode and export formula)."""
        if self.dtype.is_bipolar:
            return bipolar_eval_levels(x)
        return uint_eval_levels(x, self.n)

    def target_levels(self) -> list[int]:
        """Level reached at each threshold: [1] for BIPOLAR (+1), 1..n for UINT(k)."""
        return [1] if self.dtype.is_bipolar else list(range(1, self.n + 1))

    def extra_repr(self) -> str:
        return str(self.dtype) + (f", grad={self.grad}" if self.dtype.is_bipolar else "")


class GradQuant(nn.Module):
    """Module form of :func:`quantize_grad` (``bits=None`` disables it)."""

    def __init__(self, bits: int | None = None) -> None:
        super().__init__()
        if bits is not None and bits < 1:
            raise ValueError(f"gradient bits must be ≥ 1, got {bits}")
        self.bits = bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bits is None or not torch.is_grad_enabled():
            return x
        return quantize_grad(x, self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"
