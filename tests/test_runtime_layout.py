"""Stream layout: packing round trips (hypothesis), the byte format by hand, layout files."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit_hdl.runtime.layout import DesignLayout, IpNames, LayoutError, StreamLayout

DTYPES = ["BIPOLAR", "UINT1", "UINT2", "UINT3", "UINT4", "UINT8", "INT2", "INT3", "INT8",
          "INT16", "UINT12"]


def _bits(dtype: str) -> int:
    return 1 if dtype == "BIPOLAR" else int(dtype.lstrip("UINT"))


def _values(rng: np.random.Generator, dtype: str, shape: tuple) -> np.ndarray:
    if dtype == "BIPOLAR":
        return rng.choice(np.array([-1, 1]), size=shape)
    b = _bits(dtype)
    lo, hi = (0, (1 << b) - 1) if dtype.startswith("UINT") else (-(1 << (b - 1)),
                                                                (1 << (b - 1)) - 1)
    return rng.integers(lo, hi + 1, size=shape)


@st.composite
def layouts(draw):
    dtype = draw(st.sampled_from(DTYPES))
    c = draw(st.integers(1, 6))
    h = draw(st.integers(1, 4))
    w = draw(st.integers(1, 4))
    n_elems = c * h * w
    epb = draw(st.sampled_from([d for d in range(1, n_elems + 1) if n_elems % d == 0]))
    pad = draw(st.integers(0, 16))
    tdata = -(-(epb * _bits(dtype) + pad) // 8) * 8
    return StreamLayout((c, h, w), dtype, epb, tdata)


@settings(max_examples=150, deadline=None)
@given(layouts(), st.integers(0, 5), st.integers(0, 2**32 - 1))
def test_pack_unpack_round_trip(lay, n, seed):
    frames = _values(np.random.default_rng(seed), lay.dtype, (n, *lay.shape))
    packed = lay.pack(frames)
    assert packed.dtype == np.uint8
    assert packed.shape == (n, lay.frame_bytes)
    assert lay.frame_bytes == lay.beats_per_frame * lay.tdata_bits // 8
    np.testing.assert_array_equal(lay.unpack(packed), frames)
    # flat buffers and bytes unpack the same
    np.testing.assert_array_equal(lay.unpack(packed.reshape(-1)), frames)
    np.testing.assert_array_equal(lay.unpack(packed.tobytes()), frames)


@settings(max_examples=60, deadline=None)
@given(layouts(), st.integers(0, 2**32 - 1))
def test_padding_bits_are_zero_and_ignored(lay, seed):
    frames = _values(np.random.default_rng(seed), lay.dtype, (2, *lay.shape))
    packed = lay.pack(frames)
    used = lay.elems_per_beat * lay.elem_bits
    bits = np.unpackbits(packed.reshape(2, lay.beats_per_frame, lay.beat_bytes), axis=-1,
                         bitorder="little")
    assert not bits[..., used:].any()
    bits[..., used:] = 1  # garbage in the padding does not change the values
    dirty = np.packbits(bits, axis=-1, bitorder="little").reshape(2, -1)
    np.testing.assert_array_equal(lay.unpack(dirty), frames)


def test_byte_format_by_hand():
    # 2 channels × 1 × 2 pixels of INT4, 2 elements per 8-bit beat; H, W, C order, element 0
    # in the low bits: pixel 0 = (c0=1, c1=-1) → 0xF1, pixel 1 = (c0=-8, c1=7) → 0x78
    lay = StreamLayout((2, 1, 2), "INT4", 2, 8)
    frames = np.array([[[[1, -8]], [[-1, 7]]]])
    np.testing.assert_array_equal(lay.pack(frames), [[0xF1, 0x78]])
    # BIPOLAR: +1 → 1, -1 → 0, little-endian bytes of a 16-bit beat holding 9 elements
    b = StreamLayout((9, 1, 1), "BIPOLAR", 9, 16)
    x = np.array([1, -1, -1, -1, -1, -1, -1, -1, 1]).reshape(1, 9, 1, 1)
    np.testing.assert_array_equal(b.pack(x), [[0x01, 0x01]])


@pytest.mark.parametrize("dtype,bad", [("UINT2", 4), ("UINT2", -1), ("INT3", 4),
                                       ("BIPOLAR", 0), ("BIPOLAR", 2)])
def test_pack_rejects_values_out_of_range(dtype, bad):
    lay = StreamLayout((1, 1, 2), dtype, 1, 8)
    ok = 1
    with pytest.raises(LayoutError, match="out of range"):
        lay.pack(np.array([[[[ok, bad]]]]))


def test_pack_and_unpack_reject_wrong_sizes():
    lay = StreamLayout((3, 2, 2), "UINT8", 3, 24)
    with pytest.raises(LayoutError, match="NCHW"):
        lay.pack(np.zeros((1, 2, 2, 3), dtype=np.int64))
    with pytest.raises(LayoutError, match="whole number"):
        lay.unpack(np.zeros(lay.frame_bytes + 1, np.uint8))


def test_stream_layout_rejects_bad_parameters():
    with pytest.raises(LayoutError, match="multiple of 8"):
        StreamLayout((4, 1, 1), "UINT4", 2, 12)
    with pytest.raises(LayoutError, match="holding"):
        StreamLayout((4, 1, 1), "UINT4", 4, 8)
    with pytest.raises(LayoutError, match="divide"):
        StreamLayout((5, 1, 1), "UINT4", 2, 8)
    with pytest.raises(LayoutError, match="unknown data type"):
        StreamLayout((1, 1, 1), "FLOAT32", 1, 32)


def _design(**kw) -> DesignLayout:
    args = dict(network="net", input=StreamLayout((1, 28, 28), "UINT8", 8, 64),
                output=StreamLayout((1, 1, 1), "UINT4", 1, 8), clock_mhz=100.0,
                cycles_per_frame=64, labels=tuple("0123456789"))
    args.update(kw)
    return DesignLayout(**args)


def test_design_layout_file_round_trip(tmp_path):
    lay = _design(output_kind="indices")
    lay.save(tmp_path / "layout.json")
    back = DesignLayout.load(tmp_path / "layout.json")
    assert back == lay
    d = json.loads((tmp_path / "layout.json").read_text())
    assert d["format"] == "lowbit-hdl-layout" and d["input"]["shape"] == [1, 28, 28]
    # a layout written before output_kind existed still loads
    del d["output_kind"]
    assert DesignLayout.from_json(d).output_kind is None


def test_design_layout_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        DesignLayout.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LayoutError, match="not valid JSON"):
        DesignLayout.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(LayoutError, match="not a lowbit-hdl layout"):
        DesignLayout.load(tmp_path / "other.json")
    d = _design().to_json()
    del d["clock_mhz"]
    with pytest.raises(LayoutError, match="missing or has a malformed field"):
        DesignLayout.from_json(d)
    with pytest.raises(LayoutError, match="output_kind"):
        _design(output_kind="probabilities")


def test_kind_of_output():
    assert _design().kind_of_output() == "indices"  # top-1 index
    assert _design(output=StreamLayout((3, 1, 1), "UINT4", 1, 8)).kind_of_output() == "indices"
    assert _design(output=StreamLayout((10, 1, 1), "INT12", 1, 16)).kind_of_output() == "scores"
    assert _design(output=StreamLayout((10, 1, 1), "UINT4", 1, 8)).kind_of_output() == "scores"
    assert _design(output=StreamLayout((4, 2, 2), "UINT2", 4, 8)).kind_of_output() == "raw"
    no_labels = _design(labels=None, output=StreamLayout((4, 1, 1), "UINT2", 1, 8))
    assert no_labels.kind_of_output() == "scores"
    assert _design(output_kind="raw").kind_of_output() == "raw"


def test_ip_names_travel_in_the_layout(tmp_path):
    # the build's cell names are the layout's defaults (one owner: IpNames)
    from dataclasses import asdict

    from lowbit_hdl.flow.plan import IP_NAMES

    assert IP_NAMES == asdict(IpNames())
    assert IpNames().dma == "axi_dma_0"
    lay = _design(ip_names=IpNames(dma="dma_in_out"))
    lay.save(tmp_path / "layout.json")
    d = json.loads((tmp_path / "layout.json").read_text())
    assert d["ip_names"] == {"dma": "dma_in_out", "accelerator": "lowbit_accel_0",
                             "ps": "processing_system7_0"}
    assert DesignLayout.load(tmp_path / "layout.json").ip_names.dma == "dma_in_out"
    # layout files from before ip_names (or with some names) load with the defaults
    del d["ip_names"]
    assert DesignLayout.from_json(d).ip_names == IpNames()
    d["ip_names"] = {"dma": "x"}
    assert DesignLayout.from_json(d).ip_names == IpNames(dma="x")
    for bad, msg in (({"dma": 3}, "must be a str"), ({"dma": ""}, "must not be empty"),
                     ({"hls_ip": "a"}, "unknown cell"), (["axi_dma_0"], "must be an object")):
        d["ip_names"] = bad
        with pytest.raises(LayoutError, match=msg):
            DesignLayout.from_json(d)
    with pytest.raises(TypeError, match="IpNames"):
        _design(ip_names={"dma": "x"})
