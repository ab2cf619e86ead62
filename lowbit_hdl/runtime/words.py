"""Elements into stream words and words into bytes: the one packing rule of lowbit-hdl.

A word holds ``count`` elements of ``width`` bits each, element 0 in the least significant
bits (element ``j`` in bits ``[j·width, (j+1)·width)``); a word travels on an AXI stream as
``beat_bytes`` bytes, little-endian. Elements here are unsigned bit patterns (codes); turning
values into codes and back is :meth:`~lowbit_hdl.runtime.dtypes.DataType.encode` /
``decode``.

Two forms of the same rule: words as Python integers (testbenches, ROM contents) and words
as numpy byte rows (the runtime's frames, vectorised). Numpy and the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["pack_word", "unpack_word", "words_from_bytes", "words_to_bytes", "pack_beats",
           "unpack_beats"]


def _check_width(width: int) -> None:
    if not isinstance(width, (int, np.integer)) or isinstance(width, bool):
        raise TypeError(f"width must be an int, got {type(width).__name__}")
    if width < 1:
        raise ValueError(f"width={width} must be ≥ 1")


def pack_word(values: Iterable[int], width: int) -> int:
    """Elements → one word (element 0 in the least significant bits).

    Parameters
    ----------
    values
        The elements; each is masked to its low ``width`` bits (so negative values give
        their two's-complement pattern).
    width
        Bits per element.

    Returns
    -------
    int
        The word, a non-negative integer.
    """
    _check_width(width)
    word, mask = 0, (1 << width) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * width)
    return word


def unpack_word(word: int, width: int, count: int, signed: bool = False) -> list[int]:
    """One word → ``count`` elements of ``width`` bits (inverse of :func:`pack_word`).

    With ``signed`` each element is read as two's complement.
    """
    _check_width(width)
    mask = (1 << width) - 1
    out = []
    for i in range(count):
        v = (int(word) >> (i * width)) & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def words_from_bytes(data: bytes | bytearray | np.ndarray, beat_bytes: int) -> list[int]:
    """Stream bytes → one integer per beat of ``beat_bytes`` bytes (little-endian)."""
    raw = bytes(np.asarray(data, dtype=np.uint8).reshape(-1)) \
        if isinstance(data, np.ndarray) else bytes(data)
    if beat_bytes < 1 or len(raw) % beat_bytes:
        raise ValueError(f"{len(raw)} bytes are not whole {beat_bytes}-byte beats")
    return [int.from_bytes(raw[i:i + beat_bytes], "little")
            for i in range(0, len(raw), beat_bytes)]


def words_to_bytes(words: Iterable[int], beat_bytes: int) -> bytes:
    """Integers, one per beat → stream bytes (inverse of :func:`words_from_bytes`)."""
    return b"".join(int(w).to_bytes(beat_bytes, "little") for w in words)


def pack_beats(codes: np.ndarray, width: int, beat_bytes: int) -> np.ndarray:
    """Codes ``(..., count)`` → beats ``(..., beat_bytes)`` uint8, one word per row.

    Numpy form of :func:`pack_word` followed by :func:`words_to_bytes`: ``codes`` are
    unsigned bit patterns below ``2**width``; the word is zero-padded to ``beat_bytes``.
    """
    _check_width(width)
    enc = np.asarray(codes).astype(np.uint64)
    count = enc.shape[-1]
    pad = 8 * beat_bytes - count * width
    if pad < 0:
        raise ValueError(f"{count}×{width} bits do not fit a {beat_bytes}-byte beat")
    shifts = np.arange(width, dtype=np.uint64)  # element bits, little-endian
    ebits = ((enc[..., None] >> shifts) & np.uint64(1)).astype(np.uint8)
    bits = ebits.reshape(enc.shape[:-1] + (count * width,))
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), np.uint8)], axis=-1)
    return np.packbits(bits, axis=-1, bitorder="little")


def unpack_beats(beats: np.ndarray, width: int, count: int) -> np.ndarray:
    """Beats ``(..., beat_bytes)`` uint8 → codes ``(..., count)`` int64 (inverse of
    :func:`pack_beats`; bits above ``count·width`` are ignored)."""
    _check_width(width)
    raw = np.asarray(beats, dtype=np.uint8)
    if count * width > 8 * raw.shape[-1]:
        raise ValueError(f"{count}×{width} bits do not fit a {raw.shape[-1]}-byte beat")
    allbits = np.unpackbits(raw, axis=-1, bitorder="little")
    ebits = allbits[..., :count * width].reshape(raw.shape[:-1] + (count, width))
    return (ebits.astype(np.int64) << np.arange(width, dtype=np.int64)).sum(axis=-1)

