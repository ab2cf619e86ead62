"""The DDR weight format (lowbit_hdl.runtime.ddr): beat order and element packing, beats into
64-bit words and back, the vectorised layer image, sizes, converter geometry, errors. The
hardware side (words → WidthConverter → MVTU) is tests/test_hw_mvtu_stream.py."""

from __future__ import annotations

import numpy as np
import pytest

from lowbit_hdl.runtime.ddr import (
    beat_bits,
    converter_geometry,
    frame_aligned,
    layer_weight_bytes,
    layer_weight_words,
    pack_words,
    unpack_words,
    weight_beats,
    weight_codes,
)
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, DataType
from lowbit_hdl.runtime.words import unpack_word, words_to_bytes


def _random(rng, dt: DataType, shape) -> np.ndarray:
    if dt.is_bipolar:
        return rng.choice(np.array([-1, 1]), size=shape)
    return rng.integers(dt.min, dt.max + 1, size=shape)


def test_beat_order_and_elements():
    """Beat nf·SF + sf, element p·SIMD + s = W[nf·PE + p, sf·SIMD + s], INT8 two's complement
    in 8 bits, element 0 lowest."""
    mh, mw, pe, simd = 4, 6, 2, 3
    w = np.arange(mh * mw).reshape(mh, mw) - 12  # distinct values, some negative
    beats = weight_beats(w, INT(8), pe, simd)
    nf, sf = mh // pe, mw // simd
    assert len(beats) == nf * sf
    for f in range(nf):
        for s in range(sf):
            elems = unpack_word(beats[f * sf + s], 8, pe * simd, signed=True)
            for p in range(pe):
                for j in range(simd):
                    assert elems[p * simd + j] == w[f * pe + p, s * simd + j]
    # beat 1 = (nf 0, sf 1): PE 0 lanes W[0, 3:6] = -9, -8, -7; PE 1 lanes W[1, 3:6] = -3…-1
    assert beats[1] == int.from_bytes(bytes([0xF7, 0xF8, 0xF9, 0xFD, 0xFE, 0xFF]), "little")
    codes = weight_codes(w, INT(8), pe, simd)
    assert codes.shape == (nf * sf, pe, simd) and codes.dtype == np.uint64
    assert beat_bits(INT(8), pe, simd) == 48


def test_bipolar_bits():
    w = np.array([[1, -1, -1, 1], [-1, -1, 1, 1]])
    # PE=2, SIMD=2: beat (0, 0) = elements W[0,0:2], W[1,0:2] = +1 -1 -1 -1 → 0b0001
    assert weight_beats(w, BIPOLAR, 2, 2) == [0b0001, 0b1110]
    assert weight_beats(w, BIPOLAR, 1, 4) == [0b1001, 0b1100]


def test_pack_words_bit_stream():
    beats = [0x1234, 0xABCD, 0x5678, 0x9ABC, 0x1111]
    words = pack_words(beats, 16)
    assert words.dtype == np.uint64
    assert [int(v) for v in words] == [0x9ABC5678ABCD1234, 0x1111]
    # 24-bit beats straddle words: one LSB-first stream
    b24 = [0xABCDEF, 0x123456, 0x789ABC]
    assert [int(v) for v in pack_words(b24, 24)] == [0x9ABC123456ABCDEF, 0x78]
    # little-endian bytes of the DDR image
    assert words.astype("<u8").tobytes() == words_to_bytes([int(v) for v in words], 8)
    assert [int(v) for v in pack_words(beats, 16, word_bits=32)] == [
        0xABCD1234, 0x9ABC5678, 0x1111]


@pytest.mark.parametrize("wdt, mh, mw, pe, simd", [
    (BIPOLAR, 8, 32, 2, 8),      # 16-bit beats, divide 64
    (INT(8), 8, 12, 1, 3),       # 24-bit beats, do not divide 64
    (INT(3), 6, 10, 1, 5),       # 15-bit beats, gcd 1 with 64
    (INT(8), 8, 12, 4, 3),       # 96-bit beats, wider than a word
    (BIPOLAR, 64, 64, 8, 8),     # one word per beat
    (INT(3), 600, 600, 4, 5),    # > one packing chunk (1.08 Mbit, odd width)
])
def test_layer_image_equals_packed_beats(wdt, mh, mw, pe, simd):
    rng = np.random.default_rng(mh * mw + pe)
    w = _random(rng, wdt, (mh, mw))
    beats = weight_beats(w, wdt, pe, simd)
    bb = beat_bits(wdt, pe, simd)
    image = layer_weight_words(w, wdt, pe, simd)
    np.testing.assert_array_equal(image, pack_words(beats, bb))
    assert len(image) * 8 == layer_weight_bytes(mh, mw, pe, simd, wdt)
    if len(beats) <= 200:
        assert unpack_words(image, bb, len(beats)) == beats


def test_sizes_geometry_alignment():
    # AlexNet fc0 (W1, 6400 → 4096): 3.1 MiB read once per frame
    assert layer_weight_bytes(4096, 6400, 32, 2, BIPOLAR) == 4096 * 6400 // 8
    assert layer_weight_bytes(3, 5, 1, 5, INT(3)) == 8  # 45 bits → one word
    assert converter_geometry(16) == (16, 4, 1)
    assert converter_geometry(24) == (8, 8, 3)
    assert converter_geometry(96) == (32, 2, 3)
    assert converter_geometry(15) == (1, 64, 15)
    assert converter_geometry(64) == (64, 1, 1)
    assert frame_aligned(4, 16) and not frame_aligned(3, 16)
    assert frame_aligned(8, 24) and not frame_aligned(4, 24)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: weight_beats(np.ones((4, 6)), "INT8", 2, 3), TypeError, "must be a lowbit_hdl"),
    (lambda: weight_beats(np.ones((4, 6)), BIPOLAR, 3, 3), ValueError, "MH=4 is not a multiple"),
    (lambda: weight_beats(np.ones((4, 6)), BIPOLAR, 2, 4), ValueError, "MW=6 is not a multiple"),
    (lambda: weight_beats(np.ones(6), BIPOLAR, 1, 1), ValueError, r"\(MH, MW\) matrix"),
    (lambda: weight_beats(np.full((2, 2), 2), BIPOLAR, 1, 1), ValueError, "must be BIPOLAR"),
    (lambda: weight_beats(np.ones((2, 2)), BIPOLAR, 1.0, 1), TypeError, "PE=1.0 must be an int"),
    (lambda: pack_words([1 << 16], 16), ValueError, "wider than beat_bits=16"),
    (lambda: pack_words([-1], 16), ValueError, "negative"),
    (lambda: pack_words([1], 16, word_bits=12), ValueError, "multiple of 8"),
    (lambda: pack_words([1], 16, word_bits=128), ValueError, "≤ 64"),
    (lambda: unpack_words([1], 16, 5), ValueError, "fewer than 5 beats"),
    (lambda: layer_weight_bytes(4, 6, 3, 3, BIPOLAR), ValueError, "PE=3 must divide MH=4"),
])
def test_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
