"""NumPy golden model: integer-exact forward pass of every layer and of a whole network.

This is the single source of truth for arithmetic. The functions use the hardware
formulations (XNOR-popcount, add/subtract for bipolar weights, im2col in [kh][kw][c] order,
thresholds as a count of comparisons); ``exact=False`` paths use float64 matrix products,
which are exact for every accumulator below 2**53, and serve as the fast path and as the
mathematical reference in the tests.

Arrays: feature maps are NHWC inside this module (stream order); :func:`forward` takes and
returns NCHW like torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import FC, Conv, LayerInfo, MaxPool, Network, NetworkError, TopK
from .runtime.dtypes import DataType

__all__ = [
    "top1",
    "decide",
    "popcount",
    "xnor_popcount_dot",
    "matvec",
    "multithreshold",
    "pad_nhwc",
    "im2col",
    "conv2d",
    "maxpool",
    "topk",
    "layer_forward",
    "forward",
    "ForwardResult",
]

_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def popcount(packed: np.ndarray, axis: int = -1) -> np.ndarray:
    """Number of set bits of a uint8 array, summed along ``axis``."""
    return _POP8[packed].sum(axis=axis)


def xnor_popcount_dot(w_bits: np.ndarray, x_bits: np.ndarray) -> np.ndarray:
    """Bipolar dot products from bit encodings (1 = +1): 2·popcount(XNOR) − N.

    ``w_bits`` is (MH, MW) of 0/1, ``x_bits`` (N, MW); returns (N, MH) int64.
    """
    mw = w_bits.shape[1]
    wp = np.packbits(w_bits.astype(np.uint8), axis=1)  # (MH, B)
    xp = np.packbits(x_bits.astype(np.uint8), axis=1)  # (N, B)
    pad = wp.shape[1] * 8 - mw  # packbits pads with zeros: XNOR of two zeros counts 1
    out = np.empty((xp.shape[0], wp.shape[0]), dtype=np.int64)
    step = max(1, (1 << 22) // max(1, wp.size))
    for s in range(0, xp.shape[0], step):
        xnor = ~(xp[s:s + step, None, :] ^ wp[None, :, :])
        out[s:s + step] = popcount(xnor) - pad
    return 2 * out - mw


def matvec(w: np.ndarray, x: np.ndarray, wdt: DataType, xdt: DataType,
           exact: bool = True) -> np.ndarray:
    """Accumulators of an MVTU: (N, MW) inputs × (MH, MW) weights → (N, MH) int64.

    With ``exact`` the hardware formulation is used: XNOR-popcount for BIPOLAR×BIPOLAR,
    add/subtract for BIPOLAR weights × integer inputs, multiply-add otherwise.
    """
    w = np.asarray(w, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    if w.ndim != 2 or x.ndim != 2 or w.shape[1] != x.shape[1]:
        raise ValueError(f"matvec: shapes {w.shape} and {x.shape} do not match (MH,MW)×(N,MW)")
    if not exact:
        return np.rint(x.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    if wdt.is_bipolar and xdt.is_bipolar:
        return xnor_popcount_dot(wdt.encode(w), xdt.encode(x))
    if wdt.is_bipolar:
        # Σ (w = +1 ? x : −x) = 2·Σ_{w=+1} x − Σ x
        plus = (w > 0).astype(np.float64)
        xs = x.astype(np.float64)
        return np.rint(2 * (xs @ plus.T) - xs.sum(axis=1, keepdims=True)).astype(np.int64)
    return np.einsum("nk,mk->nm", x, w, dtype=np.int64)


def multithreshold(acc: np.ndarray, thresholds: np.ndarray, out_dtype: DataType) -> np.ndarray:
    """Per-channel multi-threshold activation along the last axis of ``acc``.

    ``thresholds`` is (C, T); out = Σ_i [acc ≥ T_i] (UINT), or ±1 from [acc ≥ T_0] (BIPOLAR).
    """
    acc = np.asarray(acc, dtype=np.int64)
    t = np.asarray(thresholds, dtype=np.int64)
    if acc.shape[-1] != t.shape[0]:
        raise ValueError(f"multithreshold: {acc.shape[-1]} channels but thresholds for "
                         f"{t.shape[0]}")
    count = (acc[..., None] >= t).sum(axis=-1)
    if out_dtype.is_bipolar:
        if t.shape[1] != 1:
            raise ValueError("multithreshold: BIPOLAR output needs exactly one threshold")
        return 2 * count - 1
    if t.shape[1] != (1 << out_dtype.bits) - 1:
        raise ValueError(f"multithreshold: {out_dtype} output needs {(1 << out_dtype.bits) - 1}"
                         f" thresholds per channel, got {t.shape[1]}")
    return count


def pad_nhwc(x: np.ndarray, padding: int, value: int) -> np.ndarray:
    """Pad height and width of an NHWC tensor with ``value`` on every side."""
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)),
                  constant_values=value)


def im2col(x: np.ndarray, kernel: int, stride: int = 1, padding: int = 0,
           pad_value: int = 0) -> np.ndarray:
    """Sliding-window vectors of an NHWC tensor: (N, OH·OW, K·K·C), columns [kh][kw][c].

    Rows are output pixels in raster order: exactly the vector stream of the sliding-window
    unit.
    """
    x = pad_nhwc(np.asarray(x), padding, pad_value)
    n, h, w, c = x.shape
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    cols = np.empty((n, oh, ow, kernel, kernel, c), dtype=x.dtype)
    for kh in range(kernel):
        for kw in range(kernel):
            cols[:, :, :, kh, kw, :] = x[:, kh:kh + stride * (oh - 1) + 1:stride,
                                         kw:kw + stride * (ow - 1) + 1:stride, :]
    return cols.reshape(n, oh * ow, kernel * kernel * c)


def conv2d(x: np.ndarray, w: np.ndarray, wdt: DataType, xdt: DataType, stride: int = 1,
           padding: int = 0, pad_value: int = 0, exact: bool = True) -> np.ndarray:
    """Convolution as sliding window × weight matrix. x NHWC, w (OC, IC, K, K) → NHWC acc."""
    n, h, wd, c = x.shape
    oc, ic, k, _ = w.shape
    if ic != c:
        raise ValueError(f"conv2d: input has {c} channels, weights expect {ic}")
    oh, ow = (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1
    cols = im2col(x, k, stride, padding, pad_value).reshape(n * oh * ow, k * k * c)
    wm = np.asarray(w).transpose(0, 2, 3, 1).reshape(oc, k * k * c)
    return matvec(wm, cols, wdt, xdt, exact).reshape(n, oh, ow, oc)


def maxpool(x: np.ndarray, kernel: int, stride: int | None = None,
            pads: tuple[int, int, int, int] = (0, 0, 0, 0), pad_value: int = 0) -> np.ndarray:
    """k×k max-pool of an NHWC tensor (for BIPOLAR ±1 values this is an OR).

    ``pads`` is (top, bottom, left, right), filled with ``pad_value`` (a network uses its
    input type's minimum, ``LayerInfo.pad_value``, so padding never wins); the output has
    ``(H + top + bottom − k)//s + 1`` rows (likewise columns).
    """
    s = kernel if stride is None else stride
    if len(pads) != 4 or min(pads) < 0:
        raise ValueError(f"maxpool: pads={pads} must be (top, bottom, left, right), each ≥ 0")
    if any(pads):
        pt, pb, pl, pr = pads
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
    n, h, w, c = x.shape
    oh, ow = (h - kernel) // s + 1, (w - kernel) // s + 1
    out = None
    for kh in range(kernel):
        for kw in range(kernel):
            v = x[:, kh:kh + s * (oh - 1) + 1:s, kw:kw + s * (ow - 1) + 1:s, :]
            out = v.copy() if out is None else np.maximum(out, v)
    return out


def topk(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values of each row, largest first; ties: lower index first."""
    x = np.asarray(x).reshape(x.shape[0], -1)
    order = np.argsort(-x, axis=1, kind="stable")
    return order[:, :k].astype(np.int64)


def layer_forward(info: LayerInfo, x: np.ndarray, exact: bool = True) -> np.ndarray:
    """Run one layer on an NHWC batch; returns NHWC (TopK: (N, 1, 1, k))."""
    lay = info.layer
    if isinstance(lay, Conv):
        acc = conv2d(x, np.asarray(lay.weights), lay.weight_dtype, info.in_dtype, lay.stride,
                     lay.padding, info.pad_value, exact)
    elif isinstance(lay, FC):
        flat = x.reshape(x.shape[0], -1)  # NHWC flatten = stream order
        acc = matvec(info.weight_matrix(), flat, lay.weight_dtype, info.in_dtype, exact)
        acc = acc.reshape(x.shape[0], 1, 1, -1)
    elif isinstance(lay, MaxPool):
        return maxpool(x, lay.kernel, lay.stride, info.pads, info.pad_value)
    elif isinstance(lay, TopK):
        return topk(x.reshape(x.shape[0], -1), lay.k).reshape(x.shape[0], 1, 1, lay.k)
    else:  # pragma: no cover - infer() rejects unknown layers
        raise NetworkError(f"layer {lay.name}: unknown type")
    if lay.act is None:
        return acc
    if lay.thresholds is None:
        raise NetworkError(f"layer {lay.name}: no thresholds attached")
    return multithreshold(acc, lay.thresholds, lay.act)


@dataclass
class ForwardResult:
    """Output of :func:`forward`: the final output and every layer's output, NCHW int64."""

    output: np.ndarray
    intermediates: dict[str, np.ndarray]


def forward(net: Network, images: np.ndarray, exact: bool = False,
            batch: int = 256, keep: bool = True) -> ForwardResult:
    """Integer forward pass of ``net`` on NCHW ``images`` (a single CHW image is accepted).

    ``exact=True`` uses the hardware formulations everywhere (slower); the default fast path
    is bit-identical (tested) and is what the tools use on large test sets. ``keep=False``
    keeps only the last layer's output (``intermediates`` then holds just that): every layer
    of CNV over 10,000 images would be about 20 GB of int64.
    """
    infos = net.infer(check_params=True)
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if tuple(x.shape[1:]) != net.input_shape:
        raise ValueError(f"network {net.name}: input must be N×{net.input_shape} (NCHW), "
                         f"got {x.shape}")
    net.input_dtype.check(x, f"network {net.name} input")
    kept = infos if keep else infos[-1:]
    outs: dict[str, list[np.ndarray]] = {i.name: [] for i in kept}
    for s in range(0, x.shape[0], batch):
        h = x[s:s + batch].astype(np.int64).transpose(0, 2, 3, 1)
        for info in infos:
            h = layer_forward(info, h, exact)
            if info.name in outs:
                outs[info.name].append(h.transpose(0, 3, 1, 2))
    inter = {k: np.concatenate(v) for k, v in outs.items()}
    return ForwardResult(inter[infos[-1].name], inter)


def decide(net: Network, output: np.ndarray) -> np.ndarray:
    """Class decision per image from ``net``'s output (N×C×H×W, the golden model's or the
    hardware's): the first index of a final TopK, else the argmax of the flattened output
    (first index on ties)."""
    scores = np.asarray(output).reshape(len(output), -1)
    return scores[:, 0] if net.layers[-1].kind == "topk" else scores.argmax(1)


def top1(net: Network, images: np.ndarray) -> np.ndarray:
    """Class decision per image (:func:`decide` of :func:`forward`). Keeps no intermediate
    layer."""
    return decide(net, forward(net, images, keep=False).output)
