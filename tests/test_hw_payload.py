# amaranth: UnusedElaboratable=no
"""Payload layouts of the hardware library (lowbit_hdl.hw.payload): element shapes, packing
order (element 0 in the lowest bits, as the cocotb benches and the runtime pack words), and
the shape-generic buffers (CreditFIFO, SkidBuffer)."""

# (the line above: constructor checks build components that are never elaborated)
from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib.data import ArrayLayout

from lowbit_hdl.hw.credit import CreditFIFO
from lowbit_hdl.hw.dwc import WidthConverter
from lowbit_hdl.hw.payload import FlatArrayLayout, elem_shape, payload_shape, vector
from lowbit_hdl.hw.skid import SkidBuffer
from lowbit_hdl.hw.threshold import ThresholdUnit
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT
from lowbit_hdl.sim.runner import to_verilog
from lowbit_hdl.sim.stream import pack


def test_elem_shapes():
    assert elem_shape(INT(5)) == signed(5)
    assert elem_shape(UINT(3)) == unsigned(3)
    assert elem_shape(BIPOLAR) == unsigned(1)
    assert vector(INT(4), 3) == ArrayLayout(signed(4), 3)
    assert vector(BIPOLAR, 64) == ArrayLayout(unsigned(1), 64)
    assert vector(3, 2) == ArrayLayout(unsigned(3), 2)
    assert vector(signed(6), 2) == ArrayLayout(signed(6), 2)
    assert vector(UINT(2), 7).size == 14
    assert isinstance(vector(UINT(2), 7), FlatArrayLayout)
    assert repr(vector(INT(3), 2)) == "FlatArrayLayout(signed(3), 2)"


@pytest.mark.parametrize("dt, values", [
    (UINT(3), [1, 2, 7, 0, 5]),
    (INT(4), [-8, 7, -1, 0]),
    (BIPOLAR, [1, 0, 0, 1, 1]),  # encoded bits
])
def test_element_zero_is_lowest(dt, values):
    """The layout packs a beat exactly as sim.stream.pack (and the runtime) does."""
    assert vector(dt, len(values)).const(values).as_bits() == pack(values, dt.bits)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: elem_shape("INT4"), TypeError, "dtype='INT4' must be a lowbit_hdl DataType"),
    (lambda: vector("x", 2), TypeError, "must be a DataType, an Amaranth Shape or a bit count"),
    (lambda: vector(True, 2), TypeError, "must be a DataType"),
    (lambda: vector(0, 2), ValueError, "elem=0 must be ≥ 1"),
    (lambda: vector(2, 0), ValueError, "count=0 must be ≥ 1"),
    (lambda: vector(2, 2.0), TypeError, "count=2.0 must be an int"),
    (lambda: payload_shape("8", "X"), TypeError, "X: shape='8' must be a bit count"),
    (lambda: payload_shape(0, "X"), ValueError, "X: width=0 must be ≥ 1"),
    (lambda: CreditFIFO(8, 0), ValueError, "depth=0 must be ≥ 1"),
    (lambda: CreditFIFO(8, 1.5), TypeError, "depth=1.5 must be an int"),
])
def test_checks(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_buffers_keep_the_layout():
    lay = vector(INT(5), 3)
    c = CreditFIFO(lay, 3)
    assert c.o.payload.shape() == lay and c.w_data.shape() == lay and c.width == 15
    s = SkidBuffer(lay)
    assert s.i.payload.shape() == s.o.payload.shape() == lay and s.width == 15
    assert SkidBuffer(6).o.payload.shape() == unsigned(6)
    assert CreditFIFO(4, 2).o.payload.shape() == unsigned(4)


def test_no_element_alias_wires():
    """Layout-typed signals (ports, registers, memories, the output FIFO's ports) appear in
    Verilog as one flat vector each, without the per-element alias wires ``\\x[j]`` a plain
    ArrayLayout gets (their names collide with bus-bit names in Yosys' ABC9 flow)."""
    units = {
        "dwc": WidthConverter(2, 3, 2),
        "thr": ThresholdUnit(4, 2, INT(6), np.zeros((4, 3), int), UINT(2)),
    }
    for name, unit in units.items():
        v = to_verilog(unit, name)
        assert "i__payload" in v and "o__payload" in v
        assert "\\i__payload[" not in v and "\\o__payload[" not in v, name
        assert "\\w_data[" not in v and "\\acc[" not in v, name
