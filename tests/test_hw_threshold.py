"""ThresholdUnit: co-simulation against lowbit_hdl.golden.multithreshold on Verilator and
Icarus (random accumulators and thresholds, random stalls, exact cycle counts), and
constructor checks."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib.data import ArrayLayout

from lowbit_hdl.golden import multithreshold
from lowbit_hdl.hw.threshold import ThresholdUnit
from lowbit_hdl.runtime.dtypes import BIPOLAR, INT, UINT
from lowbit_hdl.sim.runner import available_simulators
from lowbit_hdl.sim.stream import pack
from sim.units import phase, simulate_units

# (name, channels, PE, input dtype, act)
CONFIGS = [
    ("int10_u2", 12, 4, INT(10), UINT(2)),
    ("int8_bip_full", 5, 5, INT(8), BIPOLAR),
    ("uint6_u3_pe1", 3, 1, UINT(6), UINT(3)),
    ("int13_u4", 6, 2, INT(13), UINT(4)),
]


def build_case(cfg, frames: int):
    name, c, pe, idt, act = cfg
    rng = np.random.default_rng(sum(map(ord, name)))
    n = 1 if act.is_bipolar else (1 << act.bits) - 1
    # thresholds mostly inside the input range, some beyond it on both sides (clipping)
    t = np.sort(rng.integers(idt.min - 3, idt.max + 4, size=(c, n)), axis=1)
    t[0] = np.sort(rng.integers(idt.max - 2, idt.max + 10, size=n))
    t[-1] = np.sort(rng.integers(idt.min - 10, idt.min + 3, size=n))
    unit = ThresholdUnit(c, pe, idt, t, act)
    runs = []
    for stall in (0.0, 0.3):
        acc = rng.integers(idt.min, idt.max + 1, size=(frames, c))
        acc[0, :] = idt.max
        acc[1, :] = idt.min
        y = act.encode(multithreshold(acc, t, act)).astype(np.int64)
        a = idt.encode(acc).astype(np.int64)
        words = [pack(v[f * pe:(f + 1) * pe], idt.bits) for v in a for f in range(unit.nf)]
        expected = [pack(v[f * pe:(f + 1) * pe], act.bits) for v in y for f in range(unit.nf)]
        runs.append(phase(words, expected, stall,
                          cycles=unit.cycles(len(words)) if stall == 0 else None))
    return unit, runs


@pytest.mark.parametrize("sim", available_simulators())
def test_threshold_unit_matches_golden(sim):
    frames = 8 if sim == "verilator" else 5
    cases = {c[0]: build_case(c, frames) for c in CONFIGS}
    for (u, _), c in zip(cases.values(), CONFIGS, strict=True):
        idt, act = c[3], c[4]
        in_elem = signed(idt.bits) if idt.signed else unsigned(idt.bits)
        assert u.i.payload.shape() == ArrayLayout(in_elem, c[2])
        assert u.o.payload.shape() == ArrayLayout(unsigned(act.bits), c[2])
    simulate_units(cases, "threshold_bundle", sim)


def test_int_in_dtype_means_acc_bits():
    u = ThresholdUnit(4, 2, 9, np.zeros((4, 1), int), BIPOLAR)
    assert u.in_dtype == INT(9)
    assert u.i.payload.shape() == ArrayLayout(signed(9), 2)
    assert u.o.payload.shape() == ArrayLayout(unsigned(1), 2)


@pytest.mark.parametrize("args, msg", [
    ((10, 4, INT(8), np.zeros((10, 1), int), BIPOLAR), r"channels=10 is not a multiple of PE=4"),
    ((4, 0, INT(8), np.zeros((4, 1), int), BIPOLAR), r"PE=0 must be ≥ 1"),
    ((4, 2, BIPOLAR, np.zeros((4, 1), int), BIPOLAR), r"in_dtype=BIPOLAR must be"),
    ((4, 2, INT(8), np.zeros((4, 2), int), BIPOLAR), r"expected \(4, 1\)"),
    ((4, 2, INT(8), np.zeros((4, 3), int), INT(2)), r"act=INT2 is not supported"),
    ((4, 2, INT(8), np.array([[1, 0, 2]] * 4), UINT(2)), r"must ascend"),
    ((4, 2, INT(8), np.full((4, 1), 0.5), BIPOLAR), r"must be integers"),
    ((4, 2, INT(8), None, None), r"act must be BIPOLAR or UINTk"),
])
def test_constructor_errors(args, msg):
    with pytest.raises(ValueError, match=msg):
        ThresholdUnit(*args)


@pytest.mark.parametrize("args, msg", [
    ((4.0, 2, INT(8), np.zeros((4, 1), int), BIPOLAR), r"channels=4.0 must be an int"),
    ((4, "2", INT(8), np.zeros((4, 1), int), BIPOLAR), r"PE='2' must be an int"),
    ((4, 2, "INT8", np.zeros((4, 1), int), BIPOLAR), r"in_dtype='INT8' must be"),
    ((4, 2, INT(8), np.zeros((4, 1), int), "BIPOLAR"), r"act='BIPOLAR' must be"),
])
def test_constructor_type_errors(args, msg):
    with pytest.raises(TypeError, match=msg):
        ThresholdUnit(*args)
