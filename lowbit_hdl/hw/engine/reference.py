"""Numpy model of one engine layer on the engine's own data formats (buffer words,
descriptor, tile words): what the datapath computes, independent of its implementation.

Activations are codes (BIPOLAR: 1 = +1). In the U domain a lane adds ``[x == w]`` (BIPOLAR
A, XNOR) or ``2^k + (w ? x : −x)`` (UINTk A), summed over the ``K·K·CF·simd`` lanes of a
window (padded channels and pad pixels included). Numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ...runtime.dtypes import DataType
from ...runtime.engine import engine_thresholds, tile_threshold_words, tile_weight_words
from ...runtime.words import pack_word, unpack_word

__all__ = ["layer_u", "reference_layer", "map_to_words", "words_to_map"]


def map_to_words(codes: np.ndarray, simd: int) -> np.ndarray:
    """(H, W, C) codes → (H·W·CF, simd) buffer words (lanes of channels ≥ C are 0)."""
    h, w, c = codes.shape
    cf = -(-c // simd)
    out = np.zeros((h, w, cf * simd), dtype=np.int64)
    out[:, :, :c] = codes
    return out.reshape(h * w * cf, simd)


def words_to_map(words: np.ndarray, shape: tuple[int, int, int], simd: int) -> np.ndarray:
    """Inverse of :func:`map_to_words` for the first ``H·W·CF`` words."""
    h, w, c = shape
    cf = -(-c // simd)
    return np.asarray(words)[:h * w * cf].reshape(h, w, cf * simd)[:, :, :c]


def _tiles(tiles: np.ndarray, d: Mapping[str, int], pe: int, simd: int, act: DataType | None,
           acc_bits: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Tile words → weight codes (NF·pe, SF·simd) and thresholds (NF·pe, T) or None."""
    nf, sf = d["nf"], d["sf"]
    ww = tile_weight_words(sf, pe, simd)
    tw = d["tile_words"] - ww  # the threshold words, padded to whole tile-stream beats
    assert tw >= tile_threshold_words(pe, act, acc_bits), (tw, d)
    t = np.asarray(tiles, dtype=np.uint64).reshape(nf, tw + ww)
    bits = np.unpackbits(t[:, tw:].astype("<u8").view(np.uint8).reshape(nf, -1), axis=1,
                         bitorder="little")
    w = bits.reshape(nf, sf, pe, simd).transpose(0, 2, 1, 3).reshape(nf * pe, sf * simd)
    if act is None:
        return w.astype(np.int64), None
    nt = engine_thresholds(act)
    thr = np.array([unpack_word(pack_word([int(v) for v in t[f, :tw]], 64), acc_bits, pe * nt)
                    for f in range(nf)], dtype=np.int64).reshape(nf * pe, nt)
    return w.astype(np.int64), thr


def _windows(words: np.ndarray, d: Mapping[str, int], simd: int) -> np.ndarray:
    """The activation beats of every output pixel: (OH·OW, K·K·CF·simd) codes."""
    h, w, cf, k, s = d["in_h"], d["in_w"], d["in_cf"], d["k"], d["stride"]
    m = np.asarray(words)[:h * w * cf].reshape(h, w, cf * simd)
    oh, ow = d["out_h"], d["out_w"]
    iy = np.arange(oh)[:, None] * s - d["pad_t"] + np.arange(k)[None, :]   # (OH, K)
    ix = np.arange(ow)[:, None] * s - d["pad_l"] + np.arange(k)[None, :]   # (OW, K)
    vy, vx = (iy >= 0) & (iy < h), (ix >= 0) & (ix < w)
    g = m[np.clip(iy, 0, h - 1)[:, None, :, None], np.clip(ix, 0, w - 1)[None, :, None, :]]
    ok = vy[:, None, :, None] & vx[None, :, None, :]                        # (OH, OW, K, K)
    g = np.where(ok[..., None], g, d["pad_code"])
    return g.reshape(oh * ow, k * k * cf * simd)


def layer_u(words: np.ndarray, d: Mapping[str, int], wcodes: np.ndarray,
            act: DataType, simd: int) -> np.ndarray:
    """U of every (pixel, neuron): (OH·OW, NF·pe) for input buffer ``words``, descriptor
    ``d`` and weight codes (NF·pe, SF·simd); ``act`` is the engine activation A."""
    x = _windows(words, d, simd)
    if act.is_bipolar:
        return x @ wcodes.T + (1 - x) @ (1 - wcodes).T
    sign = 2 * wcodes - 1
    return x @ sign.T + (1 << act.bits) * x.shape[1]


def reference_layer(buffers: Sequence[np.ndarray], d: Mapping[str, int], tiles: np.ndarray,
                    pe: int, simd: int, act: DataType, acc_bits: int) -> np.ndarray | None:
    """Run one layer: reads ``buffers[in_buf]``, writes ``buffers[out_buf]`` in place (the
    pooled map, channels ≥ out_c as 0), or returns the raw beats ``(NF·OH·OW, pe)`` in the
    engine's output order (``nf`` major) for a raw layer.

    ``buffers``: two (buffer_words, simd) int64 code arrays; ``tiles``: the layer's region
    (:func:`lowbit_hdl.runtime.engine.layer_tile_words`).
    """
    raw = bool(d["raw"])
    lact = None if raw else act
    w, thr = _tiles(tiles, d, pe, simd, lact, acc_bits)
    u = layer_u(buffers[d["in_buf"]], d, w, act, simd)          # (P, NF·pe)
    oh, ow, nf = d["out_h"], d["out_w"], d["nf"]
    if raw:
        v = (u << d["acc_shift"]) + d["acc_offset"]
        return v.reshape(oh * ow, nf, pe).transpose(1, 0, 2).reshape(nf * oh * ow, pe)
    codes = (u[:, :, None] >= thr[None, :, :]).sum(axis=2)        # (P, NF·pe)
    codes[:, d["out_c"]:] = 0
    conv = codes.reshape(oh, ow, nf * pe)
    k, s, pt, pl = d["pool_k"], d["pool_s"], d["pool_t"], d["pool_l"]
    ph, pw, ocf = d["pool_h"], d["pool_w"], d["out_cf"]
    out = np.zeros((ph, pw, ocf * simd), dtype=np.int64)
    n = min(nf * pe, ocf * simd)
    for py in range(ph):
        for px in range(pw):
            y0, x0 = max(py * s - pt, 0), max(px * s - pl, 0)
            y1, x1 = min(py * s - pt + k, oh), min(px * s - pl + k, ow)
            out[py, px, :n] = conv[y0:y1, x0:x1, :n].max(axis=(0, 1))
    buffers[d["out_buf"]][:ph * pw * ocf] = out.reshape(ph * pw * ocf, simd)
    return None
