"""DDR weight images: the one owner of the format in which an MVTU reads its weights from DDR
(the ``stream`` and ``tiled`` placements).

Beats. The MVTU's weight port takes one beat per step, ``PE·SIMD`` encoded weights: beat
``nf·SF + sf`` (consumption order: neuron fold ``nf`` major, synapse fold ``sf`` minor) holds
in element ``p·SIMD + s`` the weight ``W[nf·PE + p, sf·SIMD + s]`` (PE ``p``, lane ``s``),
encoded by :meth:`DataType.encode <lowbit_hdl.runtime.dtypes.DataType.encode>` in
``wbits = weight_dtype.bits`` bits, element 0 in the least significant bits
(:func:`~lowbit_hdl.runtime.words.pack_word`, the one packing rule). A beat has
``beat_bits = PE·SIMD·wbits`` bits (:func:`beat_bits`).

Words. In DDR the beats of a layer are one bit stream, beat 0 first, each beat LSB first,
cut into ``word_bits``-bit words (64 for an HP port), the stream's first bit in bit 0 of word
0, words little-endian in memory: the whole image is a single :func:`pack_word` of all
elements, padded with zeros to a whole word (:func:`pack_words`, :func:`layer_weight_words`).

Width conversion. :class:`lowbit_hdl.hw.dwc.WidthConverter` keeps element order with element
0 of a beat the oldest and lowest, so ``WidthConverter(g, word_bits/g, beat_bits/g)`` with
``g = gcd(word_bits, beat_bits)`` turns the words back into the beats for *any* ``beat_bits``
(:func:`converter_geometry`); ``beat_bits`` need neither divide nor be a multiple of 64
(non-dividing widths only cost a wider read multiplexer in the converter).

Frames. A layer's image is ``NF·SF·beat_bits`` bits. When that is not a multiple of
``word_bits`` the pad bits of the last word also enter the converter, as surplus beats and a
partial one the MVTU does not consume, and the next frame would start misaligned; an image
can be replayed frame after frame through one converter only when :func:`frame_aligned` holds
(true for every power-of-two ``beat_bits`` once ``NF·SF`` is a multiple of
``word_bits/gcd(word_bits, beat_bits)``).

Numpy and the standard library only (the runtime packs the image at load time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .dtypes import DataType
from .words import pack_beats, pack_word

__all__ = ["beat_bits", "weight_codes", "weight_beats", "pack_words", "unpack_words",
           "layer_weight_words", "layer_weight_bytes", "converter_geometry", "frame_aligned",
           "interleave_region", "deinterleave_region"]

#: bits of one DDR word (an AXI HP port at 64 bits)
WORD_BITS = 64

#: elements packed per numpy call in :func:`layer_weight_words` (bounds temporary memory)
_CHUNK_BITS = 1 << 20


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r} must be an int")
    if value < minimum:
        raise ValueError(f"{name}={value} must be ≥ {minimum}")
    return int(value)


def _check_dtype(dtype: object) -> DataType:
    if not isinstance(dtype, DataType):
        raise TypeError(f"weight_dtype={dtype!r} must be a lowbit_hdl DataType")
    return dtype


def _check_word_bits(word_bits: object) -> int:
    word_bits = _check_int("word_bits", word_bits, 8)
    if word_bits % 8 or word_bits > 64:
        raise ValueError(f"word_bits={word_bits} must be a multiple of 8 and ≤ 64")
    return word_bits


def _geometry(weights, weight_dtype: DataType, pe: int, simd: int) -> np.ndarray:
    """Checked (MH, MW) int64 weights."""
    _check_dtype(weight_dtype)
    pe, simd = _check_int("PE", pe), _check_int("SIMD", simd)
    w = np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be a (MH, MW) matrix, got shape {w.shape}")
    mh, mw = w.shape
    if mh % pe:
        raise ValueError(f"MH={mh} is not a multiple of PE={pe}")
    if mw % simd:
        raise ValueError(f"MW={mw} is not a multiple of SIMD={simd}")
    weight_dtype.check(w, "weights")
    return w.astype(np.int64)


def beat_bits(weight_dtype: DataType, pe: int, simd: int) -> int:
    """Bits of one weight beat: ``PE·SIMD·wbits``."""
    _check_dtype(weight_dtype)
    return _check_int("PE", pe) * _check_int("SIMD", simd) * weight_dtype.bits


def weight_codes(weights, weight_dtype: DataType, pe: int, simd: int) -> np.ndarray:
    """Encoded weights in consumption order: ``(NF·SF, PE, SIMD)`` uint64, entry
    ``[nf·SF + sf, p, s]`` = code of ``W[nf·PE + p, sf·SIMD + s]``.

    Parameters
    ----------
    weights : array_like
        ``(MH, MW)`` integers of ``weight_dtype``.
    weight_dtype : DataType
        Weight type (its :meth:`~DataType.encode` gives the codes).
    pe, simd : int
        Processing elements (dividing MH) and lanes (dividing MW).

    Raises
    ------
    TypeError
        If ``weight_dtype`` is not a DataType or ``pe``/``simd`` not an int.
    ValueError
        If the shape does not fold or a weight is not of ``weight_dtype``.
    """
    w = _geometry(weights, weight_dtype, pe, simd)
    mh, mw = w.shape
    nf, sf = mh // pe, mw // simd
    folded = w.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe, simd)
    return weight_dtype.encode(folded)


def weight_beats(weights, weight_dtype: DataType, pe: int, simd: int) -> list[int]:
    """The ``NF·SF`` weight beats of a layer as integers, in consumption order (element
    ``p·SIMD + s`` in bits ``[(p·SIMD + s)·wbits, …)``). Parameters as :func:`weight_codes`."""
    codes = weight_codes(weights, weight_dtype, pe, simd)
    return [pack_word(row.reshape(-1).tolist(), weight_dtype.bits) for row in codes]


def _stream_words(elems: np.ndarray, width: int, word_bits: int) -> np.ndarray:
    """Codes ``elems`` (1-D, ``width`` bits each) as one bit stream cut into words."""
    n = elems.size
    per = _CHUNK_BITS // math.lcm(width, word_bits) * math.lcm(width, word_bits) // width
    per = max(per, math.lcm(width, word_bits) // width)  # elements per chunk, whole words
    parts = []
    for start in range(0, n, per):
        chunk = elems[start:start + per]
        nbytes = -(-chunk.size * width // word_bits) * word_bits // 8
        parts.append(pack_beats(chunk.reshape(1, -1), width, nbytes).reshape(-1))
    raw = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    wb = word_bits // 8
    raw = np.concatenate([raw, np.zeros((-raw.size) % wb, np.uint8)])
    # little-endian words of wb bytes → uint64
    return (raw.reshape(-1, wb).astype(np.uint64)
            << (8 * np.arange(wb, dtype=np.uint64))).sum(axis=1, dtype=np.uint64)


def pack_words(beats: Sequence[int] | np.ndarray, beat_bits: int,
               word_bits: int = WORD_BITS) -> np.ndarray:
    """Beats → DDR words: the beats as one bit stream (beat 0 first, LSB first), cut into
    ``word_bits``-bit words, the last one zero-padded.

    Parameters
    ----------
    beats : sequence of int
        Beat values, each below ``2**beat_bits`` (any width: Python integers).
    beat_bits : int
        Bits per beat (:func:`beat_bits`).
    word_bits : int
        Bits per word, a multiple of 8 up to 64.

    Returns
    -------
    numpy.ndarray
        ``ceil(len(beats)·beat_bits / word_bits)`` words, uint64; ``.astype("<u8")`` (for
        64-bit words) gives the little-endian bytes of the DDR image.

    Raises
    ------
    TypeError
        If ``beat_bits`` or ``word_bits`` is not an int.
    ValueError
        If a beat is negative or too wide, or ``word_bits`` is not supported.
    """
    beat_bits = _check_int("beat_bits", beat_bits)
    word_bits = _check_word_bits(word_bits)
    ints = [int(b) for b in beats]
    if any(b < 0 or b >> beat_bits for b in ints):
        raise ValueError(f"a beat is negative or wider than beat_bits={beat_bits}")
    if beat_bits <= 64:
        return _stream_words(np.array(ints, dtype=np.uint64), beat_bits, word_bits)
    # wider beats: one bit per element
    nbytes = -(-beat_bits // 8)
    raw = np.frombuffer(b"".join(b.to_bytes(nbytes, "little") for b in ints), np.uint8)
    bits = np.unpackbits(raw.reshape(len(ints), nbytes), axis=1, bitorder="little")
    return _stream_words(bits[:, :beat_bits].reshape(-1).astype(np.uint64), 1, word_bits)


def unpack_words(words: Sequence[int] | np.ndarray, beat_bits: int, count: int,
                 word_bits: int = WORD_BITS) -> list[int]:
    """DDR words → the first ``count`` beats (inverse of :func:`pack_words`; builds one
    Python integer of the whole stream, for tests and small images)."""
    beat_bits, count = _check_int("beat_bits", beat_bits), _check_int("count", count, 0)
    word_bits = _check_word_bits(word_bits)
    ws = [int(w) for w in words]
    if count * beat_bits > len(ws) * word_bits:
        raise ValueError(f"{len(ws)} words of {word_bits} bits hold fewer than {count} beats "
                         f"of {beat_bits} bits")
    stream = pack_word(ws, word_bits)
    mask = (1 << beat_bits) - 1
    return [(stream >> (k * beat_bits)) & mask for k in range(count)]


def layer_weight_words(weights, weight_dtype: DataType, pe: int, simd: int,
                       word_bits: int = WORD_BITS) -> np.ndarray:
    """The DDR image of a layer's weights: ``pack_words(weight_beats(...))``, vectorised for
    large layers (no Python integer per beat). Parameters as :func:`weight_codes`."""
    word_bits = _check_word_bits(word_bits)
    codes = weight_codes(weights, weight_dtype, pe, simd)
    return _stream_words(codes.reshape(-1), weight_dtype.bits, word_bits)


def layer_weight_bytes(mh: int, mw: int, pe: int, simd: int, weight_dtype: DataType,
                       word_bits: int = WORD_BITS) -> int:
    """Bytes of a layer's DDR weight image (read once per frame):
    ``ceil(MH·MW·wbits / word_bits) · word_bits / 8``.

    Raises
    ------
    ValueError
        If PE does not divide MH or SIMD does not divide MW.
    """
    mh, mw = _check_int("MH", mh), _check_int("MW", mw)
    bb = beat_bits(weight_dtype, pe, simd)
    word_bits = _check_word_bits(word_bits)
    if mh % pe or mw % simd:
        raise ValueError(f"PE={pe} must divide MH={mh} and SIMD={simd} must divide MW={mw}")
    bits = (mh // pe) * (mw // simd) * bb
    return -(-bits // word_bits) * word_bits // 8


def converter_geometry(beat_bits: int, word_bits: int = WORD_BITS,
                       words: int = 1) -> tuple[int, int, int]:
    """``(elem_bits, in_elems, out_elems)`` of the :class:`~lowbit_hdl.hw.dwc.WidthConverter`
    from inputs of ``words`` words of ``word_bits`` (the words of ``words`` read masters
    merged, :func:`interleave_region`) to ``beat_bits`` beats: with ``n = words·word_bits``
    and ``g = gcd(n, beat_bits)``, ``(g, n/g, beat_bits/g)``."""
    beat_bits = _check_int("beat_bits", beat_bits)
    n = _check_word_bits(word_bits) * _check_int("words", words)
    g = math.gcd(n, beat_bits)
    return g, n // g, beat_bits // g


def frame_aligned(beats: int, beat_bits: int, word_bits: int = WORD_BITS) -> bool:
    """Whether ``beats`` beats of ``beat_bits`` end exactly on a word (no pad bits), so that
    the image can be replayed frame after frame through one width converter."""
    beats, beat_bits = _check_int("beats", beats, 0), _check_int("beat_bits", beat_bits)
    return beats * beat_bits % _check_word_bits(word_bits) == 0


def interleave_region(words: np.ndarray, ports: int) -> np.ndarray:
    """A layer's region in DDR order from its stream order: ``ports`` sub-regions one after
    the other, sub-region ``j`` holding stream words ``j, j + ports, j + 2·ports, …``, so that
    read master ``j`` reads sub-region ``j`` with plain INCR bursts and the merge of one word
    of each master per beat (master ``j`` in bits ``[64j, 64j + 64)``) restores the stream:
    the layout of a region read by several masters (an engine layer's tiles,
    :mod:`lowbit_hdl.runtime.engine`; a DDR layer's weights, :mod:`.ddrimage`).
    ``words.size`` must be a multiple of ``ports``."""
    w = np.asarray(words, dtype=np.uint64)
    ports = _check_int("ports", ports)
    if w.size % ports:
        raise ValueError(f"a region of {w.size} words is not whole beats of {ports} words")
    return np.ascontiguousarray(w.reshape(-1, ports).T).reshape(-1)


def deinterleave_region(words: np.ndarray, ports: int) -> np.ndarray:
    """Inverse of :func:`interleave_region`: a region's words in stream order."""
    w = np.asarray(words, dtype=np.uint64)
    ports = _check_int("ports", ports)
    if w.size % ports:
        raise ValueError(f"a region of {w.size} words is not whole beats of {ports} words")
    return np.ascontiguousarray(w.reshape(ports, -1).T).reshape(-1)
