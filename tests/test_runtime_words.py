"""The one packing rule (runtime/words.py): words as integers and as numpy beats agree, by
hand and on random data; its users (stream layout, testbench helpers, ROM words) follow it."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit_hdl.runtime.words import (
    pack_beats,
    pack_word,
    unpack_beats,
    unpack_word,
    words_from_bytes,
    words_to_bytes,
)


def test_words_by_hand():
    # element 0 in the low bits; values masked to the width (two's complement for negatives)
    assert pack_word([1, 2, 3], 4) == 0x321
    assert pack_word([-1, 0x1F], 4) == 0xFF
    assert pack_word([], 3) == 0
    assert unpack_word(0x321, 4, 3) == [1, 2, 3]
    assert unpack_word(0xF7, 4, 2, signed=True) == [7, -1]
    assert unpack_word(0x321, 4, 4) == [1, 2, 3, 0]
    # little-endian beats
    assert words_to_bytes([0x0102, 0xA0B0], 2) == b"\x02\x01\xb0\xa0"
    assert words_from_bytes(b"\x02\x01\xb0\xa0", 2) == [0x0102, 0xA0B0]
    assert words_from_bytes(np.array([2, 1, 0xB0, 0xA0], np.uint8), 4) == [0xA0B00102]
    # numpy form: 3 elements of 3 bits in a 2-byte beat, padded with zeros
    np.testing.assert_array_equal(pack_beats(np.array([[5, 2, 7]]), 3, 2), [[0xD5, 0x01]])
    np.testing.assert_array_equal(unpack_beats(np.array([[0xD5, 0xFF]], np.uint8), 3, 3),
                                  [[5, 2, 7]])


def test_word_errors():
    with pytest.raises(ValueError, match="whole 2-byte beats"):
        words_from_bytes(b"\x00\x01\x02", 2)
    with pytest.raises(ValueError, match="do not fit"):
        pack_beats(np.zeros((1, 3), np.int64), 3, 1)
    with pytest.raises(ValueError, match="do not fit"):
        unpack_beats(np.zeros((1, 1), np.uint8), 3, 3)
    with pytest.raises(ValueError, match="width"):
        pack_word([1], 0)
    with pytest.raises(TypeError, match="width"):
        unpack_word(1, 2.0, 1)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20), st.integers(0, 9), st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_integer_and_numpy_forms_agree(width, count, spare_bytes, seed):
    beat_bytes = -(-count * width // 8) + spare_bytes or 1
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 1 << width, size=(3, count))
    beats = pack_beats(codes, width, beat_bytes)
    assert beats.shape == (3, beat_bytes) and beats.dtype == np.uint8
    words = [pack_word(row, width) for row in codes]
    assert beats.tobytes() == words_to_bytes(words, beat_bytes)
    assert words_from_bytes(beats, beat_bytes) == words
    assert [unpack_word(w, width, count) for w in words] == codes.tolist()
    np.testing.assert_array_equal(unpack_beats(beats, width, count), codes)
    signed = [unpack_word(w, width, count, signed=True) for w in words]
    assert [pack_word(row, width) for row in signed] == words


def test_users_follow_the_rule():
    from amaranth import signed

    from lowbit_hdl.hw.threshold import pack_thresholds
    from lowbit_hdl.runtime.layout import StreamLayout
    from lowbit_hdl.sim.stream import pack, unpack

    assert pack is pack_word and unpack is unpack_word
    assert pack_thresholds([-2, 0, 3], signed(4)) == pack_word([-2, 0, 3], 4) == 0x30E
    lay = StreamLayout((3, 1, 2), "INT3", 3, 16)
    x = np.array([[[[1, -4]], [[-1, 3]], [[2, 0]]]])  # pixel 0 = (1, -1, 2), pixel 1 = (-4, 3, 0)
    assert words_from_bytes(lay.pack(x), 2) == [pack_word([1, -1, 2], 3),
                                                pack_word([-4, 3, 0], 3)]
