"""Lane trim of the engine's raw stream: the first MH elements of each frame, random stalls,
several frames, exact cycles."""

from __future__ import annotations

import numpy as np
import pytest

from lowbit_hdl.hw.engine.trim import LaneTrim
from lowbit_hdl.sim.stream import pack
from sim.units import run_amaranth


@pytest.mark.parametrize("bits,pe,out,mh", [(4, 8, 2, 10), (3, 8, 8, 16), (5, 6, 3, 3),
                                            (2, 4, 1, 7)])
def test_trim(bits, pe, out, mh):
    rng = np.random.default_rng(mh)
    unit = LaneTrim(bits, pe, out, mh)
    frames = 3
    x = rng.integers(0, 1 << bits, size=(frames, unit.beats * pe))
    ins = [pack(v, bits) for f in x for v in f.reshape(-1, pe)]
    expect = [pack(v, bits) for f in x for v in f[:mh].reshape(-1, out)]
    assert run_amaranth(unit, ins, len(expect), 0.3, mh) == expect


def test_trim_checks():
    with pytest.raises(ValueError):
        LaneTrim(4, 8, 3, 9)
    with pytest.raises(TypeError):
        LaneTrim(4, 8.0, 2, 10)
