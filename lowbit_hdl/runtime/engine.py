"""The engine's layer descriptor: the one owner of its fields, widths and packing.

The engine (architecture (a) of ``docs/large_networks.md``) runs layer after layer on one
runtime-configured datapath. Each layer is described by one descriptor: the fields of
:data:`DESCRIPTOR_FIELDS` packed LSB first (field 0 in bit 0) into :data:`DESCRIPTOR_WORDS`
64-bit little-endian words. The hardware builds its ``data.StructLayout`` from the same
table (``lowbit_hdl.hw.engine``), and the runtime packs descriptors with
:func:`pack_descriptor`. Numpy and the standard library only.

Fields (geometry of one layer; see the module docs of ``lowbit_hdl.hw.engine``):

=============  ==========================================================================
 in_buf         activation buffer the input map is read from (0 or 1)
 out_buf        buffer the output map is written to
 in_h, in_w     input map rows and columns
 in_cf          input channel folds, ``ceil(C / simd)``
 k, stride      kernel size and stride
 pad_t, pad_l   padding rows above and columns left (bottom/right follow from out_h/out_w)
 pad_code       the encoded pad value, replicated into every lane of the pad word
 out_h, out_w   convolution output rows and columns
 nf             neuron folds, ``ceil(out_c / pe)``
 out_c          real output channels (lanes of channels ≥ out_c are written as code 0)
 pool_k         max-pool kernel (1 = no pool), ``pool_s`` stride
 pool_t/l       pool padding above and left
 pool_h/w       rows and columns of the map written (pooled, or the conv output)
 out_cf         channel folds of the written map
 raw            1: the layer emits raw accumulators on the raw stream instead of writing
 acc_shift      raw accumulator = (U << acc_shift) + acc_offset
 acc_offset     (two's complement, 24 bits)
 sf             K·K·in_cf, the weight beats per tile (redundant; checked)
 tile_words     64-bit words per tile (thresholds then weights)
 region         byte offset of the layer's tile region in the DDR image
 last           1 on the final descriptor of a frame
=============  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .ddr import WORD_BITS
from .dtypes import DataType
from .words import pack_word

__all__ = ["DESCRIPTOR_FIELDS", "DESCRIPTOR_BITS", "DESCRIPTOR_WORDS", "SIGNED_FIELDS",
           "field_range", "pack_descriptor", "unpack_descriptor"]

#: (name, bits) in packing order, field 0 in the least significant bits
DESCRIPTOR_FIELDS: tuple[tuple[str, int], ...] = (
    ("in_buf", 1), ("out_buf", 1),
    ("in_h", 10), ("in_w", 10), ("in_cf", 8),
    ("k", 5), ("stride", 4), ("pad_t", 4), ("pad_l", 4), ("pad_code", 8),
    ("out_h", 10), ("out_w", 10), ("nf", 10), ("out_c", 12),
    ("pool_k", 3), ("pool_s", 3), ("pool_t", 2), ("pool_l", 2), ("pool_h", 10), ("pool_w", 10),
    ("out_cf", 8),
    ("raw", 1), ("acc_shift", 2), ("acc_offset", 24),
    ("sf", 16), ("tile_words", 20), ("region", 32), ("last", 1),
)
#: fields read as two's complement
SIGNED_FIELDS = frozenset({"acc_offset"})
#: bits of one descriptor
DESCRIPTOR_BITS = sum(b for _, b in DESCRIPTOR_FIELDS)
#: 64-bit words of one descriptor
DESCRIPTOR_WORDS = -(-DESCRIPTOR_BITS // 64)

_BITS = dict(DESCRIPTOR_FIELDS)


def field_range(name: str) -> tuple[int, int]:
    """(lowest, highest) value a field can hold.

    Raises
    ------
    ValueError
        If ``name`` is not a descriptor field.
    """
    if name not in _BITS:
        raise ValueError(f"unknown descriptor field {name!r}")
    b = _BITS[name]
    if name in SIGNED_FIELDS:
        return -(1 << (b - 1)), (1 << (b - 1)) - 1
    return 0, (1 << b) - 1


def pack_descriptor(fields: Mapping[str, int], layer: str = "?") -> np.ndarray:
    """One descriptor → :data:`DESCRIPTOR_WORDS` ``uint64`` words.

    Every field of :data:`DESCRIPTOR_FIELDS` must be given, and no other.

    Raises
    ------
    TypeError
        If a value is not an int.
    ValueError
        If a field is missing, unknown or out of its range (the message names ``layer``).
    """
    names = [n for n, _ in DESCRIPTOR_FIELDS]
    missing = [n for n in names if n not in fields]
    extra = [n for n in fields if n not in _BITS]
    if missing or extra:
        raise ValueError(f"layer {layer}: descriptor fields missing {missing}, unknown {extra}")
    word, shift = 0, 0
    for name, bits in DESCRIPTOR_FIELDS:
        v = fields[name]
        if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)):
            raise TypeError(f"layer {layer}: descriptor field {name}={v!r} must be an int")
        lo, hi = field_range(name)
        if not lo <= int(v) <= hi:
            raise ValueError(f"layer {layer}: descriptor field {name}={int(v)} outside "
                             f"[{lo}, {hi}] ({bits} bits)")
        word |= (int(v) & ((1 << bits) - 1)) << shift
        shift += bits
    return np.array([(word >> (64 * i)) & ((1 << 64) - 1) for i in range(DESCRIPTOR_WORDS)],
                    dtype=np.uint64)


def unpack_descriptor(words: np.ndarray | list[int]) -> dict[str, int]:
    """:data:`DESCRIPTOR_WORDS` words → the field values (inverse of
    :func:`pack_descriptor`)."""
    ws = [int(w) for w in words]
    if len(ws) != DESCRIPTOR_WORDS:
        raise ValueError(f"a descriptor is {DESCRIPTOR_WORDS} words, got {len(ws)}")
    word = sum(w << (64 * i) for i, w in enumerate(ws))
    out, shift = {}, 0
    for name, bits in DESCRIPTOR_FIELDS:
        v = (word >> shift) & ((1 << bits) - 1)
        if name in SIGNED_FIELDS and v >> (bits - 1):
            v -= 1 << bits
        out[name] = v
        shift += bits
    return out


# -- the tile stream (DDR format of one engine layer's weights and thresholds) ---------------
# (section of the datapath helper, h-edp)
#
# One layer's region: NF tiles, tile nf = [threshold words][weight words]. Threshold words
# (none for a raw layer): pe × T thresholds in the U domain, element p·T + t, ``acc_bits``
# bits each, packed by ``words.pack_word`` and cut into 64-bit words (``tile_threshold_words``
# of them). Weight words: SF beats of pe·simd BIPOLAR codes, beat sf = (ky·K + kx)·CF + cf,
# element p·simd + s = code of W[nf·pe + p, ky, kx, cf·simd + s], packed as ``ddr.py`` packs
# beats. Padded neurons (≥ MH) and channels (≥ C) carry code 0 and threshold 0.

__all__ += ["engine_thresholds", "tile_threshold_words", "tile_weight_words",
            "layer_tile_words", "DATAPATH_ERRORS"]


def _tile_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r} must be an int")
    if value < minimum:
        raise ValueError(f"{name}={value} must be ≥ {minimum}")
    return int(value)


def engine_thresholds(act: DataType | None) -> int:
    """Thresholds per channel of an engine layer: ``2^k − 1`` for UINTk, 1 for BIPOLAR, 0 for
    a raw layer (``act`` is ``None``)."""
    if act is None:
        return 0
    if not isinstance(act, DataType):
        raise TypeError(f"act={act!r} must be a DataType or None")
    if act.kind == "int":
        raise ValueError(f"act={act}: engine activations are BIPOLAR or UINTk")
    return 1 if act.is_bipolar else (1 << act.bits) - 1


def tile_threshold_words(pe: int, act: DataType | None, acc_bits: int) -> int:
    """64-bit words of thresholds at the head of every tile: ``ceil(pe·T·acc_bits / 64)``
    (0 for a raw layer)."""
    pe, acc_bits = _tile_int("pe", pe), _tile_int("acc_bits", acc_bits)
    return -(-pe * engine_thresholds(act) * acc_bits // WORD_BITS)


def tile_weight_words(sf: int, pe: int, simd: int) -> int:
    """64-bit words of weights in every tile: ``SF·pe·simd / 64`` (``pe·simd`` must be a
    multiple of 64)."""
    sf, pe, simd = _tile_int("sf", sf), _tile_int("pe", pe), _tile_int("simd", simd)
    if pe * simd % WORD_BITS:
        raise ValueError(f"pe·simd = {pe * simd} must be a multiple of {WORD_BITS}")
    return sf * pe * simd // WORD_BITS


def layer_tile_words(weights, thresholds_u, act: DataType | None, pe: int, simd: int,
                     acc_bits: int) -> np.ndarray:
    """The tile region of one engine layer, 64-bit words (``uint64``).

    Parameters
    ----------
    weights : array_like
        ``(MH, K, K, C)`` BIPOLAR weight values (±1); an FC layer is the conv whose kernel
        covers its input map (the golden model's NHWC flatten order).
    thresholds_u : array_like or None
        ``(MH, T)`` thresholds in the U domain (non-negative, below ``2**acc_bits``), or
        ``None`` for a raw layer (``act`` is ``None``).
    act : DataType or None
        The layer's activation (BIPOLAR or UINTk), ``None`` for raw.
    pe, simd : int
        The datapath's PEs and lanes (``pe·simd`` a multiple of 64).
    acc_bits : int
        Width of a threshold.

    Returns
    -------
    numpy.ndarray
        ``NF·(tile_threshold_words + tile_weight_words)`` words, tile after tile.

    Raises
    ------
    TypeError
        If a size is not an int or ``act`` not a DataType/None.
    ValueError
        If a shape, a weight value or a threshold is out of range.
    """
    from .ddr import layer_weight_words
    from .dtypes import BIPOLAR

    pe, simd = _tile_int("pe", pe), _tile_int("simd", simd)
    acc_bits = _tile_int("acc_bits", acc_bits)
    nt = engine_thresholds(act)
    w = np.asarray(weights)
    if w.ndim != 4 or w.shape[1] != w.shape[2]:
        raise ValueError(f"weights must be (MH, K, K, C), got shape {w.shape}")
    BIPOLAR.check(w, "weights")
    mh, k, _, c = w.shape
    cf, nf = -(-c // simd), -(-mh // pe)
    sf = k * k * cf
    tw, ww = tile_threshold_words(pe, act, acc_bits), tile_weight_words(sf, pe, simd)
    padded = -np.ones((nf * pe, k, k, cf * simd), dtype=np.int64)  # code 0
    padded[:mh, :, :, :c] = w
    wwords = layer_weight_words(padded.reshape(nf * pe, sf * simd), BIPOLAR, pe, simd)
    wwords = wwords.reshape(nf, ww)
    if act is None:
        if thresholds_u is not None:
            raise ValueError("a raw layer (act=None) has no thresholds")
        return wwords.reshape(-1).astype(np.uint64)
    t = np.asarray(thresholds_u)
    if t.shape != (mh, nt):
        raise ValueError(f"thresholds_u have shape {t.shape}, expected ({mh}, {nt})")
    t = t.astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >> acc_bits):
        raise ValueError(f"U-domain thresholds must lie in [0, 2**{acc_bits})")
    tp = np.zeros((nf * pe, nt), dtype=np.int64)
    tp[:mh] = t
    out = np.zeros((nf, tw + ww), dtype=np.uint64)
    mask = (1 << WORD_BITS) - 1
    for f in range(nf):
        word = pack_word(tp[f * pe:(f + 1) * pe].reshape(-1).tolist(), acc_bits)
        out[f, :tw] = [(word >> (WORD_BITS * j)) & mask for j in range(tw)]
        out[f, tw:] = wwords[f]
    return out.reshape(-1)


#: error codes of the engine datapath (its ``error`` port, set when ``start`` finds the
#: descriptor unusable: the layer is not run and ``done`` follows the next cycle)
DATAPATH_ERRORS: dict[int, str] = {
    1: "sf is not k·k·in_cf, is 0, or exceeds the tile depth max_sf",
    2: "a layer that writes the buffer must read the other one (in_buf == out_buf)",
    3: "a size field is 0 (k, stride, in_h/w/cf, out_h/w, nf, out_c, pool_k/s, pool_h/w, "
       "out_cf)",
    4: "tile_words is not the threshold words (none if raw) plus sf·pe·simd/64",
    5: "the input or the written map does not fit the activation buffer",
    6: "raw layer on a datapath without a raw port",
    7: "nf·pe or out_cf·simd does not cover out_c",
}
